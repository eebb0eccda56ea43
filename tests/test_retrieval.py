"""faiss serving: a flat index returns the model's exact top N, ANN indexes recall most of it,
saves are atomic, and every bad input is a ConfigError naming the key and the value."""
import json
import os

import faiss
import numpy as np
import pytest
import torch

from recbole_croloss.errors import ConfigError
from recbole_croloss.evaluation.topk import Exclusions, chunked_topk
from recbole_croloss.retrieval import ItemIndex, SearchResult, ann_recall, faiss_gpus, merge_interests
from recbole_croloss.scoring import get_score, search_and_merge
from tests.devices import HAS_CUDA

D = 16
SCORES = [("dot", 1.0), ("cosine", 10.0)]

#: faiss sees a GPU: only a faiss built with GPU support has StandardGpuResources (faiss-cpu has not).
FAISS_SEES_GPU = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
#: Skips a test of faiss GPU indexes unless CUDA is present and faiss can use it.
needs_faiss_gpu = pytest.mark.skipif(not (HAS_CUDA and FAISS_SEES_GPU), reason=(
    "needs a CUDA device and faiss with GPU support; here "
    + ("faiss has no GPU support (faiss-cpu)" if HAS_CUDA else "there is no CUDA device")
    + " (the prepared GPU run executes it)"))
#: The devices an index is built on: ``cpu`` and, marked ``needs_faiss_gpu``, ``gpu``.
FAISS_DEVICES = ["cpu", pytest.param("gpu", marks=needs_faiss_gpu, id="gpu")]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Two shared cores: one faiss thread keeps the file fast and its results reproducible."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def clustered(n_items, n_users, seed=0, centers=20):
    """Items and users drawn around a few shared centres (what ANN indexes are built for)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, D)) * 3
    items = c[rng.integers(centers, size=n_items)] + rng.normal(size=(n_items, D))
    users = c[rng.integers(centers, size=n_users)] + rng.normal(size=(n_users, D))
    return torch.tensor(items, dtype=torch.float32), torch.tensor(users, dtype=torch.float32)


def exact(name, scale, users, items, n):
    score = get_score(name, scale)
    return chunked_topk(score.query(users), score.key(items), n, chunk=512)


@pytest.mark.parametrize("device", FAISS_DEVICES)
@pytest.mark.parametrize("n", [1, 10, 100])
@pytest.mark.parametrize("name,scale", SCORES)
def test_flat_equals_torch_top_n(name, scale, n, device):
    items, users = randn(3000, D, seed=1), randn(40, D, seed=2)
    index = ItemIndex.build(items, score=name, scale=scale, device=device)
    got = index.search(users, n)
    assert isinstance(got, SearchResult) and index.on_gpu == (device == "gpu")
    assert got.scores.dtype == np.float32 and got.rows.dtype == np.int64 and got.scores.shape == (40, n)
    ref_scores, ref_ids = exact(name, scale, users, items, n)
    np.testing.assert_allclose(got.scores, ref_scores.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(got.rows, ref_ids.numpy())
    np.testing.assert_array_equal(got.ids, got.rows)  # default ids are the row numbers
    # the same from numpy inputs, and the scores are the model's Score.all
    again = ItemIndex.build(items.numpy(), score=name, scale=scale, device=device).search(users.numpy(), n)
    np.testing.assert_array_equal(again.rows, got.rows)
    full = get_score(name, scale).all(users, items)
    picked = full.gather(1, torch.from_numpy(got.rows)).numpy()
    np.testing.assert_allclose(got.scores, picked, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(index.search(users, np.int64(n)).rows, got.rows)


@pytest.mark.parametrize("device", FAISS_DEVICES)
@pytest.mark.parametrize("n", [5, 50])
@pytest.mark.parametrize("name,scale", SCORES)
def test_flat_multi_interest_is_comirec_search_and_merge(name, scale, n, device):
    items, users = randn(2000, D, seed=3), randn(24, 4, D, seed=4)
    index = ItemIndex.build(items, score=name, scale=scale, device=device)
    assert index.on_gpu == (device == "gpu")
    got = index.search(users, n)
    merged_scores, merged_ids = search_and_merge(get_score(name, scale), users, items, n)
    np.testing.assert_allclose(got.scores, merged_scores.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(got.rows, merged_ids.numpy())
    max_scores, max_ids = exact(name, scale, users, items, n)  # max over interests
    np.testing.assert_allclose(got.scores, max_scores.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(got.rows, max_ids.numpy())
    assert all(len(set(row)) == n for row in got.rows.tolist())  # de-duplicated


def test_merge_interests_keeps_best_score_and_puts_missing_last():
    scores = np.array([[5.0, 3.0, 1.0, 4.0, 3.5, 0.0]], dtype=np.float32)  # K = 2, n = 3
    rows = np.array([[7, 8, 9, 8, 7, -1]])
    s, r = merge_interests(scores, rows, 3)
    assert r.tolist() == [[7, 8, 9]] and s.tolist() == [[5.0, 4.0, 1.0]]
    s, r = merge_interests(np.array([[2.0, 1.0, 3.0, 0.0]]), np.array([[4, -1, 4, -1]]), 2)
    assert r.tolist() == [[4, -1]] and s[0, 0] == 3.0 and s[0, 1] == -np.inf


def test_item_ids_map_rows_skipping_the_padding_item():
    """RecBole's item 0 is padding: index rows 1..N-1 under their tokens."""
    items, users = randn(500, D, seed=5), randn(8, 3, D, seed=6)
    tokens = np.array([f"item{i}" for i in range(500)])
    got = ItemIndex.build(items[1:], tokens[1:], score="cosine", scale=10.0).search(users, 20)
    score = get_score("cosine", 10.0)
    _, ref = chunked_topk(score.query(users), score.key(items), 20, 128, Exclusions(always=(0,)))
    assert got.ids.dtype == object
    assert got.ids.tolist() == tokens[ref.numpy()].tolist()
    np.testing.assert_array_equal(got.rows + 1, ref.numpy())
    ints = ItemIndex.build(items[1:], torch.arange(1, 500)).search(users[:, 0], 7)
    np.testing.assert_array_equal(ints.ids, ints.rows + 1)


