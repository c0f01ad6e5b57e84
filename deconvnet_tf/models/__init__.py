"""Models of the DeconvNet family: presets (data), builders, pretrained encoder weights,
loading and the registry of shipped models.

The ``Segmenter`` task lives in :mod:`deconvnet_tf.inference.segmenter` (it predicts through
the predictor of :mod:`deconvnet_tf.inference.predict`); ``deconvnet_tf.Segmenter`` and
``deconvnet_tf.load_model`` are the public names (they register the Segmenter for ``.keras``
loading). ``deconvnet_tf.models.Segmenter`` / ``load_segmenter`` are deprecated aliases,
looked up on use."""

import importlib
import warnings

from deconvnet_tf.models.builder import build_model, with_unpooling
from deconvnet_tf.models.deconvnet import UNPOOLING_CHOICES, DeconvNet, default_unpooling
from deconvnet_tf.models.deconvnet_efficientnet import EfficientDeconvNet
from deconvnet_tf.models.ensemble import EnsembleNetwork
from deconvnet_tf.models.fcn import FCN, BilinearUpsampling
from deconvnet_tf.models.fcn_efficientnet import EfficientFCN
from deconvnet_tf.models.flops import count_flops
from deconvnet_tf.models.io import load_model, store_weights
from deconvnet_tf.models.presets import PRESETS, Architecture, get_architecture, list_presets
from deconvnet_tf.models.registry import list_models
from deconvnet_tf.models.weights import load_encoder_weights, vgg16_conv_arrays

__all__ = [
    "PRESETS",
    "UNPOOLING_CHOICES",
    "Architecture",
    "BilinearUpsampling",
    "DeconvNet",
    "EfficientDeconvNet",
    "EfficientFCN",
    "EnsembleNetwork",
    "FCN",
    "build_model",
    "count_flops",
    "default_unpooling",
    "get_architecture",
    "list_models",
    "list_presets",
    "load_encoder_weights",
    "load_model",
    "store_weights",
    "vgg16_conv_arrays",
    "with_unpooling",
]

_SEGMENTER_MODULE = "deconvnet_tf.inference.segmenter"
_SEGMENTER_NAMES = ("Segmenter", "load_segmenter")


def __getattr__(name: str):
    # Deprecated aliases, looked up on use (PEP 562), not imported: models sits below
    # inference in the layers of .importlinter.
    if name not in _SEGMENTER_NAMES:
        raise AttributeError(f"module 'deconvnet_tf.models' has no attribute {name!r}")
    warnings.warn(f"deconvnet_tf.models.{name} is deprecated; use deconvnet_tf.{name} or "
                  f"{_SEGMENTER_MODULE}.{name}", DeprecationWarning, stacklevel=2)
    value = getattr(importlib.import_module(_SEGMENTER_MODULE), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_SEGMENTER_NAMES))

