"""Parameter and FLOP counts of built models."""

from __future__ import annotations

import math

import keras

__all__ = ["count_flops"]


def _spatial(shape) -> int:
    return int(math.prod(shape[1:3]))


def count_flops(model: keras.Model, input_size: tuple[int, int] | None = None) -> int:
    """Counts the FLOPs of one forward pass of one image (2 x multiply-adds).

    Counts convolutions, depthwise convolutions and transposed convolutions (everything else
    is negligible here).

    Args:
        model: A model of this package (or any model built from Conv2D/Conv2DTranspose).
        input_size: ``(height, width)`` to count at. Needed when the model's spatial input is
            dynamic; the model is then rebuilt at that size from its config (no weights copied).

    Returns:
        FLOPs per image.
    """
    in_shape = model.inputs[0].shape
    if input_size is not None and tuple(in_shape[1:3]) != tuple(input_size):
        config = dict(model.get_config())
        config["input_shape"] = [int(input_size[0]), int(input_size[1]), in_shape[3]]
        model = type(model).from_config(config)
    elif None in in_shape[1:3]:
        raise ValueError("count_flops: the model has a dynamic input size; pass input_size=(H, W)")
    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            kh, kw = layer.kernel_size
            cin, cout = layer.input.shape[-1], layer.filters
            flops += 2 * _spatial(layer.input.shape) * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            cout = layer.input.shape[-1] * layer.depth_multiplier
            flops += 2 * _spatial(layer.output.shape) * kh * kw * cout
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            cin, cout = layer.input.shape[-1], layer.filters
            flops += 2 * _spatial(layer.output.shape) * kh * kw * cin * cout
    return flops
