r"""RecBole's ``.inter`` loading without a Python string per token.

RecBole 1.2.1 reads an atomic file with ``pd.read_csv(..., dtype=str, engine="python")``: every
token becomes a Python string (about 60 B each, read by the pure-Python parser), then
``_remap`` factorizes the concatenated strings: most of a preparation's time and memory at
Amazon Books' size (8.9M interactions; docs/results/bench-scale.md).

:class:`LeanInterLoader` (mixed into the plugin's dataset classes) reads a ``.inter`` file whose
loaded columns are all ``token`` or ``float`` with pyarrow's multithreaded C++ CSV reader:
tokens are dictionary-encoded while reading, so a token column is a ``pd.Categorical`` (int32
codes per interaction, one string per distinct token) and memory grows as interactions x 4 B.
RecBole's filters (``rm_dup_inter``, ``val_interval``, ``user_inter_num_interval``, ...) run
unchanged on those columns; ``_remap`` then gives every token its id from the codes, in the
order RecBole's ``pd.factorize`` over the strings gives (first appearance, over the same
concatenation of ``inter_feat``, ``user_feat`` and ``item_feat``), with the same
``field2id_token`` (``'[PAD]'`` first) and ``field2token_id``.

Anything else goes through RecBole's own code: ``.user``/``.item``/additional files, a file
with ``token_seq``/``float_seq`` columns, ``benchmark_filename`` splits, a separator that is not
one character, and a file pyarrow cannot parse (logged). Values are read as pandas reads them:
the same null markers (pandas' ``STR_NA_VALUES``), quotes, and correctly rounded floats.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import csv
from pandas._libs.parsers import STR_NA_VALUES  # the strings read_csv reads as missing
from recbole.data.dataset import SequentialDataset
from recbole.utils import FeatureSource, FeatureType

from .line_order import LineOrderDataset, LineOrderMaterialisedDataset
from .windows import WindowedSequentialDataset

#: Column types the lean reader reads; a file with any other loaded type goes to RecBole's.
LEAN_TYPES = (FeatureType.TOKEN, FeatureType.FLOAT)
#: Bytes pyarrow parses per block (one block per thread at a time).
BLOCK_BYTES = 1 << 24


def header_columns(filepath: str, separator: str, encoding: str, load_col, unload_col):
    """``[(name in the file, field, type)]`` of the columns RecBole would load, read from the
    header as ``Dataset._load_feat`` reads it; ``None`` where a type is not RecBole's."""
    with open(filepath, "r", encoding=encoding) as handle:
        head = handle.readline()[:-1]
    columns = []
    for name in head.split(separator):
        field, _, ftype = name.partition(":")
        try:
            ftype = FeatureType(ftype)
        except ValueError:
            return None
        if (load_col is None or field in load_col) and (unload_col is None or field not in unload_col):
            columns.append((name, field, ftype))
    return columns


def read_columns(filepath: str, columns, separator: str, encoding: str) -> pd.DataFrame:
    """The ``token`` and ``float`` ``columns`` of an atomic file as a DataFrame: tokens as
    ``pd.Categorical`` (codes ``[n]``, -1 where missing), floats as float64 (NaN where missing).
    Raises ``pyarrow.ArrowInvalid`` on a file the reader cannot parse."""
    dictionary = pa.dictionary(pa.int32(), pa.string())
    types = {name: dictionary if ftype == FeatureType.TOKEN else pa.float64() for name, _, ftype in columns}
    table = csv.read_csv(
        filepath,
        read_options=csv.ReadOptions(encoding=encoding or "utf-8", block_size=BLOCK_BYTES),  # read_csv's
        parse_options=csv.ParseOptions(delimiter=separator),
        convert_options=csv.ConvertOptions(column_types=types, include_columns=list(types),
                                           null_values=sorted(STR_NA_VALUES), strings_can_be_null=True))
    frame = {}
    for name, field, ftype in columns:  # one column at a time: its arrow copy is freed after it
        column = table.column(name)
        table = table.drop_columns([name])
        frame[field] = _categorical(column) if ftype == FeatureType.TOKEN else column.to_numpy()
        del column
    del table
    pa.default_memory_pool().release_unused()  # else its allocator keeps the table's pages
    return pd.DataFrame(frame)


