"""The paper's protocol: user split, the 80/20 rule, multi-target metrics through the CLI's flow."""
import numpy as np
import pytest
import torch

from recbole_croloss.data.protocol import (MultiTargetEvalLoader, _prefix_lengths, check_ratio, held_out_rows,
                                           split_users)
from recbole_croloss.errors import ConfigError
from recbole_croloss.quick_start import prepare_run, main, run


def test_split_users_is_disjoint_covering_and_deterministic():
    users = np.repeat(np.arange(1, 1001), 3)
    a, b, c = split_users(users, (0.8, 0.1, 0.1), 7), split_users(users, (0.8, 0.1, 0.1), 7), \
        split_users(users, (0.8, 0.1, 0.1), 8)
    assert [len(a[s]) for s in ("train", "valid", "test")] == [800, 100, 100]
    assert set(np.concatenate(list(a.values()))) == set(range(1, 1001))
    assert not set(a["train"]) & set(a["valid"]) and not set(a["valid"]) & set(a["test"])
    assert all(np.array_equal(a[s], b[s]) for s in a) and not np.array_equal(a["test"], c["test"])


def test_held_out_rows_follow_the_80_20_rule_by_hand():
    """User 1 has 10 behaviours (items 11..20): k = 8, input items 11..18, targets 19, 20.
    User 2 has 5 (21..25): k = 4, targets 25. User 3 has 2 (31, 32): k = 1, target 32."""
    seqs = {1: list(range(11, 21)), 2: list(range(21, 26)), 3: [31, 32]}
    uids = np.concatenate([[u] * (len(s) - 1) for u, s in seqs.items()])
    targets = np.concatenate([s[1:] for s in seqs.values()])   # augmented rows' targets
    prefix = _prefix_lengths(uids)
    assert prefix.tolist() == list(range(1, 10)) + [1, 2, 3, 4] + [1]
    rows, t_rows, t_items, skipped = held_out_rows(uids, prefix, targets, np.array([1, 2, 3]))
    assert prefix[rows].tolist() == [8, 4, 1] and uids[rows].tolist() == [1, 2, 3]
    assert targets[rows].tolist() == [19, 25, 32]  # each row's first target
    assert list(zip(t_rows.tolist(), t_items.tolist())) == [(0, 19), (0, 20), (1, 25), (2, 32)]
    assert skipped == 0
    rows, t_rows, _, _ = held_out_rows(uids, prefix, targets, np.array([2]))
    assert uids[rows].tolist() == [2] and t_rows.tolist() == [0]


def test_multi_target_loader_batches_keep_their_targets():
    from recbole.data.interaction import Interaction

    inter = Interaction({"x": torch.arange(5)})
    loader = MultiTargetEvalLoader(None, inter, torch.tensor([4, 0, 0, 2, 3, 3]),
                                   torch.tensor([9, 1, 2, 5, 7, 8]), batch_size=2)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    got = [(b[0]["x"].tolist(), b[2].tolist(), b[3].tolist()) for b in batches]
    assert got == [([0, 1], [0, 0], [1, 2]), ([2, 3], [0, 1, 1], [5, 7, 8]), ([4], [0], [9])]


@pytest.mark.parametrize("bad", [[0.8, 0.2], [0, 0.5, 0.5], [0.8, -0.1, 0.3], "0.8,0.1,0.1", [0.8, 0.1, True],
                                 [1, 0, 0], [0.9, 0.1, 0]])
def test_bad_ratio(bad):
    with pytest.raises(ConfigError, match="paper_split_ratio="):
        check_ratio(bad)


