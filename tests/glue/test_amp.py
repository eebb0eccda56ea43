"""RecBole's ``enable_amp``: the training step runs under autocast (bfloat16 on the CPU), the
scores reach the loss in low precision, and every kernel, the Lambda method and the sequence
models train to finite losses, gradients and metrics."""
import math

import pytest
import torch

from recbole_croloss.quick_start import prepare_run


def _train_one_epoch(tiny, model, **settings):
    small = {**tiny, "user_inter_num_interval": "[0,30]", "enable_amp": True}
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
def test_every_kernel_trains_under_autocast(tiny, settings):
    trainer, seen, result = _train_one_epoch(tiny, "TwoTower", **settings)
    assert seen["dtype"] == torch.bfloat16  # the scores' matmul ran in low precision
    losses = [entry["train_loss"] for entry in trainer.history.entries]
    assert losses and all(math.isfinite(v) for v in losses)
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert 0.0 < result["recall@50"] <= 1.0


@pytest.mark.parametrize("model, loss", [("GRU4Rec", "croloss"), ("SASRec", "croloss_lambda"), ("ComiRec", "croloss")])
def test_models_train_under_autocast(tiny, model, loss):
    trainer, _, result = _train_one_epoch(tiny, model, loss=loss)
    assert all(math.isfinite(entry["train_loss"]) for entry in trainer.history.entries)
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert 0.0 <= result["recall@50"] <= 1.0
