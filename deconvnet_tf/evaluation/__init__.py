"""Evaluation: segmentation metrics, ``evaluate()`` of a model on a dataset split at native
resolution (behind ``deconvnet-evaluate``) and the paper's method comparison (Table 1).

Modules:

* ``metrics``: :class:`~deconvnet_tf.evaluation.metrics.SegmentationReport`,
  ``report_from_confusion``, ``mean_iou_metric`` (Keras ``MeanIoU`` with the void label);
* ``evaluate``: ``evaluate``, ``save_report``, ``predict_native``, ``load_model_file``;
* ``compare``: ``compare_methods`` (DeconvNet, EDeconvNet, FCN-8s, + CRF on any split).

Layer: above :mod:`deconvnet_tf.inference` / :mod:`deconvnet_tf.visualize`, below
:mod:`deconvnet_tf.training` / :mod:`deconvnet_tf.export` (see ``.importlinter``).

The names below are imported on first use (PEP 562): importing this package loads neither
Keras nor TensorFlow. ``evaluate()`` is not among them (the name is its module's):
``from deconvnet_tf.evaluation.evaluate import evaluate``.
"""

from __future__ import annotations

import importlib

__all__ = ["SegmentationReport", "compare_methods", "report_from_confusion", "save_report"]

_LAZY = {
    "SegmentationReport": "deconvnet_tf.evaluation.metrics",
    "report_from_confusion": "deconvnet_tf.evaluation.metrics",
    "save_report": "deconvnet_tf.evaluation.evaluate",
    "compare_methods": "deconvnet_tf.evaluation.compare",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'deconvnet_tf.evaluation' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