@pytest.mark.parametrize("kind,options", [("ivf", {"nprobe": 2}), ("hnsw", {"ef_search": 16, "hnsw_m": 8})])
@pytest.mark.parametrize("name,scale", SCORES)
def test_ann_indexes_recall_the_exact_top_n(kind, options, name, scale):
    items, users = clustered(5000, 100, seed=7)
    flat = ItemIndex.build(items, score=name, scale=scale).search(users, 50)
    ann = ItemIndex.build(items, kind=kind, score=name, scale=scale, **options)
    assert ann.kind == kind and ann.n_items == 5000 and ann.dim == D
    got = ann.search(users, 50)
    assert got.rows.shape == got.ids.shape == (100, 50) and (got.rows[:, 0] >= 0).all()
    assert 0 < ann_recall(got.rows, flat.rows) <= 1
    # what it finds has the exact scores, best first (few probes may find fewer than 50: -1)
    found = got.rows >= 0
    full = get_score(name, scale).all(users, items)
    exact_scores = full.gather(1, torch.from_numpy(np.maximum(got.rows, 0))).numpy()
    np.testing.assert_allclose(got.scores[found], exact_scores[found], rtol=1e-4, atol=1e-4)
    assert (np.diff(np.where(found, got.scores, -1e30), axis=1) <= 1e-6).all()
    generous = {"nprobe": 64} if kind == "ivf" else {"ef_search": 256}  # hnsw_m = 32
    best = ItemIndex.build(items, kind=kind, score=name, scale=scale, **generous).search(users, 50)
    assert ann_recall(best.rows, flat.rows) >= 0.9
    ann = ItemIndex.build(items, kind=kind, score=name, scale=scale, **generous)
    multi = ann.search(users.view(50, 2, D), 20)
    flat_multi = ItemIndex.build(items, score=name, scale=scale).search(users.view(50, 2, D), 20)
    assert ann_recall(multi.ids, flat_multi.ids) >= 0.9


