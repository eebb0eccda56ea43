"""The one place the plugin's flat YAML keys are read: config -> loss, negatives, score, adapter.

Keys (defaults in ``properties/overall.yaml``): ``loss``, ``kernel``, ``alpha``,
``lambda_kernel``, ``margin``, ``rank_estimator``, ``negatives``, ``neg_per_pos``,
``mask_accidental_hits``, ``score``, ``scale``; for evaluation ``eval_engine``,
``eval_memory_budget``, ``eval_mask`` (with RecBole's ``metrics`` and ``topk``), ``faiss_index``,
``faiss_nprobe`` and ``faiss_export``; for data ``protocol``, ``paper_split_ratio`` and
``paper_split_seed``; for distributed runs ``nproc``, ``world_size``, ``ip``, ``port``,
``offset``, ``dist_backend``, ``dist_timeout`` and ``gather_negatives``.
:meth:`TrainingSpec.from_config` and :meth:`EvaluationSpec.from_config` check every value before
any data is loaded; :meth:`TrainingSpec.wrap` builds the adapter for a model and
:meth:`EvaluationSpec.trainer` the trainer.
"""
from __future__ import annotations

from dataclasses import dataclass

from .data.protocol import PROTOCOLS, PaperProtocol
from .adapter import EVAL_MASKS, CROLossAdapter, CROLossTrainer, EvalMask, check_model_class
from .errors import ConfigError, check_int
from .evaluation import FullRankingEvaluator, parse_bytes
from .loss import LOSS_OPTIONS, PRESETS, CROLoss, LossPreset, get_preset
from .sampler import FullNegatives, NegativeSampler, UniformNegatives
from .scoring import Score, get_score

#: The model's own RecBole loss (cross-entropy for loss_type CE), untouched: the baseline.
MODEL_LOSS = "ce"
LOSSES = (MODEL_LOSS, *PRESETS)
NEGATIVES: dict[str, type[NegativeSampler]] = {s.name: s for s in (UniformNegatives, FullNegatives)}


def score_from_config(config) -> Score:
    """The retrieval score the keys ``score`` and ``scale`` name (the adapter's, and the plugin
    models' own)."""
    return get_score(config["score"], config["scale"])


def _bool(key, value) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(key, value, "choose one of: true, false")


@dataclass(frozen=True)
class TrainingSpec:
    loss: str
    preset: LossPreset | None  # None: the model's own loss (``ce``)
    loss_options: dict
    negatives: str
    neg_per_pos: int
    mask_accidental_hits: bool
    score: Score
    gather_negatives: bool = False

    @classmethod
    def from_config(cls, config) -> "TrainingSpec":
        """Read and check the keys. Raises :class:`ConfigError` naming key, value and choices."""
        loss = config["loss"]
        if loss not in LOSSES:
            raise ConfigError("loss", loss, LOSSES)
        options = {key: config[key] for key in LOSS_OPTIONS}
        negatives = config["negatives"]
        if negatives not in NEGATIVES:
            raise ConfigError("negatives", negatives, NEGATIVES)
        neg_per_pos = check_int("neg_per_pos", config["neg_per_pos"], 1)
        mask_hits = _bool("mask_accidental_hits", config["mask_accidental_hits"])
        score = score_from_config(config)
        gather = _bool("gather_negatives", config["gather_negatives"])
        if gather and negatives != UniformNegatives.name:
            raise ConfigError("gather_negatives", gather, f"negatives={negatives!r} already scores "
                              "every item on every rank; gather only uniform negatives")
        if loss == MODEL_LOSS:
            for key in ("kernel", "alpha", "lambda_kernel", "margin"):
                if options[key] is not None:
                    raise ConfigError(key, options[key], "loss='ce' is the model's own cross-entropy "
                                      f"and takes no {key}; use loss='croloss' or unset {key}")
            if gather:
                raise ConfigError("gather_negatives", gather, "loss='ce' is the model's own "
                                  "cross-entropy over every item; gather_negatives needs a CROLoss loss")
            return cls(loss, None, {}, negatives, neg_per_pos, mask_hits, score)
        preset = get_preset(loss)
        preset.build(n_items=1, **options)  # checks every loss setting now, before data
        return cls(loss, preset, options, negatives, neg_per_pos, mask_hits, score, gather)

    def check_model(self, model_class) -> None:
        """Refuse a model the adapter cannot train, or a score a model's own loss ignores
        (RecBole's models rank by their dot product; the plugin's models, which set
        ``SCORED_BY_CONFIG``, by ``score`` and ``scale``)."""
        if self.preset is not None:
            check_model_class(model_class)
        elif (self.score.name, self.score.scale) != ("dot", 1.0) and \
                not getattr(model_class, "SCORED_BY_CONFIG", False):
            raise ConfigError("score", f"{self.score.name} (scale {self.score.scale})",
                              f"loss='ce' trains {model_class.__name__} with its own dot product; "
                              "use score=dot, scale=1, or loss='sampled_softmax' with negatives=full")

    def sampler(self, n_items: int) -> NegativeSampler:
        cls = NEGATIVES[self.negatives]
        extra = {"neg_per_pos": self.neg_per_pos, "mask_accidental_hits": self.mask_accidental_hits}
        return cls(n_items, **{k: v for k, v in extra.items() if k in cls.options})

    def build_loss(self, catalogue_size: int) -> CROLoss | None:
        if self.preset is None:
            return None
        return self.preset.build(n_items=catalogue_size, **self.loss_options)

    def wrap(self, model) -> CROLossAdapter:
        """The adapter that trains ``model`` (a RecBole sequential model) with this spec."""
        if self.preset is None:
            return CROLossAdapter(model)
        sampler = self.sampler(model.n_items)
        return CROLossAdapter(model, self.build_loss(sampler.catalogue_size), sampler, self.score,
                              gather_negatives=self.gather_negatives)


