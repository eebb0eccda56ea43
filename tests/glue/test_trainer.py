"""The plugin's trainer: checkpoints of tensors and plain values."""
import json

import torch

from recbole_croloss.glue import checkpoint
from recbole_croloss.quick_start import prepare_run
from tests.conftest import TINY


def test_checkpoint_reloads_with_torch_safe_load(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prepared = prepare_run("GRU4Rec", "ml-100k", config_dict={**TINY, "checkpoint_dir": str(tmp_path)})
    prepared.trainer._save_checkpoint(0, verbose=False)
    prepared.trainer.save_resume(0, prepared.train_data)
    for path in (prepared.trainer.saved_model_file, prepared.trainer.resume_file):
        state = torch.load(path, weights_only=True)
        assert state["config"]["model"] == "GRU4Rec" and "state_dict" in state
        # The full config, as plain values: every key of RecBole's, JSON-safe.
        assert set(state["config"]) == set(prepared.config.final_config_dict)
        assert state["config"]["device"] == "cpu" and state["config"]["MODEL_TYPE"] == "ModelType.SEQUENTIAL"
        json.dumps(state["config"])
        # In the RecBole model's own names; a file of the adapter's names (written before) loads too.
        assert set(state["state_dict"]) == set(prepared.adapter.model.state_dict())
        checkpoint.load_model_weights(prepared.adapter, {"model." + k: v for k, v in state["state_dict"].items()})
        assert set(state["run_settings"]) == set(TINY) | {"checkpoint_dir"}
    assert prepared.trainer.resume_file == prepared.trainer.saved_model_file[:-len(".pth")] + "-last.pth"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
