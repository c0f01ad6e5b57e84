"""Shared logic of the pooling layers: argument checks, shapes, dtypes, the base class."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

__all__ = [
    "BasePooling2D",
    "check_rank4",
    "init_pooling_layer",
    "mark_built",
    "normalize_data_format",
    "normalize_pair",
    "normalize_padding",
    "pooled_length",
    "static_dim",
    "to_channels_first",
    "to_channels_last",
]


def normalize_pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """Returns ``value`` as a pair of positive ints, or raises a clear ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError(f"`{name}` must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        value = (value, value)
    try:
        pair = tuple(int(v) for v in value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"`{name}` must be an int or a pair of ints, got {value!r}") from err
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"`{name}` must be an int or a pair of positive ints, got {value!r}")
    return pair  # type: ignore[return-value]


def normalize_padding(padding: str) -> str:
    """Returns ``"valid"`` or ``"same"`` (case-insensitive), or raises ``ValueError``."""
    value = str(padding).lower()
    if value not in ("valid", "same"):
        raise ValueError(f"`padding` must be 'valid' or 'same', got {padding!r}")
    return value


def normalize_data_format(data_format: str | None) -> str:
    """``"channels_last"`` or ``"channels_first"``; ``None`` is Keras' global
    ``keras.config.image_data_format()`` (as in ``keras.layers.MaxPooling2D``)."""
    value = keras.config.image_data_format() if data_format is None else str(data_format).lower()
    if value not in ("channels_last", "channels_first"):
        raise ValueError(f"`data_format` must be 'channels_last' or 'channels_first', got "
                         f"{data_format!r}")
    return value


def to_channels_last(x):
    """``(batch, channels, height, width)`` -> ``(batch, height, width, channels)``: a tensor,
    or a shape tuple (``None`` and shapes of another rank stay as they are)."""
    if isinstance(x, tuple) or x is None:
        return x if x is None or len(x) != 4 else (x[0], x[2], x[3], x[1])
    return keras.ops.transpose(x, (0, 2, 3, 1))


def to_channels_first(x):
    """The inverse of :func:`to_channels_last` (tensors and shape tuples)."""
    if isinstance(x, tuple) or x is None:
        return x if x is None or len(x) != 4 else (x[0], x[3], x[1], x[2])
    return keras.ops.transpose(x, (0, 3, 1, 2))


def pooled_length(length: int | None, pool: int, stride: int, padding: str) -> int | None:
    """Output length of a pooling along one axis (None stays None; never negative)."""
    if length is None:
        return None
    if padding == "same":
        return math.ceil(length / stride)
    return max((length - pool) // stride + 1, 0)


def static_dim(value) -> int | None:
    """``value`` as a Python int when it is known while tracing, else ``None``."""
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):  # a symbolic dimension
        return None


def shape_tuple(shape) -> tuple:
    """A shape (TensorShape, tuple, list) as a tuple of ints/``None``; ``None`` if rank unknown."""
    if shape is None:
        return None
    try:
        return tuple(static_dim(d) for d in shape)
    except (TypeError, ValueError):  # unknown rank
        return None


def init_pooling_layer(layer: keras.layers.Layer, kwargs: dict) -> None:
    """``keras.layers.Layer.__init__`` with the pooling layers' dtype rule.

    The layers keep their input's dtype, like the TensorFlow ops (float64 stays float64, uint8
    stays uint8), except under a mixed-precision policy, where float inputs are cast to the
    compute dtype as every Keras layer does. ``autocast=`` given by the caller wins.
    """
    explicit = kwargs.pop("autocast", None)
    keras.layers.Layer.__init__(layer, **kwargs)
    policy = layer.dtype_policy
    layer.autocast = (explicit if explicit is not None
                      else policy.compute_dtype != policy.variable_dtype)


