"""Deprecated alias of :mod:`deconvnet_tf.evaluation.metrics` (moved to the evaluation package);
removed in the next release.

Importing it warns (``DeprecationWarning``, naming the new module); every name is looked up in
:mod:`deconvnet_tf.evaluation.metrics` on use (PEP 562), so this module imports nothing of it.
"""

from __future__ import annotations

from deconvnet_tf._deprecated import alias_module

__all__ = ["SegmentationReport", "mean_iou_metric", "report_from_confusion"]

alias_module(globals(), "deconvnet_tf.evaluation.metrics")
