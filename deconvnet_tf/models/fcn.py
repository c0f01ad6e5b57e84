"""FCN-32s/16s/8s (Long, Shelhamer, Darrell 2015) on the same VGG16 backbone: the baseline of
the paper and the second member of the EDeconvNet ensemble."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from deconvnet_tf.layers import (
    DECONVNET_BGR_MEAN,
    CropToReference,
    VGGPreprocessing,
    conv_block,
    fc_dropout,
)
from deconvnet_tf.models.base import SegmentationModel, built_channels_last
from deconvnet_tf.models.presets import Architecture
from deconvnet_tf.models.vgg16 import vgg_encoder

__all__ = ["FCN", "BilinearUpsampling", "upsample"]


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class BilinearUpsampling(keras.initializers.Initializer):
    """Initialises a ``Conv2DTranspose`` kernel as per-channel bilinear upsampling (as FCN).

    The kernel shape is ``(k, k, out_channels, in_channels)``; channel c maps to channel c,
    other pairs are zero.

    Example:

    >>> keras.layers.Conv2DTranspose(3, 4, strides=2, kernel_initializer=BilinearUpsampling())
    """

    def __call__(self, shape, dtype=None):
        kh, kw, out_ch, in_ch = shape
        kernel = np.zeros(shape, dtype="float32")
        factor_h, factor_w = (kh + 1) // 2, (kw + 1) // 2
        center_h = factor_h - 1 if kh % 2 == 1 else factor_h - 0.5
        center_w = factor_w - 1 if kw % 2 == 1 else factor_w - 0.5
        og_h, og_w = np.ogrid[:kh, :kw]
        filt = (1 - abs(og_h - center_h) / factor_h) * (1 - abs(og_w - center_w) / factor_w)
        for c in range(min(out_ch, in_ch)):
            kernel[:, :, c, c] = filt
        return keras.ops.convert_to_tensor(kernel, dtype=dtype or "float32")

    def get_config(self):
        return {}


def upsample(x, classes: int, factor: int, name: str):
    """A ``factor``x learned upsampling of ``classes`` score maps (FCN's ``upscore``: a
    ``2 * factor`` transposed convolution, bilinear-initialised, no bias)."""
    return keras.layers.Conv2DTranspose(
        classes,
        2 * factor,
        strides=factor,
        padding="same",
        use_bias=False,
        kernel_initializer=BilinearUpsampling(),
        name=name,
    )(x)


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class FCN(SegmentationModel):
    """Fully convolutional network (FCN-32s/16s/8s) with the VGG16 encoder of DeconvNet.

    ``fc6`` is a ``fc_kernel`` x ``fc_kernel`` 'same' conv, ``fc7`` 1x1 (BN + ReLU as in the
    encoder), ``score_fr`` 1x1 to the classes; FCN-16s/8s add 1x1 scores of the last two/three
    pools (``score_pool4``/``score_pool3`` for VGG16, zero-initialised), fused after 2x learned
    upsampling (bilinear-initialised transposed convs); the final upsampling is cropped to the
    input size. Layer names of the encoder match DeconvNet's, so encoder weights transfer.

    Args:
        architecture: An ``Architecture`` with family ``fcn32s``, ``fcn16s`` or ``fcn8s``.
        input_shape: ``(height, width, 3)``; ``None`` for any size.
        output_activation: ``None`` (logits) or ``"softmax"``.
        mean: BGR mean of the preprocessing layer.
        frozen_blocks: Number of leading encoder blocks to freeze.
        name: Model name.
        **kwargs: Passed to ``keras.Model``.

    Example:

    >>> model = FCN(get_architecture("fcn8s_tiny"), input_shape=(32, 32, 3))
    >>> model(np.zeros((1, 32, 32, 3))).shape
    (1, 32, 32, 21)
    """

    @built_channels_last
    def __init__(
        self,
        architecture: Architecture | dict[str, Any],
        input_shape: Sequence[int | None] = (None, None, 3),
        output_activation: str | None = None,
        mean: Sequence[float] = DECONVNET_BGR_MEAN,
        frozen_blocks: int = 0,
        name: str = "fcn",
        **kwargs,
    ):
        arch = architecture if isinstance(architecture, Architecture) else Architecture(**architecture)
        if arch.family not in ("fcn32s", "fcn16s", "fcn8s"):
            raise ValueError(f"FCN needs family fcn32s, fcn16s or fcn8s, got {arch.family!r}")
        shape = self._check_input_shape(arch, input_shape, name)
        classes = arch.num_classes
        bn = arch.batchnorm

        inputs = keras.Input(shape, name="image")
        image = VGGPreprocessing(mean, name="preprocessing")(inputs)
        x, pools = vgg_encoder(
            image,
            arch,
            lambda n: keras.layers.MaxPooling2D(2, 2, padding=arch.pool_padding, name=n),
        )
        x = conv_block(x, arch.fc_filters, arch.fc_kernel, name="fc6", batchnorm=bn, bn_momentum=arch.bn_momentum)
        x = fc_dropout(x, arch.fc_dropout, "fc6_dropout")
        x = conv_block(x, arch.fc_filters, 1, name="fc7", batchnorm=bn, bn_momentum=arch.bn_momentum)
        x = fc_dropout(x, arch.fc_dropout, "fc7_dropout")
        score = keras.layers.Conv2D(classes, 1, name="score_fr")(x)

        n_skips = {"fcn32s": 0, "fcn16s": 1, "fcn8s": 2}[arch.family]
        n_blocks = len(arch.blocks)
        for k in range(n_skips):
            block = n_blocks - 1 - k  # pool4, then pool3 for VGG16
            pooled = pools[block - 1][1]
            up = upsample(score, classes, 2, name=f"upscore_pool{block + 1}")
            skip = keras.layers.Conv2D(
                classes, 1, kernel_initializer="zeros", name=f"score_pool{block}"
            )(pooled)
            up = CropToReference(name=f"crop_pool{block}")([up, skip])
            score = keras.layers.Add(name=f"fuse_pool{block}")([up, skip])
        factor = 2 ** (n_blocks - n_skips)
        up = upsample(score, classes, factor, name=f"upscore{factor}")
        # cropped to the preprocessed image (same size), so the network after the
        # preprocessing layer is a sub-model of its own (the int8 TFLite export and
        # EnsembleNetwork need that)
        x = CropToReference(name="score", dtype="float32")([up, image])
        outputs = self._output_head(x, output_activation)

        self._init_functional(
            inputs,
            outputs,
            architecture=arch,
            input_shape=shape,
            output_activation=output_activation,
            mean=mean,
            frozen_blocks=frozen_blocks,
            name=name,
            **kwargs,
        )

    def get_config(self):
        return self._base_config()
