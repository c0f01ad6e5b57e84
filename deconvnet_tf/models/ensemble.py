"""EDeconvNet as one network: several segmentation networks that see the same image, their
class probabilities averaged pixel-wise (Noh et al. 2015, Sec. 4.3, whole-image form).

:class:`EnsembleNetwork` is a Keras model like the members (RGB in, per-pixel scores out), so a
:class:`~deconvnet_tf.Segmenter` holds it, saves it to one ``.keras`` file and exports it to
SavedModel and LiteRT like any single network. The members' common preprocessing runs once, at
the front (the int8 LiteRT export needs it there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from deconvnet_tf.layers import VGGPreprocessing, leading_preprocessing

__all__ = ["EnsembleNetwork", "MeanProbabilities"]


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class MeanProbabilities(keras.layers.Layer):
    """The weighted mean of the softmax of several score maps (float32).

    Args:
        weights: One mixing weight per input (default: equal); scaled to sum to 1.
        **kwargs: Base ``keras.layers.Layer`` arguments.

    Input shape:
        A list of tensors ``(batch, height, width, classes)`` of equal shape: logits.

    Output shape:
        ``(batch, height, width, classes)`` probabilities that sum to 1 per pixel.

    Example:

    >>> MeanProbabilities()([np.zeros((1, 1, 1, 2)), np.array([[[[0.0, 1e9]]]])])[0, 0, 0]
    ... # ~ [0.25, 0.75]
    """

    def __init__(self, weights: Sequence[float] | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if weights is not None:
            weights = [float(w) for w in weights]
            if not weights or min(weights) < 0 or sum(weights) <= 0:
                raise ValueError(f"MeanProbabilities: weights must be non-negative numbers, "
                                 f"not all 0, got {weights}")
        self.mixing_weights = weights

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or not inputs:
            raise ValueError("MeanProbabilities takes a list of score maps")
        weights = self.mixing_weights or [1.0] * len(inputs)
        if len(weights) != len(inputs):
            raise ValueError(f"MeanProbabilities: {len(weights)} weights for {len(inputs)} "
                             "inputs")
        total = sum(weights)
        out = None
        for w, x in zip(weights, inputs):
            p = keras.ops.softmax(keras.ops.cast(x, "float32"), axis=-1) * (w / total)
            out = p if out is None else out + p
        return out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "weights": self.mixing_weights}


def _preprocessing(member: keras.Model) -> VGGPreprocessing:
    """The member's preprocessing layer (its first layer after the input), checked."""
    layer = leading_preprocessing(member)
    if layer is None:
        raise ValueError(f"EnsembleNetwork: member {member.name!r} must be a network of this "
                         "package whose first layer is its preprocessing (VGGPreprocessing)")
    return layer


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class EnsembleNetwork(keras.Model):
    """Networks combined pixel-wise by the weighted mean of their class probabilities.

    The members keep their weights (the same variables: no copy); their shared preprocessing
    runs once. The output is probabilities (``output_activation == "softmax"``), so
    ``deconvnet-predict``, the CRF, the SavedModel and LiteRT exports treat it like a single
    network. Meant for inference: each member is trained on its own (``deconvnet-train``).

    Args:
        members: Two or more networks of this package (``build_model`` / ``.keras`` files of
            ``deconvnet-train``) with the same classes and the same input preprocessing
            (e.g. ``deconvnet_efficientnet_lite0`` and ``fcn8s_efficientnet_lite0``).
        weights: One mixing weight per member (default: equal).
        name: Model name.

    Input shape:
        ``(batch, height, width, 3)`` RGB, 0..255; any size the members take (at least
        ``min_input_size``).

    Output shape:
        ``(batch, height, width, classes)`` probabilities.

    Example:

    >>> a = build_model("deconvnet_tiny", num_classes=3)
    >>> b = build_model("deconvnet_tiny", num_classes=3)
    >>> EnsembleNetwork([a, b])(np.zeros((1, 32, 32, 3))).shape
    (1, 32, 32, 3)
    """

    def __init__(self, members: Sequence[keras.Model | dict], weights: Sequence[float] | None
                 = None, name: str = "edeconvnet", **kwargs):
        members = [keras.saving.deserialize_keras_object(m) if isinstance(m, dict) else m
                   for m in members]
        if len(members) < 2 or not all(isinstance(m, keras.Model) for m in members):
            raise ValueError(f"EnsembleNetwork: members must be two or more keras.Model "
                             f"networks, got {[type(m).__name__ for m in members]}")
        if weights is not None and len(weights) != len(members):
            raise ValueError(f"EnsembleNetwork: {len(weights)} weights for {len(members)} "
                             "members")
        pres = [_preprocessing(m) for m in members]
        settings = [(p.mean, p.bgr, p.scale) for p in pres]
        if len(set(settings)) != 1:
            raise ValueError(f"EnsembleNetwork: the members preprocess images differently "
                             f"((mean, bgr, scale) = {settings}); they must agree")
        classes = {int(m.output_shape[-1]) for m in members}
        if len(classes) != 1:
            raise ValueError(f"EnsembleNetwork: the members predict different numbers of "
                             f"classes: {sorted(classes)}")
        inputs = keras.Input((None, None, 3), name="image")
        image = VGGPreprocessing(pres[0].mean, bgr=pres[0].bgr, scale=pres[0].scale,
                                 name="preprocessing")(inputs)
        scores = []
        for i, (member, pre) in enumerate(zip(members, pres)):
            if getattr(member, "output_activation", None) == "softmax":
                raise ValueError(f"EnsembleNetwork: member {member.name!r} outputs "
                                 "probabilities; build it with output_activation=None (logits)")
            body = keras.Model(pre.output, member.output, name=f"member{i}_{member.name}")
            scores.append(body(image))
        outputs = MeanProbabilities(weights, name="probabilities")(scores)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        # configs only: the variables are tracked once, through the graph's layers
        self._member_configs = [keras.saving.serialize_keras_object(m) for m in members]
        self.member_names = tuple(m.name for m in members)
        self.mixing_weights = None if weights is None else [float(w) for w in weights]
        self.output_activation = "softmax"
        self.mean = tuple(float(v) for v in getattr(members[0], "mean", pres[0].mean))
        self.min_input_size = max(int(getattr(m, "min_input_size", 1) or 1) for m in members)
        self.image_shape = (None, None, 3)

    @property
    def unpooling(self) -> str | None:
        """The unpooling of its DeconvNet members (``"argmax"`` / ``"switch"``; ``None``:
        none has switch unpooling)."""
        kinds = {m["config"].get("unpooling") for m in self._member_configs
                 if isinstance(m, dict) and isinstance(m.get("config"), dict)} - {None}
        return kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else None)

    def with_member_unpooling(self, unpooling: str) -> "EnsembleNetwork":
        """This ensemble rebuilt with ``unpooling`` in its DeconvNet members (same weights;
        pooling layers have none, so the weight lists line up); see
        :func:`deconvnet_tf.models.with_unpooling`."""
        if self.unpooling in (None, unpooling):
            return self
        config = self.get_config()
        members = []
        for member in config["members"]:
            member = dict(member)
            if "unpooling" in member.get("config", {}):
                member["config"] = {**member["config"], "unpooling": unpooling}
            members.append(member)
        rebuilt = EnsembleNetwork.from_config({**config, "members": members})
        rebuilt.set_weights(self.get_weights())
        return rebuilt

    def get_config(self) -> dict[str, Any]:
        return {"members": list(self._member_configs), "weights": self.mixing_weights,
                "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("trainable", None)
        return cls(**config)
