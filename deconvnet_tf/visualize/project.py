"""Projecting one unit of a CNN back to pixel space: deconvnet, gradient and guided backprop.

Zeiler & Fergus (2013) attach a *deconvnet* to a trained convnet: run the image forward,
recording the max-pooling switches; keep only the chosen activation of one feature map, set
everything else to zero; and go back to the input by, for each layer in reverse, unpooling
through the switches, rectifying with a ReLU and filtering with the transposed kernels of the
same conv layer (tied weights, nothing learned).

:class:`Projector` implements that as one walker over the model's functional graph (see
:mod:`deconvnet_tf.visualize.graph`). Every step except the rectifiers is linear once the
switches are fixed, and going back through it applies its exact transpose (a vector-Jacobian
product: the transposed convolution for a conv, routing to the switch for max pooling, a
per-channel scale for BatchNorm in inference mode, a channel flip for RGB->BGR preprocessing,
a split for Concatenate, a copy to each branch for Add, with branch contributions summed).
The three modes differ only in how a ReLU passes the signal ``g`` back given its forward
input ``x``:

==============  ==============================  =========================================
mode            ReLU rule                       what it is
==============  ==============================  =========================================
``deconvnet``   ``relu(g)``                     Zeiler & Fergus' deconvnet
``gradient``    ``g * (x > 0)``                 the plain gradient (saliency map)
``guided``      ``relu(g) * (x > 0)``           guided backpropagation (Springenberg et al.)
==============  ==============================  =========================================

So for a network without ReLUs (switches held fixed) all three give the gradient of the chosen
activation with respect to the input, and ``gradient`` always equals autodiff's gradient.
BatchNorm is used in inference mode (moving statistics), as the trained network predicts.

Unpooling follows the recorded switch of each max-pooling window (its first maximum,
row-major). Where a window's forward activations were all zero (common after a ReLU), every
position ties and the switch is the window's top-left pixel: that is the exact rule
(``ties="exact"``, the default, the paper's). ``ties="skip"`` is a display option that drops the
signal unpooled into such all-zero windows instead, so nothing is routed through units that did
not fire; it changes nothing where a window had any non-zero activation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from deconvnet_tf.layers import (
    CropToReference,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    SwitchMaxPooling2D,
    SwitchUnpooling2D,
)
from deconvnet_tf.visualize._vjp import vjp
from deconvnet_tf.visualize.graph import Trace, VisualizationError, trace

__all__ = ["MODES", "SIGNALS", "TIES", "Box", "Projector", "project", "receptive_field"]

MODES = ("deconvnet", "gradient", "guided")
SIGNALS = ("activation", "unit")
TIES = ("exact", "skip")


@dataclass(frozen=True)
class Box:
    """A half-open box of input pixels ``[top, bottom) x [left, right)``."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    def union(self, other: Box) -> Box:
        return Box(min(self.top, other.top), max(self.bottom, other.bottom),
                   min(self.left, other.left), max(self.right, other.right))

    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices that crop an ``(H, W, ...)`` array to the box."""
        return slice(self.top, self.bottom), slice(self.left, self.right)


def _relu_rule(mode: str, g, x):
    if mode == "deconvnet":
        return ops.relu(g)
    positive = ops.cast(ops.greater(x, 0), g.dtype)
    if mode == "gradient":
        return g * positive
    return ops.relu(g) * positive


@contextlib.contextmanager
def _without_activation(layer):
    """Temporarily removes a layer's fused activation so that the call gives the pre-activation."""
    saved = layer.activation
    layer.activation = None
    try:
        yield
    finally:
        layer.activation = saved


def _call(step, tensor_dict, replace: dict[int, object] | None = None):
    """Runs ``step``'s layer on the values in ``tensor_dict`` (inference mode)."""
    node = step.node
    if replace:
        tensor_dict = {**tensor_dict, **replace}
    args, kwargs = node.arguments.fill_in(tensor_dict)
    if "training" in kwargs:
        kwargs["training"] = False
    outputs = step.layer(*args, **kwargs)
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise VisualizationError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


def _is_max_pooling(layer) -> bool:
    return isinstance(layer, (keras.layers.MaxPooling2D, MaxPoolingWithArgmax2D,
                              SwitchMaxPooling2D))


