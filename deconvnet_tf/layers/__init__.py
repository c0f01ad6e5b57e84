"""Keras layers of deconvnet_tf.

Two pooling/unpooling pairs with identical results:

* :class:`MaxPoolingWithArgmax2D` / :class:`MaxUnpooling2D`: ``tf.nn.max_pool_with_argmax`` +
  ``tf.scatter_nd`` (TensorFlow backend only).
* :class:`SwitchMaxPooling2D` / :class:`SwitchUnpooling2D`: ``keras.ops`` only, for XLA,
  TFLite/LiteRT builtins and the JAX backend.

Importing this module registers every layer for ``.keras`` loading; no TensorFlow import happens
here (the argmax layers import it when they are built).
"""

from deconvnet_tf.layers.argmax_pooling import MaxPoolingWithArgmax2D, MaxUnpooling2D
from deconvnet_tf.layers.deconv import Deconv2D
from deconvnet_tf.layers.blocks import CropToReference, conv_block, deconv_block, fc_dropout
from deconvnet_tf.layers.preprocessing import (
    DECONVNET_BGR_MEAN,
    VGGPreprocessing,
    leading_preprocessing,
)
from deconvnet_tf.layers.switch_pooling import SwitchMaxPooling2D, SwitchUnpooling2D

__all__ = [
    "DECONVNET_BGR_MEAN",
    "CropToReference",
    "Deconv2D",
    "MaxPoolingWithArgmax2D",
    "MaxUnpooling2D",
    "SwitchMaxPooling2D",
    "SwitchUnpooling2D",
    "VGGPreprocessing",
    "leading_preprocessing",
    "conv_block",
    "deconv_block",
    "fc_dropout",
]
