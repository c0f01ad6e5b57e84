"""The paper's input preprocessing as a layer: RGB -> BGR and subtract the VGG mean (and, for
encoders trained on scaled inputs, multiply by a scale)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from deconvnet_tf.layers._utils import mark_built, shape_tuple

__all__ = ["VGGPreprocessing", "DECONVNET_BGR_MEAN", "leading_preprocessing"]

#: BGR mean of the original DeconvNet/VGG16 Caffe models.
DECONVNET_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class VGGPreprocessing(keras.layers.Layer):
    """Turns raw RGB images (0..255, any dtype) into Caffe-VGG input: BGR minus the mean.

    Putting this inside the model means exported models take raw uint8 RGB images.

    Args:
        mean: Per-channel mean to subtract, in the order of the *output* channels (BGR when
            ``bgr=True``). Defaults to DeconvNet's (104.008, 116.669, 122.675).
        bgr: Reverse the channel order (RGB -> BGR) before subtracting the mean.
        scale: Multiplies the result (1: VGG16's Caffe input; ``1/128`` with mean 127 and
            ``bgr=False``: the ``[-1, 1]`` input of EfficientNet-Lite).
        **kwargs: Base ``keras.layers.Layer`` arguments.

    Input shape:
        ``(batch, height, width, 3)``, RGB values in [0, 255].

    Output shape:
        Same shape, in the layer's compute dtype.

    Example:

    >>> VGGPreprocessing()(np.full((1, 2, 2, 3), 255, "uint8"))[0, 0, 0]  # ~ [150.99, 138.33, 132.32]
    """

    def __init__(
        self, mean: Sequence[float] = DECONVNET_BGR_MEAN, bgr: bool = True,
        scale: float = 1.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.mean = tuple(float(m) for m in mean)
        if len(self.mean) != 3:
            raise ValueError(f"`mean` must have 3 values (one per channel), got {mean!r}")
        if not isinstance(bgr, (bool, np.bool_)):
            raise ValueError(f"`bgr` must be True or False, got {bgr!r}")
        self.bgr = bool(bgr)
        self.scale = float(scale)
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"`scale` must be a finite number > 0, got {scale!r}")
        mark_built(self)

    def _check_channels(self, shape) -> None:
        dims = shape_tuple(shape)  # None: unknown rank
        channels = dims[-1] if dims else None
        if channels is not None and channels != 3:
            raise ValueError(f"{self.name}: expected RGB images (..., height, width, 3), got "
                             f"shape {dims} ({channels} channels)")

    def call(self, inputs):
        self._check_channels(getattr(inputs, "shape", None))
        x = ops.cast(inputs, self.compute_dtype)
        if self.bgr:
            x = ops.flip(x, axis=-1)
        x = x - ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)
        return x if self.scale == 1.0 else x * ops.cast(self.scale, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        self._check_channels(input_shape)
        return tuple(input_shape)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"mean": self.mean, "bgr": self.bgr})
        if self.scale != 1.0:  # the VGG models' saved configs stay as they were
            config["scale"] = self.scale
        return config


def leading_preprocessing(model) -> VGGPreprocessing | None:
    """The model's :class:`VGGPreprocessing` when it is its only one and its first layer after
    the input (the networks of this package), else ``None``. The rest of such a network is a
    sub-network of its own (the int8 TFLite export and ``EnsembleNetwork`` split it there)."""
    layers = [layer for layer in model.layers if isinstance(layer, VGGPreprocessing)]
    if len(layers) != 1 or len(model.layers) < 2 or model.layers[1] is not layers[0]:
        return None
    return layers[0]
