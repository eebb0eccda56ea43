"""The run's configuration: RecBole's Config with the plugin's defaults beneath the user's.

Files, lowest precedence first: ``properties/overall.yaml``, the plugin model's
``properties/model/<Model>.yaml``, the dataset's ``properties/dataset/<dataset>.yaml`` (or, for a
dataset without one, ``properties/unknown_dataset.yaml``: the paper's batch and history), then
the user's ``config_file_list``, ``config_dict`` and command-line settings, as RecBole merges them.
"""
from __future__ import annotations

import difflib
import functools
import os

import yaml

from .. import distributed
from ..compat import CompatConfig
from ..errors import ConfigError

PROPERTIES_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "properties")  # the package's


def model_properties(name: str) -> str | None:
    """The plugin's default YAML for model ``name``, if it has one."""
    path = os.path.join(PROPERTIES_DIR, "model", f"{name}.yaml")
    return path if os.path.isfile(path) else None


def dataset_properties(dataset: str) -> str | None:
    """The plugin's default YAML for ``dataset``, if it has one."""
    path = os.path.join(PROPERTIES_DIR, "dataset", f"{dataset}.yaml")
    return path if os.path.isfile(path) else None


#: Defaults for a dataset the plugin has no YAML for (the paper's n_bs and history length).
UNKNOWN_DATASET_PROPERTIES = os.path.join(PROPERTIES_DIR, "unknown_dataset.yaml")


