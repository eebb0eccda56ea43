"""docs/architecture.md: every Python example on the page runs as written, in a fresh process
(its registrations stay out of this test session), and each prints what it claims to build:
the two losses the values of the paper's formula on the same scores, computed here in float64,
and the registered model's Recall@50 the value its trained weights give, recomputed by hand."""
import math
import os
import re
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "architecture.md")

#: Run before each example: its random scores are the ones this test draws, printed in full.
PRELUDE = "import torch\ntorch.manual_seed(0)\ntorch.set_printoptions(precision=10)\n"

#: Run before the examples: keeps the run the model example trains, for EPILOGUE.
KEEP_RUN = """\
import recbole_croloss.flow.single as _single
_KEPT, _train_and_test = [], _single.train_and_test
def _keep(prepared, *args, **kwargs):
    _KEPT.append(prepared)
    return _train_and_test(prepared, *args, **kwargs)
_single.train_and_test = _keep
"""

#: Run after the examples: the trained MeanPool's test Recall@50 by hand, in float64. The user is
#: the mean of the history's embeddings (its real positions only), scored by the dot product
#: with every item but the padding; a target is a hit when fewer than 50 items score above it.
EPILOGUE = """\
prepared = _KEPT[0]
print(prepared.config["score"], prepared.config["scale"], prepared.config["protocol"])
model = prepared.adapter.model
table = model.item_embedding.weight.detach().double()
recalls = []
for interaction, _, positive_u, positive_i in prepared.test_data:
    seq, lengths = interaction[model.ITEM_SEQ].tolist(), interaction[model.ITEM_SEQ_LEN].tolist()
    users = torch.stack([table[s[:n]].mean(0) for s, n in zip(seq, lengths)])
    scores = users @ table.T
    scores[:, 0] = -torch.inf
    hit = ((scores[positive_u] > scores[positive_u, positive_i][:, None]).sum(1) < 50).double()
    per_user = torch.zeros(len(seq), 2, dtype=torch.float64)
    per_user.index_add_(0, positive_u, torch.stack([hit, torch.ones_like(hit)], 1))
    recalls.append(per_user[:, 0] / per_user[:, 1])
print(float(torch.cat(recalls).mean()))
"""
SEPARATOR = "\nprint('--- next example ---')\n"


def examples() -> list[str]:
    with open(DOC, encoding="utf-8") as fh:
        return re.findall(r"```python\n(.*?)```", fh.read(), flags=re.S)


def test_the_page_has_an_example_per_extension_point():
    blocks = examples()
    for registrar in ("register_kernel", "register_preset", "register_sampler", "register_model",
                      "register_metric"):
        assert sum(registrar in block for block in blocks) == 1, registrar


def croloss_paper(pos, neg, phi, alpha, n_items):
    """CROLoss (paper estimator) in float64: ``R_b = N / M (1 + sum_j phi(t_bj - s_b))``, the
    loss ``mean_b L (1 - R_b^(1 - alpha)) / (1 - (N + 1)^(1 - alpha))``, ``L = log(N + 1)``."""
    pos, neg = pos.double(), neg.double()
    ranks = n_items / neg.shape[1] * (1 + phi(neg - pos[:, None]).sum(1))
    big_l = math.log(n_items + 1)
    return float((big_l * (1 - ranks ** (1 - alpha)) / (1 - (n_items + 1) ** (1 - alpha))).mean())


def seeded_scores(b, m):
    """The scores an example draws after PRELUDE's seed: ``randn(b)``, then ``randn(b, m)``."""
    gen = torch.Generator().manual_seed(0)
    return torch.randn(b, generator=gen), torch.randn(b, m, generator=gen)


def tensor_value(text: str) -> float:
    return float(re.fullmatch(r"tensor\((.*)\)", text).group(1))


def test_every_example_runs(tmp_path):
    script = tmp_path / "examples.py"
    script.write_text(KEEP_RUN + SEPARATOR.join(PRELUDE + block for block in examples()) + SEPARATOR + EPILOGUE,
                      encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = [o.strip().splitlines() for o in proc.stdout.split("--- next example ---")]
    assert len(outputs) == len(examples()) + 1
    kernel, preset, sampler, model, metric = (lines[-1] for lines in outputs[:-1])
    half_tanh = croloss_paper(*seeded_scores(8, 64), lambda g: (1 + torch.tanh(g)) / 2, alpha=1.2, n_items=1000)
    assert tensor_value(kernel) == pytest.approx(half_tanh, rel=1e-5)
    name, value = preset.split(" ", 1)
    assert name == "Sigmoid()"
    sigmoid_auc = croloss_paper(*seeded_scores(4, 32), torch.sigmoid, alpha=0.0, n_items=5000)
    assert tensor_value(value) == pytest.approx(sigmoid_auc, rel=1e-5)
    assert sampler == "(4,) True (2, 4) (2, 4)"               # 2 x B negatives, newest half, log q per row
    settings, by_hand = outputs[-1]
    assert settings == "dot 1.0 loo"                          # what EPILOGUE computes: one target a user
    assert float(model) == pytest.approx(float(by_hand), abs=0.5e-4)  # RecBole rounds to 4 places
    assert metric == "{'recall@2': 0.8333, 'hitshare@2': 1.0}"  # (2/3 + 1) / 2; (2/2 + 1/1) / 2
