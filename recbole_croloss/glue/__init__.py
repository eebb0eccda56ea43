"""The RecBole glue: which models the plugin trains (:mod:`.support`), the adapter that trains
them with any loss (:mod:`.adapter`), the evaluation masks (:mod:`.masks`), RecBole's trainer
with the plugin's evaluator (:mod:`.trainer`) and its checkpoints (:mod:`.checkpoint`), and the
training split's item counts the frequency-based samplers draw by (:mod:`.item_counts`).

Above the models and the torch-only bottom (loss, evaluation, scoring, samplers, distributed);
below the run flow (:mod:`recbole_croloss.settings.spec`, :mod:`recbole_croloss.flow`).
"""
from .adapter import CROLossAdapter
from .item_counts import training_item_counts
from .masks import EVAL_MASKS, EvalMask
from .support import SUPPORTED, UNSUPPORTED, UnsupportedModelError, check_model_class, get_model, is_plugin_model

__all__ = ["CROLossAdapter", "EVAL_MASKS", "EvalMask", "SUPPORTED", "UNSUPPORTED",
           "UnsupportedModelError", "check_model_class", "get_model", "is_plugin_model", "training_item_counts"]
