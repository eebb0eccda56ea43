"""One configured run in this process: the ``alpha: auto`` search, or a single run."""
from __future__ import annotations

from ..settings.config import PluginConfig
from ..settings.spec import RunSpec
from . import single
from .alpha_search import search_and_train
from .build import prepare


def train_configured(config: PluginConfig, spec: RunSpec, saved: bool = True, record_file: str | None = None) -> dict:
    """:func:`~.single.train_and_test` on the run :func:`~.build.prepare` builds, or for
    ``alpha: auto`` the search (:func:`~.alpha_search.search_and_train`)."""
    if spec.alpha_search is not None:
        return search_and_train(config, spec, saved, record_file)
    return single.train_and_test(prepare(config, spec), saved, record_file)