def test_paper_protocol_on_ml100k(tiny):
    prepared = prepare_run("GRU4Rec", "ml-100k", config_dict={**tiny, "protocol": "paper", "paper_split_seed": 3,
                                                   "metrics": ["Recall", "Hit"]})
    train_users = set(prepared.train_data._dataset.inter_feat["user_id"].tolist())
    valid, test = prepared.valid_data, prepared.test_data
    valid_users = set(valid.interaction["user_id"].tolist())
    test_users = set(test.interaction["user_id"].tolist())
    assert not train_users & valid_users and not train_users & test_users and not valid_users & test_users
    n_users = len(train_users | valid_users | test_users)
    assert abs(len(test_users) - 0.1 * n_users) <= 2 and abs(len(valid_users) - 0.1 * n_users) <= 2
    # each held-out user: input = the first k = int(0.8 L) behaviours (the last 20 of them),
    # targets = the other L - k; checked against the user's raw sequence
    from recbole.data import create_dataset

    raw = create_dataset(prepared.config).inter_feat
    # RecBole's order: by user, then by its float32 (normalised) timestamp, ties in file order
    order = np.lexsort((raw["timestamp"].to_numpy(np.float32), raw["user_id"].to_numpy()))
    raw = raw.iloc[order]
    sequences = raw.groupby("user_id", sort=False)["item_id"].apply(list).to_dict()
    for row, user in enumerate(test.interaction["user_id"].tolist()):
        seq = sequences[user]
        k = int(0.8 * len(seq))
        length = int(test.interaction["item_length"][row])
        assert length == min(k, 20)
        assert test.interaction["item_id_list"][row][:length].tolist() == seq[:k][-20:]
        assert sorted(test.target_items[test.target_rows == row].tolist()) == sorted(seq[k:])
    result = prepared.trainer.evaluate(test, load_best_model=False)
    assert result["recall@50"] < result["hit@50"]  # several targets: recall is not hit


def test_paper_protocol_is_deterministic_and_the_cli_says_which(tiny, capsys):
    args = [f"--{k}={v}" for k, v in tiny.items()]
    assert main(["--model=GRU4Rec", "--protocol=paper", *args]) == 0
    out = capsys.readouterr().out
    assert "protocol: paper: users split 0.8:0.1:0.1" in out
    a = run("GRU4Rec", "ml-100k", config_dict={**tiny, "protocol": "paper"})
    b = run("GRU4Rec", "ml-100k", config_dict={**tiny, "protocol": "paper"})
    assert a["test_result"] == b["test_result"] and a["protocol"] == "paper"


def test_loo_is_recboles_own_split(tiny):
    from recbole.data import create_dataset, data_preparation
    from recbole.data.dataloader import FullSortEvalDataLoader

    prepared = prepare_run("GRU4Rec", "ml-100k", config_dict={**tiny, "protocol": "loo"})
    assert isinstance(prepared.test_data, FullSortEvalDataLoader)
    _, _, reference = data_preparation(prepared.config, create_dataset(prepared.config))
    assert torch.equal(prepared.test_data._dataset.inter_feat["item_id"], reference._dataset.inter_feat["item_id"])


@pytest.mark.parametrize("settings,fragment", [
    (["--protocol=comirec"], "protocol='comirec' is not valid; choose one of: loo, paper"),
    (["--protocol=paper", "--eval_engine=recbole"], "eval_engine='recbole' is not valid"),
    (["--protocol=paper", "--paper_split_ratio=[0.5,0.5]"], "paper_split_ratio="),
    (["--protocol=paper", "--paper_split_seed=-1"], "paper_split_seed=-1"),
    (["--protocol=paper", "--paper_split_ratio=abc"], "paper_split_ratio='abc' is not valid; three numbers"),
])
def test_bad_protocol_settings(tiny, settings, fragment, capsys):
    assert main(["--model=GRU4Rec", *settings, *[f"--{k}={v}" for k, v in tiny.items()]]) == 2
    assert fragment in capsys.readouterr().err


def test_a_split_that_leaves_a_split_without_users_stops_before_training(tiny, capsys):
    """2 in 10,000 of the slice's users rounds the validation and test shares to no user."""
    args = [f"--{k}={v}" for k, v in tiny.items()]
    assert main(["--model=GRU4Rec", "--protocol=paper", "--paper_split_ratio=[0.9996,0.0002,0.0002]", *args]) == 2
    err = capsys.readouterr().err
    assert "paper_split_ratio=[0.9996" in err and "leaves no valid and no test user" in err, err


