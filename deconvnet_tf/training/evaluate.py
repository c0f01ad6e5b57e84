"""Deprecated alias of :mod:`deconvnet_tf.evaluation.evaluate` (moved to the evaluation package);
removed in the next release.

Importing it warns (``DeprecationWarning``, naming the new module); every name is looked up in
:mod:`deconvnet_tf.evaluation.evaluate` on use (PEP 562), so this module imports nothing of it.
"""

from __future__ import annotations

from deconvnet_tf._deprecated import alias_module

__all__ = [
    "ModelFileError", "check_input_size", "check_report_output", "confusion_png", "evaluate",
    "load_model_file", "predict_native", "save_report",
]

alias_module(globals(), "deconvnet_tf.evaluation.evaluate")
