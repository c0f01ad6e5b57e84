"""deconvnet-tf: DeconvNet (Noh et al. 2015) for TensorFlow/Keras, and Zeiler-Fergus
deconvnet visualisation.

Public API::

    import deconvnet_tf
    deconvnet_tf.list_presets()
    model = deconvnet_tf.build_model("deconvnet_vgg16", num_classes=21)
    model = deconvnet_tf.load_model("model.keras")

Importing the package imports Keras (and so its active backend) and registers the custom
layers, so ``.keras`` files of this package load from any entry point. TensorFlow-only parts
(argmax pooling, tf.data, export) import TensorFlow when used. Where Keras is not installed
(a phone-like runtime with only ``ai-edge-litert``), the package still imports and
:mod:`deconvnet_tf.lite` and :mod:`deconvnet_tf.render` work; the model API then raises an
``ImportError`` that says what is missing.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "build_model", "list_presets", "load_model"]

try:
    import keras as _keras  # noqa: F401
except ImportError as _error:  # e.g. the LiteRT-only runtime: no Keras, no TensorFlow
    _KERAS_IMPORT_ERROR: ImportError | None = _error
else:
    _KERAS_IMPORT_ERROR = None
    from deconvnet_tf.models import build_model, list_presets, load_model


def __getattr__(name: str):
    if name in ("build_model", "list_presets", "load_model") and _KERAS_IMPORT_ERROR is not None:
        raise ImportError(
            f"deconvnet_tf.{name} needs Keras and a backend (pip install deconvnet-tf installs "
            f"them); without them only deconvnet_tf.lite and deconvnet_tf.render work. Import "
            f"failed with: {_KERAS_IMPORT_ERROR}"
        )
    raise AttributeError(f"module 'deconvnet_tf' has no attribute {name!r}")
