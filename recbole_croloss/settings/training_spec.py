"""How a run trains: the loss and the negatives it trains on, every key parsed and checked once,
before any data is loaded (part of :class:`~recbole_croloss.settings.spec.RunSpec`).

- the loss (:class:`TrainingSpec`): ``loss``, ``kernel``, ``alpha``, ``lambda_kernel``,
  ``margin``, ``rank_estimator`` (resolved into a CROLoss preset's settings), ``loss_engine``
  (eager or fused, CROLoss's presets), ``gbce_t`` (gBCE's),
  ``score``, ``scale``;
- the negatives (:class:`NegativesSpec`): ``negatives`` and the settings its sampler reads
  (``neg_per_pos``, ``mask_accidental_hits``, ``in_batch_uniform``, ``neg_popularity_power``,
  ``neg_mix``), ``neg_memory``, ``gather_negatives``, and ``logq_correction`` (whether the loss
  weighs a weighted sampler's negatives by their log q). Shared negatives whose step cannot fit
  in the device's memory are refused (:func:`check_negatives_memory`); where the default uniform
  negatives would be as many as the catalogue's items, the run scores every item once instead
  (:meth:`NegativesSpec.for_catalogue`), once the catalogue is known.

A key the chosen loss or sampler never reads is refused when the user sets it.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

import torch

from .. import distributed
from ..errors import ConfigError, check_bool, check_int
from ..glue import CROLossAdapter, check_model_class, is_plugin_model, training_item_counts
from ..loss import ENGINES, LOSS_OPTIONS, PRESETS, BinaryLossSettings, LossSettings, get_preset, loss_keys
from ..sampler import (NEGATIVES, CrossBatchMemory, FullNegatives, NegativeSampler, UniformNegatives, build_sampler,
                      check_sampler_name, check_sampler_settings)
from ..scoring import Score, get_score
from .settings_checks import refuse_unread

#: The model's own RecBole loss (cross-entropy for loss_type CE), untouched: the baseline.
MODEL_LOSS = "ce"
#: -log of float32's smallest normal number: a weight x^-alpha below e^-87.3 is 0 or denormal.
FLOAT32_LOG_TINY = 87.3
#: The largest alpha whose weight at rank 2 is still a float32 number.
MAX_ALPHA = 1 + FLOAT32_LOG_TINY / math.log(2)
#: Keys of the negatives that no sampler's ``options`` hold.
NEGATIVES_KEYS = ("negatives", "neg_memory", "gather_negatives", "logq_correction")
#: The settings that fix the number of shared negatives, M = (setting + offset) x train_batch_size.
SHARED_NEGATIVES = {"neg_per_pos": 0, "in_batch_uniform": 1}


def device_memory(device) -> tuple[int | None, str]:
    """The bytes of memory the run's tensors live in (the GPU's, or the machine's for the CPU),
    and how to name it; ``None`` where the system does not say."""
    if getattr(device, "type", None) == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(device).total_memory, f"the memory of the GPU {device}"
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "this machine's memory"
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        return None, "this machine's memory"


def check_negatives_memory(config, settings: dict, memory: int) -> None:
    """Refuse, before any data is loaded, shared negatives that a training step cannot hold in
    the device's memory, naming the largest value that fits.

    Each of the M negatives costs a step at least its id (8 bytes), its d float32 components
    (d: the smaller of ``embedding_size`` and ``hidden_size``) and a column of the ``[B, M]``
    scores with their gradient (8 B bytes): a lower bound, so only a run that cannot fit is
    refused."""
    key = next((k for k in SHARED_NEGATIVES if k in settings), None)
    if key is None:  # full (the catalogue, known later) or a sampler of the user's own
        return
    available, where = device_memory(config["device"])
    batch = check_int("train_batch_size", config["train_batch_size"], 1)
    if available is None:
        return
    sizes = [config[k] for k in ("embedding_size", "hidden_size") if isinstance(config[k], int) and config[k] > 0]
    dim, offset, value = min(sizes, default=0), SHARED_NEGATIVES[key], settings[key]
    per_negative = 8 + 4 * dim + 8 * batch
    per_unit = batch * (1 + memory) * per_negative  # the bytes one more of `key` adds
    need = (value + offset) * per_unit
    if need <= available:
        return
    fits = available // per_unit - offset
    gib = 2 ** 30
    formula = f"{f'(1 + {key})' if offset else key} x train_batch_size{' x (1 + neg_memory)' if memory else ''}"
    cost = (f"M = {formula} = {need // per_negative:,} shared negatives need at least {need / gib:,.1f} GiB a "
            f"step (each its id, {dim} float32 components and a column of the [{batch:,}, M] scores and their "
            f"gradient: 8 + 4 x {dim} + 8 x {batch:,} bytes), more than the {available / gib:,.1f} GiB of {where}")
    if fits >= (1 if key == "neg_per_pos" else 0):
        raise ConfigError(key, value, f"at most {fits:,} could fit: {cost}")
    raise ConfigError("train_batch_size", batch, f"even {key}={1 - offset} does not fit: {cost}; use a "
                      "smaller train_batch_size")


def check_croloss_settings(settings: LossSettings, options: dict, loss: str) -> None:
    """The rules a CROLoss preset's settings obey beyond their own checks."""
    kernels = [k.name for k in (settings.kernel, settings.lambda_kernel) if k is not None]
    if settings.alpha > MAX_ALPHA:
        raise ConfigError("alpha", options["alpha"], f"at most {MAX_ALPHA:g}: the weight of a "
                          "positive at rank 2 is 2^-alpha, below float32's smallest number, so "
                          "no positive but the first would get a gradient")
    if options["margin"] is not None and "hinge" not in kernels:
        raise ConfigError("margin", options["margin"], f"only the hinge kernel has a margin, and "
                          f"loss={loss!r} uses {' and '.join(kernels)}; unset margin or use kernel=hinge")


