"""A diverging run stops with :class:`TrainingDiverged` naming the epoch, the batch and the loss;
the CLI exits 1 with that one line and keeps the best checkpoint written so far."""
import glob
import math
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from recbole_croloss.errors import TrainingDiverged
from recbole_croloss.quick_start import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MESSAGE = re.compile(r"training diverged at epoch (\d+), batch (\d+) of (\d+) \(global step (\d+); "
                     r"counted from 0\): the loss is (\S+?)[ .]")


@pytest.mark.parametrize("model, settings, loss", [
    # Adam's steps are about learning_rate in size: the scores pass the float range at once.
    ("GRU4Rec", {"learning_rate": 1e30}, "nan"),
    # After one such step the vectors are no longer finite: CROLoss's own check names the scores.
    ("TwoTower", {"learning_rate": 1e30, "kernel": "exp", "alpha": 0.5, "score": "dot", "scale": 1.0}, "nan"),
])
def test_a_learning_rate_far_too_high_stops_the_run_naming_epoch_and_step(tiny, model, settings, loss):
    with pytest.raises(TrainingDiverged) as caught:
        run(model, "ml-100k", config_dict={**tiny, **settings})
    epoch, batch, batches, step, value = MESSAGE.search(str(caught.value)).groups()
    assert (int(epoch), int(batch), int(step), value) == (0, 1, 1, loss) and int(batches) > 1
    assert "learning_rate=1e+30" in str(caught.value) and "score=cosine" in str(caught.value)
    if model == "TwoTower":
        assert "CROLoss got scores that are NaN or infinite" in str(caught.value)


class SoftplusInfiniteGradient:
    """Softplus whose backward pass hands infinite gradients to the scores: the loss stays finite."""

    name = "softplus_inf_grad"

    def __call__(self, gaps):
        if gaps.requires_grad:
            gaps.register_hook(lambda grad: torch.full_like(grad, float("inf")))
        return torch.nn.functional.softplus(gaps)


@pytest.fixture
def infinite_gradient_kernel():
    from recbole_croloss.loss import Kernel, register_kernel
    from recbole_croloss.loss.kernels import KERNELS

    cls = register_kernel(type("SoftplusInfiniteGradient", (SoftplusInfiniteGradient, Kernel), {}))
    yield cls.name
    KERNELS.pop(cls.name)


@pytest.mark.parametrize("clip, step", [({"max_norm": 5.0}, 0), (None, 1)])
def test_a_non_finite_gradient_stops_the_run(tiny, infinite_gradient_kernel, clip, step):
    """Under clip_grad_norm (which computes the total norm anyway) at its own step, naming the
    gradients; without it one step later, when the weights it wrote make the loss non-finite."""
    settings = {**tiny, "kernel": infinite_gradient_kernel, "clip_grad_norm": clip}
    with pytest.raises(TrainingDiverged) as caught:
        run("TwoTower", "ml-100k", config_dict=settings)
    assert caught.value.step == step
    assert ("gradients' total norm is not finite" in str(caught.value)) == (clip is not None)
    if clip is not None:
        assert math.isfinite(caught.value.loss)


#: A kernel registered as any user's would be: softplus, then NaN from the 51st batch on (the
#: second epoch of the tiny slice's 42 batches).
LATE_NAN = textwrap.dedent("""\
    import sys
    import torch
    from recbole_croloss.loss import Kernel, register_kernel
    from recbole_croloss.quick_start import main

    @register_kernel
    class SoftplusThenNaN(Kernel):
        name, calls = "softplus_then_nan", 0
        def __call__(self, gaps):
            type(self).calls += 1
            out = torch.nn.functional.softplus(gaps)
            return out if type(self).calls <= 50 else out * float("nan")

    sys.exit(main(sys.argv[1:]))
    """)