def mark_built(layer: keras.layers.Layer) -> None:
    """Marks a layer without weights as built when it is made, as Keras' pooling layers are
    (``count_params()`` works at once; a subclass that overrides ``build`` keeps it)."""
    build_at_init = getattr(layer, "_build_at_init", None)
    if build_at_init is not None:
        build_at_init()
    elif type(layer).build is keras.layers.Layer.build:
        layer.built = True


def check_rank4(layer: str, what: str, shape) -> None:
    """Raises ``ValueError`` naming ``layer`` unless ``shape`` is 4D (or of unknown rank)."""
    dims = shape_tuple(shape)
    if dims is not None and len(dims) != 4:
        raise ValueError(
            f"{layer} expects {what} of rank 4 (batch, height, width, channels), got shape "
            f"{dims} (rank {len(dims)})"
        )


def check_dtype(layer: str, dtype) -> None:
    """Raises ``ValueError`` unless ``dtype`` is a real number type (TensorFlow's rule)."""
    name = keras.backend.standardize_dtype(dtype)
    if name == "bool" or name.startswith("complex") or name == "string":
        raise ValueError(
            f"{layer} expects a real number dtype (float16/bfloat16/float32/float64 or an "
            f"integer type), got {name}"
        )


class BasePooling2D(keras.layers.Layer):
    """Base of the two max-pooling layers: arguments, output shape, config.

    Pooling layers keep their input's dtype, like the ops they wrap (float64 stays float64,
    uint8 stays uint8; under a mixed-precision policy floats are cast to the compute dtype, as
    in every Keras layer), check the rank of their input, and accept empty
    batches.

    Args:
        pool_size: int or pair, size of the pooling window.
        strides: int or pair, strides of the window (``None``: ``pool_size``).
        padding: ``"valid"`` or ``"same"`` (TensorFlow's padding rules).
        data_format: ``"channels_last"`` (``(batch, height, width, channels)``),
            ``"channels_first"`` (``(batch, channels, height, width)``) or ``None`` (Keras'
            ``image_data_format()``, normally ``"channels_last"``).
        **kwargs: Base ``keras.layers.Layer`` arguments.
    """

    def __init__(
        self,
        pool_size: int | Sequence[int] = (2, 2),
        strides: int | Sequence[int] | None = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs,
    ):
        init_pooling_layer(self, kwargs)
        self.pool_size = normalize_pair(pool_size, "pool_size")
        self.strides = normalize_pair(strides if strides is not None else pool_size, "strides")
        self.padding = normalize_padding(padding)
        self.data_format = normalize_data_format(data_format)
        mark_built(self)

    def call(self, inputs):
        self.check_input(inputs)
        if self.data_format == "channels_last":
            return self.pool_channels_last(inputs)
        return tuple(to_channels_first(x) for x in self.pool_channels_last(
            to_channels_last(inputs)))

    def pool_channels_last(self, inputs):
        """The pooling of a ``(batch, height, width, channels)`` input (subclasses)."""
        raise NotImplementedError

    def pooled_shape(self, input_shape) -> tuple:
        """The pooled output's shape for ``input_shape`` (checked to be 4D), in the layer's
        ``data_format``."""
        check_rank4(type(self).__name__, "an input", input_shape)
        first = self.data_format == "channels_first"
        shape = shape_tuple(input_shape)
        batch, height, width, channels = to_channels_last(shape) if first else shape
        pooled = (
            batch,
            pooled_length(height, self.pool_size[0], self.strides[0], self.padding),
            pooled_length(width, self.pool_size[1], self.strides[1], self.padding),
            channels,
        )
        return to_channels_first(pooled) if first else pooled

    def check_input(self, inputs) -> None:
        """Raises ``ValueError`` for a wrong rank or a dtype the reference op rejects."""
        check_rank4(type(self).__name__, "an input", getattr(inputs, "shape", None))
        check_dtype(type(self).__name__, inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": self.pool_size, "strides": self.strides,
                       "padding": self.padding, "data_format": self.data_format})
        return config
