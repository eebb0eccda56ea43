"""Import ComiRec's preprocessed data: the three split files, the optional map and item-cate files.

The format, validation and output files are described in :mod:`recbole_croloss.data.importer`.
"""
from __future__ import annotations

import os
import time

import numpy as np

from ..errors import ConfigError
from ..io import AtomicOutputs
from . import import_parsing as parsing
from .import_parsing import (INTER_HEADER, IdTable, MalformedInputError, Report, check_on_error, check_out,
                             note_replaced, previous_outputs, scan_inter, scan_pairs)

SPLITS = ("train", "valid", "test")  # ComiRec's split files; codes 1, 2, 3 in the user map
OPTIONAL_FILES = ("user_map", "item_map", "item_cate")
USER_HEADER = "user_id:token\tcomirec_split:token\n"
ITEM_HEADER = "item_id:token\tcate_id:token\n"
#: Users formatted per write of NAME.user.
USER_BLOCK = 1 << 18


def find_prefix(src: str) -> str:
    """The one PREFIX for which ``PREFIX_train.txt``, ``_valid.txt`` and ``_test.txt`` are in src."""
    if not os.path.isdir(src):
        raise FileNotFoundError(f"--src {src!r} is not a folder (ComiRec's data/book_data/ or data/taobao_data/)")
    names = set(os.listdir(src))
    candidates = sorted(n[: -len("_train.txt")] for n in names if n.endswith("_train.txt"))
    complete = [p for p in candidates if f"{p}_valid.txt" in names and f"{p}_test.txt" in names]
    if len(complete) == 1:
        return complete[0]
    if not complete:
        raise ConfigError("prefix", None, f"no PREFIX_train.txt, PREFIX_valid.txt and PREFIX_test.txt "
                          f"found together in {src}"
                          + (f" (incomplete: {', '.join(candidates)})" if candidates else ""))
    raise ConfigError("prefix", None, f"several ComiRec datasets in {src}; pass --prefix, choose one of: "
                      + ", ".join(complete))


def _comirec_files(src: str, prefix: str) -> tuple[dict[str, str], dict[str, str]]:
    """({split: path} of the three required files, {kind: path} of the optional ones present)."""
    files = {split: os.path.join(src, f"{prefix}_{split}.txt") for split in SPLITS}
    for split, path in files.items():
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ComiRec {split} file not found: {path}")
    optional = {kind: os.path.join(src, f"{prefix}_{kind}.txt") for kind in OPTIONAL_FILES}
    return files, {k: p for k, p in optional.items() if os.path.isfile(p)}


class _MapLoader:
    """A map file's mapped ids (-> first line number), each mapped id accepted at most once."""

    def __init__(self):
        self.table = IdTable()
        self.pending_ids: list[int] = []
        self.pending_lines: list[int] = []
        self.seen_in_block: dict[int, int] = {}

    def flush(self) -> None:
        if self.pending_ids:
            self.table.put_new(np.array(self.pending_ids, np.int64), np.array(self.pending_lines, np.int64))
            self.pending_ids.clear()
            self.pending_lines.clear()
            self.seen_in_block.clear()

    def on_row(self, key: str, value: int, lineno: int) -> str | None:
        previous = self.seen_in_block.get(value) or int(self.table.get(np.array([value], np.int64))[0])
        if previous:
            return f"mapped id {value} already mapped at line {previous}"
        self.seen_in_block[value] = lineno
        self.pending_ids.append(value)
        self.pending_lines.append(lineno)
        if len(self.pending_ids) >= parsing.BLOCK_LINES:
            self.flush()
        return None


def _load_maps(optional: dict[str, str], report: Report) -> tuple[dict, dict[str, IdTable]]:
    """({kind: {"path", "rows"}} for the summary, {kind: table of mapped ids}) of the map files."""
    maps, map_tables = {}, {}
    for kind in ("user_map", "item_map"):
        if kind in optional:
            loader = _MapLoader()
            rows = scan_pairs(optional[kind], os.path.basename(optional[kind]), report,
                              "original_id", "mapped_id", True, loader.on_row)
            loader.flush()
            map_tables[kind] = loader.table
            maps[kind] = {"path": os.path.abspath(optional[kind]), "rows": rows}
    return maps, map_tables


