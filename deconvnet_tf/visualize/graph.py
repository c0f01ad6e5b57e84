"""Walking a functional Keras model from its input to one layer, and what each step inverts to.

:func:`trace` collects the nodes of the graph between the model's input and the output of a
chosen layer, in execution order, and gives each one a :class:`Step` with a *kind*:

* ``"linear"``: a map that is linear in its signal inputs once switches are held fixed (convs
  and transposed convs, Dense, BatchNorm in inference mode, affine preprocessing, padding,
  cropping, Add/Concatenate, Flatten/Reshape, average pooling, max pooling with its switches,
  unpooling through given switches, Dropout at inference). Going backwards applies its
  transpose, e.g. a conv becomes the transposed convolution with the same kernel. A conv or
  Dense with a fused ``relu`` is split into its linear part and a ReLU.
* ``"relu"``: a rectifier. Going backwards applies the rule of the chosen mode.
* ``"batchnorm"``: BatchNormalization in inference mode, a per-channel affine map; going back
  multiplies by ``gamma / sqrt(moving_variance + epsilon)``, which is the same as folding the
  BatchNorm scale into the preceding conv's transposed filter.
* ``"input"``: the model input.

Any other layer on the path (a Lambda, LayerNormalization, softmax, a nested model, ...) makes
:func:`trace` raise :class:`NotInvertibleError` naming that layer.

The graph is read through Keras' functional-graph objects (``KerasTensor._keras_history`` and
``Node.arguments``), the same ones ``keras.Model`` uses to run itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras

from deconvnet_tf.layers import (
    CropToReference,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    SwitchMaxPooling2D,
    SwitchUnpooling2D,
    VGGPreprocessing,
)

__all__ = [
    "NotInvertibleError",
    "Step",
    "Trace",
    "UnknownLayerError",
    "VisualizationError",
    "invertible_layer_names",
    "trace",
]


class VisualizationError(ValueError):
    """Bad input to the visualiser; the message says what was expected."""


class UnknownLayerError(VisualizationError):
    """The model has no layer of that name (the message lists the valid ones)."""


class NotInvertibleError(VisualizationError):
    """A layer on the path to the chosen layer has no deconvnet inverse (the message names it)."""


# Layers that are linear in their (first / all) inputs. Values: indices of the signal inputs in
# the node's flattened input list, or None for "all of them".
def _linear_rules() -> dict[type, tuple[int, ...] | None]:
    L = keras.layers
    rules: dict[type, tuple[int, ...] | None] = {
        VGGPreprocessing: None,
        CropToReference: (0,),
        MaxPoolingWithArgmax2D: None,
        SwitchMaxPooling2D: None,
        MaxUnpooling2D: (0,),
        SwitchUnpooling2D: (0,),
    }
    for name in (
        "Rescaling", "Normalization", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
        "Cropping1D", "Cropping2D", "Cropping3D", "Add", "Subtract", "Average", "Concatenate",
        "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
        "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity", "Flatten",
        "Reshape", "Permute", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
        "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
        "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "GlobalMaxPooling1D",
        "GlobalMaxPooling2D", "GlobalMaxPooling3D", "UpSampling1D", "UpSampling2D",
    ):
        cls = getattr(L, name, None)
        if cls is not None:
            rules[cls] = None
    return rules


def _weighted_classes() -> tuple[type, ...]:
    """Layers with a kernel (linear + optional fused activation)."""
    L = keras.layers
    names = (
        "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
        "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D", "Dense",
    )
    return tuple(getattr(L, n) for n in names if hasattr(L, n))


def _activation_kind(activation) -> str | None:
    """``"linear"``, ``"relu"`` or ``None`` (not invertible) for an activation function."""
    if activation is None:
        return "linear"
    if activation is keras.activations.linear:
        return "linear"
    if activation is keras.activations.relu:
        return "relu"
    name = getattr(activation, "__name__", "")
    if name in ("linear", "relu"):
        return name
    return None


@dataclass
class Step:
    """One node of the traced path.

    Attributes:
        node: The Keras graph node.
        layer: Its layer.
        kind: ``"input"``, ``"linear"``, ``"relu"``, ``"batchnorm"`` or ``"linear+relu"`` (a conv
            or Dense with a fused ReLU).
        signal_inputs: Positions, in ``node.input_tensors``, of the inputs the signal flows back
            to (the others, such as unpooling switches or a crop reference, are held fixed).
        signal_outputs: Positions, in ``node.outputs``, that carry signal (a pooling layer's
            switches do not).
    """

    node: Any
    layer: Any
    kind: str
    signal_inputs: tuple[int, ...] = ()
    signal_outputs: tuple[int, ...] = (0,)

    @property
    def name(self) -> str:
        return self.layer.name


@dataclass
class Trace:
    """The path from a model's input to one layer's output.

    Attributes:
        model: The model.
        layer: The chosen layer.
        input_tensor: The model's (symbolic) input.
        target: The chosen layer's (symbolic) output tensor.
        steps: The nodes to run, in execution order (the input first).
    """

    model: Any
    layer: Any
    input_tensor: Any
    target: Any
    steps: list[Step] = field(default_factory=list)


def _classify(layer, node, signal_in: list[bool]) -> Step:
    """Builds the :class:`Step` for ``node`` or raises :class:`NotInvertibleError`."""
    if isinstance(layer, keras.layers.InputLayer) or node.is_input:
        return Step(node, layer, "input")
    n_in = len(node.input_tensors)
    where = f"layer {layer.name!r} ({type(layer).__name__})"
    if isinstance(layer, keras.Model):
        raise NotInvertibleError(
            f"Cannot project through {where}: a nested model. Build a flat functional model "
            "(e.g. keras.Model(inner.input, inner.output)) and project through that."
        )
    if isinstance(layer, keras.layers.ReLU):
        if layer.max_value is not None or float(layer.negative_slope) != 0 or float(layer.threshold) != 0:
            raise NotInvertibleError(
                f"Cannot project through {where}: only a plain ReLU (no max_value, "
                "negative_slope or threshold) has a deconvnet inverse."
            )
        return Step(node, layer, "relu", (0,))
    if isinstance(layer, keras.layers.Activation):
        kind = _activation_kind(layer.activation)
        if kind is None:
            raise NotInvertibleError(
                f"Cannot project through {where}: activation "
                f"{getattr(layer.activation, '__name__', layer.activation)!r} has no deconvnet "
                "inverse (only relu and linear do)."
            )
        return Step(node, layer, kind, (0,))
    if isinstance(layer, keras.layers.BatchNormalization):
        return Step(node, layer, "batchnorm", (0,))
    if isinstance(layer, _weighted_classes()):
        kind = _activation_kind(getattr(layer, "activation", None))
        if kind is None:
            raise NotInvertibleError(
                f"Cannot project through {where}: its fused activation "
                f"{getattr(layer.activation, '__name__', layer.activation)!r} has no deconvnet "
                "inverse (only relu and linear do)."
            )
        return Step(node, layer, "linear+relu" if kind == "relu" else "linear", (0,))
    rules = _linear_rules()
    for cls, inputs in rules.items():
        if type(layer) is cls or isinstance(layer, cls):
            chosen = tuple(range(n_in)) if inputs is None else inputs
            # Pooling layers that return (pooled, switches): only the pooled values carry signal.
            return Step(node, layer, "linear", tuple(i for i in chosen if signal_in[i]), (0,))
    raise NotInvertibleError(
        f"Cannot project through {where}: it is not one of the layers the deconvnet can invert "
        "(Conv/Dense with relu or linear activation, BatchNormalization, ReLU, max/average "
        "pooling, our switch/argmax pooling and unpooling, Add/Concatenate, padding/cropping, "
        "Dropout, Flatten/Reshape, Rescaling/VGGPreprocessing)."
    )


def _history(tensor):
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        raise VisualizationError(f"{tensor!r} is not a symbolic tensor of a functional model")
    return history


def _functional(model):
    """The functional graph behind ``model`` (a built Sequential has one)."""
    if isinstance(model, keras.Sequential):
        inner = getattr(model, "_functional", None)
        if inner is None:
            raise VisualizationError(
                "This Sequential model has no graph yet: give it a keras.Input (or build it "
                "with an input shape) before visualising it."
            )
        return inner
    if not hasattr(model, "_nodes_by_depth"):
        raise VisualizationError(
            f"Model {getattr(model, 'name', model)!r} is a subclassed model: only functional "
            "(and built Sequential) Keras models can be traced."
        )
    return model


def _layer_names(model) -> list[str]:
    return [layer.name for layer in model.layers]


def _target_tensor(model, layer_name: str):
    names = _layer_names(model)
    if layer_name not in names:
        valid = invertible_layer_names(model)
        nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)
                  and layer_name in _layer_names(layer)]
        hint = (f" ({layer_name!r} is a layer of the nested network {nested[0]!r}, e.g. a "
                "member of an ensemble: visualise that network on its own, e.g. its training "
                "run's model.keras)" if nested else "")
        raise UnknownLayerError(
            f"Model {model.name!r} has no layer named {layer_name!r}{hint}. Layers that can be "
            f"projected: {', '.join(valid) if valid else '(none)'}"
        )
    layer = model.get_layer(layer_name)
    if isinstance(layer, keras.layers.InputLayer):
        return layer, layer.output
    try:
        output = layer.output
    except (AttributeError, ValueError) as err:
        raise VisualizationError(
            f"Layer {layer_name!r} is called more than once in {model.name!r} (shared layer); "
            "its output is ambiguous"
        ) from err
    if isinstance(output, (list, tuple)):
        output = output[0]  # pooling layers with switches: the pooled values
    return layer, output


def trace(model, layer_name: str) -> Trace:
    """Traces the path from ``model``'s input to the output of layer ``layer_name``.

    Args:
        model: A functional (or built Sequential) Keras model with one input.
        layer_name: Name of the layer to project from. For a pooling layer that also returns
            switches, its pooled values are used.

    Returns:
        A :class:`Trace` whose steps run the model up to that layer.

    Raises:
        UnknownLayerError: No layer of that name (the message lists the layers that can be
            projected).
        NotInvertibleError: A layer on the path cannot be inverted (the message names it).
        VisualizationError: A model with several inputs, a subclassed model, a shared layer.
    """
    graph = _functional(model)
    inputs = graph.inputs
    if len(inputs) != 1:
        raise VisualizationError(
            f"Model {model.name!r} has {len(inputs)} inputs; the visualiser needs exactly one image input"
        )
    input_tensor = inputs[0]
    layer, target = _target_tensor(model, layer_name)

    # Collect ancestor nodes of the target (depth-first), then order them for execution.
    nodes: dict[int, Any] = {}
    order: list[Any] = []

    def visit(tensor):
        op, node_index, _ = _history(tensor)
        node = op._inbound_nodes[node_index]
        if id(node) in nodes:
            return
        nodes[id(node)] = node
        if tensor is not input_tensor and not node.is_input:
            for parent in node.input_tensors:
                visit(parent)
        order.append(node)  # post-order: parents first

    visit(target)

    # Which tensors carry signal (depend on the input through signal inputs)?
    signal: set[int] = {id(input_tensor)}
    steps: list[Step] = []
    for node in order:
        op = node.operation
        if node.is_input:
            steps.append(Step(node, op, "input"))
            continue
        flags = [id(t) in signal for t in node.input_tensors]
        step = _classify(op, node, flags)
        step.signal_inputs = tuple(i for i in step.signal_inputs if flags[i])
        steps.append(step)
        if step.signal_inputs:
            for i in step.signal_outputs:
                signal.add(id(node.outputs[i]))
    return Trace(model, layer, input_tensor, target, steps)


def invertible_layer_names(model) -> list[str]:
    """Names of the layers of ``model`` whose output the visualiser can project to the input.

    A layer qualifies when every layer between the model's input and it can be inverted (see
    the module docstring). The input layer itself is not listed.
    """
    try:
        graph = _functional(model)
    except VisualizationError:
        return []
    if len(graph.inputs) != 1:
        return []
    ok: dict[int, bool] = {}
    names = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            for t in layer._inbound_nodes[0].outputs if layer._inbound_nodes else []:
                ok[id(t)] = True
            continue
        good = True
        for node in layer._inbound_nodes:
            if any(id(t) not in ok for t in node.input_tensors):
                continue  # node of another model using this layer
            flags = [ok[id(t)] for t in node.input_tensors]
            try:
                step = _classify(layer, node, [True] * len(flags))
                needed = step.signal_inputs
                good = all(flags[i] for i in needed) if needed else False
            except NotInvertibleError:
                good = False
            for i, t in enumerate(node.outputs):
                ok[id(t)] = good and i in step.signal_outputs if good else False
            if good:
                names.append(layer.name)
    return names
