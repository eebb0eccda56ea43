"""The per-dataset YAML files: they parse, carry the paper's settings, and RecBole accepts them."""
import os

import pytest
import yaml

from recbole_croloss.settings.config import PROPERTIES_DIR
from recbole_croloss.glue import get_model
from recbole_croloss.settings.config import PluginConfig

PAPER = {  # CROLoss paper, section 4.1
    "amazon-books": {"MAX_ITEM_LIST_LENGTH": 20, "train_batch_size": 256},
    "taobao": {"MAX_ITEM_LIST_LENGTH": 50, "train_batch_size": 512},
}
COMMON = {
    "protocol": "paper", "neg_per_pos": 10, "embedding_size": 32, "hidden_size": 32, "learner": "adam",
    "learning_rate": 0.02, "topk": [50, 100, 200, 500], "metrics": ["Recall", "NDCG", "Hit"],
    "valid_metric": "Recall@50", "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id",
    "TIME_FIELD": "timestamp",
    "load_col": {"inter": ["user_id", "item_id", "timestamp"], "user": ["user_id", "comirec_split"]},
}


def read(name):
    with open(os.path.join(PROPERTIES_DIR, "dataset", f"{name}.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_datasets(name, tmp_path):
    values = read(name)
    expected = {**COMMON, **PAPER[name]}
    assert {k: values[k] for k in expected} == expected
    assert isinstance(values["epochs"], int) and values["epochs"] >= 1
    config = PluginConfig(get_model("GRU4Rec"), name, config_dict={"data_path": str(tmp_path)})
    for key, value in {**expected, "epochs": values["epochs"]}.items():
        assert config[key] == value, key


def test_ml_1m(tmp_path):
    values = read("ml-1m")
    assert values["protocol"] == "loo" and values["MAX_ITEM_LIST_LENGTH"] == 50
    assert values["train_batch_size"] == 256 and values["topk"] == [50, 100, 200, 500]
    assert values["load_col"] == {"inter": ["user_id", "item_id", "timestamp"]}
    assert 10 <= values["epochs"] <= 30
    config = PluginConfig(get_model("GRU4Rec"), "ml-1m", config_dict={"data_path": str(tmp_path)})
    assert config["MAX_ITEM_LIST_LENGTH"] == 50 and config["protocol"] == "loo"
    assert config["eval_args"]["split"] == {"LS": "valid_and_test"}  # RecBole's leave-one-out


def test_user_files_override(tmp_path):
    config = PluginConfig(get_model("GRU4Rec"), "taobao",
                          config_dict={"data_path": str(tmp_path), "learning_rate": 0.001})
    assert config["learning_rate"] == 0.001 and config["train_batch_size"] == 512


def test_imported_comirec_loads_with_the_yaml(tmp_path):
    """The importer's NAME.inter and NAME.user load with amazon-books.yaml's load_col."""
    from recbole.data import create_dataset

    from recbole_croloss.data.importer import import_comirec
    from tests.data.test_importer import write_comirec

    rows = write_comirec(tmp_path / "src", users=30)
    import_comirec(str(tmp_path / "src"), "amazon-books", str(tmp_path / "out"))
    config = PluginConfig(get_model("GRU4Rec"), "amazon-books", config_dict={
        "data_path": str(tmp_path / "out"), "state": "WARNING", "show_progress": False})
    dataset = create_dataset(config)
    assert dataset.user_num == 31
    splits = dataset.user_feat["comirec_split"]
    names = [dataset.field2id_token["comirec_split"][int(s)] for s in splits[1:]]
    assert sorted(names) == sorted(["train"] * 24 + ["valid"] * 3 + ["test"] * 3)
    assert dataset.inter_num == sum(len(r) for r in rows.values())