def test_comirec_files_go_to_the_paper_protocol_with_their_own_split(tiny, tmp_path):
    """Importer -> amazon-books.yaml -> protocol paper: ComiRec's user split is used as given
    (not the random 8:1:1 split), and the run trains and evaluates."""
    from recbole_croloss.data.importer import import_comirec
    from tests.data.test_importer import write_comirec

    rows = write_comirec(tmp_path / "src", users=60, items=40)
    import_comirec(str(tmp_path / "src"), "amazon-books", str(tmp_path / "out"))
    settings = {**tiny, "data_path": str(tmp_path / "out"), "user_inter_num_interval": None,
                "embedding_size": 8, "train_batch_size": 32, "neg_per_pos": 2, "epochs": 1,
                "topk": [5, 10], "valid_metric": "Recall@5"}
    prepared = prepare_run("TwoTower", "amazon-books", config_dict=settings)
    dataset = prepared.test_data._dataset
    tokens = lambda users: set(dataset.id2token("user_id", users.numpy()).tolist())  # noqa: E731
    given = {split: {str(u) for u, _, _ in rows[split]} for split in ("train", "valid", "test")}
    assert tokens(prepared.test_data.interaction["user_id"]) <= given["test"]
    assert tokens(prepared.valid_data.interaction["user_id"]) <= given["valid"]
    assert tokens(prepared.train_data._dataset.inter_feat["user_id"]) <= given["train"]
    assert len(tokens(prepared.test_data.interaction["user_id"])) >= len(given["test"]) - 1
    assert prepared.spec.protocol.label.startswith("paper: users split as the dataset gives")
    prepared.trainer.fit(prepared.train_data, prepared.valid_data, saved=False)
    result = prepared.trainer.evaluate(prepared.test_data, load_best_model=False)
    assert 0 <= result["recall@5"] <= result["recall@10"] <= 1 and "hit@10" in result


@pytest.mark.parametrize("ratio, total", [([0.8, 0.2, 0.1], "1.1"), ([8, 1, 1], "10"), ([0.5, 0.25, 0.2], "0.95"),
                                          ([0.8, 0.1, 0.1000011], "1.000001")])
def test_a_ratio_that_does_not_sum_to_1_is_refused_naming_the_sum(ratio, total):
    """Shares are not rescaled: [0.8, 0.2, 0.1] is more likely a typo than 8:2:1."""
    with pytest.raises(ConfigError, match=rf"the train, valid and test shares sum to {total}, not 1"):
        check_ratio(ratio)


@pytest.mark.parametrize("ratio", [[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3], [0.8, 0.1, 0.1000009]])
def test_a_ratio_that_sums_to_1_within_1e6_is_accepted(ratio):
    assert sum(check_ratio(ratio)) == pytest.approx(1.0, abs=1e-12)


def test_every_bundled_paper_split_ratio_sums_to_1():
    """The defaults and every dataset YAML of the plugin pass the check."""
    import glob
    import os

    import yaml

    import recbole_croloss

    folder = os.path.join(os.path.dirname(recbole_croloss.__file__), "properties")
    found = []
    for path in glob.glob(os.path.join(folder, "**", "*.yaml"), recursive=True):
        settings = yaml.safe_load(open(path, encoding="utf-8")) or {}
        if "paper_split_ratio" in settings:
            found.append(check_ratio(settings["paper_split_ratio"]))
    assert found  # overall.yaml's default at least


def test_a_ratio_that_does_not_sum_to_1_stops_the_cli_before_any_data(tiny, capsys):
    args = [f"--{k}={v}" for k, v in tiny.items()]
    assert main(["--model=GRU4Rec", "--protocol=paper", "--paper_split_ratio=[0.8,0.2,0.1]", *args]) == 2
    assert ("paper_split_ratio=[0.8, 0.2, 0.1] is not valid; the train, valid and test shares sum to 1.1, not 1; "
            "give shares that sum to 1, e.g. [0.8, 0.1, 0.1]") in capsys.readouterr().err