def _categorical(column) -> pd.Categorical:
    """A dictionary-encoded arrow column (one dictionary per block) as one ``pd.Categorical``."""
    column = column.unify_dictionaries()
    codes = np.empty(len(column), dtype=np.int32)
    at = 0
    for chunk in column.chunks:
        codes[at:at + len(chunk)] = chunk.indices.fill_null(-1).to_numpy()
        at += len(chunk)
    tokens = column.chunk(0).dictionary.to_pylist() if column.num_chunks else []
    return pd.Categorical.from_codes(codes, categories=pd.Index(tokens, dtype=object))


def _is_coded(column: pd.Series) -> bool:
    """Whether a column was read by :func:`read_columns` (codes, not strings)."""
    return isinstance(column.dtype, pd.CategoricalDtype)


def _counts(codes: np.ndarray, n: int, chunk: int = 1 << 22) -> np.ndarray:
    """``[n]`` occurrences of each code 0..n-1 in ``codes`` (-1 not counted), a chunk at a time
    (``np.bincount`` would first copy every code to int64)."""
    counts = np.zeros(n, dtype=np.int64)
    for start in range(0, len(codes), chunk):
        part = codes[start:start + chunk]
        counts += np.bincount(part[part >= 0], minlength=n)
    return counts


def factorize_pieces(pieces) -> tuple[list[np.ndarray], np.ndarray]:
    """RecBole's ``_remap`` on coded pieces: ``pieces [(codes [n_p], tokens [V_p])]`` (codes
    into the piece's own distinct tokens, -1 where missing) -> ``(ids per piece [n_p], id_token)``,
    what ``pd.factorize`` over the pieces' concatenated strings gives: ids 1.. in order of first
    appearance, 0 (``'[PAD]'``) where missing, and ``id_token = ['[PAD]', first, second, ...]``.
    """
    # Each distinct string once: a piece's codes -> codes into the pieces' joint vocabulary,
    # through a lookup whose last entry (-1) keeps a missing token missing.
    joint_of, vocabulary = pd.factorize(np.concatenate([np.asarray(t, dtype=object) for _, t in pieces]))
    joint_of = joint_of.astype(np.int32 if len(vocabulary) < 2 ** 31 else np.int64)
    joint, start = [], 0
    for codes, tokens in pieces:
        lookup = np.append(joint_of[start:start + len(tokens)], -1)
        joint.append(lookup[codes])
        start += len(tokens)
    joint = joint[0] if len(joint) == 1 else np.concatenate(joint)
    ids, first_seen = pd.factorize(joint)  # first appearance; -1 (missing) is one of them
    del joint
    ids += 1  # in place: ids [n] is the largest array here (8 B an interaction)
    missing = np.flatnonzero(first_seen < 0)
    if len(missing):  # its id goes to 0 ([PAD]), the later ones one down
        ids[ids == missing[0] + 1] = 0
        ids[ids > missing[0] + 1] -= 1
    id_token = np.array(["[PAD]"] + list(vocabulary[first_seen[first_seen >= 0]]))
    return np.split(ids, np.cumsum([len(codes) for codes, _ in pieces])[:-1]), id_token


