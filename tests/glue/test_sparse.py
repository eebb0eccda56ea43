"""Sparse item updates: only the rows a step touches move, the rest of the model steps as with
Adam, and settings that would make the gradient or the optimizer dense are refused."""
import pytest
import torch
from torch import nn

from recbole_croloss.errors import ConfigError
from recbole_croloss.glue.sparse import SparseItemAdam
from recbole_croloss.quick_start import prepare_run, run
from tests.devices import on_devices, recbole_device
from tests.glue.test_loss_families import FirstSteps
from tests.test_spec import spec_of


@on_devices
@pytest.mark.parametrize("model", ["TwoTower", "GRU4Rec", "ComiRec"])
def test_only_the_rows_a_step_touches_move(tiny, model, device, monkeypatch):
    prepared = prepare_run(model, "ml-100k", config_dict={**tiny, "sparse_item_updates": True, "neg_per_pos": 1,
                                                          "train_batch_size": 16, **recbole_device(device, monkeypatch)})
    assert prepared.config["device"].type == device
    adapter, optimizer = prepared.adapter, prepared.trainer.optimizer
    table = adapter.retrieval.item_table().weight
    before = table.detach().clone()
    batch = next(iter(prepared.train_data)).to(prepared.config["device"])
    torch.manual_seed(0)
    optimizer.zero_grad()
    adapter.calculate_loss(batch).backward()
    touched = table.grad.coalesce().indices()[0]
    optimizer.step()
    moved = (table.detach() != before).any(1).nonzero().squeeze(1)
    assert set(moved.tolist()) <= set(touched.tolist()) and len(moved) > 0
    history = batch[adapter.model.ITEM_SEQ]
    assert set(history[history > 0].tolist()) <= set(touched.tolist())
    assert len(touched) < table.shape[0] / 2  # 16 rows and 16 negatives: most rows untouched


def test_a_dense_gradient_of_the_table_is_refused_at_the_first_step():
    torch.manual_seed(0)  # the table's initial weights
    table = nn.Embedding(10, 4)
    optimizer = SparseItemAdam(table, table.parameters(), 0.01, "Dense")
    table.weight[[1, 2]].sum().backward()  # indexing the weight: a dense gradient
    with pytest.raises(ConfigError, match="Dense reads its item table densely in training"):
        optimizer.step()


@on_devices
def test_the_optimizer_state_round_trips(tiny, device, monkeypatch):
    settings = {**tiny, "sparse_item_updates": True, **recbole_device(device, monkeypatch)}
    first = prepare_run("TwoTower", "ml-100k", config_dict=settings)
    run_once = first.trainer.optimizer
    batch = next(iter(first.train_data)).to(first.config["device"])
    run_once.zero_grad()
    first.adapter.calculate_loss(batch).backward()
    run_once.step()
    second = prepare_run("TwoTower", "ml-100k", config_dict=settings)
    second.trainer.optimizer.load_state_dict(run_once.state_dict())
    saved, loaded = run_once.state_dict()["sparse"]["state"][0], second.trainer.optimizer.state_dict()["sparse"]["state"][0]
    assert loaded["step"] == 1 and loaded["exp_avg"].device.type == device
    assert torch.equal(loaded["exp_avg"], saved["exp_avg"]) and torch.equal(loaded["exp_avg_sq"], saved["exp_avg_sq"])


@on_devices
def test_a_sparse_run_trains_and_records(tiny, device, monkeypatch):
    first_steps = FirstSteps(monkeypatch)
    record = run("TwoTower", "ml-100k", config_dict={**tiny, "epochs": 2, "sparse_item_updates": True,
                                                     **recbole_device(device, monkeypatch)})
    assert record["test_result"]["recall@50"] > 0.1 and record["config"]["sparse_item_updates"] is True
    assert record["device"].startswith(device)
    first_steps.check("croloss")  # the first step's loss is CROLoss's on the model's scores


@pytest.mark.parametrize("settings, fragment", [
    ({"loss": "ce"}, "loss='ce' scores every item"),
    ({"negatives": "full"}, "negatives='full' scores every item"),
    ({"learner": "sgd"}, "learner='sgd'"),
    ({"weight_decay": 0.01}, "weight_decay=0.01: SparseAdam has none"),
    ({"nproc": 2}, "a distributed run would all-reduce the item table densely"),
])
def test_what_would_make_the_update_dense_is_refused(settings, fragment):
    with pytest.raises(ConfigError) as caught:
        spec_of(sparse_item_updates=True, **settings)
    assert "sparse_item_updates=True is not valid" in str(caught.value) and fragment in str(caught.value)
    with pytest.raises(ConfigError, match="sparse_item_updates='yes' is not valid; true or false"):
        spec_of(sparse_item_updates="yes")
