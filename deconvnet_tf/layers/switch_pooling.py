"""Switch-mask max pooling and unpooling, written only with ``keras.ops`` (every backend).

The pool returns the pooled values and a *switch mask* of the input's shape that holds exactly
one 1 per pooling window: the first maximum in row-major order, the position
``tf.nn.max_pool_with_argmax`` records. The unpool multiplies the upsampled values by the mask.
The result equals the argmax pair (:mod:`deconvnet_tf.layers.argmax_pooling`) exactly, but the
ops are all XLA-compilable TFLite builtins, and every tensor has rank <= 5 so that the model
also converts to full-integer int8 TFLite (StridedSlice is limited to 5-D there).

Windows do not overlap: ``strides`` must equal ``pool_size``. ``"same"`` padding is supported
for windows of size 1 or 2 along each axis (TensorFlow pads only after the data there, so the
windows match TensorFlow's exactly).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from deconvnet_tf.layers._utils import normalize_pair, normalize_padding, pooled_length

__all__ = ["SwitchMaxPooling2D", "SwitchUnpooling2D"]


def _is_static(*values) -> bool:
    return all(isinstance(v, int) for v in values)


def _crop_or_pad_end(x, height, width, pad_value: str):
    """Crops ``x`` to ``(height, width)`` or extends it at the bottom/right.

    ``pad_value="edge"`` repeats the last row/column (used before pooling: a repeated value never
    wins a window over the earlier, equal original); ``"zeros"`` appends zeros.
    """
    shape = ops.shape(x)
    h, w = shape[1], shape[2]
    if _is_static(h, height) and h == height and _is_static(w, width) and w == width:
        return x
    x = _fit_axis(x, 1, h, height, pad_value)
    x = _fit_axis(x, 2, w, width, pad_value)
    return x


def _fit_axis(x, axis: int, size, target, pad_value: str):
    if _is_static(size, target):
        if size == target:
            return x
        if size > target:
            return x[:, :target] if axis == 1 else x[:, :, :target]
        missing = target - size
    else:
        missing = ops.maximum(target - size, 0)
        x = x[:, :target] if axis == 1 else x[:, :, :target]
    if pad_value == "edge":
        # Only ever one missing row/column here (windows of size 2 with "same" padding).
        last = x[:, -1:] if axis == 1 else x[:, :, -1:]
        extra = last
        if not _is_static(missing):
            extra = last[:, :missing] if axis == 1 else last[:, :, :missing]
        return ops.concatenate([x, extra], axis=axis)
    shape = list(ops.shape(x))
    shape[axis] = missing
    return ops.concatenate([x, ops.zeros(shape, dtype=x.dtype)], axis=axis)


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class SwitchMaxPooling2D(keras.layers.Layer):
    """2D max pooling that also returns a one-hot switch mask (backend-portable).

    The mask has the input's shape and dtype and holds exactly one 1 per pooling window, at the
    first maximum in row-major order (the position ``tf.nn.max_pool_with_argmax`` picks). The
    pooled values are ``sum(window * mask)``, with the mask held constant, so their gradient
    flows only to the switch position (not split among ties), as with MaxPoolWithArgmax.

    Args:
        pool_size: int or pair, size of the pooling window.
        strides: int or pair; must equal ``pool_size`` (non-overlapping windows). ``None``
            means ``pool_size``.
        padding: ``"valid"`` or ``"same"``; ``"same"`` needs windows of size <= 2.
        **kwargs: Base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Input shape:
        4D tensor ``(batch, height, width, channels)``.

    Output shape:
        A pair ``(pooled, mask)``: ``pooled`` is ``(batch, pooled_height, pooled_width,
        channels)``, ``mask`` has the input's shape.

    Example:

    >>> x = keras.random.uniform((2, 6, 6, 3))
    >>> pooled, mask = SwitchMaxPooling2D()(x)
    >>> y = SwitchUnpooling2D()([pooled, mask])  # same shape as x
    """

    def __init__(
        self,
        pool_size: int | Sequence[int] = (2, 2),
        strides: int | Sequence[int] | None = None,
        padding: str = "valid",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.pool_size = normalize_pair(pool_size, "pool_size")
        self.strides = normalize_pair(strides if strides is not None else pool_size, "strides")
        self.padding = normalize_padding(padding)
        if self.strides != self.pool_size:
            raise ValueError(
                f"{type(self).__name__} needs strides == pool_size (non-overlapping windows), "
                f"got pool_size={self.pool_size}, strides={self.strides}; use "
                "MaxPoolingWithArgmax2D for overlapping windows."
            )
        if self.padding == "same" and max(self.pool_size) > 2:
            raise ValueError(
                f"{type(self).__name__}(padding='same') supports windows of size <= 2, got "
                f"pool_size={self.pool_size}; use padding='valid' or MaxPoolingWithArgmax2D."
            )

    def call(self, inputs):
        kh, kw = self.pool_size
        shape = ops.shape(inputs)
        height, width, channels = shape[1], shape[2], shape[3]
        if self.padding == "same":
            out_h, out_w = (height + kh - 1) // kh, (width + kw - 1) // kw
        else:
            out_h, out_w = height // kh, width // kw
        x = _crop_or_pad_end(inputs, out_h * kh, out_w * kw, "edge")
        # (batch * out_h, kh, out_w, kw, channels): window rows on axis 1, columns on axis 3.
        x5 = ops.reshape(x, (-1, kh, out_w, kw, channels))
        xs = ops.stop_gradient(x5)
        is_max = ops.equal(xs, ops.max(xs, axis=(1, 3), keepdims=True))
        taken = None
        rows = []
        for a in range(kh):
            cols = []
            for b in range(kw):
                hit = is_max[:, a, :, b, :]
                if taken is None:
                    first, taken = hit, hit
                else:
                    first = ops.logical_and(hit, ops.logical_not(taken))
                    taken = ops.logical_or(taken, hit)
                cols.append(first)
            rows.append(ops.stack(cols, axis=2))
        mask5 = ops.cast(ops.stack(rows, axis=1), inputs.dtype)
        pooled = ops.sum(x5 * mask5, axis=(1, 3))
        pooled = ops.reshape(pooled, (-1, out_h, out_w, channels))
        mask = ops.reshape(mask5, (-1, out_h * kh, out_w * kw, channels))
        mask = _crop_or_pad_end(mask, height, width, "zeros")
        return pooled, mask

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        pooled = (
            batch,
            pooled_length(height, self.pool_size[0], self.strides[0], self.padding),
            pooled_length(width, self.pool_size[1], self.strides[1], self.padding),
            channels,
        )
        return pooled, tuple(input_shape)

    def compute_output_spec(self, inputs):
        pooled, mask = self.compute_output_shape(inputs.shape)
        return (
            keras.KerasTensor(pooled, dtype=inputs.dtype),
            keras.KerasTensor(mask, dtype=inputs.dtype),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {"pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}
        )
        return config


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class SwitchUnpooling2D(keras.layers.Layer):
    """Puts pooled values back through a switch mask, zeros elsewhere (backend-portable).

    Each value is broadcast over its window and multiplied by the mask, so it lands on the one
    switch position; the output has the mask's shape (the pooled tensor's shape). Accepts
    ``[values, mask]`` or ``[values, mask, reference]`` (the argmax pair's signature; the
    reference is not needed because the mask already has its shape).

    Args:
        pool_size: int or pair, the window size used by the pooling layer.
        **kwargs: Base ``keras.layers.Layer`` arguments.

    Input shape:
        A list ``[values, mask]`` or ``[values, mask, reference]`` as returned by
        :class:`SwitchMaxPooling2D`.

    Output shape:
        The shape of ``mask``.

    Example:

    >>> x = keras.random.uniform((1, 5, 5, 2))
    >>> pooled, mask = SwitchMaxPooling2D(padding="same")(x)
    >>> SwitchUnpooling2D()([pooled, mask]).shape
    (1, 5, 5, 2)
    """

    def __init__(self, pool_size: int | Sequence[int] = (2, 2), **kwargs):
        super().__init__(**kwargs)
        self.pool_size = normalize_pair(pool_size, "pool_size")

    def call(self, inputs):
        values, mask = self._unpack(inputs)
        kh, kw = self.pool_size
        vshape = ops.shape(values)
        out_h, out_w, channels = vshape[1], vshape[2], vshape[3]
        mshape = ops.shape(mask)
        mask = _crop_or_pad_end(mask, out_h * kh, out_w * kw, "zeros")
        mask5 = ops.reshape(mask, (-1, kh, out_w, kw, channels))
        values5 = ops.reshape(values, (-1, 1, out_w, 1, channels))
        y = ops.reshape(values5 * mask5, (-1, out_h * kh, out_w * kw, channels))
        return _crop_or_pad_end(y, mshape[1], mshape[2], "zeros")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1])

    def compute_output_spec(self, inputs):
        values, mask = self._unpack(inputs)
        return keras.KerasTensor(mask.shape, dtype=values.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": self.pool_size})
        return config

    @staticmethod
    def _unpack(inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
            raise ValueError(
                "SwitchUnpooling2D expects a list [values, mask] or [values, mask, reference], "
                f"got {type(inputs).__name__}"
            )
        return inputs[0], inputs[1]
