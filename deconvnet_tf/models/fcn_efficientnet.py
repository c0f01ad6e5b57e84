"""FCN-8s's head (Long, Shelhamer, Darrell 2015) on the ImageNet-pretrained EfficientNet-Lite
encoder of ``camvid_compact`` (family ``fcn8s_efficientnet``): the paper's comparison
(DeconvNet's decoder against FCN's skips, and their EDeconvNet ensemble) on the encoder that
ships."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from deconvnet_tf.layers import CropToReference
from deconvnet_tf.models.base import built_channels_last
from deconvnet_tf.models.deconvnet_efficientnet import (
    EFFICIENTNET_MEAN,
    EfficientNetModel,
    efficientnet_trunk,
)
from deconvnet_tf.models.fcn import upsample
from deconvnet_tf.models.presets import Architecture

__all__ = ["EfficientFCN"]


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class EfficientFCN(EfficientNetModel):
    """FCN-8s on an EfficientNet-Lite encoder.

    ``fc6`` (``fc_kernel`` x ``fc_kernel``, 'same') and ``fc7`` (1x1) sit on ``top_conv`` at
    1/32, as in :class:`~deconvnet_tf.models.EfficientDeconvNet`; ``score_fr`` scores them
    (1x1 to the classes). As in FCN-8s, the scores are upsampled 2x (``upscore2``, a
    bilinear-initialised transposed convolution) and added to 1x1 scores of the encoder's
    features at 1/16 (``score_skip16``, zero-initialised), upsampled 2x again (``upscore4``)
    and added to the scores at 1/8 (``score_skip8``), then upsampled 8x (``upscore8``) and
    cropped to the input (``score``). The encoder's features at 1/16 and 1/8 are the outputs
    of its last stage at that scale (EfficientNet downsamples by strided convolutions; there
    are no pools).

    Layout: ``preprocessing`` ((RGB - 127) / 128), ``stem_conv``, ``block1a`` ... ``block7a``,
    ``top_conv``, ``fc6``, ``fc7``, ``score_fr``, ``upscore2``, ``score_skip16``,
    ``fuse_skip16``, ``upscore4``, ``score_skip8``, ``fuse_skip8``, ``upscore8``, ``score``.

    Prefer :func:`deconvnet_tf.build_model` with ``"fcn8s_efficientnet_lite0"`` and
    ``encoder_weights="efficientnet_lite0"``.

    Args:
        architecture: An ``Architecture`` of family ``fcn8s_efficientnet``.
        input_shape: ``(height, width, 3)``; ``None`` dimensions accept any size >= 32.
        output_activation: ``None`` (logits) or ``"softmax"``.
        mean: RGB mean subtracted before the scaling by 1/128.
        frozen_blocks: Freeze the stem and the first ``frozen_blocks`` stages (0-7).
        name: Model name.
        **kwargs: Passed to ``keras.Model``.

    Example:

    >>> model = build_model("fcn8s_efficientnet_lite0", num_classes=3)
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
        name: str = "fcn8s_efficientnet",
        **kwargs,
    ):
        arch = (architecture if isinstance(architecture, Architecture)
                else Architecture(**architecture))
        if arch.family != "fcn8s_efficientnet":
            raise ValueError(f"EfficientFCN needs family 'fcn8s_efficientnet', got "
                             f"{arch.family!r}")
        shape = self._check_input_shape(arch, input_shape, name)
        classes = arch.num_classes
        inputs, image, x, skips = efficientnet_trunk(arch, shape, mean)
        score = keras.layers.Conv2D(classes, 1, name="score_fr")(x)
        for up_name, scale, skip in (("upscore2", 16, skips[3]), ("upscore4", 8, skips[2])):
            up = upsample(score, classes, 2, name=up_name)
            skip_score = keras.layers.Conv2D(classes, 1, kernel_initializer="zeros",
                                             name=f"score_skip{scale}")(skip)
            up = CropToReference(name=f"crop_skip{scale}")([up, skip_score])
            score = keras.layers.Add(name=f"fuse_skip{scale}")([up, skip_score])
        up = upsample(score, classes, 8, name="upscore8")
        # cropped to the preprocessed image (same size), so the network after the
        # preprocessing layer is a sub-model of its own (the int8 TFLite export needs that)
        x = CropToReference(name="score", dtype="float32")([up, image])
        outputs = self._output_head(x, output_activation)

        self._init_functional(
            inputs, outputs, architecture=arch, input_shape=shape,
            output_activation=output_activation, mean=mean, frozen_blocks=frozen_blocks,
            name=name, **kwargs,
        )
