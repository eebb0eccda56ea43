r"""Recommend from a trained model: item tokens in, the top k item tokens and their scores out.

:class:`Recommender` serves the model of a checkpoint (:meth:`Recommender.load`, through
:func:`recbole_croloss.load`) to sequences of the dataset's raw item tokens, oldest first:

- each sequence keeps its newest ``MAX_ITEM_LIST_LENGTH`` items, laid out as RecBole's
  datasets lay out a history (left-aligned, zero after its end), so a test user's history gives
  the model exactly the input the evaluator gave it;
- the user vectors are ranked against every item by the score the model was trained and
  evaluated with: exactly, by the chunked top-N of the evaluator
  (:meth:`~recbole_croloss.evaluation.FullRankingEvaluator.topk`: ``S(u, v) = q_u . k_v``, a
  multi-interest user by ``max_k``, memory set by ``eval_memory_budget``), or from an exported
  faiss index (:class:`~recbole_croloss.retrieval.ItemIndex`, a multi-interest user searched
  per interest and merged, as ComiRec serves);
- the padding item is never recommended; with ``exclude_input`` neither is any item of the
  sequence (all of it, also the part older than the model's history length);
- a token the dataset does not know (or its padding token) is never mapped to an item: it
  stops the call (``unknown="error"``, :class:`UnknownTokenError`), or is left out and
  reported (``unknown="skip"``: in :attr:`Recommendation.unknown`, and one
  :class:`UnknownTokensWarning` listing them when the stream ends).

Sequences are read, encoded, scored and yielded ``batch_size`` at a time
(:meth:`Recommender.stream`): the memory of a call is that of one batch, however many
sequences come in.
"""
from __future__ import annotations

import itertools
import warnings
from typing import Iterable, Iterator, NamedTuple

import torch

from ..errors import BAD_INPUT, ConfigError, check_bool, check_int
from ..evaluation import Exclusions, FullRankingEvaluator, parse_bytes

#: ``unknown``: what a token the dataset does not know does to the call.
UNKNOWN_TOKENS = ("error", "skip")
#: Sequences encoded and scored per step.
DEFAULT_BATCH = 1024


class UnknownTokenError(ValueError):
    """A sequence holds tokens the model's dataset does not know (``unknown="error"``)."""

    exit_status = BAD_INPUT


class UnknownTokensWarning(UserWarning):
    """Tokens the model's dataset does not know were left out (``unknown="skip"``)."""


class Query(NamedTuple):
    """One sequence to recommend for: ``items``, the dataset's item tokens, oldest first;
    ``user``, its user token (read only by a model whose forward takes the user); ``line``, where
    it came from (the input file's line, or its position from 1 in the input)."""

    items: list[str]
    user: str | None = None
    line: int | None = None


class Recommendation(NamedTuple):
    """The top items of one query, best first: ``items`` (tokens) with their ``scores`` (the
    model's score S), and the query's tokens the dataset does not know (``unknown``, left out).
    Fewer than k items where the exclusions or an approximate index leave fewer; none when the
    query has no known item."""

    query: Query
    items: list[str]
    scores: list[float]
    unknown: tuple[str, ...] = ()


class Encoded(NamedTuple):
    query: Query
    ids: list[int]          # the known items, oldest first
    user: int               # the user's id (0 when the model reads no user)
    unknown: tuple[str, ...]


def as_query(value, position: int) -> Query:
    """A :class:`Query` from a query, or from a sequence of tokens (numbers are read as their
    text: RecBole's tokens are strings)."""
    if isinstance(value, Query):
        return value
    if isinstance(value, (str, bytes)):
        raise TypeError(f"sequence {position}: give a list of item tokens, not one string {value[:40]!r}")
    return Query([str(token) for token in value], None, position)