def _fired_windows(layer, x):
    """1.0 where a max-pooling window of ``x`` holds a non-zero value, 0.0 where it is all zero
    (shaped like the pooled output)."""
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise VisualizationError(f"ties='skip' needs channels_last pooling ({layer.name!r})")
    size = ops.max_pool(ops.abs(ops.cast(x, "float32")), _pairs(layer.pool_size),
                        _pairs(layer.strides), layer.padding.lower(),
                        data_format="channels_last")
    return ops.cast(ops.greater(size, 0), "float32")


class Projector:
    """Projects units of one layer of a Keras model back to the input (pixel space).

    Args:
        model: A functional (or built Sequential) Keras model with one image input, built from
            layers the deconvnet can invert (see :mod:`deconvnet_tf.visualize.graph`).
        layer: Name of the layer whose units to project (its output; for a pooling layer that
            also returns switches, the pooled values).

    Raises:
        UnknownLayerError: No such layer; the message lists the ones that can be projected.
        NotInvertibleError: A layer on the way cannot be inverted; the message names it.

    Example:

    >>> model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3)
    >>> projector = Projector(model, "block3_conv2_relu")
    >>> images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    >>> projector.project(images, channel=5).shape            # strongest unit of channel 5
    (2, 32, 32, 3)
    >>> projector.project(images, channel=5, mode="guided", select=(1, 2)).shape
    (2, 32, 32, 3)
    """

    def __init__(self, model, layer: str):
        self.trace: Trace = trace(model, layer)
        self.model = model
        self.layer_name = layer
        self._rf_cache: dict[tuple, dict] = {}

    # ------------------------------------------------------------------ properties
    @property
    def num_channels(self) -> int:
        """Channels (last axis) of the chosen layer's output."""
        return int(self.trace.target.shape[-1])

    @property
    def output_rank(self) -> int:
        return len(self.trace.target.shape)

    def check_channel(self, channel: int) -> int:
        """Returns ``channel`` as an int or raises when it is out of range."""
        if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)):
            raise VisualizationError(f"channel must be an integer, got {channel!r}")
        if not 0 <= int(channel) < self.num_channels:
            raise VisualizationError(
                f"channel {int(channel)} is out of range for layer {self.layer_name!r}, which has "
                f"{self.num_channels} channels (0..{self.num_channels - 1})"
            )
        return int(channel)

    # ------------------------------------------------------------------ forward
    def _prepare(self, images):
        images = np.asarray(images)
        if images.ndim == len(self.trace.input_tensor.shape) - 1:
            images = images[None]
        expected = self.trace.input_tensor.shape
        if images.ndim != len(expected) or any(
            e is not None and e != s for e, s in zip(expected[1:], images.shape[1:])
        ):
            raise VisualizationError(
                f"images of shape {images.shape} do not fit the model input {tuple(expected)} "
                "(batch first)"
            )
        return ops.convert_to_tensor(images.astype(np.float32))

    def activations(self, images) -> np.ndarray:
        """The chosen layer's output for a batch of images, as a NumPy array (inference mode).

        Args:
            images: ``(batch, H, W, C)`` (or one ``(H, W, C)`` image) in the model's input range.

        Returns:
            The layer output, e.g. ``(batch, h, w, channels)``.
        """
        x = self._prepare(images)
        values: dict[int, object] = {}
        for step in self.trace.steps:
            if step.kind == "input":
                values[id(step.node.outputs[0])] = x
                continue
            for t, v in zip(step.node.outputs, _call(step, values)):
                values[id(t)] = v
        return np.asarray(ops.convert_to_numpy(values[id(self.trace.target)]))

    def _forward(self, x, ties: str = "exact"):
        """Runs the steps, recording what the backward pass needs."""
        values: dict[int, object] = {}
        records = []
        for step in self.trace.steps:
            node = step.node
            if step.kind == "input":
                values[id(node.outputs[0])] = x
                records.append(None)
                continue
            sig = [node.input_tensors[i] for i in step.signal_inputs]
            if not sig:  # no signal flows here (e.g. only fixed inputs): just compute
                outputs = _call(step, values)
                record = None
            elif step.kind == "relu":
                outputs = _call(step, values)
                record = values[id(sig[0])]
            elif step.kind == "batchnorm":
                outputs = _call(step, values)
                record = _bn_scale(step.layer, len(node.input_tensors[0].shape))
            else:
                fused = step.kind == "linear+relu"

                def fn(*primals, _step=step, _sig=sig, _fused=fused):
                    replace = {id(t): p for t, p in zip(_sig, primals)}
                    if _fused:
                        with _without_activation(_step.layer):
                            return _call(_step, values, replace)
                    return _call(_step, values, replace)

                outputs, pullback = vjp(fn, [values[id(t)] for t in sig])
                fired = None
                if ties == "skip" and _is_max_pooling(step.layer):
                    fired = _fired_windows(step.layer, values[id(sig[0])])
                if fused:
                    pre = outputs[0]
                    outputs = [ops.relu(pre)]
                    record = (pullback, pre, fired)
                else:
                    record = (pullback, None, fired)
            for t, v in zip(node.outputs, outputs):
                values[id(t)] = v
            records.append(record)
        return values, records

    def _backward(self, records, seed, mode: str):
        """Pushes ``seed`` (at the target) back to the input with the mode's ReLU rule."""
        cot: dict[int, object] = {id(self.trace.target): seed}
        for step, record in zip(reversed(self.trace.steps), reversed(records)):
            node = step.node
            if step.kind == "input" or record is None:
                continue
            outs = [cot.pop(id(node.outputs[i]), None) for i in range(len(node.outputs))]
            if all(outs[i] is None for i in step.signal_outputs):
                continue
            if step.kind == "relu":
                grads = [_relu_rule(mode, outs[0], record)]
            elif step.kind == "batchnorm":
                grads = [outs[0] * ops.cast(record, outs[0].dtype)]
            else:
                pullback, pre, fired = record
                if pre is not None:
                    outs = [_relu_rule(mode, outs[0], pre)]
                if fired is not None and outs[0] is not None:  # ties="skip": drop dead windows
                    outs = [outs[0] * ops.cast(fired, outs[0].dtype), *outs[1:]]
                outs = [o if i in step.signal_outputs else None for i, o in enumerate(outs)]
                grads = pullback(outs)
            for i, g in zip(step.signal_inputs, grads):
                key = id(node.input_tensors[i])
                cot[key] = g if key not in cot else cot[key] + g
        result = cot.get(id(self.trace.input_tensor))
        return result

    # ------------------------------------------------------------------ projection
    def project(
        self,
        images,
        channel: int | Sequence[int],
        *,
        mode: str = "deconvnet",
        select="max",
        signal: str = "activation",
        ties: str = "exact",
        return_details: bool = False,
    ):
        """Projects one unit (or one whole feature map) per image back to pixel space.

        Args:
            images: ``(batch, H, W, C)`` (or one ``(H, W, C)`` image) in the model's input range
                (raw RGB 0..255 for this project's models).
            channel: The feature map: one int for every image or one per image.
            mode: ``"deconvnet"`` (Zeiler & Fergus), ``"gradient"`` (saliency) or ``"guided"``
                (guided backpropagation).
            select: Which activations of the feature map to keep: ``"max"`` (the strongest one
                of each image), ``"all"`` (the whole map), a position ``(row, col)`` for every
                image, or a list of positions, one per image.
            signal: ``"activation"`` keeps the chosen activations' values (the paper); ``"unit"``
                puts 1 there, so that ``gradient`` mode returns the gradient of the chosen
                activation(s) (their sum) with respect to the input.
            ties: How unpooling treats a max-pooling window whose forward activations were all
                zero: ``"exact"`` (default; the paper's rule: the signal goes to the recorded
                switch, the tie-broken top-left position) or ``"skip"`` (a display option: the
                signal unpooled into such a window is dropped). Windows with any non-zero value
                are unpooled identically by both.
            return_details: Also return the positions and the activation values.

        Returns:
            The projections, ``float32`` of the images' shape. With ``return_details``, a tuple
            ``(projections, positions, values)``: per image the kept position (``None`` for
            ``"all"``, ``()`` for a layer without spatial axes) and the activation there (for
            ``"all"``: the map's maximum).

        Raises:
            VisualizationError: Bad mode, channel out of range, position outside the map, or
                images that do not fit the model input.
        """
        mode = _check_mode(mode)
        if signal not in SIGNALS:
            raise VisualizationError(f"signal must be one of {SIGNALS}, got {signal!r}")
        if ties not in TIES:
            raise VisualizationError(f"ties must be one of {TIES}, got {ties!r}")
        x = self._prepare(images)
        batch = int(x.shape[0])
        channels = [channel] * batch if np.ndim(channel) == 0 else list(channel)
        if len(channels) != batch:
            raise VisualizationError(f"got {len(channels)} channels for {batch} images")
        channels = [self.check_channel(c) for c in channels]

        values, records = self._forward(x, ties)
        target = values[id(self.trace.target)]
        act = np.asarray(ops.convert_to_numpy(target))
        mask, positions = self._selection_mask(act, channels, select)
        kept = act * mask
        vals = [float(kept[b].max()) if select == "all" else float(kept[b].sum()) for b in range(batch)]
        seed = mask * act if signal == "activation" else mask
        seed = ops.convert_to_tensor(seed.astype(np.float32), dtype=target.dtype)
        grad = self._backward(records, seed, mode)
        proj = np.zeros(tuple(x.shape), np.float32) if grad is None else np.asarray(
            ops.convert_to_numpy(ops.cast(grad, "float32"))
        )
        if return_details:
            return proj, positions, np.asarray(vals, np.float32)
        return proj

    def _selection_mask(self, act: np.ndarray, channels: list[int], select):
        batch = act.shape[0]
        spatial = act.shape[1:-1]
        mask = np.zeros_like(act, dtype=np.float32)
        positions: list = []
        if isinstance(select, str) and select not in ("max", "all"):
            raise VisualizationError(f"select must be 'max', 'all' or positions, got {select!r}")
        if not spatial:
            for b, c in enumerate(channels):
                mask[b, c] = 1
                positions.append(())
            return mask, positions
        if isinstance(select, str):
            for b, c in enumerate(channels):
                if select == "all":
                    mask[b, ..., c] = 1
                    positions.append(None)
                else:
                    pos = np.unravel_index(int(np.argmax(act[b, ..., c])), spatial)
                    pos = tuple(int(p) for p in pos)
                    mask[(b, *pos, c)] = 1
                    positions.append(pos)
            return mask, positions
        sel = list(select)
        if sel and np.ndim(sel[0]) == 0:
            sel = [tuple(sel)] * batch
        if len(sel) != batch:
            raise VisualizationError(f"got {len(sel)} positions for {batch} images")
        for b, (c, pos) in enumerate(zip(channels, sel)):
            pos = tuple(int(p) for p in pos)
            if len(pos) != len(spatial) or any(not 0 <= p < s for p, s in zip(pos, spatial)):
                raise VisualizationError(
                    f"position {pos} is outside the {'x'.join(map(str, spatial))} feature map of "
                    f"layer {self.layer_name!r}"
                )
            mask[(b, *pos, c)] = 1
            positions.append(pos)
        return mask, positions

    # ------------------------------------------------------------------ receptive field
    def receptive_field(self, position: Sequence[int] | None, image_shape: Sequence[int]) -> Box:
        """The box of input pixels that can influence the unit at ``position``.

        Computed by pushing the unit's box back through every step's kernel size, stride,
        dilation and padding (for the actual sizes at this input shape), clipped to the image,
        with the union over branches.

        Args:
            position: ``(row, col)`` in the chosen layer's feature map, or ``None`` for the
                whole map (and for layers without spatial axes).
            image_shape: ``(H, W)`` or ``(H, W, C)`` of the input image.

        Returns:
            A :class:`Box` (half-open pixel ranges).
        """
        height, width = int(image_shape[0]), int(image_shape[1])
        shapes = self._shapes(height, width)
        target_shape = shapes[id(self.trace.target)]
        full_in = Box(0, height, 0, width)
        if len(target_shape) != 4 or position is None or len(position) == 0:
            return full_in
        r, c = (int(p) for p in position)
        boxes: dict[int, Box] = {id(self.trace.target): Box(r, r + 1, c, c + 1)}
        for step in reversed(self.trace.steps):
            node = step.node
            if step.kind == "input":
                continue
            out_boxes = [boxes.pop(id(t)) for t in node.outputs if id(t) in boxes]
            if not out_boxes or not step.signal_inputs:
                continue
            box = out_boxes[0]
            for b in out_boxes[1:]:
                box = box.union(b)
            out_shape = shapes[id(node.outputs[0])]
            for i in step.signal_inputs:
                tensor = node.input_tensors[i]
                in_shape = shapes[id(tensor)]
                new = _box_back(step.layer, box, in_shape, out_shape)
                key = id(tensor)
                boxes[key] = new if key not in boxes else boxes[key].union(new)
        return boxes.get(id(self.trace.input_tensor), full_in)

    def _shapes(self, height: int, width: int) -> dict[int, tuple]:
        key = (height, width)
        if key not in self._rf_cache:
            spec = keras.KerasTensor((1, height, width, int(self.trace.input_tensor.shape[-1])))
            values: dict[int, object] = {}
            for step in self.trace.steps:
                if step.kind == "input":
                    values[id(step.node.outputs[0])] = spec
                    continue
                args, kwargs = step.node.arguments.fill_in(values)
                kwargs.pop("training", None)
                out = step.layer.compute_output_spec(*args, **kwargs)
                outs = list(out) if isinstance(out, (list, tuple)) else [out]
                for t, v in zip(step.node.outputs, outs):
                    values[id(t)] = v
            self._rf_cache[key] = {k: tuple(v.shape) for k, v in values.items()}
        return self._rf_cache[key]