def loss_names() -> tuple[str, ...]:
    """What the key ``loss`` can name: the model's own loss, then every registered preset."""
    return (MODEL_LOSS, *PRESETS)


def sampler_options() -> tuple[str, ...]:
    """The settings some negative sampler reads (``neg_per_pos``, ``mask_accidental_hits``, ...)."""
    return tuple(sorted({option for cls in NEGATIVES.values() for option in cls.options}))


@dataclass(frozen=True)
class NegativesSpec:
    """The sampler ``name`` with the settings it reads (checked), kept for ``memory`` batches
    (``neg_memory``, 0: none) and shared by every rank (``gather``).

    ``exact_when_covered``: the uniform negatives are the default (the user set no
    ``negatives``) and may become every item once where ``neg_per_pos x batch_size`` is as large
    as the catalogue (:meth:`for_catalogue`)."""

    name: str
    settings: tuple  # ((key, value), ...)
    memory: int = 0
    gather: bool = False
    log_q: bool = False
    batch_size: int = 0
    exact_when_covered: bool = False

    @classmethod
    def from_config(cls, config, loss_reads_log_q: bool = True, estimates_rank: bool = False) -> "NegativesSpec":
        """``estimates_rank``: the loss estimates the positive's rank from the negatives (the
        CROLoss presets), which every item once makes exact."""
        sampler = check_sampler_name(config["negatives"])
        settings = check_sampler_settings(sampler, {key: config[key] for key in sampler.options})
        refuse_unread(config, [o for o in sampler_options() if o not in sampler.options],
                      f"negatives={sampler.name!r} {sampler.description}")
        memory = check_int("neg_memory", config["neg_memory"], 0)
        gather = check_bool("gather_negatives", config["gather_negatives"])
        check_negatives_memory(config, settings, memory)
        if sampler.name == FullNegatives.name:
            for key, value in (("gather_negatives", gather), ("neg_memory", memory)):
                if value:
                    raise ConfigError(key, value, "negatives='full' already scores every item on every "
                                      f"rank and every step; unset {key} or draw negatives")
        log_q = False
        if not loss_reads_log_q:
            refuse_unread(config, ("logq_correction",), f"loss={config['loss']!r} weighs every negative alike")
        elif sampler.weighted:
            log_q = check_bool("logq_correction", config["logq_correction"])
        else:
            refuse_unread(config, ("logq_correction",), f"negatives={sampler.name!r} {sampler.description} "
                          "(no log q to correct: the estimators' uniform weights are exact)")
        # Every item once replaces only the default draws, and none the user shaped otherwise
        # (a memory, other ranks' draws, hits counted, sparse updates: full refuses them).
        exact = estimates_rank and sampler.name == UniformNegatives.name and not memory and not gather and \
            "negatives" not in getattr(config, "user_settings", {}) and settings["mask_accidental_hits"] and \
            config["sparse_item_updates"] is not True
        return cls(sampler.name, tuple(settings.items()), memory, gather, log_q, config["train_batch_size"], exact)

    @property
    def sampler_class(self) -> type[NegativeSampler]:
        return NEGATIVES[self.name]

    def setting(self, key: str):
        return dict(self.settings).get(key)

    def covers(self, n_items: int) -> bool:
        """Whether the run scores every item once over ``n_items`` item ids (the padding item
        counted): the default uniform draws, M = neg_per_pos x batch_size, are at least the
        |I| - 1 other items of a positive (|I| = n_items - 1); drawn with replacement, they would
        cost as much and estimate the rank the exact one gives."""
        return self.exact_when_covered and self.setting("neg_per_pos") * self.batch_size >= n_items - 2

    def for_catalogue(self, n_items: int) -> "NegativesSpec":
        """The negatives the run trains on over ``n_items`` item ids: ``full`` where
        :meth:`covers`, else these."""
        if not self.covers(n_items):
            return self
        return replace(self, name=FullNegatives.name, settings=(), exact_when_covered=False)

    def covering_note(self, n_items: int) -> str | None:
        """The sentence that says :meth:`for_catalogue` chose every item once; ``None`` otherwise."""
        if not self.covers(n_items):
            return None
        per_pos, real = self.setting("neg_per_pos"), n_items - 1
        shared = per_pos * self.batch_size
        return (f"neg_per_pos x train_batch_size = {per_pos} x {self.batch_size} = {shared:,} negatives per batch "
                f"{'exceed' if shared > real else 'match'} the catalogue's {real:,} items: every item is used "
                "once instead (negatives: full, the exact rank); set negatives: uniform to draw them anyway")

    def oversampling_note(self, n_items: int) -> str | None:
        """A sentence where negatives the user chose to draw outnumber the items tenfold or more
        (each item drawn that many times a batch, at that many times the cost); ``None``
        otherwise."""
        per_pos, real = self.setting("neg_per_pos"), n_items - 1
        if per_pos is None or self.name == "in_batch" or self.covers(n_items) or real < 1:
            return None
        drawn = per_pos * self.batch_size * (1 + self.memory)
        if drawn < 10 * real:
            return None
        fits = max(1, real // (self.batch_size * (1 + self.memory)))
        return (f"negatives={self.name!r}: {drawn:,} negatives a batch are drawn for {real:,} items, each item about "
                f"{drawn / real:.0f} times; neg_per_pos={fits} draws about as many as there are items "
                "(negatives: full scores each once)")

    def build(self, n_items: int, train_dataset=None):
        """The sampler over ``n_items`` item ids (the frequency-based ones count the items of
        ``train_dataset``, the training split), wrapped as the settings say."""
        counts = training_item_counts(train_dataset) if self.sampler_class.needs_item_counts else None
        sampler = build_sampler(self.name, n_items, counts, **dict(self.settings))
        if self.gather:
            sampler = distributed.GatheredNegatives(sampler)
        return CrossBatchMemory(sampler, self.memory) if self.memory else sampler


@dataclass(frozen=True)
class TrainingSpec:
    """How the model is trained: ``loss_settings`` None is the model's own loss (``ce``), which
    draws no ``negatives`` (None)."""

    loss: str
    loss_settings: LossSettings | BinaryLossSettings | None
    negatives: NegativesSpec | None
    score: Score
    loss_engine: str = "eager"

    @classmethod
    def from_config(cls, config, overrides: dict | None = None) -> "TrainingSpec":
        """``overrides``: loss options over the config's (an ``alpha: auto`` candidate's)."""
        loss = config["loss"]
        if loss not in loss_names():
            raise ConfigError("loss", loss, loss_names())
        score = get_score(config["score"], config["scale"])
        engine = config["loss_engine"]
        if engine not in ENGINES:
            raise ConfigError("loss_engine", engine, ENGINES)
        options = {**{key: config[key] for key in LOSS_OPTIONS}, **(overrides or {})}
        if loss == MODEL_LOSS:  # no sampler, no rank estimate: what the user set for them is unused
            refuse_unread(config, (*NEGATIVES_KEYS, *sampler_options(), "rank_estimator", "loss_engine",
                                   *(k for k in loss_keys() if k not in LOSS_OPTIONS)),
                          "loss='ce' is the model's own cross-entropy over every item")
            for key in ("kernel", "alpha", "lambda_kernel", "margin"):
                if options[key] is not None:
                    raise ConfigError(key, options[key], "loss='ce' is the model's own cross-entropy "
                                      f"and takes no {key}; use loss='croloss' or unset {key}")
            return cls(loss, None, None, score)
        preset = get_preset(loss)
        refuse_unread(config, [key for key in loss_keys() if key not in preset.reads],
                      f"loss={loss!r} ({preset.description})")
        settings = preset.resolve(**{key: options[key] if key in options else config[key] for key in preset.reads})
        if isinstance(settings, LossSettings):
            check_croloss_settings(settings, options, loss)
        else:
            refuse_unread(config, ("loss_engine",), f"loss={loss!r} ({preset.description}) has one engine")
        negatives = NegativesSpec.from_config(config, settings.reads_log_q, isinstance(settings, LossSettings))
        if engine == "fused" and negatives.log_q:
            raise ConfigError("loss_engine", engine, f"the fused pass sums uniformly weighted negatives; "
                              f"negatives={negatives.name!r} with logq_correction weighs each by 1/q, which "
                              "the eager engine computes: use loss_engine='eager' or logq_correction=false")
        return cls(loss, settings, negatives, score, engine)

    def catalogue_warnings(self, n_items: int) -> list[str]:
        """What to tell the user once the catalogue size is known (``n_items`` item ids, the
        padding item counted): the default negatives replaced by every item once
        (:meth:`NegativesSpec.covering_note`); an alpha so large that a positive at the median
        rank gets a weight below float32's range (no gradient at first)."""
        notes = [self.negatives.covering_note(n_items), self.negatives.oversampling_note(n_items)] \
            if self.negatives is not None else []
        lines = [note for note in notes if note]
        if not isinstance(self.loss_settings, LossSettings) or n_items < 4:
            return lines
        alpha = self.loss_settings.alpha
        if (alpha - 1) * math.log(n_items / 2) <= FLOAT32_LOG_TINY:
            return lines
        return lines + [f"alpha={alpha:g} over {n_items} items: a positive ranked in the middle of the "
                        f"catalogue gets a weight below float32's range, so at initialisation most positives "
                        f"get no gradient (alpha <= {1 + FLOAT32_LOG_TINY / math.log(n_items / 2):.1f} avoids it)"]

    def rank_floor_note(self, catalogue_size: int, batch_size: int) -> str | None:
        """A line for the log where the paper estimator's floor ``|I| / M`` is below 1 (more
        shared uniform negatives than items): the loss can then be negative (its gradient is the
        paper's); ``None`` otherwise, and where the default draws give way to every item once as
        soon as they would outnumber the items (:meth:`NegativesSpec.covers`)."""
        settings = self.loss_settings
        if not isinstance(settings, LossSettings) or settings.rank_estimator.name != "paper" or \
                self.negatives.name != "uniform" or self.negatives.exact_when_covered:
            return None
        n_negatives = self.negatives.setting("neg_per_pos") * batch_size * (1 + self.negatives.memory)
        if n_negatives <= catalogue_size:
            return None
        return (f"M = {n_negatives} shared negatives over {catalogue_size} items: the paper's rank "
                f"estimate is at least |I|/M = {catalogue_size / n_negatives:.3f} < 1, so the loss can be "
                "negative; its gradient is eq. 24's (rank_estimator: unbiased stays >= 1)")

    def check_model(self, model_class) -> None:
        """Refuse a model the adapter cannot train, or a score a model's own loss ignores
        (RecBole's models rank by their dot product; the plugin's models by ``score``)."""
        if self.loss_settings is not None:
            check_model_class(model_class)
        elif (self.score.name, self.score.scale) != ("dot", 1.0) and not is_plugin_model(model_class):
            raise ConfigError("score", f"{self.score.name} (scale {self.score.scale})",
                              f"loss='ce' trains {model_class.__name__} with its own dot product; "
                              "use score=dot, scale=1, or loss='sampled_softmax' with negatives=full")

    def adapter(self, model, train_dataset=None) -> CROLossAdapter:
        """The adapter that trains ``model`` (a RecBole sequential model) as this spec says;
        ``train_dataset`` (the training split) for the samplers that draw by item frequency."""
        if self.loss_settings is None:
            return CROLossAdapter(model, self.score)
        negatives = self.negatives.for_catalogue(model.n_items)
        sampler = negatives.build(model.n_items, train_dataset)
        engine = {"engine": self.loss_engine} if isinstance(self.loss_settings, LossSettings) else {}
        return CROLossAdapter(model, self.score, self.loss_settings.build(sampler.catalogue_size, **engine), sampler,
                              use_log_q=negatives.log_q)
