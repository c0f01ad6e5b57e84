"""The VGG16-style encoder shared by DeconvNet and FCN.

Layer names follow ``keras.applications.VGG16`` (``block1_conv1`` ... ``block5_conv3``,
``block1_pool`` ...) so pretrained weights load by name.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from deconvnet_tf.layers import conv_block
from deconvnet_tf.models.presets import Architecture

__all__ = ["vgg_encoder", "encoder_conv_names"]


def encoder_conv_names(arch: Architecture) -> list[str]:
    """Names of the encoder's conv layers, in order (``block1_conv1``, ...)."""
    return [
        f"block{i}_conv{j}"
        for i, (_, convs) in enumerate(arch.blocks, start=1)
        for j in range(1, convs + 1)
    ]


def vgg_encoder(x, arch: Architecture, make_pool: Callable[[str], keras.layers.Layer]):
    """Applies the encoder blocks of ``arch`` to ``x``.

    Args:
        x: The preprocessed image tensor.
        arch: The architecture.
        make_pool: Called with a layer name (``block{i}_pool``); returns the pooling layer. A
            layer that returns ``(pooled, switches)`` keeps its switches.

    Returns:
        ``(x, pools)``: the last pooled tensor, and per block a tuple
        ``(pool_input, pooled, switches_or_None)``.
    """
    pools = []
    for i, ((_, convs), filters) in enumerate(
        zip(arch.blocks, arch.encoder_filters()), start=1
    ):
        for j in range(1, convs + 1):
            x = conv_block(x, filters, 3, name=f"block{i}_conv{j}", batchnorm=arch.batchnorm, bn_momentum=arch.bn_momentum)
        pool_input = x
        out = make_pool(f"block{i}_pool")(x)
        if isinstance(out, (list, tuple)):
            x, switches = out
        else:
            x, switches = out, None
        pools.append((pool_input, x, switches))
    return x, pools
