"""The documentation site: it builds with ``mkdocs build --strict`` (no broken link); README.md
stays short and keeps the test command CI runs; and every Python or Bash block of every docs page
is either run by a test (listed in ``RUN_BY``) or marked on the page with the reason the suite
cannot run it. The blocks this file runs itself (the loss pages' examples, the evaluator's and the
CSV import's) are checked against the formulas their pages give, computed here in float64."""
import contextlib
import glob
import importlib.util
import io
import math
import os
import re
import shlex
import subprocess
import sys

import pytest
import torch
import yaml

from tests.doc_blocks import ROOT, Block, code_blocks, page_blocks, read_page

#: (page, section, language, index among the section's blocks of that language) -> the test file
#: that reads the block from the page and runs it.
RUN_BY = {
    ("docs/architecture.md", "Extension points", "python", i): "tests/test_architecture_doc.py" for i in range(5)
} | {
    ("docs/configuration.md", "Logging", "bash", 0): "tests/glue/test_validation_log.py",
    ("docs/configuration.md", "Logging", "python", 0): "tests/glue/test_validation_log.py",
    ("docs/tuning.md", "Pick alpha for N", "bash", 0): "tests/test_alpha_search_run.py",
    ("docs/tuning.md", "Hyper-parameter search", "bash", 0): "tests/tune/test_study.py",
    ("docs/tuning.md", "Hyper-parameter search", "bash", 1): "tests/tune/test_study.py",
    ("docs/tuning.md", "Hyper-parameter search", "python", 0): "tests/test_recbole_contract.py",
    ("docs/negatives.md", "Negatives, log q and the baselines", "bash", 0): "tests/test_training_spec.py",
    ("docs/own-data.md", "Your own data", "bash", 0): "tests/test_own_data.py",
    ("docs/own-data.md", "Your own data", "bash", 1): "tests/test_docs.py",
    ("docs/own-data.md", "Your own data", "bash", 2): "tests/data/test_sequences_import.py",
    ("docs/comparing-losses.md", "Compare CROLoss with cross-entropy on your data", "bash", 0):
        "tests/benchmark/test_compare_records.py",
    ("docs/evaluation.md", "Protocols", "bash", 2): "tests/data/test_rechorus.py",
    ("docs/evaluation.md", "Full-ranking evaluation at catalogue scale", "python", 0): "tests/test_docs.py",
    ("docs/getting-started.md", "The loss from Python", "python", 0): "tests/test_docs.py",
    ("docs/losses/croloss.md", "Example", "python", 0): "tests/test_docs.py",
    ("docs/losses/croloss.md", "Special cases", "python", 0): "tests/test_docs.py",
    ("docs/losses/croloss-lambda.md", "Example", "python", 0): "tests/test_docs.py",
    ("docs/losses/croloss-lambda.md", "Special cases", "python", 0): "tests/test_docs.py",
    ("docs/losses/sampled-softmax.md", "Example", "python", 0): "tests/test_docs.py",
    ("docs/losses/bpr.md", "Example", "python", 0): "tests/test_docs.py",
    ("docs/losses/triplet.md", "Example", "python", 0): "tests/test_docs.py",
    ("docs/losses/bce.md", "Example", "python", 0): "tests/test_docs.py",
}

PAGES = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
LOSS_PAGES = ["croloss", "croloss-lambda", "sampled-softmax", "bpr", "triplet", "bce", "ce"]


