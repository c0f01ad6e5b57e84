"""deconvnet-tf: DeconvNet (Noh et al. 2015) for TensorFlow/Keras, and Zeiler-Fergus
deconvnet visualisation.

Public API::

    import deconvnet_tf
    deconvnet_tf.list_presets()
    model = deconvnet_tf.build_model("deconvnet_vgg16", num_classes=21)
    model = deconvnet_tf.load_model("model.keras")

Importing the package imports Keras (and so its active backend) and registers the custom
layers; TensorFlow-only parts (argmax pooling, tf.data, export) import TensorFlow when used.
"""

from deconvnet_tf.models import build_model, list_presets, load_model

__version__ = "0.1.0"

__all__ = ["__version__", "build_model", "list_presets", "load_model"]