class _SplitWriter:
    """Takes the blocks of the split file being read (:attr:`code`): records each user's split
    and first line and each item, rejects a user seen in another split, and writes the rows
    unless a malformed line has already failed the import."""

    def __init__(self, inter, labels: dict[int, str], report: Report, on_error: str):
        self.users, self.items = IdTable(), IdTable()
        self.inter, self.labels, self.report, self.on_error = inter, labels, report, on_error
        self.code = 0

    def on_block(self, u: np.ndarray, i: np.ndarray, lines: np.ndarray, text: str) -> None:
        known = self.users.get(u)
        clash = np.flatnonzero((known != 0) & ((known & 3) != self.code))
        if len(clash):
            k = clash[0]
            other = int(known[k])
            raise MalformedInputError(
                f"user {int(u[k])} is in two ComiRec split files: {self.labels[other & 3]} (line "
                f"{other >> 2}) and {self.labels[self.code]} (line {int(lines[k])}); ComiRec splits "
                f"users, so each user must be in exactly one of {', '.join(self.labels.values())}")
        self.users.put_new(u, (lines << 2) | self.code)
        self.items.put_new(i, np.ones(len(i), np.int64))
        if self.report.total == 0 or self.on_error == "skip":
            parsing.write_chunk(self.inter, text)


def _import_splits(files: dict[str, str], outputs: AtomicOutputs, report: Report,
                   on_error: str) -> tuple[IdTable, IdTable, dict]:
    """Read the three split files into ``NAME.inter``: (users, items, {split: source entry})."""
    inter = outputs.open("inter", INTER_HEADER)
    labels = {code: os.path.basename(files[split]) for code, split in enumerate(SPLITS, 1)}
    writer = _SplitWriter(inter, labels, report, on_error)
    source = {}
    for code, split in enumerate(SPLITS, 1):
        path = files[split]
        writer.code = code
        rows = scan_inter(path, labels[code], ",", 3, 0, 1, 2, 1, report, writer.on_block)
        source[split] = {"path": os.path.abspath(path), "bytes": os.path.getsize(path), "rows": rows}
    return writer.users, writer.items, source


class _CateWriter:
    """Takes the rows of the item-cate file: one category per item, written in blocks unless a
    malformed line has already failed the import."""

    def __init__(self, handle, report: Report, on_error: str):
        self.handle, self.report, self.on_error = handle, report, on_error
        self.items = IdTable()
        self.buffer: list[str] = []
        self.seen_in_block: dict[int, int] = {}

    def flush(self) -> None:
        if self.seen_in_block:
            keys = np.fromiter(self.seen_in_block.keys(), np.int64, len(self.seen_in_block))
            self.items.put_new(keys, np.fromiter(self.seen_in_block.values(), np.int64, len(self.seen_in_block)))
            self.seen_in_block.clear()
        if self.buffer and (self.report.total == 0 or self.on_error == "skip"):
            parsing.write_chunk(self.handle, "".join(self.buffer))
        self.buffer.clear()

    def on_row(self, key: str, value: int, lineno: int) -> str | None:
        item = int(key)
        previous = self.seen_in_block.get(item) or int(self.items.get(np.array([item], np.int64))[0])
        if previous:
            return f"item {item} already has a category at line {previous}"
        self.seen_in_block[item] = lineno
        self.buffer.append(f"{item}\t{value}\n")
        if len(self.buffer) >= parsing.BLOCK_LINES:
            self.flush()
        return None


def _import_item_cate(cate_path: str, outputs: AtomicOutputs, report: Report, on_error: str,
                      items: IdTable) -> tuple[int, dict, int]:
    """Read the item-cate file into ``NAME.item``: (rows, source entry, items without category)."""
    writer = _CateWriter(outputs.open("item", ITEM_HEADER), report, on_error)
    item_rows = scan_pairs(cate_path, os.path.basename(cate_path), report, "item_id", "cate_id", False,
                           writer.on_row)
    writer.flush()
    source_entry = {"path": os.path.abspath(cate_path), "bytes": os.path.getsize(cate_path), "rows": item_rows}
    cate_ids, _ = writer.items.items()
    item_ids, _ = items.items()
    return item_rows, source_entry, int(len(item_ids) - np.isin(item_ids, cate_ids).sum())


def _unmapped_ids(map_tables: dict[str, IdTable], maps: dict, user_ids: np.ndarray,
                  item_ids: np.ndarray) -> dict[str, np.ndarray]:
    """{kind: ids of the interactions missing from that map file}; counts go into ``maps``."""
    unmapped = {}
    for kind, ids in (("user_map", user_ids), ("item_map", item_ids)):
        if kind in map_tables:
            missing = ids[map_tables[kind].get(ids) == 0]
            maps[kind]["ids_missing_from_map"] = int(len(missing))
            if len(missing):
                unmapped[kind] = missing
    return unmapped


