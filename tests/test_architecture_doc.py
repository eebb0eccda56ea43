"""docs/architecture.md: every Python example on the page runs as written, in a fresh process
(its registrations stay out of this test session), and each prints what it claims to build."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "architecture.md")


def examples() -> list[str]:
    with open(DOC, encoding="utf-8") as fh:
        return re.findall(r"```python\n(.*?)```", fh.read(), flags=re.S)


def test_the_page_has_an_example_per_extension_point():
    blocks = examples()
    for registrar in ("register_kernel", "register_preset", "register_sampler", "register_model",
                      "register_metric"):
        assert sum(registrar in block for block in blocks) == 1, registrar


def test_every_example_runs(tmp_path):
    script = tmp_path / "examples.py"
    separator = "\nprint('--- next example ---')\n"
    script.write_text(separator.join(examples()), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = proc.stdout.split("--- next example ---")
    assert len(outputs) == len(examples())
    kernel, preset, sampler, model, metric = (o.strip().splitlines()[-1] for o in outputs)
    assert kernel.startswith("tensor(")                       # a finite loss value
    assert preset.startswith("Sigmoid()")
    assert sampler == "(4,) True (2, 4) (2, 4)"               # 2 x B negatives, newest half, log q per row
    assert 0.0 <= float(model) <= 1.0                         # Recall@50 of a trained MeanPool
    assert metric == "{'recall@2': 0.8333, 'hitshare@2': 1.0}"  # (2/3 + 1) / 2; (2/2 + 1/1) / 2