def test_the_cli_exits_1_with_one_line_and_keeps_the_best_checkpoint(tmp_path):
    from tests.conftest import TINY

    saved = tmp_path / "saved"
    args = [f"--{k}={v}" for k, v in {**TINY, "epochs": 3, "kernel": "softplus_then_nan"}.items()]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-c", LATE_NAN, "--model=GRU4Rec", *args,
                           f"--checkpoint_dir={saved}", f"--record={tmp_path / 'record.json'}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: training diverged at epoch 1, batch ") and "Traceback" not in proc.stderr
    epoch, batch, batches, step, value = MESSAGE.search(line).groups()
    assert int(step) == 50 == int(epoch) * int(batches) + int(batch) and value == "nan"
    assert not (tmp_path / "record.json").exists()  # no record with NaN results
    best = [p for p in glob.glob(str(saved / "*.pth")) if not p.endswith("-last.pth")]
    assert len(best) == 1 and torch.load(best[0], weights_only=True)["epoch"] == 0
    last = glob.glob(str(saved / "*-last.pth"))
    assert len(last) == 1 and torch.load(last[0], weights_only=True)["epoch"] == 0
    assert not [n for n in os.listdir(saved) if n.startswith(".tmp-")]


def test_a_finite_loss_that_explodes_stops_the_run(tiny, capsys):
    """learning_rate 1e8 with the exp kernel: Adam's first step makes the scores huge and the loss
    goes from about 7 to about 1e17, finite (log-sum-exp); it is stopped at that step."""
    from recbole_croloss.quick_start import main

    args = [f"--{k}={v}" for k, v in tiny.items()]
    assert main(["--model=GRU4Rec", *args, "--learning_rate=1e8", "--kernel=exp"]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    epoch, batch, _, step, _ = MESSAGE.search(line).groups()
    value = float(re.search(r"the loss is (\S+) \(learning_rate", line).group(1))
    assert (int(epoch), int(batch), int(step)) == (0, 1, 1) and 1e12 < value < math.inf
    assert "times the smallest batch loss of this run" in line and "more than the 1,000,000 times" in line


def test_the_growth_rule_reads_magnitudes_at_least_one_and_spares_a_loss_crossing_zero(tiny):
    """CROLoss with the paper's estimator can be negative or near 0: the yardstick is the
    smallest |loss| so far, counted as at least 1, so only growth past 1e6 of it stops the run."""
    from recbole_croloss.quick_start import prepare_run

    trainer = prepare_run("GRU4Rec", "ml-100k", config_dict=tiny).trainer
    for value in (6.9, 0.3, -1e-9, 0.0, -2.5, 4e5, -9.9e5, 1e6):  # within 1e6 x max(1, 1e-9)
        trainer._check_nan(torch.tensor(value))
    with pytest.raises(TrainingDiverged, match="the loss is -1000001.0 .*times the smallest batch loss"):
        trainer._check_nan(torch.tensor(-1000001.0))
    fresh = prepare_run("GRU4Rec", "ml-100k", config_dict=tiny).trainer
    for value in (3e7, 2e9, 3e13):  # a large first loss (bpr over a huge catalogue) is its own yardstick
        fresh._check_nan(torch.tensor(value, dtype=torch.float64))
    with pytest.raises(TrainingDiverged):
        fresh._check_nan(torch.tensor(3.1e13, dtype=torch.float64))


def test_a_healthy_run_whose_loss_can_be_negative_is_not_stopped(tiny):
    """Uniform negatives that outnumber the items: the paper's rank estimate can fall below 1 and
    the loss below 0 (the smallest |loss| is then counted as 1); the run trains its epoch."""
    record = run("TwoTower", "ml-100k", config_dict={**tiny, "negatives": "uniform"}, saved=False)
    assert record["epochs_run"] == 1 and record["stopped"] == "max_epochs"


@pytest.mark.parametrize("scale", ["1e30", "inf", "16777217"])
def test_a_scale_beyond_what_a_float32_cosine_resolves_is_refused_before_data(tiny, capsys, scale):
    from recbole_croloss.quick_start import main

    args = [f"--{k}={v}" for k, v in tiny.items()]
    assert main(["--model=TwoTower", *args, f"--scale={scale}"]) == 2
    err = capsys.readouterr().err
    assert f"scale={float(scale)!r} is not valid" in err and "at most 2^24 = 16,777,216" in err
    assert not os.path.exists("log")  # stopped before RecBole's logger (and the data)
