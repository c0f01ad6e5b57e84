"""Models of the DeconvNet family: presets (data), builders, pretrained encoder weights, the
``Segmenter`` task and the registry of shipped models."""

from deconvnet_tf.models.builder import build_model, with_unpooling
from deconvnet_tf.models.deconvnet import UNPOOLING_CHOICES, DeconvNet, default_unpooling
from deconvnet_tf.models.fcn import FCN, BilinearUpsampling
from deconvnet_tf.models.flops import count_flops
from deconvnet_tf.models.io import load_model
from deconvnet_tf.models.presets import PRESETS, Architecture, get_architecture, list_presets
from deconvnet_tf.models.registry import list_models
from deconvnet_tf.models.segmenter import Segmenter, load_segmenter
from deconvnet_tf.models.weights import load_encoder_weights, vgg16_conv_arrays

__all__ = [
    "PRESETS",
    "UNPOOLING_CHOICES",
    "Architecture",
    "BilinearUpsampling",
    "DeconvNet",
    "FCN",
    "Segmenter",
    "build_model",
    "count_flops",
    "default_unpooling",
    "get_architecture",
    "list_models",
    "list_presets",
    "load_encoder_weights",
    "load_model",
    "load_segmenter",
    "vgg16_conv_arrays",
    "with_unpooling",
]