class Recommender:
    """The model of a trained run, serving sequences of item tokens (see the module docstring).

    Args:
        config, model, dataset: what :func:`recbole_croloss.load` returns (the adapter-wrapped
            model; its ``retrieval`` view ranks it).
        batch_size: sequences per step.
        memory_budget: working memory of the exact top-N (default: the run's ``eval_memory_budget``).
        index: an :class:`~recbole_croloss.retrieval.ItemIndex` exported from this model's run
            (``faiss_export``), to rank from; ``None``: the exact chunked top-N.
    """

    def __init__(self, config, model, dataset, batch_size: int = DEFAULT_BATCH, memory_budget=None,
                 index=None):
        retrieval = getattr(model, "retrieval", None)
        if retrieval is None:
            raise ConfigError("model", config["model"], "a model ranked by user and item vectors; this "
                              "one ranks by its own full_sort_predict, which the recommender does not serve")
        self.config, self.model, self.retrieval = config, model.eval(), retrieval
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.memory_budget = parse_bytes("memory_budget", memory_budget or config["eval_memory_budget"])
        self.max_length = int(config["MAX_ITEM_LIST_LENGTH"])
        self.item_ids = dict(dataset.field2token_id[dataset.iid_field])  # token -> id; 0 is padding
        self.item_tokens = dataset.field2id_token[dataset.iid_field]    # id -> token
        self.n_items = int(dataset.item_num)
        inner = model.model
        self.fields = retrieval.input_fields()
        other = [f for f in self.fields if f not in (inner.ITEM_SEQ, inner.ITEM_SEQ_LEN, inner.USER_ID)]
        if other:
            raise ConfigError("model", config["model"], f"a model whose user vectors read the history "
                              f"(and the user); this one also reads {other}")
        self.seq_field, self.len_field = inner.ITEM_SEQ, inner.ITEM_SEQ_LEN
        self.user_field = inner.USER_ID if inner.USER_ID in self.fields else None
        self.user_ids = dict(dataset.field2token_id[dataset.uid_field]) if self.user_field else None
        self.device = config["device"]
        with torch.no_grad():
            self.keys = retrieval.ranking_keys()
        self.index = index
        if index is not None:
            self._check_index(index)

    @classmethod
    def load(cls, checkpoint: str, config_dict: dict | None = None, **options) -> "Recommender":
        """The recommender of the run that wrote ``checkpoint`` (``config_dict`` as
        :func:`recbole_croloss.load` takes it; ``options``: ``batch_size``, ``memory_budget``,
        ``index``)."""
        from .reload import load

        config, model, dataset, *_ = load(checkpoint, config_dict)
        return cls(config, model, dataset, **options)

    def _check_index(self, index) -> None:
        """An index exported from another catalogue or score cannot serve this model."""
        score = self.retrieval.score
        expected = [str(t) for t in self.item_tokens[1:]]
        problems = [what for what, bad in (
            (f"{index.n_items} items (the model has {self.n_items - 1})", index.n_items != self.n_items - 1),
            (f"vectors of {index.dim} (the model's have {self.keys.shape[1]})", index.dim != self.keys.shape[1]),
            (f"score {index.score!r} (the model's is {score!r})",
             (index.score.name, index.score.scale) != (score.name, score.scale)))
            if bad]
        if not problems and [str(t) for t in index.item_ids] != expected:
            problems.append("other item tokens, or in another order, than the model's dataset")
        if problems:
            raise ConfigError("index", repr(index), "an index exported from this model's run "
                              "(faiss_export); this one has " + "; ".join(problems))

    def recommend(self, sequences: Iterable, k: int = 10, exclude_input: bool = False,
                  unknown: str = "error") -> list[Recommendation]:
        """:meth:`stream`, as a list."""
        return list(self.stream(sequences, k, exclude_input, unknown))

    def stream(self, sequences: Iterable, k: int = 10, exclude_input: bool = False,
               unknown: str = "error") -> Iterator[Recommendation]:
        """One :class:`Recommendation` per sequence (a :class:`Query`, or a list of item
        tokens), in order, ``batch_size`` sequences at a time: each batch is read from
        ``sequences`` only when the previous one has been yielded. The arguments are checked
        here, before the first sequence is read."""
        k = check_int("k", k, 1, self.n_items - 1)
        exclude_input = check_bool("exclude_input", exclude_input)
        if unknown not in UNKNOWN_TOKENS:
            raise ConfigError("unknown", unknown, UNKNOWN_TOKENS)
        ranker = None if self.index is not None else FullRankingEvaluator(["Recall"], [k], self.memory_budget)
        return self._stream(sequences, k, exclude_input, unknown == "skip", ranker)

    def _stream(self, sequences, k, exclude_input, skip, ranker) -> Iterator[Recommendation]:
        queries = (as_query(value, position) for position, value in enumerate(sequences, 1))
        skipped = SkippedTokens()
        while True:
            batch = [self._encode(query, skip) for query in itertools.islice(queries, self.batch_size)]
            if not batch:
                break
            for row in batch:
                skipped.add(row.query, row.unknown)
            yield from self._rank(batch, k, exclude_input, ranker)
        if skipped.sequences:
            warnings.warn(UnknownTokensWarning(skipped.text()), stacklevel=2)

    def _encode(self, query: Query, skip: bool) -> Encoded:
        """The query's known item ids; its unknown tokens (an error unless ``skip``). A query
        whose user a model reading the user does not know keeps no item: it gets no
        recommendation."""
        ids, unknown = [], []
        for token in query.items:
            item = self.item_ids.get(token, 0)  # the padding token's id is 0: unknown too
            if item:
                ids.append(item)
            else:
                unknown.append(token)
        user = 0
        if self.user_field is not None:
            if query.user is None:
                raise UnknownTokenError(f"{where(query)}: {self.config['model']} reads the user; give "
                                        "each sequence its user token (a leading column, then a tab)")
            user = self.user_ids.get(query.user, 0)
            if not user:
                unknown.append(query.user)
                ids = []
        if not skip and (unknown or not ids):
            raise UnknownTokenError(f"{where(query)}: " + (
                f"tokens the model's dataset does not know: {', '.join(map(repr, unknown[:20]))}"
                if unknown else "no item tokens") + "; unknown='skip' leaves them out")
        return Encoded(query, ids, user, tuple(unknown))

    @torch.no_grad()
    def _rank(self, batch: list[Encoded], k: int, exclude_input: bool, ranker) -> list[Recommendation]:
        """The recommendations of one batch; a row without a known item gets none."""
        rows = [row for row in batch if row.ids]
        top = iter(())
        if rows:
            user = self.retrieval.user_vectors(self._interaction(rows))
            excluded = [sorted(set(row.ids)) if exclude_input else [] for row in rows]
            if ranker is not None:
                query = self.retrieval.score.query(user)
                scores, ids = (t.cpu() for t in ranker.topk(query, self.keys, _exclusions(excluded, user.device)))
            else:
                scores, ids = self._search(user, excluded, k)
            keep = torch.isfinite(scores) & (ids > 0)  # excluded items score -inf; -1: not found
            top = iter([(i[m][:k], s[m][:k]) for i, s, m in zip(ids, scores, keep)])
        out = []
        for row in batch:
            ids, scores = next(top) if row.ids else (torch.zeros(0, dtype=torch.long), torch.zeros(0))
            out.append(Recommendation(row.query, [str(t) for t in self.item_tokens[ids.numpy()]],
                                      scores.tolist(), row.unknown))
        return out

    def _interaction(self, rows: list[Encoded]):
        """The batch as RecBole's evaluation gives it: ``[B, MAX_ITEM_LIST_LENGTH]`` histories
        of the newest items, left-aligned, zero after each end; their lengths; the users."""
        from recbole.data.interaction import Interaction

        newest = [row.ids[-self.max_length:] for row in rows]
        seq = torch.tensor([ids + [0] * (self.max_length - len(ids)) for ids in newest], dtype=torch.long)
        fields = {self.seq_field: seq, self.len_field: torch.tensor([len(ids) for ids in newest], dtype=torch.long)}
        if self.user_field is not None:
            fields[self.user_field] = torch.tensor([row.user for row in rows])
        return Interaction(fields).to(self.device)

    def _search(self, user: torch.Tensor, excluded: list[list[int]], k: int):
        """``(scores [B, n], ids [B, n])`` from the faiss index, best first, ``n`` = k plus the
        most items a row excludes (its excluded ones then score ``-inf``); each returned score
        is checked against the model's own, so an index of other vectors is refused."""
        n = min(k + max(map(len, excluded)), self.index.n_items)
        found = self.index.search(user, n)
        ids = torch.from_numpy(found.rows + 1)            # index row r is item r + 1; -1 -> 0
        scores = torch.from_numpy(found.scores).clone()
        real = ids > 0
        exact = self.retrieval.score.candidates(user, self.retrieval.item_vectors(ids.clamp(min=1).to(user.device))).cpu()
        if not torch.allclose(scores[real], exact[real], rtol=1e-3, atol=1e-3):
            raise ConfigError("index", repr(self.index), "an index exported from this model's run "
                              "(faiss_export): its vectors score otherwise than the model's items")
        for position, items in enumerate(excluded):
            if items:
                scores[position, torch.isin(ids[position], torch.tensor(items))] = -torch.inf
        order = scores.argsort(dim=1, descending=True, stable=True)
        return scores.gather(1, order), ids.gather(1, order)


