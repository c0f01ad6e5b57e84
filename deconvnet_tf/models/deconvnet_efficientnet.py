"""DeconvNet's decoder of learned deconvolutions on an ImageNet-pretrained EfficientNet-Lite
encoder (family ``deconvnet_efficientnet``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from deconvnet_tf.layers import (
    CropToReference,
    VGGPreprocessing,
    conv_block,
    deconv_block,
    fc_dropout,
)
from deconvnet_tf.models.base import SegmentationModel, built_channels_last
from deconvnet_tf.models.efficientnet import efficientnet_lite_encoder, stage_prefixes
from deconvnet_tf.models.presets import Architecture

__all__ = ["EfficientDeconvNet", "EfficientNetModel", "EFFICIENTNET_MEAN",
           "EFFICIENTNET_SCALE", "efficientnet_trunk"]

#: EfficientNet-Lite's input: (RGB - 127) / 128.
EFFICIENTNET_MEAN = (127.0, 127.0, 127.0)
EFFICIENTNET_SCALE = 1.0 / 128.0


def decoder_filters(arch: Architecture) -> list[int]:
    """Channels of the decoder at 1/16, 1/8, 1/4 and 1/2 of the input: twice the encoder's
    channels there (at least 32), times ``decoder_width``."""
    skip_stages = (4, 2, 1, 0)  # the stage before each stride-2 stage, coarsest first
    return [arch._scale(max(32, 2 * arch.blocks[i][0]), arch.decoder_width)
            for i in skip_stages]


def efficientnet_trunk(arch: Architecture, shape: tuple, mean: Sequence[float]):
    """The part shared by the EfficientNet families: the input, ``preprocessing`` ((RGB -
    mean) / 128), the encoder, ``fc6`` and ``fc7`` (with their dropout, if any).

    Returns:
        ``(inputs, image, x, skips)``: the ``keras.Input``, the preprocessed image, fc7's output
        at 1/32 and the encoder's features at 1/2, 1/4, 1/8 and 1/16 (finest first).
    """
    bn = {"batchnorm": arch.batchnorm, "bn_momentum": arch.bn_momentum}
    inputs = keras.Input(shape, name="image")
    image = VGGPreprocessing(mean, bgr=False, scale=EFFICIENTNET_SCALE,
                             name="preprocessing")(inputs)
    x, skips = efficientnet_lite_encoder(image, arch)
    x = conv_block(x, arch.fc_filters, arch.fc_kernel, name="fc6", **bn)
    x = fc_dropout(x, arch.fc_dropout, "fc6_dropout")
    x = conv_block(x, arch.fc_filters, 1, name="fc7", **bn)
    x = fc_dropout(x, arch.fc_dropout, "fc7_dropout")
    return inputs, image, x, skips


class EfficientNetModel(SegmentationModel):
    """Base of the EfficientNet families: ``frozen_blocks`` freezes the stem and leading
    stages; the config is the base one."""

    def _frozen_prefixes(self, blocks: int) -> tuple[str, ...]:
        return stage_prefixes(blocks)

    def get_config(self):
        return self._base_config()


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class EfficientDeconvNet(EfficientNetModel):
    """EfficientNet-Lite encoder + DeconvNet-style decoder of learned deconvolutions.

    EfficientNet downsamples with strided convolutions, so there are no pooling switches to
    unpool with; the decoder instead upsamples with learned 4x4 stride-2 deconvolutions
    (``up{k}_deconv``) and adds the encoder's features of the same scale (``up{k}_skip``, a
    1x1 conv), then a 3x3 deconvolution (``up{k}_deconv2``); every conv/deconv has BatchNorm.
    ``fc6`` (``fc_kernel`` x ``fc_kernel``, 'same') and ``fc7`` (1x1) sit on ``top_conv`` at 1/32.

    Layout: ``preprocessing`` ((RGB - 127) / 128), ``stem_conv``, ``block1a`` ... ``block7a``
    (see :mod:`deconvnet_tf.models.efficientnet`), ``top_conv``, ``fc6``, ``fc7``, ``up4`` (1/16)
    ... ``up1`` (1/2), ``up0_deconv`` (full size, cropped to the input), ``score``.

    Prefer :func:`deconvnet_tf.build_model` with ``"deconvnet_efficientnet_lite0"`` and
    ``encoder_weights="efficientnet_lite0"``.

    Args:
        architecture: An ``Architecture`` of family ``deconvnet_efficientnet``.
        input_shape: ``(height, width, 3)``; ``None`` dimensions accept any size >= 32.
        output_activation: ``None`` (logits) or ``"softmax"``.
        mean: RGB mean subtracted before the scaling by 1/128.
        frozen_blocks: Freeze the stem and the first ``frozen_blocks`` stages (0-7).
        name: Model name.
        **kwargs: Passed to ``keras.Model``.

    Example:

    >>> model = build_model("deconvnet_efficientnet_lite0", num_classes=3)
    >>> model(np.zeros((1, 64, 96, 3), "uint8")).shape
    (1, 64, 96, 3)
    """

    @built_channels_last
    def __init__(
        self,
        architecture: Architecture | dict[str, Any],
        input_shape: Sequence[int | None] = (None, None, 3),
        output_activation: str | None = None,
        mean: Sequence[float] = EFFICIENTNET_MEAN,
        frozen_blocks: int = 0,
        name: str = "deconvnet_efficientnet",
        **kwargs,
    ):
        arch = (architecture if isinstance(architecture, Architecture)
                else Architecture(**architecture))
        if arch.family != "deconvnet_efficientnet":
            raise ValueError(f"EfficientDeconvNet needs family 'deconvnet_efficientnet', got "
                             f"{arch.family!r}")
        shape = self._check_input_shape(arch, input_shape, name)
        bn = {"batchnorm": arch.batchnorm, "bn_momentum": arch.bn_momentum}

        inputs, image, x, skips = efficientnet_trunk(arch, shape, mean)
        widths = decoder_filters(arch)
        for level, skip, filters in zip((4, 3, 2, 1), reversed(skips), widths):
            x = deconv_block(x, filters, 4, strides=2, name=f"up{level}_deconv", **bn)
            x = CropToReference(name=f"up{level}_crop")([x, skip])
            s = conv_block(skip, filters, 1, name=f"up{level}_skip", **bn)
            x = keras.layers.Add(name=f"up{level}_add")([x, s])
            x = deconv_block(x, filters, 3, name=f"up{level}_deconv2", **bn)
        x = deconv_block(x, widths[-1], 4, strides=2, name="up0_deconv", **bn)
        # cropped to the preprocessed image (same size), so the network after the
        # preprocessing layer is a sub-model of its own (the int8 TFLite export needs that)
        x = CropToReference(name="up0_crop")([x, image])
        x = keras.layers.Conv2D(arch.num_classes, 1, name="score", dtype="float32")(x)
        outputs = self._output_head(x, output_activation)

        self._init_functional(
            inputs, outputs, architecture=arch, input_shape=shape,
            output_activation=output_activation, mean=mean, frozen_blocks=frozen_blocks,
            name=name, **kwargs,
        )
