"""The CLI serves the test users from a faiss index of the trained model and exports it."""
import json

import faiss
import pytest
import torch

from recbole_croloss.quick_start import main, run
from recbole_croloss.retrieval import ItemIndex
from tests.devices import on_devices, recbole_device

#: faiss sees a GPU: only a faiss built with GPU support has StandardGpuResources (faiss-cpu has not).
FAISS_SEES_GPU = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


@pytest.mark.parametrize("model,settings,score", [("GRU4Rec", {}, "dot"),
                                                  ("ComiRec", {"interest_extractor": "sa"}, "cosine")])
def test_flat_index_serves_the_exact_top_n(tiny, tmp_path, model, settings, score):
    export = tmp_path / "index"
    result = run(model, "ml-100k", config_dict={**tiny, **settings, "loss": "croloss", "faiss_index": "flat",
                                                "faiss_export": str(export), "metric_decimal_place": 12})
    served = result["faiss"]
    assert served["kind"] == "flat" and served["ann_recall@500"] == pytest.approx(1.0)
    for key, value in result["test_result"].items():
        assert served["test_result"][key] == pytest.approx(value, abs=1e-9), key
        assert served["exact_test_result"][key] == pytest.approx(value, abs=1e-9), key
    index = ItemIndex.load(export)
    ids = index.item_ids.tolist()
    assert index.kind == "flat" and 500 < index.n_items == len(set(ids))  # the slice's items, once
    assert all(1 <= int(t) <= 1682 for t in ids) and "[PAD]" not in ids  # ml-100k's item tokens
    assert json.load(open(export / "meta.json"))["score"] == score  # the model's own


@on_devices
def test_exported_index_serves_like_the_model(tiny, tmp_path, monkeypatch, device):
    """On CUDA: the model's vectors from the device, served by a faiss GPU index where faiss has
    one (the index's default device), against the model's own scores."""
    from recbole_croloss.quick_start import prepare_run

    prepared = prepare_run("TwoTower", "ml-100k", config_dict={**tiny, "loss": "croloss",
                                                               **recbole_device(device, monkeypatch)})
    assert prepared.trainer.device.type == device
    prepared.trainer.fit(prepared.train_data, saved=False)
    from recbole_croloss.settings.spec import ServingSpec
    from recbole_croloss.serving import faiss_test_results

    served = faiss_test_results(prepared, ServingSpec("flat", 1, str(tmp_path / "tt")))
    assert served["device"] == ("GPU" if FAISS_SEES_GPU else "CPU")
    index = ItemIndex.load(tmp_path / "tt")
    interaction = next(iter(prepared.test_data))[0].to(device)
    with torch.no_grad():
        users = prepared.adapter.retrieval.user_vectors(interaction)
        scores = prepared.adapter.full_sort_predict(interaction)[:, 1:].cpu()  # cosine x 10, padding dropped
    found = index.search(users, 20)
    torch.testing.assert_close(torch.from_numpy(found.scores), scores.topk(20).values, rtol=1e-4, atol=1e-4)
    dataset = prepared.test_data._dataset
    expected = dataset.id2token(dataset.iid_field, (scores.topk(20).indices + 1).numpy())
    assert (found.ids == expected).mean() > 0.99
    assert served["ann_recall@500"] == pytest.approx(1.0)


def test_ivf_reports_its_ann_recall(tiny):
    result = run("GRU4Rec", "ml-100k", config_dict={**tiny, "faiss_index": "ivf", "faiss_nprobe": 4})
    served = result["faiss"]
    assert 0.0 < served["ann_recall@500"] < 1.0  # 4 of ~164 lists cannot hold the top 500
    assert served["test_result"]["recall@500"] <= result["test_result"]["recall@500"] + 1e-9


@pytest.mark.parametrize("settings,fragment", [
    (["--faiss_index=annoy"], "faiss_index='annoy' is not valid; choose one of: flat, hnsw, ivf, none"),
    (["--faiss_export=/tmp/x"], "faiss_export='/tmp/x' is not valid; an export needs an index"),
    (["--faiss_index=flat", "--eval_engine=recbole"], "faiss_index='flat' is not valid"),
    (["--faiss_index=ivf", "--faiss_nprobe=0"], "faiss_nprobe=0 is not valid"),
])
def test_bad_serving_settings_stop_the_cli(tiny, settings, fragment, capsys):
    assert main(["--model=GRU4Rec", *settings, *[f"--{k}={v}" for k, v in tiny.items()]]) == 2
    assert fragment in capsys.readouterr().err


def test_a_model_without_item_vectors_cannot_be_served(tiny, capsys):
    assert main(["--model=BERT4Rec", "--loss=ce", "--faiss_index=flat",
                 *[f"--{k}={v}" for k, v in tiny.items()]]) == 2
    assert "ranks by its own full_sort_predict" in capsys.readouterr().err


def test_a_failed_faiss_export_keeps_the_test_results(tiny, tmp_path, monkeypatch, capsys):
    """The export fails after the test (a disk that fills up): the record and the printed test
    table are there, the failure is reported beside them, and the CLI exits 1."""
    from recbole_croloss import retrieval

    def full_disk(self, folder):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(retrieval.ItemIndex, "save", full_disk)
    record_file = tmp_path / "record.json"
    code = main(["--model=TwoTower", "--faiss_index=flat", f"--faiss_export={tmp_path / 'index'}",
                 f"--record={record_file}", *[f"--{k}={v}" for k, v in tiny.items()]])
    out = capsys.readouterr().out
    assert code == 1
    assert "recall " in out.split("full ranking; test split)")[1]  # the test table is printed
    assert "faiss flat serving failed, the test results above are kept: OSError" in out
    saved = json.loads(record_file.read_text())
    assert saved["test_result"]["recall@50"] > 0 and saved["faiss"]["error"].startswith("OSError")
