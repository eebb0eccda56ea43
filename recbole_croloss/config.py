"""The run's configuration: RecBole's Config with the plugin's defaults beneath the user's.

Files, lowest precedence first: ``properties/overall.yaml``, the plugin model's
``properties/model/<Model>.yaml``, the dataset's ``properties/dataset/<dataset>.yaml``, then the
user's ``config_file_list``, ``config_dict`` and command-line settings, as RecBole merges them.
"""
from __future__ import annotations

import os

from . import distributed
from .compat import CompatConfig

PROPERTIES_DIR = os.path.join(os.path.dirname(__file__), "properties")


def model_properties(name: str) -> str | None:
    """The plugin's default YAML for model ``name``, if it has one."""
    path = os.path.join(PROPERTIES_DIR, "model", f"{name}.yaml")
    return path if os.path.isfile(path) else None


def dataset_properties(dataset: str) -> str | None:
    """The plugin's default YAML for ``dataset``, if it has one."""
    path = os.path.join(PROPERTIES_DIR, "dataset", f"{dataset}.yaml")
    return path if os.path.isfile(path) else None


class PluginConfig(CompatConfig):
    """RecBole's Config, with the plugin's defaults under the user's files and explicit
    command-line settings (RecBole's own reads ``sys.argv``, whatever program is running)."""

    def __init__(self, model, dataset, config_file_list=None, config_dict=None, cmd_args=None):
        self._cmd_args = dict(cmd_args or {})
        files = [os.path.join(PROPERTIES_DIR, "overall.yaml")]
        files += [p for p in (model_properties(getattr(model, "__name__", str(model))),
                              dataset_properties(dataset)) if p]
        super().__init__(model=model, dataset=dataset,
                         config_file_list=files + list(config_file_list or []), config_dict=config_dict)

    def _load_cmd_line(self):
        return self._convert_config_dict(dict(self._cmd_args))

    def _init_device(self):
        # A distributed run (``local_rank`` set) joins its process group on NCCL or Gloo; RecBole
        # 1.2.1 hard-codes NCCL and a CUDA device, so it cannot run on CPUs.
        if "local_rank" not in self.final_config_dict:
            return super()._init_device()
        distributed.init_process_group(self.final_config_dict)
