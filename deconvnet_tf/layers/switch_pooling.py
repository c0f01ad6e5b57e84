"""Switch-mask max pooling and unpooling, written only with ``keras.ops`` (every backend).

The pool returns the pooled values and a *switch mask* of the input's shape that holds exactly
one 1 per pooling window: the position ``tf.nn.max_pool_with_argmax`` records. The unpool puts
each value at its window's switch and zeros elsewhere. Both *select* (``where``), never multiply,
so infinities and NaNs come back exactly as the argmax pair
(:mod:`deconvnet_tf.layers.argmax_pooling`) gives them, forward and gradient; the ops are all
XLA-compilable TFLite builtins, and every tensor has rank <= 5 so that the model also converts to
full-integer int8 TFLite (StridedSlice is limited to 5-D there).

The switch rule (TensorFlow's ``MaxPoolWithArgmax`` kernel, for every dtype): scan the window
in row-major order, start with its first element, and move to a later element only if it is
strictly greater. So ties go to the first maximum; ``-inf`` and ``+inf`` are ordinary values; a
NaN wins only as the first element of its window (then the pooled value is NaN), and a NaN
elsewhere in a window is skipped (``[1, nan, 3, 2]`` pools to 3, ``[nan, 5, 1, 2]`` to NaN).

Windows do not overlap: ``strides`` must equal ``pool_size``. ``"same"`` padding is supported
for windows of size 1 or 2 along each axis (TensorFlow pads only after the data there, so the
windows match TensorFlow's exactly).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from deconvnet_tf.layers._utils import (
    BasePooling2D,
    check_dtype,
    check_rank4,
    init_pooling_layer,
    mark_built,
    normalize_data_format,
    normalize_pair,
    shape_tuple,
    static_dim,
    to_channels_first,
    to_channels_last,
)

__all__ = ["SwitchMaxPooling2D", "SwitchUnpooling2D"]


def _is_static(*values) -> bool:
    return all(isinstance(v, int) for v in values)


def _dims(x, axes):
    """Static ints where the shape is known while tracing, dynamic scalars elsewhere."""
    dynamic = ops.shape(x)
    static = x.shape
    return [static_dim(static[a]) if static_dim(static[a]) is not None else dynamic[a]
            for a in axes]


def _is_concrete(x) -> bool:
    """True when ``x`` holds values now (eager), so data checks can raise Python errors."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly() and not isinstance(x, keras.KerasTensor)
    if backend == "jax":
        import jax

        return not isinstance(x, jax.core.Tracer)
    return backend == "numpy"


def _where(condition, x, y):
    """``ops.where`` that keeps uint64 (``keras.ops.where`` returns uint32 for it, cutting
    values above 2**32 - 1)."""
    if keras.backend.standardize_dtype(x.dtype) != "uint64":
        return ops.where(condition, x, y)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.where(condition, x, tf.cast(y, x.dtype))
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.where(condition, x, jnp.asarray(y, x.dtype))
    import numpy as np

    return np.where(condition, x, np.asarray(y, x.dtype))


def _crop_or_pad_end(x, height, width, pad_value: str):
    """Crops ``x`` to ``(height, width)`` or extends it at the bottom/right.

    ``pad_value="edge"`` repeats the last row/column (used before pooling: a repeated value never
    wins a window over the earlier original, whatever it is, NaN included); ``"zeros"`` appends
    zeros.
    """
    h, w = _dims(x, (1, 2))
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


