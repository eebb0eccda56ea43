"""The run spec: every setting of a run, parsed and checked once, before any data is loaded.

:meth:`RunSpec.from_config` reads the plugin's keys (defaults in ``properties/overall.yaml``)
and every rule between them, and names the key, the value and the choices when one is wrong:

- training (:class:`TrainingSpec`): ``loss``, ``kernel``, ``alpha``, ``lambda_kernel``,
  ``margin``, ``rank_estimator`` (resolved into the loss's settings), ``loss_engine``, ``negatives``,
  ``neg_per_pos``, ``mask_accidental_hits``, ``score``, ``scale``, ``gather_negatives``;
- evaluation (:class:`EvaluationSpec`): ``eval_engine``, ``eval_memory_budget``, ``eval_mask``,
  ``recall_targets``
  with RecBole's ``metrics`` and ``topk``; the data ``protocol`` with ``paper_split_ratio`` and
  ``paper_split_seed``;
- serving (:class:`ServingSpec`): ``faiss_index``, ``faiss_nprobe``, ``faiss_export``;
- distributed (:class:`DistributedSpec`): ``nproc``, ``world_size``, ``ip``, ``port``,
  ``offset``, ``dist_backend``, ``dist_timeout``;
- the training regime (:class:`~recbole_croloss.schedule.ScheduleSpec`): ``train_sampling``,
  ``train_min_history``, ``eval_every_steps``, ``max_steps``, ``test_weights``;
- resuming (:class:`ResumeSpec`): ``resume``, a resume checkpoint or ``auto``, found and
  checked against the run's settings;
- RecBole's settings the plugin relies on (``epochs``, batch sizes, ``MAX_ITEM_LIST_LENGTH``,
  ``learning_rate``, ``seed``, ``valid_metric`` within ``metrics`` and ``topk``, a writable
  ``checkpoint_dir``), and every key the user gave: one that neither RecBole nor the plugin reads
  is a warning with a "did you mean", an error where it is a typo of the plugin's own key;
- the dataset's ``.inter`` file under ``data_path`` (:mod:`recbole_croloss.data.inter_file`).

The CLI, the launcher and the benchmark grid all build it the same way.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from . import distributed
from .data.inter_file import InterFile, read_inter_file
from .data.protocol import PROTOCOLS
from .errors import ConfigError, DatasetFileError, check_bool, check_int
from .evaluation import FullRankingEvaluator, parse_bytes
from .glue import EVAL_MASKS, SUPPORTED, CROLossAdapter, EvalMask, check_model_class, is_plugin_model
from .glue import checkpoint
from .loss import ENGINES, LOSS_OPTIONS, PRESETS, LossSettings, get_preset
from .schedule import ScheduleSpec
from .sampler import NEGATIVES, NegativeSampler, UniformNegatives, build_sampler, check_sampler_name
from .scoring import Score, get_score
from .io import check_dataset_name
from .settings_checks import check_recbole_settings, check_writable_dir, refuse_unread, unknown_key_warnings

#: The model's own RecBole loss (cross-entropy for loss_type CE), untouched: the baseline.
MODEL_LOSS = "ce"
#: -log of float32's smallest normal number: a weight x^-alpha below e^-87.3 is 0 or denormal.
FLOAT32_LOG_TINY = 87.3
#: The largest alpha whose weight at rank 2 is still a float32 number.
MAX_ALPHA = 1 + FLOAT32_LOG_TINY / math.log(2)


class DatasetNotFoundError(FileNotFoundError):
    pass


def loss_names() -> tuple[str, ...]:
    """What the key ``loss`` can name: the model's own loss, then every registered preset."""
    return (MODEL_LOSS, *PRESETS)


def sampler_options() -> tuple[str, ...]:
    """The settings some negative sampler reads (``neg_per_pos``, ``mask_accidental_hits``)."""
    return tuple(sorted({option for cls in NEGATIVES.values() for option in cls.options}))


