"""Models of the DeconvNet family: presets (data), builders, pretrained encoder weights."""

from deconvnet_tf.models.builder import build_model, with_unpooling
from deconvnet_tf.models.deconvnet import UNPOOLING_CHOICES, DeconvNet, default_unpooling
from deconvnet_tf.models.fcn import FCN, BilinearUpsampling
from deconvnet_tf.models.flops import count_flops
from deconvnet_tf.models.io import load_model
from deconvnet_tf.models.presets import PRESETS, Architecture, get_architecture, list_presets
from deconvnet_tf.models.weights import load_encoder_weights, vgg16_conv_arrays

__all__ = [
    "PRESETS",
    "UNPOOLING_CHOICES",
    "Architecture",
    "BilinearUpsampling",
    "DeconvNet",
    "FCN",
    "build_model",
    "count_flops",
    "default_unpooling",
    "get_architecture",
    "list_presets",
    "load_encoder_weights",
    "load_model",
    "vgg16_conv_arrays",
    "with_unpooling",
]
