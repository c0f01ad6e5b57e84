"""The DeconvNet model (Noh, Hong, Han, ICCV 2015) and its reduced variants."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import keras

from deconvnet_tf._backend import backend_name
from deconvnet_tf.layers import (
    DECONVNET_BGR_MEAN,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    SwitchMaxPooling2D,
    SwitchUnpooling2D,
    VGGPreprocessing,
    conv_block,
    deconv_block,
    fc_dropout,
)
from deconvnet_tf.models.base import SegmentationModel, built_channels_last
from deconvnet_tf.models.presets import Architecture
from deconvnet_tf.models.vgg16 import vgg_encoder

__all__ = ["DeconvNet", "UNPOOLING_CHOICES", "default_unpooling"]

logger = logging.getLogger(__name__)

UNPOOLING_CHOICES = ("argmax", "switch")


def default_unpooling() -> str:
    """``"argmax"`` on the TensorFlow backend, ``"switch"`` on every other backend."""
    return "argmax" if backend_name() == "tensorflow" else "switch"


def _pool_pair(unpooling: str):
    if unpooling == "argmax":
        return MaxPoolingWithArgmax2D, MaxUnpooling2D
    if unpooling == "switch":
        return SwitchMaxPooling2D, SwitchUnpooling2D
    raise ValueError(f"unpooling must be one of {UNPOOLING_CHOICES}, got {unpooling!r}")


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class DeconvNet(SegmentationModel):
    """DeconvNet: VGG16 encoder with pooling switches, mirrored unpooling/deconvolution decoder.

    Layout (paper, ``deconvnet_vgg16``): preprocessing (RGB->BGR, minus the VGG mean);
    ``block{i}_conv{j}`` 3x3 conv + BN + ReLU and ``block{i}_pool`` 2x2/2 pooling with switches;
    ``fc6`` (7x7 valid conv) and ``fc7`` (1x1), BN + ReLU; ``fc6_deconv`` (7x7 valid transposed
    conv); per block in reverse ``block{i}_unpool`` then ``block{i}_deconv{j}`` (3x3 transposed
    conv + BN + ReLU); ``score`` (1x1 conv to ``num_classes``, float32 logits).

    Prefer :func:`deconvnet_tf.build_model` with a preset name to building this directly.

    Args:
        architecture: An :class:`~deconvnet_tf.models.presets.Architecture` (or its dict).
        input_shape: ``(height, width, 3)``; ``None`` dimensions accept any size the
            architecture allows (see ``min_input_size``).
        unpooling: ``"argmax"`` (``tf.nn.max_pool_with_argmax`` + ``tf.scatter_nd``,
            TensorFlow only) or ``"switch"`` (``keras.ops`` switch masks: XLA, TFLite, JAX).
            ``None`` picks ``"argmax"`` on TensorFlow and ``"switch"`` elsewhere. Both give the
            same outputs with the same weights.
        output_activation: ``None`` for logits or ``"softmax"`` for probabilities.
        mean: BGR mean subtracted by the preprocessing layer.
        frozen_blocks: Number of leading encoder blocks whose convs (and BN) are frozen.
        name: Model name.
        **kwargs: Passed to ``keras.Model``.

    Example:

    >>> model = DeconvNet(get_architecture("deconvnet_tiny"), input_shape=(32, 32, 3))
    >>> model(np.zeros((1, 32, 32, 3), "uint8")).shape
    (1, 32, 32, 21)
    """

    @built_channels_last
    def __init__(
        self,
        architecture: Architecture | dict[str, Any],
        input_shape: Sequence[int | None] = (None, None, 3),
        unpooling: str | None = None,
        output_activation: str | None = None,
        mean: Sequence[float] = DECONVNET_BGR_MEAN,
        frozen_blocks: int = 0,
        name: str = "deconvnet",
        **kwargs,
    ):
        arch = architecture if isinstance(architecture, Architecture) else Architecture(**architecture)
        if arch.family != "deconvnet":
            raise ValueError(f"DeconvNet needs family 'deconvnet', got {arch.family!r}")
        unpooling = unpooling or default_unpooling()
        pool_cls, unpool_cls = _pool_pair(unpooling)
        shape = self._check_input_shape(arch, input_shape, name)

        inputs = keras.Input(shape, name="image")
        x = VGGPreprocessing(mean, name="preprocessing")(inputs)
        x, pools = vgg_encoder(
            x, arch, lambda n: pool_cls(pool_size=2, strides=2, padding=arch.pool_padding, name=n)
        )
        bn = arch.batchnorm
        x = conv_block(x, arch.fc_filters, arch.fc_kernel, padding="valid", name="fc6", batchnorm=bn, bn_momentum=arch.bn_momentum)
        x = fc_dropout(x, arch.fc_dropout, "fc6_dropout")
        x = conv_block(x, arch.fc_filters, 1, name="fc7", batchnorm=bn, bn_momentum=arch.bn_momentum)
        x = fc_dropout(x, arch.fc_dropout, "fc7_dropout")
        x = deconv_block(
            x, arch.encoder_filters()[-1], arch.fc_kernel, padding="valid", name="fc6_deconv",
            batchnorm=bn, bn_momentum=arch.bn_momentum,
        )
        for i in range(len(arch.blocks), 0, -1):
            pool_input, _, switches = pools[i - 1]
            x = unpool_cls(name=f"block{i}_unpool")([x, switches, pool_input])
            for j, filters in enumerate(arch.decoder_filters(i), start=1):
                x = deconv_block(x, filters, 3, name=f"block{i}_deconv{j}", batchnorm=bn, bn_momentum=arch.bn_momentum)
        x = keras.layers.Conv2D(arch.num_classes, 1, name="score", dtype="float32")(x)
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
        self.unpooling = unpooling

    def get_config(self):
        config = self._base_config()
        config["unpooling"] = self.unpooling
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("unpooling") == "argmax" and backend_name() != "tensorflow":
            logger.warning(
                "This model was saved with unpooling='argmax' (TensorFlow only); loading it on "
                "the %s backend with unpooling='switch' (identical outputs, same weights).",
                backend_name(),
            )
            config["unpooling"] = "switch"
        return super().from_config(config)
