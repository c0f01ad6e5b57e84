"""A table of the presets: family, parameters, FLOPs and minimum input size."""

from __future__ import annotations

from dataclasses import dataclass

from deconvnet_tf.models.builder import build_model
from deconvnet_tf.models.flops import count_flops
from deconvnet_tf.models.presets import PRESETS, get_architecture, list_presets

__all__ = ["PresetSummary", "preset_summaries", "format_table"]


@dataclass(frozen=True)
class PresetSummary:
    """One row of the preset table."""

    name: str
    family: str
    params: int
    gflops: float
    size: tuple[int, int]
    min_input_size: int
    description: str


def preset_summaries(
    presets: list[str] | None = None, size: tuple[int, int] = (224, 224), num_classes: int = 21
) -> list[PresetSummary]:
    """Builds each preset at ``size`` and counts its parameters and FLOPs per image.

    Args:
        presets: Names to include (default: all).
        size: ``(height, width)`` to count FLOPs at.
        num_classes: Number of classes of the score layer.
    """
    rows = []
    for name in presets or list_presets():
        arch = get_architecture(name)
        kwargs = {"unpooling": "switch"} if arch.family == "deconvnet" else {}
        model = build_model(name, input_shape=(*size, 3), num_classes=num_classes, **kwargs)
        rows.append(
            PresetSummary(
                name=name,
                family=arch.family,
                params=model.count_params(),
                gflops=count_flops(model) / 1e9,
                size=tuple(size),
                min_input_size=arch.min_input_size(),
                description=PRESETS[name].get("description", ""),
            )
        )
        del model
    return rows


def format_table(rows: list[PresetSummary]) -> str:
    """Formats rows as a GitHub markdown table."""
    if not rows:
        return ""
    h, w = rows[0].size
    lines = [
        f"| preset | family | params | GFLOP ({h}x{w}) | min input | description |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r.name}` | {r.family} | {r.params / 1e6:.2f}M | {r.gflops:.2f} | "
            f"{r.min_input_size} | {r.description} |"
        )
    return "\n".join(lines)
