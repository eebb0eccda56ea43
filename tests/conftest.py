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


#: A synthetic dataset's settings: a run of two epochs trains and validates in a few seconds.
SYNTHETIC = {
    "epochs": 2,
    "MAX_ITEM_LIST_LENGTH": 10,
    "embedding_size": 8,
    "train_batch_size": 128,
    "neg_per_pos": 2,
    "topk": [10, 100],
    "valid_metric": "Recall@10",
    "show_progress": False,
    "state": "WARNING",
}


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    """The data_path of ``syn``: 300 users, 200 items, about 12 interactions each."""
    from recbole_croloss.data.synthetic import generate

    folder = tmp_path_factory.mktemp("synthetic")
    generate("syn", str(folder), users=300, items=200, mean_length=12, max_length=30, interests=5, seed=0)
    return str(folder)


@pytest.fixture
def synthetic(synthetic_data, tmp_path, monkeypatch):
    """SYNTHETIC with ``syn``'s data_path; RecBole's log/ and saved/ folders go to tmp_path."""
    monkeypatch.chdir(tmp_path)
    return {**SYNTHETIC, "data_path": synthetic_data, "checkpoint_dir": str(tmp_path / "saved")}


#: TINY on the users with at most 25 interactions and histories of 25: every user's input
#: sequence is its whole history. Each run exports a flat faiss index of its items.
WHOLE_HISTORY = {**TINY, "user_inter_num_interval": "[0,25]", "MAX_ITEM_LIST_LENGTH": 25, "faiss_index": "flat"}


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """``trained_run(model)``: the record of a one-epoch WHOLE_HISTORY run of ``model``, trained
    once per session in a folder of its own (its checkpoint in ``saved/``, its index in ``index/``)."""
    from recbole_croloss.quick_start import run

    records = {}

    def train(model: str) -> dict:
        if model not in records:
            folder = tmp_path_factory.mktemp(model)
            with pytest.MonkeyPatch.context() as patch:
                patch.chdir(folder)
                records[model] = run(model, "ml-100k", config_dict={
                    **WHOLE_HISTORY, "checkpoint_dir": str(folder / "saved"), "faiss_export": str(folder / "index")})
        return records[model]

    return train
