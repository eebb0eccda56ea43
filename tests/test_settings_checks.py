"""Every setting a user can get wrong stops the CLI before any data is loaded, with an error that
names the key, the value and what is allowed (exit code 2, no log folder, nothing trained)."""
import os

import pytest

from recbole_croloss.quick_start import main

from .conftest import TINY

CASES = [  # (settings, a fragment of the error)
    (["--alpah=1.2"], "alpah=1.2 is not valid; no such setting; did you mean 'alpha'?"),
    (["--kernal=exp"], "kernal='exp' is not valid; no such setting; did you mean 'kernel'?"),
    (["--topk=[10]", "--valid_metric=Recall@20"], "valid_metric='Recall@20' is not valid; its cut-off"),
    (["--valid_metric=MRR@50", "--metrics=['Recall']"], "valid_metric='MRR@50' is not valid; its metric"),
    (["--valid_metric=Recall"], "valid_metric='Recall' is not valid; a metric at a cut-off"),
    (["--alpha=True"], "alpha=True is not valid; alpha must be a real number >= 0, not true/false"),
    (["--kernel=sigmoid", "--margin=2"], "margin=2 is not valid; only the hinge kernel has a margin"),
    (["--epochs=0"], "epochs=0 is not valid"),
    (["--seed=abc"], "seed='abc' is not valid"),
    (["--train_batch_size=0"], "train_batch_size=0 is not valid"),
    (["--MAX_ITEM_LIST_LENGTH=0"], "MAX_ITEM_LIST_LENGTH=0 is not valid"),
    (["--learning_rate=-1"], "learning_rate=-1 is not valid"),
    (["--checkpoint_dir=/proc/croloss"], "checkpoint_dir='/proc/croloss' is not valid; a folder that can be written"),
    (["--faiss_index=flat", "--faiss_export=/proc/croloss"], "faiss_export='/proc/croloss' is not valid"),
    (["--topk=[0]"], "topk='[0]' is not valid; RecBole refuses it: topk must be a positive integer"),
    (["--topk=[-5]"], "topk='[-5]' is not valid; RecBole refuses it: topk must be a positive integer"),
    (["--topk=abc"], "topk='abc' is not valid"),
    (["--metrics=['Foo']", "--valid_metric=Foo@50"], "is not valid; RecBole refuses it: There is no metric named 'Foo'"),
    (["--model=BERT4Rec", "--loss=ce", "--faiss_index=flat"], "ranks by its own full_sort_predict"),
    (["--data_path=/nonexistent"], "not found: looked for /nonexistent/ml-100k/ml-100k.inter"),
    (["--config_files=missing.yaml"], "config_files='missing.yaml' is not valid; it cannot be read"),
    (["--record=/proc/croloss/record.json"], "record='/proc/croloss' is not valid; a folder that can be written"),
    (["--resume=/nonexistent-last.pth"], "resume='/nonexistent-last.pth' is not valid; no such file"),
    (["--checkpoint_dir="], "checkpoint_dir='' is not valid; a directory path"),
    (["--metrics=[]"], "metrics='[]' is not valid; at least one metric"),
    (["--valid_metric=Recall@050"], "valid_metric='Recall@050' is not valid; a metric at a cut-off, e.g. "
                                    "Recall@50 (the cut-off written as in topk, without leading zeros)"),
    (["--seed=4294967296"], "seed=4294967296 is not valid; seed must be an integer from 0 to 4294967295"),
    (["--port=70000"], "port=70000 is not valid; port must be an integer from 1 to 65535"),
    (["--gpu_id=abc"], "gpu_id='abc' is not valid; GPU numbers separated by commas"),
    (["--learner=foo"], "learner='foo' is not valid; choose one of RecBole's optimizers: adam, adamw, sgd"),
    (["--state=foo"], "state='foo' is not valid; choose one of the log levels"),
    (["--loss=ce", "--loss_type=BPR"], "loss_type='BPR' is not valid; CE: the plugin feeds point-wise samples"),
    (["--weight_decay=-1"], "weight_decay=-1 is not valid; a finite number >= 0"),
    (["--embedding_size=0"], "embedding_size=0 is not valid; embedding_size must be an integer >= 1"),
    (["--hidden_size=-3"], "hidden_size=-3 is not valid; hidden_size must be an integer >= 1"),
    (["--dropout_prob=2"], "dropout_prob=2 is not valid; a probability from 0 to 1"),
    (["--reproducibility=abc"], "reproducibility='abc' is not valid; choose one of: true, false"),
    (["--show_progress=abc"], "show_progress='abc' is not valid; choose one of: true, false"),
    (["--clip_grad_norm=abc"], "clip_grad_norm='abc' is not valid; unset, or a mapping such as {'max_norm': 5"),
    (["--eval_args={'split':{'LS':'valid_and_test'},'order':'RO','mode':'full','group_by':'user'}"],
     "is not valid; order 'TO': a sequential model is evaluated on each user's last interactions in time order"),
    (["--eval_args={'split':{'LS':'valid_and_test'},'order':'TO','mode':'uni100','group_by':'user'}"],
     "is not valid; mode 'full': recbole-croloss ranks the whole catalogue"),
    (["--negatives=full", "--neg_per_pos=5"], "neg_per_pos=5 is not valid; negatives='full' scores every "
                                              "other item once, the row's positive left out, which reads no "
                                              "neg_per_pos"),
    (["--negatives=full", "--mask_accidental_hits=false"],
     "mask_accidental_hits=False is not valid; negatives='full' scores every other item once"),
    (["--loss=ce", "--rank_estimator=unbiased"], "rank_estimator='unbiased' is not valid; loss='ce' is the "
                                                 "model's own cross-entropy over every item, which reads no "
                                                 "rank_estimator"),
    (["--loss=ce", "--neg_per_pos=50"], "neg_per_pos=50 is not valid; loss='ce' is the model's own cross-entropy"),
    (["--loss=ce", "--negatives=full"], "negatives='full' is not valid; loss='ce' is the model's own"),
    (["--loss=ce", "--mask_accidental_hits=false"], "mask_accidental_hits=False is not valid; loss='ce'"),
    (["--paper_split_ratio=[0.5,0.25,0.25]"], "paper_split_ratio=[0.5, 0.25, 0.25] is not valid; protocol='loo' "
                                              "('paper' reads it), which reads no paper_split_ratio"),
    (["--paper_split_seed=3"], "paper_split_seed=3 is not valid; protocol='loo' ('paper' reads it)"),
    (["--sampled_negatives=50"], "sampled_negatives=50 is not valid; protocol='loo' ('sampled' reads it)"),
    (["--protocol=sampled", "--paper_split_seed=3"], "paper_split_seed=3 is not valid; protocol='sampled' "
                                                     "('paper' reads it)"),
    (["--faiss_index=flat", "--faiss_nprobe=8"], "faiss_nprobe=8 is not valid; faiss_index='flat' has no "
                                                 "inverted lists, which reads no faiss_nprobe"),
    (["--faiss_nprobe=8"], "faiss_nprobe=8 is not valid; faiss_index='none' has no inverted lists"),
    (["--dataset=a/b"], "dataset='a/b' is not valid; a plain folder name (no path separators)"),
    (["--dataset=.."], "dataset='..' is not valid; a plain folder name (no path separators)"),
    (["--record="], "record='' is not valid; a file path, e.g. results/run.json"),
    (["--record=newdir/"], "record='newdir/' is not valid; a file path, e.g. results/run.json"),
    # the negatives and the baselines
    (["--negatives=popular"], "negatives='popular' is not valid; choose one of: full, in_batch, mixed, popularity, "
                              "uniform"),
    (["--negatives=mixed", "--neg_mix=1.5"], "neg_mix=1.5 is not valid; a share strictly between 0 and 1"),
    (["--negatives=mixed", "--neg_mix=0"], "neg_mix=0 is not valid; a share strictly between 0 and 1 of the draws "
                                           "taken from the popularity proposal, the rest uniform (0 or 1: use"),
    (["--negatives=mixed", "--neg_mix=abc"], "neg_mix='abc' is not valid; a share strictly between 0 and 1"),
    (["--neg_mix=0.3"], "neg_mix=0.3 is not valid; negatives='uniform' draws uniformly, which reads no neg_mix"),
    (["--negatives=popularity", "--neg_popularity_power=-1"],
     "neg_popularity_power=-1 is not valid; a finite number >= 0: items are drawn with probability"),
    (["--negatives=popularity", "--neg_popularity_power=inf"], "neg_popularity_power='inf' is not valid"),
    (["--negatives=in_batch", "--neg_popularity_power=1"], "neg_popularity_power=1 is not valid; "
                                                           "negatives='in_batch' takes the batch's other positives"),
    (["--negatives=in_batch", "--neg_per_pos=5"], "neg_per_pos=5 is not valid; negatives='in_batch' takes the "
                                                  "batch's other positives (plus in_batch_uniform uniform draws"),
    (["--negatives=in_batch", "--in_batch_uniform=-1"], "in_batch_uniform=-1 is not valid; in_batch_uniform must "
                                                        "be an integer >= 0"),
    (["--in_batch_uniform=2"], "in_batch_uniform=2 is not valid; negatives='uniform' draws uniformly"),
    (["--neg_memory=-1"], "neg_memory=-1 is not valid; neg_memory must be an integer >= 0"),
    (["--neg_memory=1.5"], "neg_memory=1.5 is not valid; neg_memory must be an integer >= 0"),
    (["--negatives=full", "--neg_memory=2"], "neg_memory=2 is not valid; negatives='full' already scores every item"),
    (["--loss=ce", "--neg_memory=2"], "neg_memory=2 is not valid; loss='ce' is the model's own cross-entropy"),
    (["--logq_correction=true"], "logq_correction=True is not valid; negatives='uniform' draws uniformly (no log q"),
    (["--negatives=popularity", "--logq_correction=yes"], "logq_correction='yes' is not valid; choose one of: "
                                                          "true, false"),
    (["--loss=bce", "--negatives=popularity", "--logq_correction=false"],
     "logq_correction=False is not valid; loss='bce' weighs every negative alike"),
    (["--loss=bce", "--kernel=exp"], "kernel='exp' is not valid; loss='bce' (binary cross-entropy on each score"),
    (["--loss=gbce", "--rank_estimator=unbiased"], "rank_estimator='unbiased' is not valid; loss='gbce'"),
    (["--loss=gbce", "--gbce_t=2"], "gbce_t=2 is not valid; gBCE's calibration t, a number from 0"),
    (["--gbce_t=0.5"], "gbce_t=0.5 is not valid; loss='croloss' (CROLoss with kernel phi"),
    (["--loss=ce", "--gbce_t=0.5"], "gbce_t=0.5 is not valid; loss='ce' is the model's own"),
]


