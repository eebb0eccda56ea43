"""Shared settings: a slice of the bundled ml-100k that trains an epoch in seconds on 2 cores."""
import pytest

#: Users with at most 50 interactions, history 20, small vectors, one epoch, quiet.
TINY = {
    "epochs": 1,
    "MAX_ITEM_LIST_LENGTH": 20,
    "user_inter_num_interval": "[0,50]",
    "embedding_size": 16,
    "hidden_size": 16,
    "train_batch_size": 256,
    "eval_batch_size": 4096,
    "show_progress": False,
    "state": "WARNING",
}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A copy of TINY; RecBole's log/ and saved/ folders go to a temporary directory."""
    monkeypatch.chdir(tmp_path)
    return {**TINY, "checkpoint_dir": str(tmp_path / "saved")}