def test_ivf_default_nlist_and_sampled_training_are_deterministic():
    items = randn(1000, D, seed=8)
    a = ItemIndex.build(items, kind="ivf", nlist=2, nprobe=1, seed=3)  # trains on 512 sampled rows
    b = ItemIndex.build(items, kind="ivf", nlist=2, nprobe=1, seed=3)
    assert faiss.extract_index_ivf(a._cpu_index).nlist == 2
    np.testing.assert_array_equal(a.search(items[:10], 30).rows, b.search(items[:10], 30).rows)
    default = ItemIndex.build(items, kind="ivf")
    assert faiss.extract_index_ivf(default._cpu_index).nlist == round(4 * 1000 ** 0.5)


def test_fewer_than_n_found_gives_minus_one():
    items = randn(200, D, seed=9)
    tokens = [f"t{i}" for i in range(200)]
    got = ItemIndex.build(items, tokens, kind="ivf", nlist=50, nprobe=1).search(items[:5], 100)
    missing = got.rows < 0
    assert missing.any() and (got.scores[missing] == -np.inf).all()
    assert all(i is None for i in got.ids[missing]) and all(isinstance(i, str) for i in got.ids[~missing])
    assert missing[:, ::-1].cumprod(1).sum(1).tolist() == missing.sum(1).tolist()  # -1s are last
    assert 0 < ann_recall(got.rows, np.arange(200)[None].repeat(5, 0)[:, :100]) < 1


def test_ann_recall_by_hand():
    assert ann_recall([[1, 2, 3], [4, 5, 6]], [[1, 2, 9], [4, 5, 6]]) == pytest.approx(5 / 6)
    assert ann_recall(np.array([[1, -1, -1]]), np.array([[1, 2, 3]])) == pytest.approx(1 / 3)
    assert ann_recall(torch.tensor([[3, 2, 1]]), torch.tensor([[1, 2, 3]])) == 1.0
    assert ann_recall([["a", None]], [["b", "a"]]) == 0.5
    with pytest.raises(ConfigError, match="approx_ids"):
        ann_recall([[1]], [[1], [2]])


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_save_load_round_trip(tmp_path, kind):
    items, users = randn(800, D, seed=10), randn(6, 2, D, seed=11)
    tokens = [f"i{k}" for k in range(800)]
    index = ItemIndex.build(items, tokens, kind=kind, score="cosine", scale=10.0, nprobe=3, ef_search=20)
    index.save(tmp_path / "idx")
    assert sorted(os.listdir(tmp_path)) == ["idx"]
    assert sorted(os.listdir(tmp_path / "idx")) == ["index.faiss", "meta.json"]
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text())
    got = (meta["kind"], meta["score"], meta["scale"], meta["n_items"], meta["dim"])
    assert got == (kind, "cosine", 10.0, 800, D)
    assert meta["item_ids"] == tokens and meta["faiss_version"] == faiss.__version__
    loaded = ItemIndex.load(tmp_path / "idx", device="cpu")
    a, b = index.search(users, 25), loaded.search(users, 25)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.rows, b.rows)
    assert a.ids.tolist() == b.ids.tolist()
    if kind == "ivf":
        assert faiss.extract_index_ivf(loaded._cpu_index).nprobe == 3
    if kind == "hnsw":
        assert loaded._cpu_index.hnsw.efSearch == 20
    ItemIndex.build(items[:100], kind=kind).save(tmp_path / "idx")  # replaces the old one
    assert ItemIndex.load(tmp_path / "idx").n_items == 100 and sorted(os.listdir(tmp_path)) == ["idx"]