def _exclusions(excluded: list[list[int]], device) -> Exclusions:
    """The padding item for every row, and each row's ``excluded`` items."""
    rows = [position for position, items in enumerate(excluded) for _ in items]
    if not rows:
        return Exclusions(always=(0,))
    items = [item for items in excluded for item in items]
    return Exclusions(torch.tensor(rows, device=device), torch.tensor(items, device=device), always=(0,))


def where(query: Query) -> str:
    return f"line {query.line}" if query.line is not None else "a sequence"


class SkippedTokens:
    """The unknown tokens a stream left out: counted, and the first :attr:`SHOWN` kept to be
    named (a stream of any length holds no more)."""

    SHOWN = 20

    def __init__(self):
        self.sequences = self.tokens = 0
        self.first: list[str] = []

    def add(self, query: Query, unknown: tuple[str, ...]) -> None:
        if unknown:
            self.sequences, self.tokens = self.sequences + 1, self.tokens + len(unknown)
            self.first += [f"{where(query)}: {token!r}" for token in unknown[:self.SHOWN - len(self.first)]]

    def text(self) -> str:
        more = f", and {self.tokens - len(self.first)} more" if self.tokens > len(self.first) else ""
        return (f"{self.tokens} tokens the model's dataset does not know were left out of {self.sequences} "
                f"sequences: {', '.join(self.first)}{more}")
