"""deconvnet-tf: DeconvNet (Noh et al. 2015) for TensorFlow/Keras, and Zeiler-Fergus
deconvnet visualisation.

Public API::

    import deconvnet_tf
    seg = deconvnet_tf.Segmenter.from_preset("camvid_compact")
    labels = seg.predict(images)            # label maps at each image's own size
    deconvnet_tf.list_presets()
    model = deconvnet_tf.build_model("deconvnet_vgg16", num_classes=21)
    model = deconvnet_tf.load_model("model.keras")

The package is lazy (PEP 562): ``import deconvnet_tf`` (and so ``import deconvnet_tf.lite``, the
phone-like runtime, and every console script's ``--help``) loads neither Keras nor TensorFlow.
The model API imports Keras on first use and registers the custom layers and the
``Segmenter`` task, so ``.keras`` files of this package load through :func:`load_model` from
any entry point. When Keras is already imported, ``import deconvnet_tf`` registers them at once
(for ``keras.saving.load_model``); otherwise ``import deconvnet_tf.inference.segmenter`` (or
using ``deconvnet_tf.Segmenter``) does; ``import deconvnet_tf.models`` registers the layers
and networks only. Where Keras is not
installed, :mod:`deconvnet_tf.lite` and :mod:`deconvnet_tf.render` work and the model API
raises an ``ImportError`` that says what is missing.
"""

from __future__ import annotations

import importlib
import sys

__version__ = "0.1.0"

__all__ = ["Segmenter", "__version__", "build_model", "list_models", "list_presets",
           "load_model"]

_LAZY = {
    "Segmenter": "deconvnet_tf.inference.segmenter",
    "list_models": "deconvnet_tf.models",
    "build_model": "deconvnet_tf.models",
    "list_presets": "deconvnet_tf.models",
    "load_model": "deconvnet_tf.inference.segmenter",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'deconvnet_tf' has no attribute {name!r}")
    try:
        import keras  # noqa: F401
    except ImportError as error:  # e.g. the LiteRT-only runtime: no Keras, no TensorFlow
        raise ImportError(
            f"deconvnet_tf.{name} needs Keras and a backend (pip install deconvnet-tf installs "
            f"them); without them only deconvnet_tf.lite and deconvnet_tf.render work. Import "
            f"failed with: {error}"
        ) from error
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


if "keras" in sys.modules:  # Keras is loaded already: register the layers and the Segmenter now
    importlib.import_module("deconvnet_tf.inference.segmenter")