def test_load_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ItemIndex.load(tmp_path / "nowhere")
    ItemIndex.build(randn(50, D)).save(tmp_path / "idx")
    (tmp_path / "idx" / "index.faiss").unlink()
    with pytest.raises(FileNotFoundError, match="index.faiss"):
        ItemIndex.load(tmp_path / "idx")
    ItemIndex.build(randn(50, D)).save(tmp_path / "bad")
    (tmp_path / "bad" / "index.faiss").write_bytes(b"not an index")
    with pytest.raises(ValueError, match="bad"):
        ItemIndex.load(tmp_path / "bad")
    (tmp_path / "bad" / "meta.json").write_text("{")
    with pytest.raises(ValueError, match="bad"):
        ItemIndex.load(tmp_path / "bad")


def test_failed_save_leaves_the_old_index(tmp_path, monkeypatch):
    ItemIndex.build(randn(50, D)).save(tmp_path / "idx")
    new = ItemIndex.build(randn(70, D))

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(faiss, "write_index", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        new.save(tmp_path / "idx")
    assert sorted(os.listdir(tmp_path)) == ["idx"] and ItemIndex.load(tmp_path / "idx").n_items == 50
    with pytest.raises(RuntimeError):
        new.save(tmp_path / "fresh")
    assert sorted(os.listdir(tmp_path)) == ["idx"]
    monkeypatch.undo()
    # the rename of the new directory fails: the old one is put back
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise OSError("rename failed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="rename failed"):
        new.save(tmp_path / "idx")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["idx"] and ItemIndex.load(tmp_path / "idx").n_items == 50
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="path="):
        new.save(tmp_path / "other")


@pytest.mark.skipif(FAISS_SEES_GPU, reason="checks a faiss that has no GPU; this one has one "
                    "(test_gpu_index_serves_like_the_cpu_index checks it)")
def test_devices_without_a_gpu(monkeypatch):
    assert faiss_gpus() == 0
    items = randn(3000, 4)
    assert not ItemIndex.build(items, device="auto").on_gpu
    with pytest.raises(ConfigError, match=r"device='gpu'.*device='cpu' or 'auto'"):
        ItemIndex.build(items, device="gpu")
    with pytest.raises(ConfigError, match=r"device='tpu'.*auto, cpu, gpu"):
        ItemIndex.build(items, device="tpu")
    index = ItemIndex.build(items, device="cpu")
    assert index.search(items[:2], 2500).rows.shape == (2, 2500)  # no cap on the CPU
    monkeypatch.setattr(index, "_on_gpu", True)
    with pytest.raises(ConfigError, match=r"n=2049.*2048"):
        index.search(items[:2], 2049)
    assert index.search(items[:2], 2048).rows.shape == (2, 2048)


def _same_top_n(got: SearchResult, want: SearchResult) -> None:
    """The same top N up to the order of near-equal scores: the scores, and (almost) the items."""
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-4, atol=1e-4)
    assert ann_recall(got.rows, want.rows) >= 0.99


@needs_faiss_gpu
@pytest.mark.parametrize("kind,options", [("flat", {}), ("ivf", {"nprobe": 8})])
@pytest.mark.parametrize("name,scale", SCORES)
def test_gpu_index_serves_like_the_cpu_index(tmp_path, kind, options, name, scale):
    """A GPU index (device 'gpu', and 'auto' where faiss has a GPU) finds the CPU index's top N,
    for one or several interests; it refuses more than faiss's GPU k; saved from the GPU it
    loads on either device with its settings."""
    items, users = clustered(5000, 100, seed=7)
    cpu = ItemIndex.build(items, kind=kind, score=name, scale=scale, device="cpu", **options)
    gpu = ItemIndex.build(items, kind=kind, score=name, scale=scale, device="gpu", **options)
    auto = ItemIndex.build(items, kind=kind, score=name, scale=scale, **options)
    assert (cpu.on_gpu, gpu.on_gpu, auto.on_gpu) == (False, True, True)
    for queries in (users, users.view(50, 2, D)):
        _same_top_n(gpu.search(queries, 50), cpu.search(queries, 50))
    _same_top_n(auto.search(users, 50), cpu.search(users, 50))
    with pytest.raises(ConfigError, match=r"n=2049.*2048"):
        gpu.search(users[:2], 2049)
    assert gpu.search(users[:2], 2048).rows.shape == (2, 2048)
    gpu.save(tmp_path / "idx")
    for device in ("cpu", "gpu"):
        loaded = ItemIndex.load(tmp_path / "idx", device=device)
        assert loaded.on_gpu == (device == "gpu") and loaded.n_items == 5000
        _same_top_n(loaded.search(users, 50), cpu.search(users, 50))
    if kind == "ivf":
        assert faiss.extract_index_ivf(ItemIndex.load(tmp_path / "idx", device="cpu")._cpu_index).nprobe == 8