class LeanInterLoader:
    """Mixed into a RecBole dataset class: its ``.inter`` loaded as the module says."""

    def _load_feat(self, filepath, source):
        columns = self._lean_columns(filepath, source)
        if columns is None:
            return super()._load_feat(filepath, source)
        try:
            frame = read_columns(filepath, columns, self.config["field_separator"], self.config["encoding"])
        except (pa.ArrowInvalid, UnicodeDecodeError) as error:
            self.logger.warning(f"{filepath}: the lean reader cannot parse it ({error}); "
                                "reading it with RecBole's (slower, in more memory)")
            return super()._load_feat(filepath, source)
        for _, field, ftype in columns:  # the properties RecBole's _load_feat sets
            self.field2source[field], self.field2type[field], self.field2seqlen[field] = source, ftype, 1
            if ftype == FeatureType.FLOAT:
                self.field2bucketnum[field] = 2
        return frame

    def _lean_columns(self, filepath, source):
        """The columns to read leanly, or ``None`` where RecBole's reader reads this file."""
        separator = self.config["field_separator"]
        if source != FeatureSource.INTERACTION or self.benchmark_filename_list is not None or len(separator) != 1:
            return None
        columns = header_columns(filepath, separator, self.config["encoding"],
                                 *self._get_load_and_unload_col(source))
        if not columns or any(ftype not in LEAN_TYPES for _, _, ftype in columns):
            return None
        return columns

    def _filter_by_inter_num(self):
        """RecBole's ``user_inter_num_interval`` / ``item_inter_num_interval`` filter (k-core:
        repeated until nothing is dropped), with counts from the codes instead of its
        ``Counter`` over every token: the same rows of ``inter_feat``, ``user_feat`` and
        ``item_feat`` stay."""
        fields = (self.uid_field, self.iid_field)
        if None in fields or not all(_is_coded(self.inter_feat[f]) for f in fields):
            return super()._filter_by_inter_num()
        intervals = [self._parse_intervals_str(self.config[key])
                     for key in ("user_inter_num_interval", "item_inter_num_interval")]
        if intervals == [None, None]:
            return
        while True:
            dropped = np.zeros(len(self.inter_feat), dtype=bool)
            for field, feat, interval in zip(fields, (self.user_feat, self.item_feat), intervals):
                codes = self.inter_feat[field].cat.codes.to_numpy()
                banned, feat_rows = self._inter_num_bans(codes, field, feat, interval)
                dropped |= banned[codes]
                if feat_rows is not None and feat_rows.any():
                    feat.drop(feat.index[feat_rows], inplace=True)
            if not dropped.any():
                return
            self.inter_feat.drop(self.inter_feat.index[dropped], inplace=True)

    def _inter_num_bans(self, codes, field, feat, interval):
        """``(banned [V + 1], feat_rows [len(feat)] or None)``: which of the column's tokens
        RecBole bans (entry ``V``, what code -1 indexes, is never banned), and which rows of
        ``feat`` it drops: a token with interactions whose count is outside ``interval``, or
        one in ``feat`` with fewer than the first interval's lower end (``_get_illegal_ids_by_inter_num``)."""
        tokens = self.inter_feat[field].cat.categories
        counts = _counts(codes, len(tokens))
        banned = np.zeros(len(tokens) + 1, dtype=bool)
        if interval is None:
            return banned, None
        banned[:-1] = (counts > 0) & ~self._within_intervals(counts, interval)
        if feat is None:
            return banned, None
        least = interval[0][1]
        feat_codes = pd.Categorical(feat[field], categories=tokens).codes
        in_feat = np.zeros(len(tokens), dtype=bool)
        in_feat[feat_codes[feat_codes >= 0]] = True
        banned[:-1] |= in_feat & (counts < least)
        feat_rows = np.where(feat_codes >= 0, banned[feat_codes], 0 < least)
        return banned, feat_rows

    def _filter_inter_by_user_or_item(self):
        if self.user_feat is None and self.item_feat is None:
            return  # RecBole's would drop no row, after copying every column (seconds per 10M rows)
        super()._filter_inter_by_user_or_item()

    def _remap(self, remap_list):
        if not any(_is_coded(feat[field]) for feat, field, _ in remap_list):
            return super()._remap(remap_list)
        pieces = []
        for feat, field, ftype in remap_list:
            values = feat[field]
            if _is_coded(values):
                pieces.append((values.cat.codes.to_numpy(), values.cat.categories))
            else:  # a .user/.item column: RecBole's strings (a token_seq flattened), coded here
                pieces.append(pd.factorize(super()._concat_remaped_tokens([(feat, field, ftype)])[0]))
        ids, id_token = factorize_pieces(pieces)
        # RecBole's keys are the numpy strings of id_token; Python's are equal, hash alike and
        # are made 3x faster (2.7M tokens at Taobao's size)
        token_id = dict(zip(id_token.tolist(), range(len(id_token))))
        for (feat, field, ftype), new_ids in zip(remap_list, ids):  # as RecBole's _remap stores them
            if field not in self.field2id_token:
                self.field2id_token[field], self.field2token_id[field] = id_token, token_id
            if ftype == FeatureType.TOKEN:
                feat[field] = new_ids
            else:
                feat[field] = np.split(new_ids, np.cumsum(feat[field].agg(len))[:-1])


class LeanWindowedDataset(LeanInterLoader, WindowedSequentialDataset):
    pass


class LeanSequentialDataset(LeanInterLoader, SequentialDataset):
    pass


class LeanLineOrderDataset(LeanInterLoader, LineOrderDataset):
    pass


class LeanLineOrderMaterialisedDataset(LeanInterLoader, LineOrderMaterialisedDataset):
    pass


#: Each of the plugin's sequential dataset classes -> the same class with the lean ``.inter``.
LEAN_CLASSES = {base: lean for lean in (LeanWindowedDataset, LeanSequentialDataset, LeanLineOrderDataset,
                                        LeanLineOrderMaterialisedDataset) for base in lean.__bases__[1:]}
