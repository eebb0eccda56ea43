"""The benchmarks' raw output: each run stores a JSON file with its machine, date, command, commit
and figures; and every such file that the results pages (docs/results/) name exists and holds
the figures the text quotes next to it."""
import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The results pages, one per study.
RESULTS_PAGES = sorted((ROOT / "docs" / "results").glob("*.md"))
BENCH_LOSS_PAGE = ROOT / "docs" / "results" / "bench-loss.md"
#: A results file named in the text, e.g. `results/bench_scale/2026-12-07T20-50-05_amd-epyc-2core.json`.
JSON_REF = re.compile(r"results/(bench_[a-z_]+)/([\w.-]+\.json)")
NUMBER = re.compile(r"^[+-]?\d[\d,]*(?:\.\d+)?$")
#: bench_scale's table labels (before their unit) -> the key in a variant's figures.
SCALE_ROWS = {"load the `.inter`": ("seconds", "load"), "samples and split": ("seconds", "samples_and_split"),
              "model and trainer": ("seconds", "model_and_trainer"), "preparation in all": ("seconds", "preparation"),
              "50 training steps": ("seconds", "steps"), "full test evaluation": ("seconds", "evaluation"),
              "peak RSS after preparation": ("peak_rss_gib_prepared",), "peak RSS overall": ("peak_rss_gib",),
              "training step, CPU": ("step_cpu_s",), "training step": ("step_s",), "training samples": ("samples",), "steps per epoch": ("steps_per_epoch",),
              "test users": ("test_users",), "test Recall@50": ("test_recall_at_50",)}
BENCH_LOSS_ROW = re.compile(r"^(\S.*?)\s+(\d+\.\d{3})\s+(\d+\.\d{2})\s+(\d+\.\d{3})\s+(\d+\.\d{2})\s+(\d+\.\d{2})\b")


def run_bench_loss(results_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_loss.py"), "--device", "cpu", "--settings", "8x16",
               "--repeats", "2", "--inner", "1", "--warmup", "1", "--engines", "eager", "--threads", "1", *extra]
    env = {**os.environ, "CROLOSS_BENCH_RESULTS": str(results_dir)}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """bench_loss at its smallest (seconds): what it printed and the file it stored."""
    results_dir = tmp_path_factory.mktemp("results")
    proc = run_bench_loss(results_dir)
    files = sorted((results_dir / "bench_loss").glob("*.json"))
    assert len(files) == 1, files
    return proc.stdout, json.loads(files[0].read_text()), files[0]


def test_a_run_stores_its_machine_date_command_and_commit(small_run):
    stdout, record, path = small_run
    machine = record["machine"]
    assert machine["cpu"] and machine["cores"] >= 1 and machine["memory_gib"] > 0
    assert machine["torch"] and re.fullmatch(r"\d+\.\d+\.\d+", machine["python"])
    date = datetime.datetime.fromisoformat(record["date"])
    assert abs(datetime.datetime.now() - date) < datetime.timedelta(minutes=10)
    assert path.name.startswith(date.strftime("%Y-%m-%dT%H-%M-%S"))
    assert "bench_loss.py" in record["command"] and "--settings 8x16" in record["command"]
    assert re.fullmatch(r"[0-9a-f]{40}", record["git"]["commit"]) and isinstance(record["git"]["dirty"], bool)
    assert f"# raw output: {path}" in stdout


def test_a_run_stores_every_row_it_prints(small_run):
    stdout, record, _ = small_run
    printed = {m.group(1).strip(): [float(v) for v in m.groups()[1:]]
               for m in map(BENCH_LOSS_ROW.match, stdout.splitlines()) if m}
    (table,) = record["figures"]["tables"]
    assert (table["B"], table["M"]) == (8, 16)
    stored = {row["method"]: row for row in table["rows"]}
    assert set(stored) == set(printed) and "softplus a=1.2 eager" in stored
    for method, values in printed.items():
        row = stored[method]
        for value, key, places in zip(values, ("median_ms", "ratio", "min_ms", "ratio_min", "first_s"),
                                      (3, 2, 3, 2, 2)):
            assert row[key] == pytest.approx(value, abs=0.5 * 10 ** -places + 1e-9), (method, key)
    verdicts = [line for line in stdout.splitlines() if line.startswith("cpu B=8 M=16: ")]
    assert verdicts == record["figures"]["verdicts"] and len(verdicts) == 2