def _write_users(outputs: AtomicOutputs, user_ids: np.ndarray, user_vals: np.ndarray) -> None:
    """``NAME.user``: each user's ComiRec split, by user id."""
    user_handle = outputs.open("user", USER_HEADER)
    split_names = np.array(["", *SPLITS])
    for lo in range(0, len(user_ids), USER_BLOCK):
        ids, vals = user_ids[lo: lo + USER_BLOCK], user_vals[lo: lo + USER_BLOCK]
        text = "".join(f"{u}\t{s}\n" for u, s in zip(ids.tolist(), split_names[vals & 3].tolist()))
        parsing.write_chunk(user_handle, text)


def _check_input(summary: dict, report: Report, unmapped: dict[str, np.ndarray],
                 optional: dict[str, str], on_error: str) -> None:
    """Raise on malformed lines or unmapped ids under ``fail``; with ``skip`` the unmapped ids
    become the summary's warnings."""
    if report.total and on_error == "fail":
        raise MalformedInputError(f"{report.text()}\non_error=fail: nothing written "
                                  f"(use --on-error skip to leave these lines out)", summary)
    if unmapped:
        detail = "; ".join(f"{len(v)} id(s) of the interactions are not in {os.path.basename(optional[k])} "
                           f"(first: {', '.join(str(x) for x in v[:5].tolist())})" for k, v in unmapped.items())
        if on_error == "fail":
            raise MalformedInputError(f"{detail}\non_error=fail: nothing written "
                                      f"(use --on-error skip to keep these rows and report them)", summary)
        summary["warnings"] = [detail]


def import_comirec(src: str, name: str, out: str, prefix: str | None = None, on_error: str = "fail") -> dict:
    """Import ComiRec's preprocessed data (see :mod:`recbole_croloss.data.importer`) into ``out/name/``.

    Returns the summary (also written as ``NAME.import.json``)::

        {"format": "comirec", "source": {...file: {"path", "bytes", "rows"}}, "rows": int,
         "users": int, "items": int, "users_per_split": {"train": n, "valid": n, "test": n},
         "malformed": {"total", "per_file", "first": [{"file", "line", "reason", "text"}]},
         "maps": {...}, "on_error": str, "outputs": [file names], "elapsed_seconds": float}

    Raises :class:`MalformedInputError` on malformed lines with ``on_error="fail"``, on a user in
    two split files, and on interaction ids missing from a map file (``fail``; ``skip`` keeps
    those rows and reports the count); nothing is written then.
    """
    check_on_error(on_error)
    check_out(out)
    start = time.perf_counter()
    prefix = prefix if prefix is not None else find_prefix(src)
    files, optional = _comirec_files(src, prefix)
    report = Report()
    with AtomicOutputs(out, name) as outputs:
        maps, map_tables = _load_maps(optional, report)
        users, items, source = _import_splits(files, outputs, report, on_error)
        item_rows = None
        if "item_cate" in optional:
            item_rows, source["item_cate"], without_category = _import_item_cate(
                optional["item_cate"], outputs, report, on_error, items)
            maps["items_without_category"] = without_category
        user_ids, user_vals = users.items()
        item_ids, _ = items.items()
        unmapped = _unmapped_ids(map_tables, maps, user_ids, item_ids)
        split_counts = np.bincount(user_vals & 3, minlength=4)
        _write_users(outputs, user_ids, user_vals)
        produced = ["inter", "user"] + (["item"] if item_rows is not None else [])
        summary = {
            "format": "comirec", "prefix": prefix, "source": source, "maps": maps,
            "rows": int(sum(s["rows"] for k, s in source.items() if k in SPLITS)),
            "users": int(len(user_ids)), "items": int(len(item_ids)),
            "users_per_split": {s: int(split_counts[c]) for c, s in enumerate(SPLITS, 1)},
            "item_rows": item_rows,
            "malformed": report.as_dict(), "on_error": on_error,
            "outputs": [f"{name}.{s}" for s in produced + ["import.json"]],
            "folder": outputs.folder,
        }
        _check_input(summary, report, unmapped, optional, on_error)
        summary["elapsed_seconds"] = round(time.perf_counter() - start, 3)
        note_replaced(summary, outputs)
        stale = tuple(s for s in ("item",) if s not in produced and f"{name}.{s}" in previous_outputs(outputs))
        outputs.finish("import.json", summary, remove_stale=stale)
        return summary
