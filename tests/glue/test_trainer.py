"""The plugin's trainer: checkpoints of tensors and plain values."""
import torch

from recbole_croloss.quick_start import prepare_run
from tests.conftest import TINY


def test_checkpoint_reloads_with_torch_safe_load(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prepared = prepare_run("GRU4Rec", "ml-100k", config_dict={**TINY, "checkpoint_dir": str(tmp_path)})
    prepared.trainer._save_checkpoint(0, verbose=False)
    state = torch.load(prepared.trainer.saved_model_file, weights_only=True)
    assert state["config"]["model"] == "GRU4Rec" and "state_dict" in state