def _first_max_mask(x5):
    """Boolean switch mask of windows ``(rows, kh, out_w, kw, channels)``: TensorFlow's rule."""
    kh, kw = x5.shape[1], x5.shape[3]
    first_nan = None
    if "float" in keras.backend.standardize_dtype(x5.dtype):
        # NaN never compares greater: it loses to the scan's current value, except when it is
        # the window's first element (the scan starts there).
        is_nan = ops.not_equal(x5, x5)
        first_nan = is_nan[:, 0, :, 0, :]
        lowest = ops.full((), float("-inf"), dtype=x5.dtype)
        best = ops.max(ops.where(is_nan, lowest, x5), axis=(1, 3), keepdims=True)
    else:
        best = ops.max(x5, axis=(1, 3), keepdims=True)
    is_max = ops.equal(x5, best)
    taken = None
    rows = []
    for a in range(kh):
        cols = []
        for b in range(kw):
            hit = is_max[:, a, :, b, :]
            if taken is None:
                if first_nan is not None:
                    hit = ops.logical_or(hit, first_nan)
                first, taken = hit, hit
            else:
                first = ops.logical_and(hit, ops.logical_not(taken))
                taken = ops.logical_or(taken, hit)
            cols.append(first)
        rows.append(ops.stack(cols, axis=2))
    return ops.stack(rows, axis=1)


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class SwitchMaxPooling2D(BasePooling2D):
    """2D max pooling that also returns a one-hot switch mask (backend-portable).

    The mask has the input's shape and dtype and holds exactly one 1 per pooling window, at the
    position ``tf.nn.max_pool_with_argmax`` records (see the module docstring for the rule with
    ties, infinities and NaN). The pooled value is the input at the switch, selected (not
    multiplied), so ``inf`` stays ``inf`` and the gradient flows only to the switch position
    (not split among ties, never NaN from a neighbour), as with MaxPoolWithArgmax.

    Every float and integer dtype is kept (uint8 in, uint8 pooled values and mask out; the layer
    does not autocast outside mixed precision). A batch of 0 images and an input smaller than a window with ``"valid"``
    padding give empty outputs, as ``keras.layers.MaxPooling2D`` does.

    Args:
        pool_size: int or pair, size of the pooling window.
        strides: int or pair; must equal ``pool_size`` (non-overlapping windows). ``None``
            means ``pool_size``.
        padding: ``"valid"`` or ``"same"``; ``"same"`` needs windows of size <= 2.
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None`` (Keras'
            ``image_data_format()``).
        **kwargs: Base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Input shape:
        4D tensor ``(batch, height, width, channels)`` (``"channels_first"``:
        ``(batch, channels, height, width)``) of a real number dtype.

    Output shape:
        A pair ``(pooled, mask)``: ``pooled`` is ``(batch, pooled_height, pooled_width,
        channels)`` (or channels first), ``mask`` has the input's shape. Both have the input's
        dtype.

    Raises:
        ValueError: Overlapping windows, ``"same"`` with windows > 2, an input that is not 4D,
            or a bool/complex input.

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
        data_format: str | None = None,
        **kwargs,
    ):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)
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

    def pool_channels_last(self, inputs):
        kh, kw = self.pool_size
        batch, height, width, channels = _dims(inputs, (0, 1, 2, 3))
        if self.padding == "same":
            out_h, out_w = (height + kh - 1) // kh, (width + kw - 1) // kw
        else:
            out_h, out_w = height // kh, width // kw
        if _is_static(batch, out_h, out_w, channels) and batch * out_h * out_w * channels == 0:
            # Nothing to pool (empty batch, no channels, or smaller than a window): empty values
            # (a slice, so gradients are zeros, not None), zero mask.
            return inputs[:, :out_h, :out_w, :], ops.zeros_like(inputs)
        x = _crop_or_pad_end(inputs, out_h * kh, out_w * kw, "edge")
        # (batch * out_h, kh, out_w, kw, channels): window rows on axis 1, columns on axis 3.
        # Every size is explicit (no -1), so an empty batch reshapes too.
        x5 = ops.reshape(x, (batch * out_h, kh, out_w, kw, channels))
        switch = _first_max_mask(ops.stop_gradient(x5))
        # exactly one switch per window: select it (a sum would turn -0.0 into +0.0); the
        # window's last element is taken when no earlier one is the switch
        pooled = x5[:, kh - 1, :, kw - 1, :]
        for a in reversed(range(kh)):
            for b in reversed(range(kw)):
                if (a, b) != (kh - 1, kw - 1):
                    pooled = _where(switch[:, a, :, b, :], x5[:, a, :, b, :], pooled)
        pooled = ops.reshape(pooled, (batch, out_h, out_w, channels))
        mask5 = ops.cast(switch, inputs.dtype)
        mask = ops.reshape(mask5, (batch, out_h * kh, out_w * kw, channels))
        mask = _crop_or_pad_end(mask, height, width, "zeros")
        return pooled, mask

    def compute_output_shape(self, input_shape):
        return self.pooled_shape(input_shape), shape_tuple(input_shape)

    def compute_output_spec(self, inputs):
        check_dtype(type(self).__name__, inputs.dtype)
        pooled, mask = self.compute_output_shape(inputs.shape)
        return (
            keras.KerasTensor(pooled, dtype=inputs.dtype),
            keras.KerasTensor(mask, dtype=inputs.dtype),
        )


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class SwitchUnpooling2D(keras.layers.Layer):
    """Puts pooled values back through a switch mask, zeros elsewhere (backend-portable).

    Each value goes to the one switch position of its window (selected with ``where``, so
    ``inf`` and NaN values land exactly there and nowhere else); the output has the mask's shape
    (the pooled tensor's shape) and the values' dtype. The gradient with respect to the values
    is the output gradient at the switch. Accepts ``[values, mask]`` or
    ``[values, mask, reference]`` (the argmax pair's signature; the reference must have the
    mask's shape, which already gives the output's).

    Args:
        pool_size: int or pair, the window size of the pooling layer that made the mask.
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None`` (Keras'
            ``image_data_format()``): the layout of the inputs and the output.
        **kwargs: Base ``keras.layers.Layer`` arguments.

    Input shape:
        A list ``[values, mask]`` or ``[values, mask, reference]`` as returned by
        :class:`SwitchMaxPooling2D`: 4D tensors, ``values`` pooled from ``mask``'s shape.

    Output shape:
        The shape of ``mask``.

    Raises:
        ValueError: Not 4D; batch or channels of values and mask differ; the mask's size does
            not pool to the values' size with ``pool_size`` (e.g. a mask from a 3x3 pooling
            unpooled with ``pool_size=2``); or, when the values are at hand (eager), a window
            that holds more than one switch or a switch outside every window.

    Example:

    >>> x = keras.random.uniform((1, 5, 5, 2))
    >>> pooled, mask = SwitchMaxPooling2D(padding="same")(x)
    >>> SwitchUnpooling2D()([pooled, mask]).shape
    (1, 5, 5, 2)
    """

    def __init__(self, pool_size: int | Sequence[int] = (2, 2), data_format: str | None = None,
                 **kwargs):
        init_pooling_layer(self, kwargs)
        self.pool_size = normalize_pair(pool_size, "pool_size")
        self.data_format = normalize_data_format(data_format)
        mark_built(self)

    def call(self, inputs):
        values, mask = self._unpack(inputs)
        reference = getattr(inputs[2], "shape", None) if len(inputs) == 3 else None
        self.compute_output_shape([values.shape, mask.shape]
                                  + ([] if reference is None else [reference]))
        check_dtype(type(self).__name__, values.dtype)
        if self.data_format == "channels_last":
            return self._unpool_channels_last(values, mask)
        return to_channels_first(self._unpool_channels_last(to_channels_last(values),
                                                            to_channels_last(mask)))

    def _unpool_channels_last(self, values, mask):
        kh, kw = self.pool_size
        batch, out_h, out_w, channels = _dims(values, (0, 1, 2, 3))
        height, width = _dims(mask, (1, 2))
        if _is_static(batch, out_h, out_w, channels) and batch * out_h * out_w * channels == 0:
            # No values: zeros of the mask's shape, kept connected to the (empty) values.
            return ops.zeros(ops.shape(mask), dtype=values.dtype) + ops.cast(
                ops.sum(values), values.dtype)
        switch = ops.not_equal(mask, ops.zeros((), dtype=mask.dtype))
        covered = _crop_or_pad_end(switch, out_h * kh, out_w * kw, "zeros")
        switch5 = ops.reshape(covered, (batch * out_h, kh, out_w, kw, channels))
        if _is_concrete(values):
            self._check_switches(switch, switch5)
        values5 = ops.reshape(values, (batch * out_h, 1, out_w, 1, channels))
        y = _where(switch5, values5, ops.zeros((), dtype=values.dtype))
        y = ops.reshape(y, (batch, out_h * kh, out_w * kw, channels))
        return _crop_or_pad_end(y, height, width, "zeros")

    def _check_shapes(self, values_shape, mask_shape, reference_shape=None) -> None:
        name = type(self).__name__
        check_rank4(name, "values", values_shape)
        check_rank4(name, "a mask", mask_shape)
        values, mask = shape_tuple(values_shape), shape_tuple(mask_shape)
        if values is None or mask is None:
            return
        for axis, label in ((0, "batch"), (3, "channels")):
            if None not in (values[axis], mask[axis]) and values[axis] != mask[axis]:
                raise ValueError(
                    f"{name}: values {values} and mask {mask} differ in {label}"
                )
        for axis, k in ((1, self.pool_size[0]), (2, self.pool_size[1])):
            size, pooled = mask[axis], values[axis]
            if None in (size, pooled):
                continue
            # A mask of length `size` pools to size // k ("valid") or ceil(size / k) ("same").
            if pooled not in (size // k, -(-size // k)):
                raise ValueError(
                    f"{name}(pool_size={self.pool_size}): values {values} cannot come from "
                    f"pooling a mask of shape {mask} with windows of {k} (expected "
                    f"{' or '.join(map(str, sorted({size // k, -(-size // k)})))} along axis "
                    f"{axis}, got {pooled}); use the pooling layer's pool_size"
                )
        if reference_shape is not None:
            reference = shape_tuple(reference_shape)
            if reference is not None and any(
                None not in (r, m) and r != m for r, m in zip(reference, mask)
            ) or (reference is not None and len(reference) != 4):
                raise ValueError(
                    f"{name}: the reference {reference} must have the mask's shape {mask}"
                )

    def _check_switches(self, switch, switch5) -> None:
        per_window = ops.sum(ops.cast(switch5, "int32"), axis=(1, 3))
        total, covered = ops.sum(ops.cast(switch, "int32")), ops.sum(per_window)
        if int(ops.size(per_window)) and int(ops.max(per_window)) > 1:
            raise ValueError(
                f"{type(self).__name__}(pool_size={self.pool_size}): a window holds more than "
                "one switch; the mask was made with another pool_size"
            )
        if int(total) != int(covered):
            raise ValueError(
                f"{type(self).__name__}(pool_size={self.pool_size}): {int(total) - int(covered)} "
                "switch(es) lie outside every window and would be dropped; the mask was made "
                "with another pool_size"
            )

    def compute_output_shape(self, input_shape):
        shapes = [shape_tuple(shape) for shape in input_shape]
        name = type(self).__name__
        for shape, what in zip(shapes, ("values", "a mask", "a reference")):
            check_rank4(name, what, shape)
        if self.data_format == "channels_first":
            shapes = [to_channels_last(shape) for shape in shapes]
        self._check_shapes(*shapes)
        return shape_tuple(input_shape[1])

    def compute_output_spec(self, inputs):
        values, mask = self._unpack(inputs)
        shape = self.compute_output_shape([i.shape for i in inputs])
        return keras.KerasTensor(shape, dtype=values.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": self.pool_size, "data_format": self.data_format})
        return config

    @staticmethod
    def _unpack(inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
            raise ValueError(
                "SwitchUnpooling2D expects a list [values, mask] or [values, mask, reference], "
                f"got {type(inputs).__name__}"
                + (f" of length {len(inputs)}" if isinstance(inputs, (list, tuple)) else "")
            )
        return inputs[0], inputs[1]
