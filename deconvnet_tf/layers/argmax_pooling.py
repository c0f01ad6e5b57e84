"""Max pooling that records argmax switches, and unpooling through them (TensorFlow only).

This pair is built on ``tf.nn.max_pool_with_argmax`` and ``tf.scatter_nd``. It is the reference
implementation of DeconvNet's pooling/unpooling. MaxPoolWithArgmax has no XLA kernel and is not a
TFLite builtin: for ``jit_compile``, TFLite/LiteRT and the JAX backend use the switch-mask pair in
:mod:`deconvnet_tf.layers.switch_pooling`, which gives identical results with the same weights.

Design choices, kept on purpose:

* The switches include the batch (``include_batch_in_index=True``): index
  ``((b * H + y) * W + x) * C + c`` into the pooled tensor, so one scatter unpools a whole batch
  (``tfa.layers.MaxUnpooling2D`` and PyTorch use per-image indices instead).
* TensorFlow's rule for ties and NaN: the first maximum in row-major order; a NaN wins only as
  a window's first element (see :mod:`deconvnet_tf.layers.switch_pooling`).
* Overlapping windows (``strides < pool_size``) may pick one position twice: unpooling then adds
  the values there (scatter-add), as ``tf.scatter_nd`` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from deconvnet_tf._backend import require_tensorflow
from deconvnet_tf.layers._utils import (
    BasePooling2D,
    check_dtype,
    check_rank4,
    init_pooling_layer,
    mark_built,
    normalize_data_format,
    normalize_pair,
    normalize_padding,
    pooled_length,
    shape_tuple,
    to_channels_first,
    to_channels_last,
)

__all__ = ["MaxPoolingWithArgmax2D", "MaxUnpooling2D"]

_PORTABLE = "deconvnet_tf.layers.SwitchMaxPooling2D / SwitchUnpooling2D (unpooling='switch')"


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class MaxPoolingWithArgmax2D(BasePooling2D):
    """2D max pooling that also returns the argmax switches.

    Built on ``tf.nn.max_pool_with_argmax(include_batch_in_index=True)``: each switch is the
    flattened index ``((b * H + y) * W + x) * C + c`` of the maximum in the *input* tensor, so
    the switches stay valid for any batch size. They are int64 and are never cast to float
    (float32 is exact only up to 2**24). Among equal values the first maximum of the window in
    row-major order is recorded; a NaN is recorded only as a window's first element (TensorFlow's
    kernel; ``[1, nan, 3, 2]`` pools to 3). The gradient of the pooled values flows only to the
    switch position. Every real dtype is kept (outside mixed precision the layer does not
    autocast); an empty input (no images, no rows, no channels) gives empty outputs, with zero
    gradients (the TensorFlow op alone raises).

    TensorFlow backend only; on another backend the constructor raises and names the portable
    alternative, :class:`SwitchMaxPooling2D`.

    Args:
        pool_size: int or pair, size of the pooling window.
        strides: int or pair, strides of the window (``None``: ``pool_size``).
        padding: ``"valid"`` or ``"same"`` (TensorFlow's padding rules).
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None`` (Keras'
            ``image_data_format()``). With ``"channels_first"`` the input is pooled as its
            ``channels_last`` transpose, so the switches are still the flat indices
            ``((b * H + y) * W + x) * C + c`` of that layout (what :class:`MaxUnpooling2D`
            with the same ``data_format`` reads).
        **kwargs: Base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Input shape:
        4D tensor ``(batch, height, width, channels)`` (``"channels_first"``:
        ``(batch, channels, height, width)``) of a real number dtype.

    Output shape:
        A pair ``(pooled, argmax)``, both ``(batch, pooled_height, pooled_width, channels)``
        (``"channels_first"``: ``(batch, channels, pooled_height, pooled_width)``);
        ``argmax`` is int64.

    Raises:
        ValueError: An input that is not 4D, or of a bool/complex dtype.

    Example:

    >>> x = keras.random.uniform((2, 6, 6, 3))
    >>> pooled, argmax = MaxPoolingWithArgmax2D()(x)
    >>> y = MaxUnpooling2D()([pooled, argmax, x])  # same shape as x
    """

    def __init__(
        self,
        pool_size: int | Sequence[int] = (2, 2),
        strides: int | Sequence[int] | None = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs,
    ):
        require_tensorflow(type(self).__name__, _PORTABLE)
        super().__init__(pool_size, strides, padding, data_format, **kwargs)
        # MaxPoolWithArgmax has no XLA kernel: Keras' jit_compile="auto" (and this package's
        # predictors) then leave a model holding this layer uncompiled.
        self.supports_jit = False

    def pool_channels_last(self, inputs):
        tf = require_tensorflow(type(self).__name__, _PORTABLE)

        def pool():
            # EnsureShape (a no-op check) between the input and the pooling: Grappler's
            # arithmetic optimizer otherwise swaps a ReLU that feeds only this op with the
            # pooling (max(relu(x)) = relu(max(x))) and rewires the int64 switches to the
            # float ReLU, which fails the whole graph's optimization (it then runs unoptimized
            # and TensorFlow logs "Ignoring multi-device function optimization failure").
            return tuple(tf.nn.max_pool_with_argmax(
                tf.ensure_shape(inputs, inputs.shape),
                ksize=(1, *self.pool_size, 1),
                strides=(1, *self.strides, 1),
                padding=self.padding.upper(),
                output_dtype=tf.int64,
                include_batch_in_index=True,
            ))

        def empty():
            shape = tf.shape(inputs)
            kh, kw = self.pool_size
            sh, sw = self.strides
            if self.padding == "same":
                out_h, out_w = (shape[1] + sh - 1) // sh, (shape[2] + sw - 1) // sw
            else:
                out_h = tf.maximum((shape[1] - kh) // sh + 1, 0)
                out_w = tf.maximum((shape[2] - kw) // sw + 1, 0)
            out = tf.stack([shape[0], out_h, out_w, shape[3]])
            # a slice of the (empty) input, never larger than it: the gradient is zeros of
            # the input's shape, as keras.layers.MaxPooling2D gives, not None
            return inputs[:, :out_h, :out_w, :], tf.zeros(out, tf.int64)

        size = inputs.shape.num_elements()
        if size is not None:  # static: no branch in the graph
            return pool() if size else empty()
        return tf.cond(tf.size(inputs, out_type=tf.int64) > 0, pool, empty)

    def compute_output_shape(self, input_shape):
        shape = self.pooled_shape(input_shape)
        return shape, shape

    def compute_output_spec(self, inputs):
        check_dtype(type(self).__name__, inputs.dtype)
        shape, _ = self.compute_output_shape(inputs.shape)
        return (
            keras.KerasTensor(shape, dtype=inputs.dtype),
            keras.KerasTensor(shape, dtype="int64"),
        )


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class MaxUnpooling2D(keras.layers.Layer):
    """Puts pooled values back at their argmax switches, zeros elsewhere.

    Built on ``tf.scatter_nd``. ``reference`` is the tensor that was pooled: it gives the output
    shape, so odd sizes (45 -> 22 -> 45) and ``"same"`` padding come back to the right size.
    The gradient with respect to the values is gathered back from the switch positions. Values
    of any real dtype keep it; ``inf`` and NaN land exactly at their switch. Switches picked by
    two overlapping windows receive the sum of both values (scatter-add).

    The layer knows the pooling geometry (``pool_size``, ``strides``, ``padding``; default the
    2x2/2 pooling of :class:`MaxPoolingWithArgmax2D` with either padding) and checks that the
    switches fit the reference: same batch and channels, a reference that pools to the values'
    size, and (when the switches are at hand, in eager mode) every switch inside its own
    window, image and channel. ``reference`` may be left out (``[values, argmax]``): the output
    size is then ``pooled * stride`` (``"same"`` or unset padding) or
    ``(pooled - 1) * stride + pool`` (``"valid"``), and any switch inside its image is
    accepted, as ``tfa.layers.MaxUnpooling2D`` does.

    ``tfa.layers.MaxUnpooling2D``'s conventions work too: the call ``layer(values, argmax)``
    (separate arguments; ``layer(values, argmax, reference)`` likewise; the switches also as
    tfa's keyword, ``layer(values, mask=argmax)``), switches of any
    number dtype (cast to int64), and switches counted within each image
    (``tf.nn.max_pool_with_argmax``'s default ``include_batch_in_index=False``) as well as
    across the batch (``True``, what :class:`MaxPoolingWithArgmax2D` records). Each value goes
    to its switch's row and column in its own image and channel.

    Args:
        pool_size: int or pair, the pooling window (default 2).
        strides: int or pair (default 2, as ``tfa.layers.MaxUnpooling2D`` and the default
            2x2 pooling of :class:`MaxPoolingWithArgmax2D`; give the pooling's strides when
            they differ, e.g. after ``MaxPoolingWithArgmax2D(3)``, whose strides are 3).
        padding: ``"valid"``, ``"same"`` or ``None`` (default: whichever fits the reference).
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None`` (Keras'
            ``image_data_format()``): the layout of all three inputs and the output; the
            switches index the ``channels_last`` layout in both (as
            :class:`MaxPoolingWithArgmax2D` records them).
        **kwargs: Base ``keras.layers.Layer`` arguments.

    Input shape:
        A list ``[values, argmax, reference]`` (or ``[values, argmax]``, or the same as separate
        arguments): ``values`` and
        ``argmax`` as returned by :class:`MaxPoolingWithArgmax2D` (same shape), ``reference``
        4D.

    Output shape:
        The shape of ``reference``, with the dtype of ``values``.

    Raises:
        ValueError: Inputs that are not 4D, values and argmax of different shapes, or a
            reference that cannot hold the switches (the message names the shapes).

    Example:

    >>> x = keras.random.uniform((1, 5, 5, 2))
    >>> pooled, argmax = MaxPoolingWithArgmax2D(padding="same")(x)
    >>> MaxUnpooling2D()([pooled, argmax, x]).shape
    TensorShape([1, 5, 5, 2])
    """

    def __init__(
        self,
        pool_size: int | Sequence[int] = (2, 2),
        strides: int | Sequence[int] | None = (2, 2),
        padding: str | None = None,
        data_format: str | None = None,
        **kwargs,
    ):
        require_tensorflow(type(self).__name__, _PORTABLE)
        init_pooling_layer(self, kwargs)
        self.pool_size = normalize_pair(pool_size, "pool_size")
        # None (older saved configs may hold it) means pool_size, as before
        self.strides = normalize_pair(strides if strides is not None else self.pool_size,
                                      "strides")
        self.padding = None if padding is None else normalize_padding(padding)
        self.data_format = normalize_data_format(data_format)
        # Keras would autocast every float input under mixed precision, float switches
        # (tfa's convention) included: 4095 -> 4096 in bfloat16. call() casts the values only.
        self._convert_input_args = False
        mark_built(self)

    def __call__(self, *args, mask=None, **kwargs):
        # tfa.layers.MaxUnpooling2D's call(updates, mask): the switches as mask= (renamed here,
        # before Keras would take them for a Keras mask)
        if mask is not None:
            if "argmax" in kwargs or len(args) > 1:
                raise ValueError("MaxUnpooling2D: the switches are given twice (as argmax and as "
                                 "tfa's mask=); pass them once")
            kwargs["argmax"] = mask
        # NumPy inputs become tensors of their own dtype here (Keras' own conversion is off:
        # see __init__); call() then casts the values alone under mixed precision
        args, kwargs = keras.tree.map_structure(
            lambda x: keras.ops.convert_to_tensor(x) if isinstance(x, (np.ndarray, np.generic))
            else x, (args, kwargs))
        return super().__call__(*args, **kwargs)

    def _last(self, x):
        """A tensor or shape of the layer's layout in ``channels_last``."""
        return x if self.data_format == "channels_last" else to_channels_last(x)

    def _back(self, x):
        """The inverse of :meth:`_last`."""
        return x if self.data_format == "channels_last" else to_channels_first(x)

    def _paddings(self) -> tuple[str, ...]:
        return (self.padding,) if self.padding else ("valid", "same")

    def _output_shape(self, values_shape, reference_shape):
        """The output shape (static where known) after checking the inputs fit together."""
        name = type(self).__name__
        values = shape_tuple(values_shape)
        if reference_shape is None:
            return None if values is None else self._geometry_size(values)
        reference = shape_tuple(reference_shape)
        if reference is None or values is None:
            return reference
        problem = None
        for axis, label in ((0, "batch"), (3, "channels")):
            if None not in (values[axis], reference[axis]) and values[axis] != reference[axis]:
                problem = f"differ in {label}"
        for axis in (1, 2):
            if None in (values[axis], reference[axis]):
                continue
            fits = [pooled_length(reference[axis], self.pool_size[axis - 1],
                                  self.strides[axis - 1], padding) for padding in self._paddings()]
            if values[axis] not in fits:
                problem = (f"do not fit: with pool_size={self.pool_size}, strides="
                           f"{self.strides}, padding={self.padding or 'valid/same'} the "
                           f"reference pools to {' or '.join(map(str, sorted(set(fits))))} "
                           f"along axis {axis}, the values have {values[axis]}")
        if problem:
            raise ValueError(f"{name}: values {values} and reference {reference} {problem}")
        return reference

    def _geometry_size(self, values):
        sizes = []
        for axis in (1, 2):
            n, k, s = values[axis], self.pool_size[axis - 1], self.strides[axis - 1]
            sizes.append(None if n is None else
                         max(n - 1, 0) * s + k if self.padding == "valid" and n else n * s)
        return (values[0], *sizes, values[3])

    def _values_dtype(self, dtype) -> str:
        """The output dtype for values of ``dtype``: the compute dtype under autocast (mixed
        precision) for floats, else ``dtype``."""
        dtype = keras.backend.standardize_dtype(dtype)
        if self.autocast and "float" in dtype:
            return self.compute_dtype
        return dtype

    def call(self, inputs, argmax=None, reference=None):
        values, argmax, reference = _unpack(inputs, argmax, reference)
        policy = self.dtype_policy  # only the values are cast (see __init__)
        values = policy.convert_input(values, self.autocast, self.compute_dtype)
        argmax = policy.convert_input(argmax, False, self.compute_dtype)
        if reference is not None:
            reference = policy.convert_input(reference, False, self.compute_dtype)
        name = type(self).__name__
        check_rank4(name, "values", values.shape)
        check_rank4(name, "switches", argmax.shape)
        if reference is not None:
            check_rank4(name, "a reference", reference.shape)
        check_dtype(name, values.dtype)
        if self.data_format == "channels_first":
            values, argmax = to_channels_last(values), to_channels_last(argmax)
            reference = None if reference is None else to_channels_last(reference)
        return self._back(self._unpool_channels_last(values, argmax, reference))

    def _unpool_channels_last(self, values, argmax, reference):
        tf = require_tensorflow(type(self).__name__, _PORTABLE)
        name = type(self).__name__
        v_shape, a_shape = shape_tuple(values.shape), shape_tuple(argmax.shape)
        if any(None not in (v, a) and v != a for v, a in zip(v_shape, a_shape)):
            raise ValueError(f"{name}: values {v_shape} and switches {a_shape} must have the "
                             "same shape")
        if reference is not None:
            self._output_shape(values.shape, reference.shape)
            output_shape = tf.shape(reference, out_type=tf.int64)
        else:
            static = self._output_shape(values.shape, None)
            dynamic = tf.shape(values, out_type=tf.int64)
            output_shape = (tf.stack([dynamic[0], *self._dynamic_sizes(tf, dynamic), dynamic[3]])
                            if None in static else tf.constant(static, tf.int64))
        argmax = tf.cast(argmax, tf.int64)
        if tf.executing_eagerly():
            self._check_switches(argmax.numpy(), [int(d) for d in output_shape.numpy()],
                                 windows=reference is not None)
        flat = tf.scatter_nd(
            tf.reshape(_output_index(tf, argmax, output_shape), (-1, 1)),
            tf.reshape(values, (-1,)),
            tf.reshape(tf.reduce_prod(output_shape), (1,)),
        )
        return tf.reshape(flat, output_shape)

    def _dynamic_sizes(self, tf, dynamic):
        sizes = []
        for axis in (1, 2):
            n = dynamic[axis]
            k, s = self.pool_size[axis - 1], self.strides[axis - 1]
            sizes.append(tf.maximum(n - 1, 0) * s + k * tf.minimum(n, 1)
                         if self.padding == "valid" else n * s)
        return sizes

    def _check_switches(self, index: np.ndarray, shape: list[int], windows: bool) -> None:
        """Eager check: every switch inside its own image (with or without the batch in the
        index); with ``windows`` (a reference given) also in its own channel and window."""
        if not index.size:
            return
        n, height, width, channels = shape
        per_image = height * width * channels
        b, i, j, c = np.indices(index.shape, sparse=True)
        index = np.where((index >= 0) & (index < per_image), index + b * per_image, index)
        ok = (index >= b * per_image) & (index < (b + 1) * per_image)
        if not windows and not ok.all():
            where = tuple(int(v) for v in np.argwhere(~ok)[0])
            raise ValueError(
                f"{type(self).__name__}: switch {int(index[where])} at {where} is outside its "
                f"image of the output {tuple(shape)}: expected the flat indices of "
                "max_pool_with_argmax, 0 <= s < H*W*C within each image (or with the batch "
                "in the index, include_batch_in_index=True)")
        if not windows:
            return
        flat = np.where(ok, index, 0)
        image, rest = np.divmod(flat, per_image)
        y, rest = np.divmod(rest, width * channels)
        x, channel = np.divmod(rest, channels)
        ok &= (image == b) & (channel == c)
        in_window = np.zeros(index.shape, bool)
        for padding in self._paddings():
            inside = np.ones(index.shape, bool)
            for pos, cell, size, axis in ((y, i, height, 0), (x, j, width, 1)):
                k, s = self.pool_size[axis], self.strides[axis]
                out = index.shape[axis + 1]
                before = max((out - 1) * s + k - size, 0) // 2 if padding == "same" else 0
                start = cell * s - before
                inside &= (pos >= start) & (pos < start + k)
            in_window |= inside
        ok &= in_window
        if not ok.all():
            where = tuple(int(v) for v in np.argwhere(~ok)[0])
            raise ValueError(
                f"{type(self).__name__}: the switches of values {tuple(index.shape)} do not fit "
                f"an output of shape {tuple(shape)} (switch {int(index[where])} at {where}) with pool_size={self.pool_size}, strides="
                f"{self.strides}, padding={self.padding or 'valid/same'}; pass the tensor that "
                "was pooled as reference, and the pooling's geometry"
            )

    def compute_output_shape(self, input_shape):
        if (not isinstance(input_shape, (list, tuple)) or len(input_shape) not in (2, 3)
                or not all(s is None or isinstance(s, (list, tuple)) or hasattr(s, "as_list")
                           for s in input_shape)):
            raise ValueError(f"{type(self).__name__}.compute_output_shape expects the shapes "
                             "[values, argmax] or [values, argmax, reference], got "
                             f"{input_shape!r}")
        reference = input_shape[2] if len(input_shape) == 3 else None
        for shape, what in ((input_shape[0], "values"), (reference, "a reference")):
            if shape is not None:
                check_rank4(type(self).__name__, what, shape)
        return self._back(self._output_shape(
            self._last(shape_tuple(input_shape[0])),
            None if reference is None else self._last(shape_tuple(reference))))

    def compute_output_spec(self, inputs, argmax=None, reference=None):
        values, argmax, reference = _unpack(inputs, argmax, reference)
        shape = self.compute_output_shape(
            [values.shape, argmax.shape] + ([] if reference is None else [reference.shape]))
        return keras.KerasTensor(shape, dtype=self._values_dtype(values.dtype))

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": self.pool_size, "strides": self.strides,
                       "padding": self.padding, "data_format": self.data_format})
        return config


def _unpack(inputs, argmax=None, reference=None):
    """``(values, argmax, reference)`` from a list ``[values, argmax(, reference)]`` or from
    separate arguments (``layer(values, argmax)``, as ``tfa.layers.MaxUnpooling2D``)."""
    if argmax is not None:
        if isinstance(inputs, (list, tuple)):
            raise ValueError("MaxUnpooling2D: pass either a list [values, argmax, reference] "
                             "or separate arguments (values, argmax[, reference]), not both")
        return inputs, argmax, reference
    if reference is not None:
        raise ValueError("MaxUnpooling2D: a reference without the argmax switches; call it "
                         "with (values, argmax, reference)")
    if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
        raise ValueError(
            "MaxUnpooling2D expects a list [values, argmax, reference] (or [values, argmax] "
            f"with pool_size), or (values, argmax) as separate arguments; got "
            f"{type(inputs).__name__}"
            + (f" of length {len(inputs)}" if isinstance(inputs, (list, tuple)) else "")
        )
    return inputs[0], inputs[1], (inputs[2] if len(inputs) == 3 else None)


def _output_index(tf, argmax, output_shape):
    """Flat indices into the output ``(N, H, W, C)`` for the switches ``argmax`` (int64, the
    output's channels_last layout). A switch below ``H*W*C`` in image ``b > 0`` is taken as an
    index within its image (``max_pool_with_argmax``'s default ``include_batch_in_index=False``,
    the ``tfa.layers.MaxUnpooling2D`` convention) and moved to that image; the channel is the
    switch's position's channel, as in ``tfa`` (the pooling's own switches already are)."""
    per_image = output_shape[1] * output_shape[2] * output_shape[3]
    batch = tf.shape(argmax, out_type=tf.int64)[0]
    first = tf.reshape(tf.range(batch, dtype=tf.int64) * per_image, (-1, 1, 1, 1))
    index = tf.where(argmax < per_image, argmax + first, argmax)
    channels = output_shape[3]
    return index - tf.math.floormod(index, channels) + tf.range(channels, dtype=tf.int64)