def test_runs_in_the_same_second_never_share_a_file(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import raw_output
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    monkeypatch.setenv("CROLOSS_BENCH_RESULTS", str(tmp_path))
    when = datetime.datetime(2030, 1, 2, 3, 4, 5)
    first = raw_output.write("bench_x", {"value": 1}, argv=[], started=when)
    second = raw_output.write("bench_x", {"value": 2}, argv=[], started=when)
    assert first != second and first.parent == second.parent == tmp_path / "bench_x"
    assert [json.loads(p.read_text())["figures"]["value"] for p in (first, second)] == [1, 2]


# --- the stored files the results pages name -------------------------------------------------
def referenced_chunks():
    """(bench, file name, the text from the line naming it to the next heading or file name), over
    every results page."""
    return [chunk for page in RESULTS_PAGES for chunk in page_chunks(page.read_text(encoding="utf-8"))]


def page_chunks(markdown: str):
    """One page's (bench, file name, chunk)."""
    lines = markdown.splitlines()
    # A heading or a file named in the prose ends a chunk; inside a fenced block (a run's printed
    # output, which names its own file last) neither does, nor inside a comment (a section's
    # `figures:` sources name its files without quoting them).
    stops, fenced, comment = [], False, False
    for line in lines:
        fenced ^= line.startswith("```")
        in_comment = not fenced and (comment or line.lstrip().startswith("<!--"))
        stops.append(not fenced and not in_comment and (bool(JSON_REF.search(line)) or line.startswith("#")))
        comment = in_comment and "-->" not in line
    chunks = []
    for i, line in enumerate(lines):
        if not stops[i]:
            continue
        for bench, name in JSON_REF.findall(line):
            end = i + 1
            while end < len(lines) and not stops[end]:
                end += 1
            chunks.append((bench, name, "\n".join(lines[i:end])))
    return chunks


CHUNKS = referenced_chunks()


def quotes_a_table(bench: str, chunk: str) -> bool:
    """Whether the chunk quotes the file's figures as a table (bench_scale) or as the printed block
    (bench_loss), not only names it in the prose."""
    if bench == "bench_loss":
        return re.search(r"^## \w+\s+B=\d+\s+M=\d+", chunk, re.M) is not None
    return any(line.startswith("|") for line in chunk.splitlines())


def test_results_names_stored_files():
    assert BENCH_LOSS_PAGE in RESULTS_PAGES and len(RESULTS_PAGES) > 10
    benches = {bench for bench, _, _ in CHUNKS}
    assert {"bench_loss", "bench_scale", "bench_epoch", "bench_estimator"} <= benches


def test_each_loss_and_scale_file_named_is_quoted_as_a_table_somewhere():
    named = {(bench, name) for bench, name, _ in CHUNKS if bench in ("bench_loss", "bench_scale")}
    quoted = {(bench, name) for bench, name, chunk in CHUNKS if quotes_a_table(bench, chunk)}
    assert named and named <= quoted, named - quoted


@pytest.mark.parametrize("bench,name,chunk", CHUNKS, ids=[f"{b}/{n}" for b, n, _ in CHUNKS])
def test_each_named_file_holds_the_quoted_figures(bench, name, chunk):
    path = ROOT / "benchmarks" / "results" / bench / name
    assert path.is_file(), f"a results page names {path}, which is not stored"
    record = json.loads(path.read_text())
    assert record["bench"] == bench and record["machine"]["cpu"] and record["git"]["commit"]
    checked = {"bench_scale": check_scale_table, "bench_loss": check_loss_block}.get(bench)
    if checked is not None and quotes_a_table(bench, chunk):
        checked(record["figures"], chunk)


def cell_matches(value: float, cell: str) -> bool:
    """The cell is ``value`` as printed: rounded to the cell's own decimals."""
    text = cell.replace(",", "")
    places = len(text.split(".")[1]) if "." in text else 0
    return abs(value - float(text)) <= 0.5 * 10 ** -places + 1e-9


def check_scale_table(figures, chunk):
    rows = [[c.strip().strip("*").strip() for c in line.strip().strip("|").split("|")]
            for line in chunk.splitlines() if line.startswith("|") and not line.startswith("|---")]
    header, body = rows[0], rows[1:]
    variants = [h for h in header[1:] if h in figures["variants"]]
    assert variants, header
    compared = 0
    for label, *cells in body:
        key = next((SCALE_ROWS[k] for k in SCALE_ROWS if label.startswith(k)), None)
        if key is None:
            continue
        if key[0] == "seconds" and "CPU" in label:
            key = ("cpu_seconds", key[1])
        for variant, cell in zip(variants, cells):
            if not NUMBER.match(cell):
                continue
            value = figures["variants"][variant]
            for part in key:
                value = value[part]
            assert cell_matches(value, cell), (label, variant, cell, value)
            compared += 1
    assert compared >= 5, "the table quotes too few of the stored figures"


def check_loss_block(figures, chunk):
    stored = {}
    for table in figures["tables"]:
        for row in table["rows"]:
            stored[(table["B"], table["M"], row["method"])] = row
    setting, compared = None, 0
    for line in chunk.splitlines():
        head = re.match(r"## \w+\s+B=(\d+)\s+M=(\d+)", line)
        if head:
            setting = (int(head.group(1)), int(head.group(2)))
            continue
        m = BENCH_LOSS_ROW.match(line)
        if m and setting:
            row = stored[(*setting, m.group(1).strip())]
            for cell, key in zip(m.groups()[1:], ("median_ms", "ratio", "min_ms", "ratio_min", "first_s")):
                assert cell_matches(row[key], cell), (setting, m.group(1), key, cell, row[key])
            compared += 1
    assert compared >= 10, "the block quotes too few of the stored rows"


# --- the fused engine's compile time, one stored figure quoted alike everywhere ----------------
COMPILE = re.compile(r"compiles? (?:in |of )?about (\d+(?:\.\d+)?) s")
#: Where the compile time must be quoted; README.md and every docs page may quote it too.
COMPILE_PLACES = (ROOT / "recbole_croloss" / "properties" / "overall.yaml", BENCH_LOSS_PAGE)
OPTIONAL_PLACES = (ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")))


def test_the_compile_time_is_one_stored_figure_quoted_alike():
    quoted = {path: COMPILE.findall(path.read_text()) for path in dict.fromkeys(COMPILE_PLACES + OPTIONAL_PLACES)}
    missing = [str(path.relative_to(ROOT)) for path in COMPILE_PLACES if not quoted[path]]
    assert not missing, f"these do not quote the compile time: {missing}"
    figures = {figure for found in quoted.values() for figure in found}
    assert len(figures) == 1, {str(p.relative_to(ROOT)): f for p, f in quoted.items() if f}
    (figure,) = figures
    fused = [(bench, name) for bench, name, chunk in page_chunks(BENCH_LOSS_PAGE.read_text(encoding="utf-8"))
             if bench == "bench_loss" and COMPILE.search(chunk)]
    assert fused, "bench-loss.md quotes the compile time away from the bench_loss file that holds it"
    record = json.loads((ROOT / "benchmarks" / "results" / fused[0][0] / fused[0][1]).read_text())
    stored = max(t["fused_first_call_wall_s"]["max"] for t in record["figures"]["tables"])
    assert cell_matches(stored, figure), (figure, stored)