@dataclass(frozen=True)
class TrainingSpec:
    """How the model is trained: ``loss_settings`` None is the model's own loss (``ce``)."""

    loss: str
    loss_settings: LossSettings | None
    negatives: str
    neg_per_pos: int
    mask_accidental_hits: bool
    score: Score
    gather_negatives: bool = False
    loss_engine: str = "eager"

    @classmethod
    def from_config(cls, config) -> "TrainingSpec":
        loss = config["loss"]
        if loss not in loss_names():
            raise ConfigError("loss", loss, loss_names())
        engine = config["loss_engine"]
        if engine not in ENGINES:
            raise ConfigError("loss_engine", engine, ENGINES)
        negatives = config["negatives"]
        sampler = check_sampler_name(negatives)
        neg_per_pos = check_int("neg_per_pos", config["neg_per_pos"], 1)
        mask_hits = check_bool("mask_accidental_hits", config["mask_accidental_hits"])
        score = get_score(config["score"], config["scale"])
        gather = check_bool("gather_negatives", config["gather_negatives"])
        if gather and negatives != UniformNegatives.name:
            raise ConfigError("gather_negatives", gather, f"negatives={negatives!r} already scores "
                              "every item on every rank; gather only uniform negatives")
        options = {key: config[key] for key in LOSS_OPTIONS}
        if loss == MODEL_LOSS:  # no sampler, no rank estimate: what the user set for them is unused
            refuse_unread(config, ("negatives", *sampler_options(), "rank_estimator", "loss_engine"),
                          "loss='ce' is the model's own cross-entropy over every item")
        refuse_unread(config, [o for o in sampler_options() if o not in sampler.options],
                      f"negatives={negatives!r} scores every other item once, the row's positive left out")
        if loss != MODEL_LOSS:
            settings = get_preset(loss).resolve(**options)
            kernels = [k.name for k in (settings.kernel, settings.lambda_kernel) if k is not None]
            if settings.alpha > MAX_ALPHA:
                raise ConfigError("alpha", options["alpha"], f"at most {MAX_ALPHA:g}: the weight of a "
                                  "positive at rank 2 is 2^-alpha, below float32's smallest number, so "
                                  "no positive but the first would get a gradient")
            if options["margin"] is not None and "hinge" not in kernels:
                raise ConfigError("margin", options["margin"], f"only the hinge kernel has a margin, and "
                                  f"loss={loss!r} uses {' and '.join(kernels)}; unset margin or use kernel=hinge")
            return cls(loss, settings, negatives, neg_per_pos, mask_hits, score, gather, engine)
        for key in ("kernel", "alpha", "lambda_kernel", "margin"):
            if options[key] is not None:
                raise ConfigError(key, options[key], "loss='ce' is the model's own cross-entropy "
                                  f"and takes no {key}; use loss='croloss' or unset {key}")
        if gather:
            raise ConfigError("gather_negatives", gather, "loss='ce' is the model's own "
                              "cross-entropy over every item; gather_negatives needs a CROLoss loss")
        return cls(loss, None, negatives, neg_per_pos, mask_hits, score)

    def catalogue_warnings(self, n_items: int) -> list[str]:
        """What to tell the user once the catalogue size is known: an alpha so large that a
        positive at the median rank gets a weight below float32's range (no gradient at first)."""
        if self.loss_settings is None or n_items < 4:
            return []
        alpha = self.loss_settings.alpha
        if (alpha - 1) * math.log(n_items / 2) <= FLOAT32_LOG_TINY:
            return []
        return [f"alpha={alpha:g} over {n_items} items: a positive ranked in the middle of the "
                f"catalogue gets a weight below float32's range, so at initialisation most positives "
                f"get no gradient (alpha <= {1 + FLOAT32_LOG_TINY / math.log(n_items / 2):.1f} avoids it)"]

    def rank_floor_note(self, catalogue_size: int, batch_size: int) -> str | None:
        """A line for the log where the paper estimator's floor ``|I| / M`` is below 1 (more
        shared uniform negatives than items): the loss can then be negative (its gradient is the
        paper's); ``None`` otherwise."""
        settings = self.loss_settings
        if settings is None or settings.rank_estimator.name != "paper" or self.negatives != "uniform":
            return None
        n_negatives = self.neg_per_pos * batch_size
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

    def sampler(self, n_items: int) -> NegativeSampler:
        sampler = build_sampler(self.negatives, n_items, neg_per_pos=self.neg_per_pos,
                                mask_accidental_hits=self.mask_accidental_hits)
        return distributed.GatheredNegatives(sampler) if self.gather_negatives else sampler

    def adapter(self, model) -> CROLossAdapter:
        """The adapter that trains ``model`` (a RecBole sequential model) as this spec says."""
        if self.loss_settings is None:
            return CROLossAdapter(model, self.score)
        sampler = self.sampler(model.n_items)
        loss = self.loss_settings.build(sampler.catalogue_size, engine=self.loss_engine)
        return CROLossAdapter(model, self.score, loss, sampler)


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

    @classmethod
    def from_config(cls, config) -> "ServingSpec | None":
        kind, export = config["faiss_index"], config["faiss_export"]
        if kind not in FAISS_INDEXES:
            raise ConfigError("faiss_index", kind, FAISS_INDEXES)
        if kind != "ivf":  # only an IVF index has inverted lists to probe
            refuse_unread(config, ("faiss_nprobe",), f"faiss_index={kind!r} has no inverted lists")
        if kind == "none":
            if export is not None:
                raise ConfigError("faiss_export", export, "an export needs an index: set faiss_index "
                                  "to flat, ivf or hnsw")
            return None
        if export is not None:
            check_writable_dir("faiss_export", export)
        return cls(kind, check_int("faiss_nprobe", config["faiss_nprobe"], 1), export)


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
        nproc = check_int("nproc", config["nproc"], 1)
        world = config["world_size"]
        world = nproc if world in (None, -1) else check_int("world_size", world, 1)
        offset = check_int("offset", config["offset"], 0)
        if offset + nproc > world:
            raise ConfigError("world_size", world, f"at least offset + nproc = {offset + nproc} "
                              "(this machine's ranks are offset .. offset + nproc - 1)")
        backend = config["dist_backend"]
        if backend not in distributed.BACKENDS:
            raise ConfigError("dist_backend", backend, distributed.BACKENDS)
        port = check_int("port", config["port"], 1, 65535)  # a TCP port number
        timeout = config["dist_timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError("dist_timeout", timeout, "seconds > 0")
        ip = str(config["ip"] or "").strip()
        if not ip:
            raise ConfigError("ip", config["ip"], "the address of rank 0's machine (a host name or an "
                              "IP address, e.g. localhost)")
        return cls(nproc, world, ip, port, offset, backend, float(timeout))

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def rank_settings(self, local_rank: int) -> dict:
        """The keys that make a run rank ``offset + local_rank`` of this group."""
        return {"local_rank": local_rank, "nproc": self.nproc, "world_size": self.world_size,
                "ip": self.ip, "port": self.port, "offset": self.offset}


@dataclass(frozen=True)
class ResumeSpec:
    """``resume``: unset (train from the first epoch), the path of a resume checkpoint, or
    ``auto``: the newest one in ``checkpoint_dir`` that this run can continue from.

    ``path`` is the checkpoint the run continues from (``None``: from the first epoch);
    ``passed_over`` counts the resume checkpoints ``auto`` found but could not use."""

    requested: str | None
    path: str | None
    passed_over: int = 0

    @classmethod
    def from_config(cls, config, processes: DistributedSpec) -> "ResumeSpec":
        value = config["resume"]
        if value is None:
            return cls(None, None)
        if not isinstance(value, str) or not value:
            raise ConfigError("resume", value, "a resume checkpoint (<model>-<time>-last.pth) or auto")
        if processes.distributed or not config["single_spec"]:
            raise ConfigError("resume", value, "unset in a distributed run: resume checkpoints "
                              "are written by one-process runs")
        current = checkpoint.plain_config(config)
        if value == "auto":
            return cls(value, *checkpoint.find_resume(config["checkpoint_dir"], current))
        if not os.path.isfile(value):
            raise ConfigError("resume", value, f"no such file ({os.path.abspath(value)}); give a "
                              "resume checkpoint (<model>-<time>-last.pth) or auto")
        problem = checkpoint.resume_problem(value, current)
        if problem is not None:
            raise ConfigError("resume", value, problem)
        return cls(value, os.path.abspath(value))


def protocol_from_config(config):
    """The data protocol the key ``protocol`` names (``loo`` | ``paper`` | ``sampled``), with its
    settings."""
    name = config["protocol"]
    if name not in PROTOCOLS:
        raise ConfigError("protocol", name, PROTOCOLS)
    for other in PROTOCOLS.values():  # a key only another protocol reads would be ignored
        if other.name != name:
            refuse_unread(config, other.KEYS, f"protocol={name!r} ({other.name!r} reads it)")
    return PROTOCOLS[name].from_config(config)


@dataclass(frozen=True)
class EvaluationSpec:
    """How the model is evaluated: ``evaluator`` None is RecBole's own evaluator."""

    evaluator: FullRankingEvaluator | None
    mask: EvalMask

    @classmethod
    def from_config(cls, config) -> "EvaluationSpec":
        engine = config["eval_engine"]
        if engine not in EVAL_ENGINES:
            raise ConfigError("eval_engine", engine, EVAL_ENGINES)
        mask = config["eval_mask"]
        if mask not in EVAL_MASKS:
            raise ConfigError("eval_mask", mask, EVAL_MASKS)
        if engine == "recbole":
            if mask != "recbole" or config["recall_targets"] != "unique":
                key = "eval_mask" if mask != "recbole" else "recall_targets"
                raise ConfigError(key, config[key], f"eval_engine='recbole' evaluates as RecBole does; "
                                  f"use {key}='{'recbole' if key == 'eval_mask' else 'unique'}' or "
                                  "eval_engine='chunked'")
            return cls(None, EVAL_MASKS[mask]())
        budget = parse_bytes("eval_memory_budget", config["eval_memory_budget"])
        evaluator = FullRankingEvaluator(config["metrics"], config["topk"], budget, config["recall_targets"])
        return cls(evaluator, EVAL_MASKS[mask]())

    @staticmethod
    def check_splits(config, valid_data, test_data) -> None:
        """Refuse, before training, a split that leaves validation or test without users (the run
        would train, then report nothing, or -inf as its best validation score)."""
        empty = [name for name, data in (("valid", valid_data), ("test", test_data)) if len(data) == 0]
        if empty:
            split = config["eval_args"]["split"] if config["protocol"] == "loo" else config["paper_split_ratio"]
            key = "eval_args" if config["protocol"] == "loo" else "paper_split_ratio"
            raise ConfigError(key, split, f"it leaves no {' and no '.join(empty)} users; give every split users")

    def check_catalogue(self, n_items: int) -> None:
        """Refuse, once the data is loaded and before training, a ``topk`` beyond the catalogue
        (``n_items`` counts the padding item) or a memory budget too small for one user's row."""
        if self.evaluator is not None:
            if self.evaluator.n > n_items - 1:
                raise ConfigError("topk", list(self.evaluator.ks), f"at most the {n_items - 1} items of "
                                  "the catalogue (the padding item is never recommended)")
            self.evaluator.plan(n_items)


@dataclass(frozen=True)
class RunSpec:
    """Everything a run is made of that the config decides, checked together; ``warnings``
    are the lines the run logs about settings it ignores."""

    model_class: type
    training: TrainingSpec
    evaluation: EvaluationSpec
    protocol: object
    serving: ServingSpec | None
    distributed: DistributedSpec
    dataset: InterFile
    resume: ResumeSpec = ResumeSpec(None, None)
    warnings: tuple[str, ...] = ()
    schedule: ScheduleSpec = ScheduleSpec()

    @classmethod
    def from_config(cls, config, model_class) -> "RunSpec":
        """Read and check every key and every rule between keys; raises :class:`ConfigError`
        (or :class:`DatasetNotFoundError`, :class:`~recbole_croloss.errors.DatasetFileError`)
        before any data is loaded."""
        warnings = tuple(unknown_key_warnings(config))
        training = TrainingSpec.from_config(config)
        training.check_model(model_class)
        evaluation = EvaluationSpec.from_config(config)  # metrics and topk, before valid_metric
        check_recbole_settings(config)
        protocol = protocol_from_config(config)
        serving = ServingSpec.from_config(config)
        processes = DistributedSpec.from_config(config)
        check_serving(serving, evaluation, protocol, processes, config, model_class, training)
        schedule = ScheduleSpec.from_config(config, model_class)
        return cls(model_class, training, evaluation, protocol, serving, processes,
                   read_inter_file(dataset_file(config), config), ResumeSpec.from_config(config, processes),
                   warnings, schedule)


def check_serving(serving, evaluation, protocol, processes, config, model_class, training) -> None:
    """The rules between evaluation, protocol, serving and the process count."""
    if evaluation.evaluator is None:
        if protocol.name != "loo":
            raise ConfigError("eval_engine", "recbole", f"protocol='{protocol.name}' is evaluated by "
                              "the plugin's evaluator only; use eval_engine='chunked'")
        if serving is not None:
            raise ConfigError("faiss_index", serving.kind, "the faiss report compares with the "
                              "chunked evaluator's exact top N; use eval_engine='chunked'")
    if serving is None:
        return
    if protocol.name == "sampled":
        raise ConfigError("faiss_index", serving.kind, "none under protocol='sampled' (the index "
                          "serves full-ranking retrieval; each sampled case ranks 1 + n candidates)")
    if processes.distributed or not config["single_spec"]:
        raise ConfigError("faiss_index", serving.kind, "none in a distributed run (each "
                          "rank holds a share of the test users); export the model and serve it from "
                          "one process")
    ranks_by_vectors = training.loss_settings is not None or is_plugin_model(model_class) or \
        model_class.__name__ in SUPPORTED
    if not ranks_by_vectors:
        raise ConfigError("faiss_index", serving.kind, f"{model_class.__name__} ranks by its own "
                          "full_sort_predict, not by item vectors, so no index can serve it")


def dataset_file(config) -> str:
    """The dataset's ``.inter`` file, or a clear error: RecBole would try to download it."""
    check_dataset_name(config["dataset"], "dataset")  # a path here would name another folder's file
    probe = os.path.abspath(config["data_path"])  # data_path/dataset, as RecBole joined them
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        given = getattr(config, "user_settings", {}).get("data_path", config["data_path"])
        raise ConfigError("data_path", given,
                          f"the folder that holds the folder {config['dataset']}/; {probe} is a file")
    path = os.path.join(config["data_path"], f"{config['dataset']}.inter")
    if os.path.isdir(path):
        raise DatasetFileError(f"{os.path.abspath(path)} is a directory; the dataset's interactions are "
                               f"the file {config['dataset']}.inter in {os.path.abspath(config['data_path'])}")
    if not os.path.isfile(path):
        raise DatasetNotFoundError(
            f"dataset {config['dataset']!r} not found: looked for {os.path.abspath(path)}. "
            f"Put its RecBole atomic files ({config['dataset']}.inter, optionally .item/.user) in "
            f"{os.path.abspath(config['data_path'])}, or set data_path to the folder that holds "
            f"the folder {config['dataset']}/. recbole-croloss never downloads data.")
    return path
