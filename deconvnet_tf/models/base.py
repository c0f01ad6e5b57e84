"""Behaviour shared by the DeconvNet and FCN model classes (config, validation, freezing)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import keras

from deconvnet_tf.models.presets import Architecture

__all__ = ["SegmentationModel", "built_channels_last"]


def built_channels_last(init):
    """Decorator of the model constructors: the network is built with Keras'
    ``image_data_format()`` set to ``"channels_last"`` (and the global setting restored
    after), so a program that set ``"channels_first"`` still gets (and loads) the
    ``(batch, height, width, 3)`` network these models are: their preprocessing, crops and
    pooling layers are channels_last."""

    @functools.wraps(init)
    def wrapper(*args, **kwargs):
        before = keras.config.image_data_format()
        keras.config.set_image_data_format("channels_last")
        try:
            return init(*args, **kwargs)
        finally:
            keras.config.set_image_data_format(before)

    return wrapper


class SegmentationModel(keras.Model):
    """Base class of the functional segmentation models of this package.

    Subclasses build their graph in ``__init__`` and pass ``inputs``/``outputs`` to
    :meth:`_init_functional`; this class stores the constructor arguments so that
    ``get_config``/``from_config`` (and so ``.keras`` files) round-trip.
    """

    def _init_functional(
        self,
        inputs,
        outputs,
        *,
        architecture: Architecture,
        input_shape: Sequence[int | None],
        output_activation: str | None,
        mean: Sequence[float],
        frozen_blocks: int,
        **kwargs,
    ):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.architecture = architecture
        self.image_shape = tuple(input_shape)
        self.output_activation = output_activation
        self.mean = tuple(float(m) for m in mean)
        self.frozen_blocks = int(frozen_blocks)
        self._freeze(self.frozen_blocks)

    @staticmethod
    def _check_input_shape(arch: Architecture, input_shape, preset_name: str) -> tuple:
        try:
            if isinstance(input_shape, (str, bytes)):
                raise TypeError
            shape = tuple(None if d is None else int(d) for d in input_shape)
        except (TypeError, ValueError):
            shape = ()
        if len(shape) != 3 or shape[-1] not in (None, 3):
            raise ValueError(
                f"input_shape must be (height, width, 3) with height/width None or ints, got "
                f"{input_shape!r}"
            )
        minimum = arch.min_input_size()
        for axis, size in zip(("height", "width"), shape[:2]):
            if size is not None and size < minimum:
                why = (f"after {len(arch.blocks)} poolings fc6 needs a "
                       f"{arch.fc_kernel}x{arch.fc_kernel} window"
                       if arch.family == "deconvnet" else
                       f"its encoder downsamples {arch.reduction}x")
                raise ValueError(
                    f"Input {axis} {size} is too small for {preset_name}: {why}; the minimum "
                    f"input size is {minimum}x{minimum}."
                )
        return shape

    @staticmethod
    def _output_head(x, activation: str | None):
        if activation is None:
            return x
        if activation != "softmax":
            raise ValueError(f"output_activation must be None or 'softmax', got {activation!r}")
        return keras.layers.Softmax(name="probabilities", dtype="float32")(x)

    def _freeze(self, blocks: int) -> None:
        if not 0 <= blocks <= len(self.architecture.blocks):
            raise ValueError(
                f"frozen_blocks must be in [0, {len(self.architecture.blocks)}], got {blocks}"
            )
        prefixes = self._frozen_prefixes(blocks)
        for layer in self.layers:
            if prefixes and layer.name.startswith(prefixes):
                layer.trainable = False

    def _frozen_prefixes(self, blocks: int) -> tuple[str, ...]:
        """Name prefixes of the layers that ``frozen_blocks=blocks`` freezes."""
        return tuple(f"block{i}_conv" for i in range(1, blocks + 1))

    @property
    def min_input_size(self) -> int:
        """Smallest height/width this model accepts."""
        return self.architecture.min_input_size()

    def _base_config(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture.to_dict(),
            "input_shape": list(self.image_shape),
            "output_activation": self.output_activation,
            "mean": list(self.mean),
            "frozen_blocks": self.frozen_blocks,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("trainable", None)
        return cls(**config)
