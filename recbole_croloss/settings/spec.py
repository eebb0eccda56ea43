"""The run spec: every setting of a run, parsed and checked once, before any data is loaded.

:meth:`RunSpec.from_config` reads the plugin's keys (defaults in ``properties/overall.yaml``)
and every rule between them, and names the key, the value and the choices when one is wrong:

- training (:class:`~recbole_croloss.settings.training_spec.TrainingSpec`, in its own module): the loss,
  the score and the negatives;
- evaluation (:class:`EvaluationSpec`): ``eval_engine``, ``eval_memory_budget``, ``eval_mask``,
  ``recall_targets``
  with RecBole's ``metrics`` and ``topk``; the data ``protocol`` with ``paper_split_ratio`` and
  ``paper_split_seed``;
- serving (:class:`ServingSpec`): ``faiss_index``, ``faiss_nprobe``, ``faiss_export``;
- distributed (:class:`DistributedSpec`): ``nproc``, ``world_size``, ``ip``, ``port``,
  ``offset``, ``dist_backend``, ``dist_timeout``;
- the training regime (:class:`~recbole_croloss.settings.schedule.ScheduleSpec`): ``train_sampling``,
  ``train_min_history``, ``eval_every_steps``, ``max_steps``, ``test_weights``;
- resuming (:class:`ResumeSpec`): ``resume``, a resume checkpoint or ``auto``, found and
  checked against the run's settings;
- choosing alpha for a target N (:class:`~recbole_croloss.settings.alpha_search.AlphaSearchSpec`):
  ``alpha: auto`` with ``target_n``, ``alpha_grid``, ``alpha_search_kernels``, ``alpha_search_epochs``, ``alpha_search_eta``;
- RecBole's settings the plugin relies on (``epochs``, batch sizes, ``MAX_ITEM_LIST_LENGTH``,
  ``learning_rate``, ``seed``, ``valid_metric`` within ``metrics`` and ``topk``, a writable
  ``checkpoint_dir``), and every key the user gave: one that neither RecBole nor the plugin reads
  is a warning with a "did you mean", an error where it is a typo of the plugin's own key;
- the dataset's ``.inter`` file under ``data_path`` (:mod:`recbole_croloss.data.inter_file`).

The CLI, the launcher and the benchmark grid all build it the same way.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

from .. import distributed
from .alpha_search import AlphaSearchSpec
from ..data.inter_file import InterFile, read_inter_file
from ..data.protocol import PROTOCOLS
from ..errors import BAD_INPUT, ConfigError, DatasetFileError, check_int
from ..evaluation import FullRankingEvaluator, parse_bytes
from ..glue import EVAL_MASKS, SUPPORTED, EvalMask, is_plugin_model
from ..glue import checkpoint
from .schedule import ScheduleSpec
from ..io import check_dataset_name
from .settings_checks import check_recbole_settings, check_writable_dir, refuse_unread, unknown_key_warnings
from .training_spec import TrainingSpec


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not where the run looks; the message says where and how to add them."""

    exit_status = BAD_INPUT


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
            raise ConfigError("resume", value, "a resume checkpoint (a run's <run>-last.pth) or auto")
        if processes.distributed or not config["single_spec"]:
            raise ConfigError("resume", value, "unset in a distributed run: resume checkpoints "
                              "are written by one-process runs")
        current = checkpoint.plain_config(config)
        if value == "auto":
            return cls(value, *checkpoint.find_resume(config["checkpoint_dir"], current))
        if not os.path.isfile(value):
            raise ConfigError("resume", value, f"no such file ({os.path.abspath(value)}); give a "
                              "resume checkpoint (a run's <run>-last.pth) or auto")
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

    def check_catalogue(self, n_items: int, valid_metric: str | None = None) -> None:
        """Refuse, once the data is loaded and before training, a ``topk`` beyond the catalogue
        (``n_items`` counts the padding item) or a memory budget too small for one user's row.
        The refusal suggests the ``topk`` that fits, and a ``valid_metric`` among it where the
        run's cut-off does not fit."""
        if self.evaluator is not None:
            if self.evaluator.n > n_items - 1:
                fits = [k for k in self.evaluator.ks if k <= n_items - 1] or [min(10, n_items - 1)]
                advice = f"--topk='{fits}'"
                metric, _, cut = str(valid_metric or "").partition("@")
                if cut.isdecimal() and int(cut) not in fits:
                    advice += f" --valid_metric={metric}@{max(fits)}"
                raise ConfigError("topk", list(self.evaluator.ks), f"at most the {n_items - 1} items of "
                                  "the catalogue (the padding item is never recommended); for this "
                                  f"dataset e.g. {advice}")
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
    alpha_search: AlphaSearchSpec | None = None
    threads: int | None = None  # torch's intra-op threads (None: torch's default)

    @classmethod
    def from_config(cls, config, model_class) -> "RunSpec":
        """Read and check every key and every rule between keys; raises :class:`ConfigError`
        (or :class:`DatasetNotFoundError`, :class:`~recbole_croloss.errors.DatasetFileError`)
        before any data is loaded."""
        warnings = tuple(unknown_key_warnings(config))
        search = AlphaSearchSpec.from_config(config)  # before the evaluation: it sets valid_metric
        training = search.candidate_trainings(lambda options: TrainingSpec.from_config(config, options))[0] \
            if search else TrainingSpec.from_config(config)
        training.check_model(model_class)
        evaluation = EvaluationSpec.from_config(config)  # metrics and topk, before valid_metric
        check_recbole_settings(config)
        protocol = protocol_from_config(config)
        serving = ServingSpec.from_config(config)
        processes = DistributedSpec.from_config(config)
        check_serving(serving, evaluation, protocol, processes, config, model_class, training)
        schedule = ScheduleSpec.from_config(config, model_class)
        if search is not None:
            search.check_run(config, processes.distributed, model_class)
        dataset = read_inter_file(dataset_file(config), config)
        return cls(model_class, training, evaluation, protocol, serving, processes, dataset,
                   ResumeSpec.from_config(config, processes), warnings + dataset.warnings, schedule, search,
                   threads_from_config(config))

    def for_candidate(self, config, candidate) -> "RunSpec":
        """This run with an ``alpha: auto`` candidate's loss."""
        return replace(self, training=TrainingSpec.from_config(config, candidate.options))


def threads_from_config(config) -> int | None:
    """``threads``: torch's intra-op threads for the run (the CLI's twin of the benchmark
    runner's ``--threads``); unset leaves torch's default."""
    value = config["threads"]
    return None if value is None else check_int("threads", value, 1)


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
