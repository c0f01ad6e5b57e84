"""Convolution and deconvolution blocks (conv/deconv + BatchNorm + ReLU), and cropping."""

from __future__ import annotations

import keras
from keras import ops

from deconvnet_tf.layers._utils import mark_built
from deconvnet_tf.layers.deconv import Deconv2D

__all__ = ["conv_block", "deconv_block", "fc_dropout", "CropToReference"]


def conv_block(
    x,
    filters: int,
    kernel_size: int = 3,
    *,
    name: str,
    padding: str = "same",
    batchnorm: bool = True,
    bn_momentum: float = 0.99,
    activation: bool = True,
):
    """Conv2D (+ BatchNorm) (+ ReLU), as separate named layers.

    Layers are named ``name`` (the conv, e.g. ``block1_conv1`` as in keras.applications VGG16,
    so pretrained weights load by name), ``name_bn`` and ``name_relu``. The conv keeps its bias
    (pretrained VGG16 kernels come with one).

    Args:
        x: Input tensor.
        filters: Output channels.
        kernel_size: Square kernel size.
        name: Name of the conv layer; the others derive from it.
        padding: ``"same"`` or ``"valid"``.
        batchnorm: Add BatchNormalization after the conv.
        bn_momentum: Momentum of the BatchNorm moving statistics.
        activation: Add a ReLU at the end.

    Returns:
        The output tensor.
    """
    x = keras.layers.Conv2D(filters, kernel_size, padding=padding, name=name)(x)
    if batchnorm:
        x = keras.layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    if activation:
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return x


def fc_dropout(x, rate: float, name: str):
    """``keras.layers.Dropout(rate, name=name)(x)``, or ``x`` itself when ``rate`` is 0.

    Used after fc6 and fc7 (``Architecture.fc_dropout``): a rate of 0 adds no layer, so models
    without dropout keep their layer list (and their saved files) unchanged.
    """
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"dropout rate of {name!r} must be in [0, 1), got {rate!r}")
    if float(rate) == 0.0:
        return x
    return keras.layers.Dropout(float(rate), name=name)(x)


def deconv_block(
    x,
    filters: int,
    kernel_size: int = 3,
    *,
    name: str,
    strides: int = 1,
    padding: str = "same",
    batchnorm: bool = True,
    bn_momentum: float = 0.99,
    activation: bool = True,
):
    """Deconvolution block of the paper: Conv2DTranspose (+ BatchNorm) (+ ReLU).

    The transposed convolution is a :class:`~deconvnet_tf.layers.Deconv2D`: a
    ``keras.layers.Conv2DTranspose`` with fast exact stride-1 paths, same weights.

    Args:
        x: Input tensor.
        filters: Output channels.
        kernel_size: Square kernel size (3 in the decoder, 7 for ``fc6_deconv``).
        name: Name of the Conv2DTranspose layer; ``name_bn`` and ``name_relu`` follow.
        strides: Upsampling stride of the transposed convolution.
        padding: ``"same"`` or ``"valid"`` (``fc6_deconv`` is a 7x7 valid deconvolution).
        batchnorm: Add BatchNormalization.
        bn_momentum: Momentum of the BatchNorm moving statistics.
        activation: Add a ReLU at the end.

    Returns:
        The output tensor.
    """
    x = Deconv2D(filters, kernel_size, strides=strides, padding=padding, name=name)(x)
    if batchnorm:
        x = keras.layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    if activation:
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return x


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class CropToReference(keras.layers.Layer):
    """Crops ``x`` to the spatial size of ``reference`` (top-left aligned), as FCN's crop.

    Args:
        **kwargs: Base ``keras.layers.Layer`` arguments.

    Input shape:
        ``[x, reference]``, both 4D, ``x`` at least as large as ``reference`` spatially.

    Output shape:
        ``(batch, reference_height, reference_width, x_channels)``.

    Example:

    >>> CropToReference()([np.zeros((1, 8, 8, 2)), np.zeros((1, 5, 6, 1))]).shape
    (1, 5, 6, 2)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        mark_built(self)

    def call(self, inputs):
        x, reference = inputs
        self._check_shapes(tuple(x.shape), tuple(reference.shape))
        shape = ops.shape(reference)
        return x[:, : shape[1], : shape[2]]

    def compute_output_shape(self, input_shape):
        x_shape, ref_shape = input_shape
        self._check_shapes(tuple(x_shape), tuple(ref_shape))
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])

    def _check_shapes(self, x_shape, ref_shape) -> None:
        """A clear error for what the crop cannot do (known sizes only)."""
        if len(x_shape) != 4 or len(ref_shape) != 4:
            raise ValueError(f"{self.name}: expected [x, reference], both 4D, got shapes "
                             f"{x_shape} and {ref_shape}")
        for axis, what in ((1, "height"), (2, "width")):
            if None not in (x_shape[axis], ref_shape[axis]) and x_shape[axis] < ref_shape[axis]:
                raise ValueError(f"{self.name}: x {x_shape} is smaller than the reference "
                                 f"{ref_shape} in {what}; it can only be cropped, not padded")