#: ``eval_engine``: the plugin's memory-bounded evaluator, or RecBole's own full-sort evaluator.
EVAL_ENGINES = ("chunked", "recbole")


#: ``faiss_index``: no serving index, or a kind of :class:`~recbole_croloss.retrieval.ItemIndex`.
FAISS_INDEXES = ("none", "flat", "ivf", "hnsw")


@dataclass(frozen=True)
class ServingSpec:
    """After the test evaluation, serve the test users from a faiss index of the trained item
    vectors (``kind``), report its metrics and ANN recall, and export it to ``export``."""

    kind: str
    nprobe: int
    export: str | None


@dataclass(frozen=True)
class DistributedSpec:
    """How many processes a run has and where they meet (RecBole's keys ``nproc``,
    ``world_size``, ``ip``, ``port``, ``offset``; the plugin's ``dist_backend`` and
    ``dist_timeout``). ``world_size`` -1 means ``nproc``."""

    nproc: int
    world_size: int
    ip: str
    port: int
    offset: int
    backend: str
    timeout: float

    @classmethod
    def from_config(cls, config) -> "DistributedSpec":
        from .distributed import BACKENDS

        nproc = check_int("nproc", config["nproc"], 1)
        world = config["world_size"]
        world = nproc if world in (None, -1) else check_int("world_size", world, 1)
        offset = check_int("offset", config["offset"], 0)
        if offset + nproc > world:
            raise ConfigError("world_size", world, f"at least offset + nproc = {offset + nproc} "
                              "(this machine's ranks are offset .. offset + nproc - 1)")
        backend = config["dist_backend"]
        if backend not in BACKENDS:
            raise ConfigError("dist_backend", backend, BACKENDS)
        port = check_int("port", config["port"], 1)
        timeout = config["dist_timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError("dist_timeout", timeout, "seconds > 0")
        return cls(nproc, world, str(config["ip"]), port, offset, backend, float(timeout))

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def rank_settings(self, local_rank: int) -> dict:
        """The keys that make a run rank ``offset + local_rank`` of this group."""
        return {"local_rank": local_rank, "nproc": self.nproc, "world_size": self.world_size,
                "ip": self.ip, "port": self.port, "offset": self.offset}


def protocol_from_config(config):
    """The data protocol the key ``protocol`` names (``loo`` | ``paper``), with its settings."""
    name = config["protocol"]
    if name not in PROTOCOLS:
        raise ConfigError("protocol", name, PROTOCOLS)
    if name != PaperProtocol.name:
        return PROTOCOLS[name]()
    seed = config["paper_split_seed"]
    seed = config["seed"] if seed is None else check_int("paper_split_seed", seed, 0)
    return PaperProtocol(config["paper_split_ratio"], seed)


@dataclass(frozen=True)
class EvaluationSpec:
    engine: str
    evaluator: FullRankingEvaluator | None  # None: RecBole's own evaluator
    mask: EvalMask
    serving: ServingSpec | None = None
    protocol: object = None

    @classmethod
    def from_config(cls, config) -> "EvaluationSpec":
        """Read and check ``eval_engine``, ``eval_memory_budget``, ``eval_mask`` (and, for the
        chunked engine, ``metrics`` and ``topk``)."""
        engine = config["eval_engine"]
        if engine not in EVAL_ENGINES:
            raise ConfigError("eval_engine", engine, EVAL_ENGINES)
        mask = config["eval_mask"]
        if mask not in EVAL_MASKS:
            raise ConfigError("eval_mask", mask, EVAL_MASKS)
        serving = cls._serving(config)
        protocol = protocol_from_config(config)
        if engine == "recbole":
            if protocol.name != "loo":
                raise ConfigError("eval_engine", engine, f"protocol='{protocol.name}' has several "
                                  "targets per user, which only eval_engine='chunked' evaluates")
            if mask != "recbole":
                raise ConfigError("eval_mask", mask, "eval_engine='recbole' masks as RecBole does; "
                                  "use eval_mask='recbole' or eval_engine='chunked'")
            if serving is not None:
                raise ConfigError("faiss_index", serving.kind, "the faiss report compares with the "
                                  "chunked evaluator's exact top N; use eval_engine='chunked'")
            return cls(engine, None, EVAL_MASKS[mask](), None, protocol)
        budget = parse_bytes("eval_memory_budget", config["eval_memory_budget"])
        evaluator = FullRankingEvaluator(config["metrics"], config["topk"], budget)
        return cls(engine, evaluator, EVAL_MASKS[mask](), serving, protocol)

    @staticmethod
    def _serving(config) -> ServingSpec | None:
        kind, export = config["faiss_index"], config["faiss_export"]
        if kind not in FAISS_INDEXES:
            raise ConfigError("faiss_index", kind, FAISS_INDEXES)
        if kind == "none":
            if export is not None:
                raise ConfigError("faiss_export", export, "an export needs an index: set faiss_index "
                                  "to flat, ivf or hnsw")
            return None
        if export is not None and not isinstance(export, str):
            raise ConfigError("faiss_export", export, "a directory path")
        return ServingSpec(kind, check_int("faiss_nprobe", config["faiss_nprobe"], 1), export)

    def check_catalogue(self, n_items: int) -> None:
        """Refuse a memory budget too small for one user's row over ``n_items`` items."""
        if self.evaluator is not None:
            self.evaluator.plan(n_items)

    def trainer(self, config, net) -> CROLossTrainer:
        """RecBole's trainer for ``net``, evaluating with this spec."""
        return CROLossTrainer(config, net, self.evaluator, self.mask)
