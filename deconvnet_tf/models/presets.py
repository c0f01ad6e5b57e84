"""Architectures as data: the :class:`Architecture` dataclass and the named presets.

A preset is a plain dict of :class:`Architecture` fields; :func:`get_architecture` turns it into a
validated dataclass. Add a preset by adding an entry to :data:`PRESETS`.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Architecture", "EFFICIENTNET_FAMILIES", "EFFICIENTNET_LITE0_BLOCKS",
           "EFFICIENTNET_LITE_STAGES", "PRESETS", "VGG16_BLOCKS", "get_architecture",
           "list_presets"]

#: (filters, number of 3x3 convs) of VGG16's five blocks.
VGG16_BLOCKS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))

#: (kernel, stride, expansion) of EfficientNet-Lite's seven MBConv stages.
EFFICIENTNET_LITE_STAGES: tuple[tuple[int, int, int], ...] = (
    (3, 1, 1), (3, 2, 6), (5, 2, 6), (3, 2, 6), (5, 1, 6), (5, 2, 6), (3, 1, 6))
#: (filters, repeats) of EfficientNet-Lite0's seven stages (its ImageNet weights need these).
EFFICIENTNET_LITE0_BLOCKS: tuple[tuple[int, int], ...] = (
    (16, 1), (24, 2), (40, 2), (80, 3), (112, 3), (192, 4), (320, 1))

FAMILIES = ("deconvnet", "deconvnet_efficientnet", "fcn32s", "fcn16s", "fcn8s",
            "fcn8s_efficientnet")
#: The families on an EfficientNet-Lite encoder (``blocks`` lists its seven stages).
EFFICIENTNET_FAMILIES = ("deconvnet_efficientnet", "fcn8s_efficientnet")


def _as_float(value: Any) -> float:
    """``float(value)`` for a real number (not a bool or text), else NaN (which fails every
    range check)."""
    if isinstance(value, (bool, str, bytes)):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _as_int(value: Any, name: str) -> int:
    """``int(value)`` for an integer or an integral float (not a bool, text or a fraction).

    Raises:
        ValueError: Naming ``name`` and the value.
    """
    number = _as_float(value) if isinstance(value, numbers.Real) else float("nan")
    if not number.is_integer():  # also a bool (NaN from _as_float), NaN or infinity
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(number)


@dataclass(frozen=True)
class Architecture:
    """Everything that defines a network of the DeconvNet/FCN family.

    Attributes:
        family: ``"deconvnet"`` (encoder + mirrored unpooling/deconvolution decoder), an FCN
            variant ``"fcn32s"``, ``"fcn16s"``, ``"fcn8s"`` (skips from the last pools, learned
            upsampling), or ``"deconvnet_efficientnet"`` (an EfficientNet-Lite encoder, whose
            strided convolutions record no switches, and a decoder of learned stride-2
            deconvolutions with the encoder's features added at each scale), or
            ``"fcn8s_efficientnet"`` (FCN-8s's head on that encoder).
        blocks: ``(filters, convs)`` per encoder block, before ``encoder_width``; each block
            ends with a 2x2/2 max pooling. For the EfficientNet families: ``(filters,
            repeats)`` of the seven MBConv stages.
        fc_filters: Channels of fc6 and fc7 (4096 in the paper).
        fc_kernel: Kernel of fc6 (7 in the paper: a 7x7 valid conv on pool5) and of
            ``fc6_deconv``.
        fc_dropout: Dropout rate after fc6 and fc7 (layers ``fc6_dropout``, ``fc7_dropout``;
            VGG16 and FCN use 0.5 there, the paper's BatchNorm DeconvNet none); ``0`` (the
            default) adds no layer. In ``[0, 1)``; active only in training.
        num_classes: Output classes (21 for PASCAL VOC).
        encoder_width: Multiplier of the encoder's filters (1.0 keeps VGG16, needed for
            pretrained weights).
        decoder_width: Multiplier of the decoder's inner deconvolutions (DeconvNet only). The
            last deconvolution of each decoder block keeps the encoder's width, because the next
            unpooling needs that many channels.
        batchnorm: BatchNorm after every conv/deconv (the paper's DeconvNet does this).
        bn_momentum: Momentum of the BatchNorm moving statistics (Keras' 0.99 suits long
            runs; short CPU runs track the weights better with ~0.9).
        pool_padding: ``"same"`` (Caffe's ceil mode: odd sizes keep their last row) or
            ``"valid"``.
        description: One line for tables and ``list_presets``.
    """

    family: str = "deconvnet"
    blocks: tuple[tuple[int, int], ...] = VGG16_BLOCKS
    fc_filters: int = 4096
    fc_kernel: int = 7
    fc_dropout: float = 0.0
    num_classes: int = 21
    encoder_width: float = 1.0
    decoder_width: float = 1.0
    batchnorm: bool = True
    bn_momentum: float = 0.99
    pool_padding: str = "same"
    description: str = field(default="", compare=False)

    def __post_init__(self):
        try:
            blocks = tuple((_as_int(f, "blocks"), _as_int(n, "blocks")) for f, n in self.blocks)
        except (TypeError, ValueError):
            raise ValueError(f"blocks must be a sequence of (filters, convs) integer pairs, got "
                             f"{self.blocks!r}") from None
        object.__setattr__(self, "blocks", blocks)
        for name in ("fc_filters", "fc_kernel", "num_classes"):
            object.__setattr__(self, name, _as_int(getattr(self, name), name))
        self.validate()

    def validate(self) -> None:
        """Raises ``ValueError`` naming the first invalid field."""
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if not self.blocks or any(f < 1 or n < 1 for f, n in self.blocks):
            raise ValueError(f"blocks must be non-empty (filters>=1, convs>=1), got {self.blocks}")
        if self.efficientnet:
            if len(self.blocks) != len(EFFICIENTNET_LITE_STAGES):
                raise ValueError(f"blocks of {self.family} must list the "
                                 f"{len(EFFICIENTNET_LITE_STAGES)} stages, got {self.blocks}")
            if self.encoder_width != 1.0:
                raise ValueError(f"encoder_width must be 1.0 for {self.family} (its "
                                 "stages are set by blocks)")
        if self.family in ("fcn32s", "fcn16s", "fcn8s"):
            needed = {"fcn32s": 1, "fcn16s": 2, "fcn8s": 3}[self.family]
            if len(self.blocks) < needed:
                raise ValueError(f"{self.family} needs at least {needed} blocks")
        for name in ("fc_filters", "fc_kernel", "num_classes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("encoder_width", "decoder_width"):
            if not _as_float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("fc_dropout", "bn_momentum"):
            if not 0.0 <= _as_float(getattr(self, name)) < 1.0:
                raise ValueError(f"{name} must be a number in [0, 1), got {getattr(self, name)!r}")
        if self.pool_padding not in ("same", "valid"):
            raise ValueError(f"pool_padding must be 'same' or 'valid', got {self.pool_padding!r}")

    # Derived quantities -------------------------------------------------------------------
    @property
    def efficientnet(self) -> bool:
        """Whether the encoder is EfficientNet-Lite (:data:`EFFICIENTNET_FAMILIES`)."""
        return self.family in EFFICIENTNET_FAMILIES

    @staticmethod
    def _scale(filters: int, width: float) -> int:
        return max(1, int(round(filters * width)))

    def encoder_filters(self) -> list[int]:
        """Filters of each encoder block after ``encoder_width``."""
        return [self._scale(f, self.encoder_width) for f, _ in self.blocks]

    def decoder_filters(self, block: int) -> list[int]:
        """Filters of the deconvolutions of decoder block ``block`` (1-based), paper order.

        Block i mirrors encoder block i: ``convs - 1`` deconvolutions at the block's width
        (times ``decoder_width``), then one at the width of block i-1 (block 1: its own), which
        is what the next unpooling receives. Paper: 512,512,512 / 512,512,256 / 256,256,128 /
        128,64 / 64,64.
        """
        enc = self.encoder_filters()
        _, convs = self.blocks[block - 1]
        inner = self._scale(self.blocks[block - 1][0], self.encoder_width * self.decoder_width)
        last = enc[block - 2] if block > 1 else enc[0]
        return [inner] * (convs - 1) + [last]

    @property
    def reduction(self) -> int:
        """Total downsampling factor of the encoder (2 ** blocks; 32 for EfficientNet-Lite)."""
        if self.efficientnet:
            return 2 ** sum(s == 2 for _, s, _ in EFFICIENTNET_LITE_STAGES) * 2  # + the stem
        return 2 ** len(self.blocks)

    def min_input_size(self) -> int:
        """Smallest height/width that leaves fc6's window room after all poolings."""
        if self.family != "deconvnet":
            # FCN's fc6 is a 'same' conv, as are EfficientNet's strided convs: the coarsest
            # feature map needs >= 1 pixel
            return self.reduction
        if self.pool_padding == "same":
            return (self.fc_kernel - 1) * self.reduction + 1
        return self.fc_kernel * self.reduction

    def replace(self, **changes: Any) -> Architecture:
        """Returns a validated copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (blocks as lists)."""
        data = dataclasses.asdict(self)
        data["blocks"] = [list(b) for b in self.blocks]
        return data


_REDUCED_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3))

#: Named architectures. Values are ``Architecture`` fields.
PRESETS: dict[str, dict[str, Any]] = {
    "deconvnet_vgg16": {
        "description": "The paper's DeconvNet (Noh et al. 2015): VGG16, fc6/fc7 4096, mirrored decoder",
    },
    "deconvnet_vgg16_slim": {
        "fc_filters": 1024,
        "fc_kernel": 3,
        "decoder_width": 0.5,
        "description": "VGG16 encoder (pretrained weights load), 3x3 fc 1024, half-width decoder",
    },
    "deconvnet_vgg16_compact": {
        "blocks": ((64, 2), (128, 2), (256, 3)),
        "fc_filters": 128,
        "fc_kernel": 3,
        "decoder_width": 0.5,
        "description": "VGG16 blocks 1-3 (pretrained weights load), 3x3 fc 128, half-width "
        "decoder: the shipped CamVid/Horse models",
    },
    "deconvnet_vgg16_compact_k7": {
        "blocks": ((64, 2), (128, 2), (256, 3)),
        "fc_filters": 128,
        "fc_kernel": 7,
        "decoder_width": 0.5,
        "description": "deconvnet_vgg16_compact with the paper's 7x7 fc6 (more context per "
        "pixel): level on the CamVid test-like dev fold, not used (docs/results.md)",
    },
    "deconvnet_vgg16_b4_compact": {
        "blocks": _REDUCED_BLOCKS,
        "fc_filters": 128,
        "fc_kernel": 3,
        "decoder_width": 0.5,
        "description": "VGG16 blocks 1-4 (pretrained weights load), 3x3 fc 128, half-width "
        "decoder: a deeper compact (lost on the CamVid dev folds, docs/results.md)",
    },
    "deconvnet_vgg16_b5_compact": {
        "fc_filters": 256,
        "fc_kernel": 3,
        "decoder_width": 0.5,
        "description": "VGG16 blocks 1-5 (pretrained weights load), 3x3 fc 256, half-width "
        "decoder: the deepest compact (lost on the CamVid dev fold, docs/results.md)",
    },
    "deconvnet_efficientnet_lite0": {
        "family": "deconvnet_efficientnet",
        "blocks": EFFICIENTNET_LITE0_BLOCKS,
        "fc_filters": 256,
        "fc_kernel": 1,
        "description": "EfficientNet-Lite0 encoder (ImageNet weights load: "
        "encoder_weights='efficientnet_lite0'), 1x1 fc 256, deconvolution decoder with skips",
    },
    "fcn8s_efficientnet_lite0": {
        "family": "fcn8s_efficientnet",
        "blocks": EFFICIENTNET_LITE0_BLOCKS,
        "fc_filters": 256,
        "fc_kernel": 1,
        "description": "FCN-8s on deconvnet_efficientnet_lite0's encoder and fc6/fc7 "
        "(encoder_weights='efficientnet_lite0'): the paper's comparison on that encoder",
    },
    "deconvnet_small": {
        "encoder_width": 0.5,
        "fc_filters": 512,
        "fc_kernel": 3,
        "description": "Half-width VGG16, 3x3 fc 512: CPU training",
    },
    "deconvnet_mobile": {
        "blocks": _REDUCED_BLOCKS,
        "encoder_width": 0.25,
        "fc_filters": 256,
        "fc_kernel": 3,
        "description": "Quarter width, 4 blocks, 3x3 fc 256: phones",
    },
    "deconvnet_tiny": {
        "blocks": ((64, 1), (128, 1), (256, 2)),
        "encoder_width": 0.125,
        "fc_filters": 64,
        "fc_kernel": 3,
        "description": "3 blocks at 1/8 width: tests and the demo",
    },
    "fcn32s_vgg16": {
        "family": "fcn32s",
        "description": "FCN-32s (Long et al. 2015) on the same VGG16 backbone",
    },
    "fcn8s_vgg16": {
        "family": "fcn8s",
        "description": "FCN-8s: skips from pool3/pool4, learned upsampling",
    },
    "fcn8s_small": {
        "family": "fcn8s",
        "encoder_width": 0.5,
        "fc_filters": 512,
        "fc_kernel": 3,
        "description": "FCN-8s on the deconvnet_small backbone",
    },
    "fcn8s_vgg16_compact": {
        "family": "fcn8s",
        "blocks": ((64, 2), (128, 2), (256, 3)),
        "fc_filters": 128,
        "fc_kernel": 3,
        "description": "FCN-8s on the deconvnet_vgg16_compact backbone (the ensemble partner)",
    },
    "fcn8s_tiny": {
        "family": "fcn8s",
        "blocks": ((64, 1), (128, 1), (256, 2)),
        "encoder_width": 0.125,
        "fc_filters": 64,
        "fc_kernel": 3,
        "description": "FCN-8s on the deconvnet_tiny backbone",
    },
}


def list_presets() -> list[str]:
    """Returns the names of the registered presets, sorted."""
    return sorted(PRESETS)


def get_architecture(preset: str | Architecture, **changes: Any) -> Architecture:
    """Returns the :class:`Architecture` of ``preset`` with ``changes`` applied.

    Args:
        preset: A preset name (see :func:`list_presets`) or an ``Architecture``.
        **changes: Architecture fields to override (e.g. ``num_classes=12``).

    Raises:
        ValueError: Unknown preset name.
        TypeError: Unknown field name.
    """
    if isinstance(preset, Architecture):
        arch = preset
    else:
        if preset not in PRESETS:
            raise ValueError(
                f"Unknown preset {preset!r}; available presets: {', '.join(list_presets())}"
            )
        arch = Architecture(**PRESETS[preset])
    unknown = set(changes) - {f.name for f in dataclasses.fields(Architecture)}
    if unknown:
        raise TypeError(f"Unknown architecture field(s) {sorted(unknown)}")
    return arch.replace(**changes) if changes else arch