def _bn_scale(layer, rank: int):
    """``gamma / sqrt(moving_variance + epsilon)`` shaped to broadcast over the BN's axis."""
    var = ops.cast(layer.moving_variance, "float32")
    scale = ops.rsqrt(var + layer.epsilon)
    if layer.scale:
        scale = scale * ops.cast(layer.gamma, "float32")
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    shape = [1] * rank
    for a in axes:
        shape[a % rank] = -1
    return ops.reshape(scale, shape)


def _pairs(value, n=2):
    if isinstance(value, int):
        return (value,) * n
    return tuple(int(v) for v in value)


def _window_back(lo: int, hi: int, k: int, s: int, d: int, in_size: int, out_size: int, padding: str):
    """Input range of output range [lo, hi) for a conv/pool window."""
    span = (k - 1) * d + 1
    if padding == "same":
        pad = max((out_size - 1) * s + span - in_size, 0) // 2
    else:
        pad = 0
    return lo * s - pad, (hi - 1) * s - pad + span


def _transposed_back(lo: int, hi: int, k: int, s: int, d: int, in_size: int, out_size: int, padding: str):
    """Input range of output range [lo, hi) for a transposed conv (the conv's inverse map)."""
    span = (k - 1) * d + 1
    pad = max((in_size - 1) * s + span - out_size, 0) // 2 if padding == "same" else 0
    # output o receives input i when i*s - pad <= o <= i*s - pad + span - 1
    first = -(-(lo + pad - span + 1) // s)
    last = (hi - 1 + pad) // s
    return first, last + 1


def _box_back(layer, box: Box, in_shape, out_shape) -> Box:
    L = keras.layers
    if len(in_shape) != 4:
        return Box(0, 1, 0, 1)  # no spatial axes: callers only see the final input box
    h_in, w_in = in_shape[1], in_shape[2]
    full = Box(0, h_in, 0, w_in)
    if len(out_shape) != 4 or getattr(layer, "data_format", "channels_last") != "channels_last":
        return full
    h_out, w_out = out_shape[1], out_shape[2]
    rows, cols = (box.top, box.bottom), (box.left, box.right)
    if isinstance(layer, (L.Conv2DTranspose,)):
        k, s, d = _pairs(layer.kernel_size), _pairs(layer.strides), _pairs(layer.dilation_rate)
        rows = _transposed_back(*rows, k[0], s[0], d[0], h_in, h_out, layer.padding)
        cols = _transposed_back(*cols, k[1], s[1], d[1], w_in, w_out, layer.padding)
    elif isinstance(layer, (L.Conv2D, L.DepthwiseConv2D, L.SeparableConv2D)):
        k, s, d = _pairs(layer.kernel_size), _pairs(layer.strides), _pairs(layer.dilation_rate)
        rows = _window_back(*rows, k[0], s[0], d[0], h_in, h_out, layer.padding)
        cols = _window_back(*cols, k[1], s[1], d[1], w_in, w_out, layer.padding)
    elif isinstance(layer, (L.MaxPooling2D, L.AveragePooling2D, MaxPoolingWithArgmax2D, SwitchMaxPooling2D)):
        k, s = _pairs(layer.pool_size), _pairs(layer.strides)
        rows = _window_back(*rows, k[0], s[0], 1, h_in, h_out, layer.padding)
        cols = _window_back(*cols, k[1], s[1], 1, w_in, w_out, layer.padding)
    elif isinstance(layer, (MaxUnpooling2D, SwitchUnpooling2D, L.UpSampling2D)):
        sr, sc = -(-h_out // h_in), -(-w_out // w_in)
        rows = (rows[0] // sr, (rows[1] - 1) // sr + 1)
        cols = (cols[0] // sc, (cols[1] - 1) // sc + 1)
    elif isinstance(layer, L.ZeroPadding2D):
        (top, _), (left, _) = layer.padding
        rows, cols = (rows[0] - top, rows[1] - top), (cols[0] - left, cols[1] - left)
    elif isinstance(layer, L.Cropping2D):
        (top, _), (left, _) = layer.cropping
        rows, cols = (rows[0] + top, rows[1] + top), (cols[0] + left, cols[1] + left)
    elif isinstance(layer, L.Concatenate):
        if layer.axis % 4 != 3:
            return full
    elif isinstance(layer, (L.Flatten, L.Reshape, L.Permute, L.GlobalMaxPooling2D,
                            L.GlobalAveragePooling2D, L.Dense)) and not isinstance(layer, CropToReference):
        return full
    top, bottom = max(rows[0], 0), min(rows[1], h_in)
    left, right = max(cols[0], 0), min(cols[1], w_in)
    return Box(top, max(bottom, top), left, max(right, left))


def project(
    model,
    layer: str,
    images,
    channel: int | Sequence[int],
    *,
    mode: str = "deconvnet",
    select="max",
    signal: str = "activation",
    ties: str = "exact",
) -> np.ndarray:
    """Projects units of ``layer`` back to pixel space (see :meth:`Projector.project`).

    Args:
        model: A functional Keras model (e.g. ``deconvnet_tf.build_model(...)``,
            ``keras.applications.VGG16(weights=None)``, your own CNN).
        layer: Layer name, e.g. ``"block5_conv3"``.
        images: ``(batch, H, W, C)`` or ``(H, W, C)`` images in the model's input range.
        channel: Feature map (one for all images, or one per image).
        mode: ``"deconvnet"``, ``"gradient"`` or ``"guided"``.
        select: ``"max"``, ``"all"``, a ``(row, col)`` or one position per image.
        signal: ``"activation"`` (keep the activation values) or ``"unit"`` (put ones there).
        ties: ``"exact"`` (the paper's switches) or ``"skip"`` (drop the signal unpooled into
            all-zero pooling windows; a display option).

    Returns:
        ``float32`` projections of the images' shape (batch first).

    Example:

    >>> model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3)
    >>> project(model, "block2_conv1_relu", np.zeros((32, 32, 3), "float32"), 0).shape
    (1, 32, 32, 3)
    """
    return Projector(model, layer).project(images, channel, mode=mode, select=select, signal=signal,
                                           ties=ties)


def receptive_field(model, layer: str, position: Sequence[int], image_shape: Sequence[int]) -> Box:
    """The input box seen by the unit at ``position`` of ``layer`` (see :class:`Projector`).

    Example:

    >>> receptive_field(keras.applications.VGG16(weights=None), "block1_conv2", (10, 10), (224, 224))
    Box(top=8, bottom=13, left=8, right=13)
    """
    return Projector(model, layer).receptive_field(position, image_shape)