def test_faiss_without_gpu_functions(monkeypatch):
    """A faiss built without GPU functions is asked at each call (no reload: a reloaded module
    would leave the importers of ItemIndex with another class)."""
    monkeypatch.delattr(faiss, "get_num_gpus", raising=False)
    assert faiss_gpus() == 0
    assert not ItemIndex.build(randn(20, D)).on_gpu
    monkeypatch.undo()

    def broken():
        raise RuntimeError("CUDA driver too old")

    monkeypatch.setattr(faiss, "get_num_gpus", broken, raising=False)
    assert faiss_gpus() == 0


@pytest.mark.parametrize("key,value,call", [
    ("kind", "annoy", lambda v: ItemIndex.build(randn(30, D), kind=v)),
    ("score", "l2", lambda v: ItemIndex.build(randn(30, D), score=v)),
    ("scale", -1.0, lambda v: ItemIndex.build(randn(30, D), scale=v)),
    ("nlist", 31, lambda v: ItemIndex.build(randn(30, D), kind="ivf", nlist=v)),
    ("nprobe", 0, lambda v: ItemIndex.build(randn(30, D), kind="ivf", nprobe=v)),
    ("ef_search", 0, lambda v: ItemIndex.build(randn(30, D), kind="hnsw", ef_search=v)),
    ("item_ids", "shape (29,)", lambda v: ItemIndex.build(randn(30, D), list(range(29)))),
    ("item_ids", "a", lambda v: ItemIndex.build(randn(3, D), ["a", "b", "a"])),
    ("item_vectors", (30,), lambda v: ItemIndex.build(randn(30))),
    ("n", 0, lambda v: ItemIndex.build(randn(30, D)).search(randn(2, D), v)),
    ("n", 31, lambda v: ItemIndex.build(randn(30, D)).search(randn(2, D), v)),
    ("n", 2.5, lambda v: ItemIndex.build(randn(30, D)).search(randn(2, D), v)),
    ("queries", (2, 8), lambda v: ItemIndex.build(randn(30, D)).search(randn(2, 8), 3)),
])
def test_bad_inputs_are_config_errors(key, value, call):
    with pytest.raises(ConfigError) as err:
        call(value)
    assert err.value.key == key and err.value.value == value
    assert f"{key}={value!r}" in str(err.value)


def test_saving_where_nothing_can_be_written_is_named():
    """Before: a raw FileNotFoundError from mkdtemp."""
    index = ItemIndex.build(randn(10, D))
    with pytest.raises(ConfigError, match="path='/proc/x/index' is not valid; a folder that can be written"):
        index.save("/proc/x/index")


def test_item_vectors_that_are_not_finite_are_refused():
    """A NaN vector was indexed: that item is never found, and each top N comes back with a -1."""
    vectors = randn(10, D)
    vectors[3, 0] = float("nan")
    with pytest.raises(ConfigError, match="item_vectors='1 of 10 rows not finite' is not valid; finite numbers"):
        ItemIndex.build(vectors)