def test_the_site_builds_strictly(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    for page in ("index", "losses/croloss/index", "api/index", "results/index"):
        assert (tmp_path / "site" / f"{page}.html").is_file() or (tmp_path / "site" / page / "index.html").is_file()
    assert "CROLoss" in (tmp_path / "site" / "api" / "index.html").read_text()  # mkdocstrings rendered


def test_the_nav_names_every_page():
    with open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8") as fh:
        text = fh.read()
    named = set(re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?([\w/.-]+\.md)\s*$", text, re.M))
    assert named == {os.path.relpath(p, "docs") for p in PAGES}


def test_the_readme_is_short_and_keeps_the_ci_test_command():
    lines = read_page("README.md").splitlines()
    assert len(lines) <= 200
    (command,) = [line for line in lines if "python -m pytest" in line]
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as fh:
        ci = fh.read()
    assert "pip install -q -e '.[test,ray,docs]'" in ci and "mkdocs build --strict" in ci
    assert command.endswith("&& python -m pytest -q tests") and "\npython -m pytest -q tests\n" in ci
    for link in re.findall(r"\]\((docs/[^)#]+)", "\n".join(lines)):
        assert os.path.isfile(os.path.join(ROOT, link)), link


def all_blocks() -> list[Block]:
    return [b for page in PAGES for b in page_blocks(page) if b.language in ("python", "bash")]


def test_every_block_is_run_by_a_test_or_says_why_not():
    unaccounted = [(b.page, b.section, b.language, b.index, b.text.splitlines()[0])
                   for b in all_blocks() if (b.page, b.section, b.language, b.index) not in RUN_BY and not b.not_run]
    assert not unaccounted, unaccounted
    marked_and_run = [(b.page, b.section, b.index) for b in all_blocks()
                      if b.not_run and (b.page, b.section, b.language, b.index) in RUN_BY]
    assert not marked_and_run


@pytest.mark.parametrize("key", sorted(RUN_BY), ids=lambda k: f"{k[0]}:{k[1]}:{k[2]}{k[3]}")
def test_each_listed_block_exists_and_its_test_reads_its_page(key):
    blocks = {(b.page, b.section, b.language, b.index): b for b in page_blocks(key[0])}
    assert key in blocks, f"no such block: {key}"
    with open(os.path.join(ROOT, RUN_BY[key]), encoding="utf-8") as fh:
        assert key[0] in fh.read(), f"{RUN_BY[key]} does not read {key[0]}"


# --- the blocks this file runs ------------------------------------------------------------
def run_block(block: str, scope: dict | None = None) -> tuple[dict, str]:
    scope, printed = dict(scope or {}), io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(block, scope)
    return scope, printed.getvalue()


def rank_estimate(phi: torch.Tensor, n_items: int, estimator: str = "paper") -> torch.Tensor:
    """R per row from phi(g) [B, M], as the losses' pages write it."""
    m = phi.shape[1]
    if estimator == "paper":
        return n_items / m * (1 + phi.sum(1))
    return 1 + (n_items - 1) / m * phi.sum(1)


def scaled_cdf(r: torch.Tensor, alpha: float, n_items: int) -> torch.Tensor:
    """log(|I| + 1) W_alpha(R)."""
    big = math.log(n_items + 1)
    if alpha == 1:
        return torch.log(r)
    return big * (1 - r ** (1 - alpha)) / (1 - (n_items + 1) ** (1 - alpha))


def check_value_and_gradient(scope, reference):
    """The block's loss and its gradients against ``reference(pos, neg)`` in float64."""
    pos, neg = (scope[k].detach().double().requires_grad_() for k in ("pos", "neg"))
    expected = reference(pos, neg)
    expected.backward()
    assert scope["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(scope["pos"].grad.double(), pos.grad, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(scope["neg"].grad.double(), neg.grad, rtol=1e-4, atol=1e-7)


def gaps(pos, neg):
    return neg - pos[:, None]


def test_croloss_example_is_the_formula_on_its_page():
    (block,) = code_blocks("docs/losses/croloss.md", "Example", "python")
    scope, printed = run_block(block)
    assert float(printed) == pytest.approx(scope["loss"].item())
    check_value_and_gradient(scope, lambda p, n: scaled_cdf(
        rank_estimate(torch.nn.functional.softplus(gaps(p, n)), 5000), 1.2, 5000).mean())


def test_croloss_with_exp_alpha_1_and_the_exact_rank_is_cross_entropy():
    (block,) = code_blocks("docs/losses/croloss.md", "Special cases", "python")
    scope, printed = run_block(block)
    scores = scope["scores"].double()
    expected = (torch.logsumexp(scores, 1) - scores[:, 0]).mean().item()
    assert [float(x) for x in printed.split()] == pytest.approx([expected, expected], rel=1e-5)


def test_croloss_lambda_example_is_lambda_of_r1_times_r2():
    (block,) = code_blocks("docs/losses/croloss-lambda.md", "Example", "python")
    scope, _ = run_block(block)
    alpha, n_items = 1.4, 5000
    big = math.log(n_items + 1)
    k_alpha = big * (1 - alpha) / math.expm1((1 - alpha) * big)

    def reference(p, n):
        r1 = rank_estimate(torch.sigmoid(gaps(p, n)), n_items).detach()  # held constant
        return (k_alpha * r1 ** -alpha * rank_estimate(torch.exp(gaps(p, n)), n_items)).mean()
    check_value_and_gradient(scope, reference)


def test_croloss_lambda_with_one_kernel_has_croloss_s_gradient():
    (block,) = code_blocks("docs/losses/croloss-lambda.md", "Special cases", "python")
    scope, printed = run_block(block)
    assert printed.split() == ["True", "True"]
    (croloss_pos, croloss_neg), (lambda_pos, lambda_neg) = scope["grads"]
    assert croloss_pos.abs().sum() > 0  # a gradient there is, and the two agree on it
    torch.testing.assert_close(croloss_pos, lambda_pos)
    torch.testing.assert_close(croloss_neg, lambda_neg)


def test_sampled_softmax_example_is_the_log_q_corrected_cross_entropy():
    (block,) = code_blocks("docs/losses/sampled-softmax.md", "Example", "python")
    scope, _ = run_block(block)
    log_q = scope["log_q"].double()

    def reference(p, n):  # cross-entropy on the logits S - log(M q_j), the positive first
        logits = torch.cat([p[:, None], n - log_q - math.log(n.shape[1])], 1)
        return (torch.logsumexp(logits, 1) - p).mean()
    check_value_and_gradient(scope, reference)


@pytest.mark.parametrize("page, phi", [
    ("bpr", lambda g: torch.nn.functional.softplus(g)),
    ("triplet", lambda g: torch.clamp(g + 5.0, min=0)),
])
def test_the_alpha_0_presets_are_their_pages_sum(page, phi):
    (block,) = code_blocks(f"docs/losses/{page}.md", "Example", "python")
    scope, _ = run_block(block)
    n_items = 5000

    def reference(p, n):
        total = phi(gaps(p, n)).sum(1)
        return (math.log(n_items + 1) * ((1 + total) / n.shape[1] - 1 / n_items)).mean()
    check_value_and_gradient(scope, reference)


def test_gbce_and_bce_examples_are_the_formula_on_their_page():
    (block,) = code_blocks("docs/losses/bce.md", "Example", "python")
    scope, printed = run_block(block)
    n_items, softplus = 5000, torch.nn.functional.softplus

    def reference(t):
        def loss(p, n):
            m = n.shape[1]
            beta = 1 + t * (m / (n_items - 1) - 1)
            return ((beta * softplus(-p) + softplus(n).sum(1)) / (m + 1)).mean()
        return loss
    check_value_and_gradient(scope, reference(0.75))
    pos, neg = scope["pos"].detach().double(), scope["neg"].detach().double()
    assert float(printed.split()[1]) == pytest.approx(reference(0.0)(pos, neg).item(), rel=1e-5)


@pytest.mark.parametrize("page", ["README.md", "docs/getting-started.md"])
def test_the_loss_from_python_block_is_croloss_on_its_scores(page):
    (block,) = code_blocks(page, "The loss from Python", "python")
    torch.manual_seed(0)  # the block draws its scores unseeded
    scope, _ = run_block(block)
    check_value_and_gradient(scope, lambda p, n: scaled_cdf(
        rank_estimate(torch.nn.functional.softplus(gaps(p, n)), 313966), 1.2, 313966).mean())


@pytest.mark.parametrize("page", [*(f"docs/losses/{name}.md" for name in LOSS_PAGES), "docs/getting-started.md",
                                  "README.md"])
def test_the_yaml_settings_pass_the_run_spec(page):
    from tests.test_spec import spec_of
    blocks = [b for b in page_blocks(page) if b.language == "yaml"]
    assert blocks
    for block in blocks:
        settings = yaml.safe_load(block.text)
        model, dataset = settings.pop("model", "TwoTower"), settings.pop("dataset", "ml-100k")
        loss = spec_of(model, dataset, **settings).training.loss_settings
        assert loss.preset == settings["loss"] if settings["loss"] != "ce" else loss is None
        if "alpha" in settings:
            assert loss.alpha == settings["alpha"]


def test_the_evaluator_block_gives_the_ranks_by_hand():
    (block,) = code_blocks("docs/evaluation.md", "Full-ranking evaluation at catalogue scale", "python")
    gen = torch.Generator().manual_seed(0)
    users, items = torch.randn(40, 8, generator=gen), torch.randn(700, 8, generator=gen)
    targets = torch.randint(1, 700, (40,), generator=gen)
    scope, _ = run_block(block, {"user_vectors": users, "item_vectors": items,
                                 "target_rows": torch.arange(40), "target_items": targets})
    scores = users.double() @ items.double().T
    scores[:, 0] = -math.inf  # the padding item is never ranked
    ranks = (scores > scores[torch.arange(40), targets][:, None]).sum(1)  # items above the target
    for n in (50, 100, 200, 500):
        hits = ranks < n
        assert scope["metrics"][f"recall@{n}"] == pytest.approx(hits.double().mean().item(), abs=1e-9)
        ndcg = torch.where(hits, 1 / torch.log2(ranks.double() + 2), torch.zeros(40, dtype=torch.double))
        assert scope["metrics"][f"ndcg@{n}"] == pytest.approx(ndcg.mean().item(), rel=1e-6)


def test_the_csv_import_command_keeps_the_token_ids(tmp_path):
    (block,) = [b for b in code_blocks("docs/own-data.md", "Your own data", "bash") if "--format csv" in b]
    words = shlex.split(block.replace("\\\n", " "))
    rows = [(f"A{u:03d}X", f"B00{(u * 7 + k) % 40:02d}Q", 1_600_000_000 + 60 * k) for u in range(30) for k in range(5)]
    (tmp_path / "reviews.csv").write_text("reviewerID,asin,unixReviewTime\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    proc = subprocess.run([sys.executable, *words[1:]], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr
    name, out = words[words.index("--name") + 1], words[words.index("--out") + 1]
    lines = (tmp_path / out / name / f"{name}.inter").read_text().splitlines()
    assert lines[0].split("\t")[:2] == ["user_id:token", "item_id:token"]
    assert sorted(tuple(line.split("\t")[:2]) for line in lines[1:]) == sorted((u, i) for u, i, _ in rows)
