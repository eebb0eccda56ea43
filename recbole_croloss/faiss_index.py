r"""Serving: the top N items of every user from a faiss index over a trained model's item vectors.

:class:`ItemIndex` stores the keys ``k_i = score.key(v_i)`` (L2-normalised for cosine) of items
``v [N, d]`` and answers queries ``q = score.query(u)`` (normalised for cosine, times the scale
tau), so a returned score is the model's own score

    ``S(u, v_i) = q . k_i = tau * u . v_i``  (dot)   or   ``tau * cos(u, v_i)``  (cosine),

exactly :meth:`recbole_croloss.scoring.Score.all`. Kinds: ``flat`` (exact inner product),
``ivf`` (inverted lists: ``nlist`` k-means cells, ``nprobe`` visited per query) and ``hnsw``
(graph with ``M`` links per node, ``efSearch`` candidates per query; with ``dot`` the inner
product is not a metric, and a graph with few links (M = 16) can leave items unreachable:
keep M >= 32, or use cosine). A multi-interest user
``u [K, d]`` is served as in ComiRec: each interest searches its own top N, the ``K x N`` hits are
pooled, an item keeps its best score, and the pool's top N is returned; for a flat index this is
the top N of ``max_k S(u_k, v)`` (:func:`recbole_croloss.scoring.search_and_merge`).
:func:`ann_recall` measures how much of the exact top N an approximate index finds.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import NamedTuple

import faiss
import numpy as np
import torch

from .errors import ConfigError, check_int
from .scoring import Score, get_score

#: faiss GPU indexes return at most this many neighbours per query.
GPU_MAX_K = 2048
FORMAT_VERSION = 1
DEVICES = ("auto", "cpu", "gpu")


def faiss_gpus() -> int:
    """Number of GPUs faiss can use: 0 with faiss-cpu (or any faiss without GPU support)."""
    get = getattr(faiss, "get_num_gpus", None)
    if get is None or not hasattr(faiss, "StandardGpuResources"):
        return 0
    try:
        return int(get())
    except Exception:  # a broken CUDA install must not stop CPU serving
        return 0


class SearchResult(NamedTuple):
    """Top ``n`` per query row, best first: ``scores`` float32 ``[U, n]``, internal ``rows``
    int64 ``[U, n]`` and the external ``ids [U, n]``. Where fewer than ``n`` items were found
    (IVF, HNSW) ``rows`` is -1, ``scores`` is ``-inf`` and ``ids`` is -1 (None for string ids)."""

    scores: np.ndarray
    rows: np.ndarray
    ids: np.ndarray


class ItemIndex:
    """faiss index over item vectors with the item-id mapping (row ``i`` is item ``ids[i]``)."""

    KINDS = ("flat", "ivf", "hnsw")

    def __init__(self, index, item_ids: np.ndarray, kind: str, score: Score, params: dict,
                 device: str = "auto"):
        self._cpu_index, self._ids, self._kind, self._score = index, item_ids, kind, score
        self._params = params  # nprobe (ivf) or ef_search (hnsw): applied to the index
        _apply_params(index, kind, params)
        self._index, self._gpu_res, self._on_gpu = index, None, False
        if _use_gpu(device, kind):
            self._gpu_res = faiss.StandardGpuResources()
            self._index = faiss.index_cpu_to_gpu(self._gpu_res, 0, index)  # copies nprobe
            self._on_gpu = True

    @classmethod
    def build(cls, item_vectors, item_ids=None, *, kind="flat", score="dot", scale=1.0,
              nlist=None, nprobe=16, hnsw_m=32, ef_search=128, device="auto",
              seed=0) -> "ItemIndex":
        """Index ``item_vectors [N, d]`` (torch or numpy) under ``item_ids`` (N ints or strings;
        default ``0 .. N-1``). ``ivf``: ``nlist`` cells (default ``4 sqrt(N)``), trained on at
        most ``256 nlist`` rows drawn with ``seed``. ``hnsw`` has no faiss GPU version: it stays
        on the CPU with ``device="auto"``."""
        if kind not in cls.KINDS:
            raise ConfigError("kind", kind, cls.KINDS)
        score = get_score(score, scale)
        vectors = torch.as_tensor(item_vectors).detach().cpu().float()
        if vectors.dim() != 2 or vectors.shape[0] < 1 or vectors.shape[1] < 1:
            raise ConfigError("item_vectors", tuple(vectors.shape),
                              "item_vectors must be [N, d], N, d >= 1")
        broken = int((~torch.isfinite(vectors)).any(dim=1).sum())
        if broken:  # faiss scores them NaN: such an item is never found (a top N of all comes back -1)
            raise ConfigError("item_vectors", f"{broken} of {vectors.shape[0]} rows not finite",
                              "finite numbers (a model whose training diverged has no vectors to serve)")
        keys = np.ascontiguousarray(score.key(vectors).numpy(), dtype=np.float32)
        N, d = keys.shape
        ids = _item_ids(item_ids, N)
        _check_device(device, kind)
        if kind == "flat":
            index, params = faiss.IndexFlatIP(d), {}
        elif kind == "ivf":
            nlist = min(max(round(4 * math.sqrt(N)), 1), N) if nlist is None else nlist
            if check_int("nlist", nlist, 1) > N:
                raise ConfigError("nlist", nlist, f"nlist must be between 1 and the number of items {N}")
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = seed
            sample = keys
            if N > 256 * nlist:
                rows = np.random.default_rng(seed).choice(N, 256 * nlist, replace=False)
                sample = keys[np.sort(rows)]
            index.train(sample)
            params = {"nprobe": check_int("nprobe", nprobe, 1)}
        else:
            index = faiss.IndexHNSWFlat(d, check_int("hnsw_m", hnsw_m, 2), faiss.METRIC_INNER_PRODUCT)
            params = {"ef_search": check_int("ef_search", ef_search, 1)}
        index.add(keys)
        return cls(index, ids, kind, score, params, device)

    @property
    def on_gpu(self) -> bool:
        return self._on_gpu

    @property
    def n_items(self) -> int:
        return int(self._cpu_index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._cpu_index.d)

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def score(self) -> Score:
        return self._score

    @property
    def item_ids(self) -> np.ndarray:
        return self._ids

    def search(self, queries, n: int) -> SearchResult:
        """Top ``n`` items of every user: ``queries [U, d]`` or ``[U, K, d]`` (K interests, merged
        as in ComiRec), torch or numpy -> :class:`SearchResult` of ``[U, n]`` arrays."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= self.n_items:
            raise ConfigError("n", n, f"n must be an integer between 1 and the number of items "
                                      f"{self.n_items}")
        n = int(n)
        if self.on_gpu and n > GPU_MAX_K:
            raise ConfigError("n", n, f"faiss on GPU returns at most k={GPU_MAX_K} neighbours; "
                                      "use n <= 2048 or device='cpu'")
        user = torch.as_tensor(queries).detach().cpu().float()
        if user.dim() not in (2, 3) or user.shape[-1] != self.dim:
            raise ConfigError("queries", tuple(user.shape),
                              f"queries must be [U, {self.dim}] or [U, K, {self.dim}]")
        q = np.ascontiguousarray(self._score.query(user).numpy(), dtype=np.float32)
        U = q.shape[0]
        scores, rows = self._index.search(q.reshape(-1, self.dim), n)
        if user.dim() == 3:
            scores, rows = merge_interests(scores.reshape(U, -1), rows.reshape(U, -1), n)
        rows = rows.astype(np.int64)
        scores = np.where(rows >= 0, scores, -np.inf).astype(np.float32)
        ids = self._ids[np.maximum(rows, 0)]
        ids[rows < 0] = -1 if ids.dtype != object else None
        return SearchResult(scores, rows, ids)

    def save(self, path) -> None:
        """Write ``path/index.faiss`` and ``path/meta.json`` atomically: a temporary directory
        next to ``path`` is renamed into place (an older index at ``path`` is replaced only once
        the new one is complete)."""
        path = Path(path).absolute()
        replaceable = path.is_dir() and (not any(path.iterdir()) or (path / "meta.json").exists())
        if path.exists() and not replaceable:
            raise ConfigError("path", str(path), "path exists and is not an (empty or ItemIndex) directory")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        except OSError as err:
            raise ConfigError("path", str(path), f"a folder that can be written ({err.strerror})") from None
        meta = {"format_version": FORMAT_VERSION, "faiss_version": faiss.__version__, "kind": self._kind,
                "score": self._score.name, "scale": self._score.scale, "dim": self.dim,
                "n_items": self.n_items, **self._params, "item_ids": self._ids.tolist()}
        backup = path.parent / f".{path.name}.old-{uuid.uuid4().hex}"
        try:
            faiss.write_index(self._cpu(), str(tmp / "index.faiss"))
            (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            if path.exists():
                os.replace(path, backup)
            try:
                os.replace(tmp, path)
            except BaseException:
                if backup.exists():
                    os.replace(backup, path)
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(backup, ignore_errors=True)

    @classmethod
    def load(cls, path, device="auto") -> "ItemIndex":
        """The index saved at ``path``, on ``device``; FileNotFoundError or ValueError naming
        ``path`` when it is missing or unreadable."""
        path = Path(path)
        for name in ("meta.json", "index.faiss"):
            if not (path / name).is_file():
                raise FileNotFoundError(f"no ItemIndex at {str(path)!r}: {name} is missing")
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format_version {meta.get('format_version')!r} != {FORMAT_VERSION}")
            index = faiss.read_index(str(path / "index.faiss"))
            if (index.ntotal, index.d) != (meta["n_items"], meta["dim"]):
                raise ValueError(f"index has {index.ntotal} x {index.d} vectors, meta.json says "
                                 f"{meta['n_items']} x {meta['dim']}")
            kind, score = meta["kind"], get_score(meta["score"], meta["scale"])
            ids = _item_ids(meta["item_ids"], index.ntotal)
            params = {k: meta[k] for k in ("nprobe", "ef_search") if k in meta}
        except (OSError, RuntimeError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"cannot load the ItemIndex at {str(path)!r}: {err}") from err
        _check_device(device, kind)
        return cls(index, ids, kind, score, params, device)

    def _cpu(self):
        return faiss.index_gpu_to_cpu(self._index) if self._on_gpu else self._cpu_index

    def __repr__(self) -> str:
        where = "gpu" if self.on_gpu else "cpu"
        return (f"ItemIndex(kind={self._kind!r}, {self._score}, n_items={self.n_items}, "
                f"dim={self.dim}, {where})")


def merge_interests(scores: np.ndarray, rows: np.ndarray, n: int):
    """ComiRec's merge of the pooled hits ``[U, K n]`` of K interests: each row keeps its best
    score, -1 (not found) hits go last, and the top ``n`` is returned: ``[U, n]`` twice."""
    scores = np.where(rows >= 0, scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")                # best first
    scores, rows = np.take_along_axis(scores, order, 1), np.take_along_axis(rows, order, 1)
    by_row = np.argsort(rows, axis=1, kind="stable")                  # equal rows: best first
    sorted_rows = np.take_along_axis(rows, by_row, 1)
    dup_sorted = np.zeros(rows.shape, dtype=bool)
    dup_sorted[:, 1:] = sorted_rows[:, 1:] == sorted_rows[:, :-1]
    dup = np.empty_like(dup_sorted)
    np.put_along_axis(dup, by_row, dup_sorted, 1)
    dup |= rows < 0
    scores[dup], rows[dup] = -np.inf, -1
    keep = np.argsort(-scores, axis=1, kind="stable")[:, :n]          # duplicates go last
    return np.take_along_axis(scores, keep, 1), np.take_along_axis(rows, keep, 1)


def ann_recall(approx_ids, exact_ids) -> float:
    """``mean_u |A_u ∩ E_u| / |E_u|`` over rows of ids (torch, numpy or lists); ids < 0 (and
    None) are "not found" and ignored; rows whose exact list is empty are skipped."""
    approx = approx_ids.tolist() if hasattr(approx_ids, "tolist") else list(approx_ids)
    exact = exact_ids.tolist() if hasattr(exact_ids, "tolist") else list(exact_ids)
    if len(approx) != len(exact):
        raise ConfigError("approx_ids", f"{len(approx)} rows",
                          f"need one row per exact_ids row ({len(exact)})")
    recalls = [len(_found(a) & e) / len(e) for a, e in zip(approx, map(_found, exact)) if e]
    if not recalls:
        raise ConfigError("exact_ids", "no ids", "need at least one row with an id")
    return float(np.mean(recalls))


def _found(row) -> set:
    return {x for x in row if x is not None and not (isinstance(x, (int, float)) and x < 0)}


def _item_ids(item_ids, n: int) -> np.ndarray:
    """``item_ids`` as int64, or as an object array of str; default ``0 .. n-1``."""
    if item_ids is None:
        return np.arange(n, dtype=np.int64)
    ids = np.asarray(item_ids.tolist() if hasattr(item_ids, "tolist") else list(item_ids))
    if ids.shape != (n,):
        raise ConfigError("item_ids", f"shape {ids.shape}", f"need one id per item vector: shape ({n},)")
    if ids.dtype.kind in "iu":
        ids = ids.astype(np.int64)
    elif ids.dtype.kind == "U":
        ids = np.array([str(x) for x in ids], dtype=object)
    else:
        raise ConfigError("item_ids", f"dtype {ids.dtype}",
                          "item ids must all be integers or all strings")
    uniq, counts = np.unique(ids if ids.dtype != object else ids.astype(str), return_counts=True)
    if (counts > 1).any():
        raise ConfigError("item_ids", uniq[counts > 1][0].item(), "item ids must be unique")
    return ids


def _check_device(device: str, kind: str) -> None:
    if device not in DEVICES:
        raise ConfigError("device", device, DEVICES)
    if device == "gpu" and faiss_gpus() == 0:
        raise ConfigError("device", "gpu", "faiss has no GPU here (faiss.get_num_gpus() == 0); "
                                           "use device='cpu' or 'auto'")
    if device == "gpu" and kind == "hnsw":
        raise ConfigError("device", "gpu", "faiss has no GPU HNSW; use kind='flat' or 'ivf', or device='cpu'")


def _use_gpu(device: str, kind: str) -> bool:
    return device != "cpu" and kind != "hnsw" and faiss_gpus() > 0


def _apply_params(index, kind: str, params: dict) -> None:
    if kind == "ivf":
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = min(params["nprobe"], ivf.nlist)
    elif kind == "hnsw":
        index.hnsw.efSearch = params["ef_search"]
