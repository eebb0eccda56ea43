"""RecBole's ``enable_amp``: the training step runs under autocast (bfloat16 on the CPU, float16
with a GradScaler on CUDA), its loss and gradients stay within the low precision's rounding of
float32's on the same batch and weights, and every kernel, the Lambda method and the sequence
models train to finite losses, gradients and metrics."""
import math

import pytest
import torch

from recbole_croloss.quick_start import prepare_run
from tests.devices import on_devices, recbole_device


def _train_one_epoch(tiny, monkeypatch, model, **settings):
    small = {**tiny, "user_inter_num_interval": "[0,30]", "enable_amp": True,
             **recbole_device("cpu", monkeypatch)}
    prepared = prepare_run(model, "ml-100k", config_dict={**small, **settings})
    seen, grads_finite = {}, []
    adapter = prepared.adapter

    def record_step(_module, args):  # each step's loss, before its backward: the last step's grads
        seen.setdefault("dtype", args[1].dtype)
        grads_finite.append(all(bool(torch.isfinite(p.grad).all()) for p in adapter.parameters()
                                if p.grad is not None))  # returns None: the arguments stay as they are

    if adapter.loss is not None:
        adapter.loss.register_forward_pre_hook(record_step)
    trainer = prepared.trainer
    trainer.fit(prepared.train_data, prepared.valid_data, saved=True, show_progress=False)
    result = trainer.evaluate(prepared.test_data, load_best_model=True)
    assert adapter.loss is None or (len(grads_finite) > 1 and all(grads_finite))
    return trainer, seen, result


@pytest.mark.parametrize("settings", [
    {"loss": "croloss", "kernel": "sigmoid", "alpha": 0.6},
    {"loss": "croloss", "kernel": "softplus", "alpha": 1.2},
    {"loss": "croloss", "kernel": "exp", "alpha": 1.0},
    {"loss": "croloss", "kernel": "hinge", "alpha": 1.0},
], ids=lambda s: "-".join(str(v) for v in s.values()))
def test_every_kernel_trains_under_autocast(tiny, monkeypatch, settings):
    trainer, seen, result = _train_one_epoch(tiny, monkeypatch, "TwoTower", **settings)
    assert seen["dtype"] == torch.bfloat16  # the scores' matmul ran in low precision
    losses = [entry["train_loss"] for entry in trainer.history.entries]
    assert losses and all(math.isfinite(v) for v in losses)
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert 0.0 < result["recall@50"] <= 1.0


@pytest.mark.parametrize("model, loss", [("GRU4Rec", "croloss"), ("SASRec", "croloss_lambda"), ("ComiRec", "croloss")])
def test_models_train_under_autocast(tiny, monkeypatch, model, loss):
    trainer, _, result = _train_one_epoch(tiny, monkeypatch, model, loss=loss)
    assert all(math.isfinite(entry["train_loss"]) for entry in trainer.history.entries)
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert 0.0 < result["recall@50"] <= 1.0


class _Stepped(Exception):
    """Raised by the stand-in optimizer step: the epoch ends after the first step taken."""


def _one_step(trainer, batch, amp: bool):
    """``(loss, {name: grad}, dtype of the scores at the loss)`` of the trainer's own training
    step on ``batch``, under autocast or not; the weights are left as they were. Each try draws
    the same dropout masks. On CUDA the GradScaler skips a step whose scaled gradients overflow
    (and lowers its scale), so the batch is offered a few times and the first step taken is kept."""
    trainer.enable_amp = amp
    losses, grads, dtypes = [], {}, []

    def seeded_loss(interaction):
        torch.manual_seed(0)
        losses.append(trainer.model.calculate_loss(interaction))
        return losses[-1]

    def step(*_args, **_kwargs):  # after the scaler has unscaled the gradients
        grads.update({name: p.grad.detach().double().cpu() for name, p in trainer.model.named_parameters()
                      if p.grad is not None})
        raise _Stepped

    hook = trainer.model.loss.register_forward_pre_hook(lambda _m, args: dtypes.append(args[1].dtype))
    trainer.optimizer.step = step
    try:
        with pytest.raises(_Stepped):
            trainer._train_epoch([batch] * 8, 0, loss_func=seeded_loss)
    finally:
        hook.remove()
        del trainer.optimizer.step
    return float(losses[-1].detach()), grads, dtypes[-1]


@pytest.fixture
def without_tf32():
    """float32 computed in float32 on CUDA: cuDNN (its RNNs) uses TF32, 10 bits, by default."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@on_devices
@pytest.mark.parametrize("model, settings", [
    ("TwoTower", {"loss": "croloss", "kernel": "sigmoid", "alpha": 0.6}),
    ("GRU4Rec", {"loss": "croloss", "kernel": "softplus", "alpha": 1.2}),
    ("SASRec", {"loss": "croloss_lambda"}),
], ids=["TwoTower", "GRU4Rec", "SASRec-lambda"])
def test_one_step_under_autocast_is_float32_within_its_rounding(tiny, monkeypatch, without_tf32, device, model,
                                                                 settings):
    """The same step in float32 and under autocast (bfloat16 on the CPU; float16 and RecBole's
    GradScaler on CUDA, with TF32 off so that float32 is float32).

    Tolerance, from the autocast dtype's unit roundoff u (bfloat16 keeps 8 significant bits,
    u = 2^-8; float16 11, u = 2^-11): a matmul rounds its inputs and its output to that dtype and
    accumulates in float32, so each score, and each gradient of a smooth loss, is within a few u
    of float32 (measured on the CPU: at most 2u, tensor by tensor). Gradients: 4u in norm, tensor
    by tensor, plus 4u^2 of the whole gradient's norm for the tensors whose exact gradient is 0
    (the bias of a softmax's logits: rounding noise only). The loss, a mean over the batch
    computed in float32 from the scores, moves less than the scores: within u.
    """
    prepared = prepare_run(model, "ml-100k", config_dict={
        **tiny, "user_inter_num_interval": "[0,30]", "enable_amp": True, "enable_scaler": device == "cuda",
        **recbole_device(device, monkeypatch), **settings})
    trainer = prepared.trainer
    assert trainer.device.type == device and trainer.enable_scaler == (device == "cuda")
    batch = next(iter(prepared.train_data))
    loss32, grads32, dtype32 = _one_step(trainer, batch, amp=False)
    loss_amp, grads_amp, dtype_amp = _one_step(trainer, batch, amp=True)
    low = torch.bfloat16 if device == "cpu" else torch.float16
    assert (dtype32, dtype_amp) == (torch.float32, low)
    u = torch.finfo(low).eps / 2
    assert loss_amp == pytest.approx(loss32, rel=u)
    assert grads_amp.keys() == grads32.keys()
    whole = torch.cat([g.flatten() for g in grads32.values()]).norm()
    assert torch.cat([(grads_amp[n] - g).flatten() for n, g in grads32.items()]).norm() <= 4 * u * whole
    for name, g in grads32.items():
        assert (grads_amp[name] - g).norm() <= 4 * u * (g.norm() + u * whole), name
