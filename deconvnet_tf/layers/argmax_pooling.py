"""Max pooling that records argmax switches, and unpooling through them (TensorFlow only).

This pair is built on ``tf.nn.max_pool_with_argmax`` and ``tf.scatter_nd``. It is the reference
implementation of DeconvNet's pooling/unpooling. MaxPoolWithArgmax has no XLA kernel and is not a
TFLite builtin: for ``jit_compile``, TFLite/LiteRT and the JAX backend use the switch-mask pair in
:mod:`deconvnet_tf.layers.switch_pooling`, which gives identical results with the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from deconvnet_tf._backend import require_tensorflow
from deconvnet_tf.layers._utils import normalize_pair, normalize_padding, pooled_length

__all__ = ["MaxPoolingWithArgmax2D", "MaxUnpooling2D"]

_PORTABLE = "deconvnet_tf.layers.SwitchMaxPooling2D / SwitchUnpooling2D (unpooling='switch')"


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class MaxPoolingWithArgmax2D(keras.layers.Layer):
    """2D max pooling that also returns the argmax switches.

    Built on ``tf.nn.max_pool_with_argmax(include_batch_in_index=True)``: each switch is the
    flattened index ``((b * H + y) * W + x) * C + c`` of the maximum in the *input* tensor, so
    the switches stay valid for any batch size. They are int64 and are never cast to float
    (float32 is exact only up to 2**24). Among equal values the first maximum of the window in
    row-major order is recorded. The gradient of the pooled values flows only to the switch
    position.

    TensorFlow backend only; on another backend the constructor raises and names the portable
    alternative, :class:`SwitchMaxPooling2D`.

    Args:
        pool_size: int or pair, size of the pooling window.
        strides: int or pair, strides of the window.
        padding: ``"valid"`` or ``"same"`` (TensorFlow's padding rules).
        **kwargs: Base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Input shape:
        4D tensor ``(batch, height, width, channels)``.

    Output shape:
        A pair ``(pooled, argmax)``, both ``(batch, pooled_height, pooled_width, channels)``;
        ``argmax`` is int64.

    Example:

    >>> x = keras.random.uniform((2, 6, 6, 3))
    >>> pooled, argmax = MaxPoolingWithArgmax2D()(x)
    >>> y = MaxUnpooling2D()([pooled, argmax, x])  # same shape as x
    """

    def __init__(
        self,
        pool_size: int | Sequence[int] = (2, 2),
        strides: int | Sequence[int] | None = (2, 2),
        padding: str = "valid",
        **kwargs,
    ):
        require_tensorflow(type(self).__name__, _PORTABLE)
        super().__init__(**kwargs)
        self.pool_size = normalize_pair(pool_size, "pool_size")
        self.strides = normalize_pair(strides if strides is not None else pool_size, "strides")
        self.padding = normalize_padding(padding)

    def call(self, inputs):
        tf = require_tensorflow(type(self).__name__, _PORTABLE)
        pooled, argmax = tf.nn.max_pool_with_argmax(
            inputs,
            ksize=(1, *self.pool_size, 1),
            strides=(1, *self.strides, 1),
            padding=self.padding.upper(),
            output_dtype=tf.int64,
            include_batch_in_index=True,
        )
        return pooled, argmax

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        shape = (
            batch,
            pooled_length(height, self.pool_size[0], self.strides[0], self.padding),
            pooled_length(width, self.pool_size[1], self.strides[1], self.padding),
            channels,
        )
        return shape, shape

    def compute_output_spec(self, inputs):
        shape, _ = self.compute_output_shape(inputs.shape)
        return (
            keras.KerasTensor(shape, dtype=inputs.dtype),
            keras.KerasTensor(shape, dtype="int64"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {"pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}
        )
        return config


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class MaxUnpooling2D(keras.layers.Layer):
    """Puts pooled values back at their argmax switches, zeros elsewhere.

    Built on ``tf.scatter_nd``. ``reference`` is the tensor that was pooled: it gives the output
    shape, so odd sizes (45 -> 22 -> 45) and ``"same"`` padding come back to the right size.
    The gradient with respect to the values is gathered back from the switch positions.

    Args:
        **kwargs: Base ``keras.layers.Layer`` arguments.

    Input shape:
        A list ``[values, argmax, reference]``: ``values`` and ``argmax`` as returned by
        :class:`MaxPoolingWithArgmax2D` (same shape), ``reference`` 4D.

    Output shape:
        The shape of ``reference``, with the dtype of ``values``.

    Example:

    >>> x = keras.random.uniform((1, 5, 5, 2))
    >>> pooled, argmax = MaxPoolingWithArgmax2D(padding="same")(x)
    >>> MaxUnpooling2D()([pooled, argmax, x]).shape
    TensorShape([1, 5, 5, 2])
    """

    def __init__(self, **kwargs):
        require_tensorflow(type(self).__name__, _PORTABLE)
        super().__init__(**kwargs)

    def call(self, inputs):
        tf = require_tensorflow(type(self).__name__, _PORTABLE)
        values, argmax, reference = _unpack(inputs)
        output_shape = tf.shape(reference, out_type=tf.int64)
        flat = tf.scatter_nd(
            tf.reshape(argmax, (-1, 1)),
            tf.reshape(values, (-1,)),
            tf.reshape(tf.reduce_prod(output_shape), (1,)),
        )
        return tf.reshape(flat, output_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[2])

    def compute_output_spec(self, inputs):
        values, _, reference = _unpack(inputs)
        return keras.KerasTensor(reference.shape, dtype=values.dtype)


def _unpack(inputs):
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 3:
        raise ValueError(
            "MaxUnpooling2D expects a list [values, argmax, reference]; got "
            f"{type(inputs).__name__} of length {len(inputs) if hasattr(inputs, '__len__') else '?'}"
        )
    return inputs