@pytest.mark.parametrize("settings, fragment", CASES, ids=[" ".join(s) for s, _ in CASES])
def test_a_bad_setting_stops_the_cli_before_any_data(settings, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    given = {s[2:].partition("=")[0] for s in settings}
    tiny = [f"--{k}={v}" for k, v in TINY.items() if k not in given]
    model = [] if "model" in given else ["--model=GRU4Rec"]
    assert main([*model, *tiny, *settings]) == 2
    err = capsys.readouterr().err
    assert fragment in err, err
    assert not os.path.exists(tmp_path / "log")  # stopped before RecBole's logger and data


def test_an_invalid_yaml_file_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("alpha: [1.2\n")
    assert main(["--model=GRU4Rec", f"--config_files={tmp_path / 'bad.yaml'}"]) == 2
    assert f"config_files='{tmp_path / 'bad.yaml'}' is not valid; it is not valid YAML" in capsys.readouterr().err


def test_an_unknown_recbole_like_key_is_a_warning_with_a_hint(tiny, capsys):
    from recbole_croloss.quick_start import prepare_run

    prepared = prepare_run("GRU4Rec", "ml-100k", config_dict={**tiny, "train_batch_sise": 128})
    assert prepared.spec.warnings == (
        "train_batch_sise=128 is not a setting RecBole or recbole-croloss reads: ignored; "
        "did you mean 'train_batch_size'?",)


def test_topk_beyond_the_catalogue_stops_before_training(tiny, capsys):
    args = [f"--{k}={v}" for k, v in tiny.items()]
    assert main(["--model=GRU4Rec", *args, "--topk=[50,2000]"]) == 2
    err = capsys.readouterr().err
    assert "topk=[50, 2000] is not valid; at most the 980 items of the catalogue" in err, err  # the slice's items
    assert "for this dataset e.g. --topk='[50]'" in err and "--valid_metric" not in err, err  # Recall@50 fits
    assert main(["--model=GRU4Rec", *args, "--topk=[50,2000]", "--valid_metric=Recall@2000"]) == 2
    err = capsys.readouterr().err  # the advice is one that runs: a valid_metric among the topk that fit
    assert "for this dataset e.g. --topk='[50]' --valid_metric=Recall@50" in err, err


def test_an_alpha_beyond_float32_is_refused_and_a_large_one_is_warned_about(tiny, capsys):
    args = [f"--{k}={v}" for k, v in tiny.items()]
    assert main(["--model=GRU4Rec", *args, "--alpha=1e6"]) == 2
    assert "alpha=1000000.0 is not valid; at most 126.9" in capsys.readouterr().err
    from recbole_croloss.quick_start import prepare_run

    # negatives: uniform, so that the warnings are the alpha's only (not the switch to every item)
    prepared = prepare_run("GRU4Rec", "ml-100k", config_dict={**tiny, "alpha": 20.0, "negatives": "uniform"})
    warnings = prepared.spec.training.catalogue_warnings(prepared.train_data._dataset.item_num)
    assert len(warnings) == 1 and "alpha=20 over 981 items" in warnings[0]
    assert prepared.spec.training.catalogue_warnings(1683) != []
    tiny_catalogue = prepared.spec.training.__class__.from_config(prepared.config).catalogue_warnings(10)
    assert not [w for w in tiny_catalogue if "alpha=" in w]  # 9 items: no alpha too large for them


def test_a_split_without_validation_or_test_users_stops_before_training(tiny, capsys):
    args = [f"--{k}={v}" for k, v in tiny.items()]
    split = "--eval_args={'split': {'RS': [1.0, 0.0, 0.0]}, 'order': 'TO', 'mode': 'full', 'group_by': 'user'}"
    assert main(["--model=GRU4Rec", *args, split]) == 2
    assert "eval_args={'RS': [1.0, 0.0, 0.0]} is not valid; it leaves no valid and no test users" in \
        capsys.readouterr().err


def test_a_data_path_that_is_a_file_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.txt").write_text("not a folder\n")
    tiny = [f"--{k}={v}" for k, v in TINY.items()]
    assert main(["--model=GRU4Rec", *tiny, f"--data_path={tmp_path / 'data.txt'}"]) == 2
    assert (f"data_path='{tmp_path / 'data.txt'}' is not valid; the folder that holds the folder ml-100k/; "
            f"{tmp_path / 'data.txt'} is a file") in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "log")


def test_a_filter_that_empties_the_dataset_stops_before_training(tiny, capsys):
    args = [f"--{k}={v}" for k, v in tiny.items() if k != "user_inter_num_interval"]
    assert main(["--model=GRU4Rec", *args, "--user_inter_num_interval=[1000,2000]"]) == 2
    assert ("user_inter_num_interval=[1000, 2000] is not valid; it leaves no interactions: RecBole's filters "
            "(user_inter_num_interval) remove every user or item") in capsys.readouterr().err
    assert not os.path.exists(tiny["checkpoint_dir"])  # nothing trained, no checkpoint