def read_yaml(path: str, key: str):
    """The YAML document at ``path``; a file that cannot be read or parsed is a ConfigError
    naming ``key`` (the setting or argument that named the file)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except OSError as err:
        raise ConfigError(key, path, f"it cannot be read ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(key, path, f"it is not valid YAML: {err}") from None


def yaml_settings(paths) -> dict:
    """The keys and values of YAML ``paths`` (later files win), each file named in its error."""
    values = {}
    for path in paths:
        loaded = read_yaml(path, "config_files")
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError("config_files", path, "a YAML mapping of key: value lines")
        values.update(loaded or {})
    return values


#: List-valued keys whose default is unset, so that their default does not say they take a list.
LIST_KEYS_WITHOUT_DEFAULT = ("alpha_search_kernels", "alias_of_user_id", "alias_of_item_id",
                             "alias_of_entity_id", "alias_of_relation_id", "normalize_field")


def read_list(key: str, value):
    """A command-line value of list-valued ``key`` as RecBole's ``eval`` left it, as a list where
    it is written as one: ``[Hit,NDCG]`` and ``Hit,NDCG`` (YAML's flow list, the items' quotes
    optional), ``5,10`` (a tuple to eval); a single value stays as it is (RecBole takes ``Hit``
    as ``[Hit]``)."""
    if isinstance(value, tuple):
        return list(value)
    if not isinstance(value, str) or not (value.lstrip().startswith("[") or "," in value):
        return value
    text = value.strip() if value.lstrip().startswith("[") else f"[{value}]"
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        parsed = None
    if not isinstance(parsed, list):
        raise ConfigError(key, value, f"{key} takes a list, written --{key}=[a,b] or, with spaces, "
                          f"quoted for the shell: --{key}='[a, b]'")
    return parsed


class PluginConfig(CompatConfig):
    """RecBole's Config, with the plugin's defaults under the user's files and explicit
    command-line settings (RecBole's own reads ``sys.argv``, whatever program is running).

    ``user_settings`` holds the keys the user gave (files, ``config_dict``, command line) and
    ``plugin_settings`` the plugin's own defaults, so that a typo can be told from a key."""

    def __init__(self, model, dataset, config_file_list=None, config_dict=None, cmd_args=None):
        self._cmd_args = dict(cmd_args or {})
        user_files = list(config_file_list or [])
        own = dataset_properties(dataset)
        self.plugin_files = [os.path.join(PROPERTIES_DIR, "overall.yaml")]
        self.plugin_files += [p for p in (model_properties(getattr(model, "__name__", str(model))),
                                          own or UNKNOWN_DATASET_PROPERTIES) if p]
        self.plugin_settings = yaml_settings(self.plugin_files)
        self.user_settings = {**yaml_settings(user_files), **dict(config_dict or {}), **self._cmd_args}
        self.has_own_dataset_properties = own is not None
        try:
            super().__init__(model=model, dataset=dataset,
                             config_file_list=self.plugin_files + user_files, config_dict=config_dict)
        except ConfigError:
            raise
        except (ValueError, TypeError, NotImplementedError, KeyError) as err:  # RecBole refusing a setting
            raise self._refusal(err) from None
        self.user_settings.update(self.cmd_config_dict)  # command-line values as RecBole parsed them
        #: The settings the data protocol chose for keys the user left unset (logged by the run).
        self.protocol_defaults = self._apply_protocol_defaults()
        if "data_path" in self.user_settings:
            # RecBole 1.2.1 points ml-100k at its bundled copy whatever data_path says.
            self.final_config_dict["data_path"] = os.path.join(str(self.user_settings["data_path"]), dataset)

    def _refusal(self, err: Exception) -> ConfigError:
        """RecBole's error about a setting, as a :class:`ConfigError` naming the user's key."""
        message = str(err)
        if isinstance(err, KeyError) and "metrics" in self.user_settings:
            # RecBole takes the evaluation type from the metrics: with none it pops an empty set
            return ConfigError("metrics", self.user_settings["metrics"], "at least one metric, e.g. "
                               "[Recall, NDCG, Hit, MRR]")
        named = [k for k in self.user_settings if k in message]
        if not named and "metric" in message:
            named = [k for k in ("metrics", "valid_metric") if k in self.user_settings]
        if not named:
            raise err
        key = max(named, key=len)
        return ConfigError(key, self.user_settings[key], f"RecBole refuses it: {message}")

    def _load_cmd_line(self):
        return self._convert_config_dict(dict(self._cmd_args))

    def _get_final_config_dict(self):
        # RecBole reads a command-line value with eval, so a list of names ([Hit,NDCG]) fails and
        # stays one string; a list-valued key (its default a list) is read as a YAML list instead.
        # This runs once RecBole's defaults for the model and the dataset are known.
        defaults = {**self.internal_config_dict, **self.plugin_settings}
        list_keys = {k for k, v in defaults.items() if isinstance(v, list)} | set(LIST_KEYS_WITHOUT_DEFAULT)
        for key in list_keys & set(self.cmd_config_dict):
            self.cmd_config_dict[key] = read_list(key, self.cmd_config_dict[key])
        self._merge_external_config_dict()
        return super()._get_final_config_dict()

    def _apply_protocol_defaults(self) -> dict:
        """Under ``protocol: sampled``, ReChorus's ``topk``, ``metrics`` and ``valid_metric`` for
        those the user did not set (the plugin's cut-offs, 50 to 500, do not fit 1 + 99
        candidates); the keys filled, with their values."""
        if self.final_config_dict.get("protocol") != "sampled":
            return {}
        from recbole.evaluator import smaller_metrics

        from ..data.sampled_protocol import evaluation_defaults

        filled = evaluation_defaults(self.final_config_dict, set(self.user_settings))
        self.final_config_dict.update(filled)
        if "valid_metric" in filled:  # RecBole derived the direction from the plugin's valid_metric
            name = filled["valid_metric"].split("@")[0].lower()
            self.final_config_dict["valid_metric_bigger"] = name not in smaller_metrics
        return filled

    def _init_device(self):
        # A distributed run (``local_rank`` set) joins its process group on NCCL or Gloo; RecBole
        # 1.2.1 hard-codes NCCL and a CUDA device, so it cannot run on CPUs.
        if "local_rank" not in self.final_config_dict:
            return super()._init_device()
        distributed.init_process_group(self.final_config_dict)

    def unknown_keys(self, extra_known=()) -> list[tuple[str, str | None, bool]]:
        """``[(key, closest known key or None, the closest is the plugin's own)]`` for each key
        the user gave that neither RecBole nor the plugin reads."""
        recbole = set(self.internal_config_dict) | set(RECBOLE_RUN_KEYS)
        for keys in self.parameters.values():
            recbole |= set(keys)
        plugin = (set(self.plugin_settings) | set(extra_known)) - recbole  # the plugin's own keys
        known = recbole | plugin | recbole_model_keys()
        out = []
        for key in self.user_settings:
            if key in known:
                continue
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
            out.append((key, close[0] if close else None, bool(close) and close[0] in plugin))
        return out


@functools.lru_cache(maxsize=1)
def recbole_model_keys() -> frozenset:
    """Every key of RecBole's model YAMLs: a key another model reads is not a typo (a shared
    settings file may hold it), only unused by this model."""
    import recbole

    folder = os.path.join(os.path.dirname(recbole.__file__), "properties", "model")
    keys = set()
    for name in os.listdir(folder):
        if name.endswith(".yaml"):
            with open(os.path.join(folder, name), encoding="utf-8") as fh:
                keys |= set(yaml.safe_load(fh) or {})
    return frozenset(keys)


#: Keys RecBole reads that have no default in its YAML files.
RECBOLE_RUN_KEYS = ("local_rank", "model", "dataset", "config_files", "data_path")
