"""A procedurally generated segmentation dataset: the embedded default for the demo and tests.

Shapes of four classes (disc, square, triangle, ring), several instances per image, some
overlapping, each class with a jittered characteristic colour, on muted textured backgrounds
(noise, gradients, stripes): a small CNN learns them in seconds on a CPU. Pure NumPy + OpenCV,
deterministic for a given seed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

__all__ = ["CLASS_NAMES", "IGNORE_LABEL", "make_scene", "write_synthetic_dataset"]

CLASS_NAMES = ("background", "disc", "square", "triangle", "ring")
IGNORE_LABEL = 255

# Characteristic colour of each object class (RGB), jittered per instance: like real classes
# (sky, road), colour is a strong but not perfect cue; shape and context do the rest.
_CLASS_COLOURS = np.array(
    [(0, 0, 0), (205, 60, 55), (60, 175, 75), (60, 95, 205), (215, 190, 50)], np.float32
)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    grey = rng.uniform(60, 190)
    base = grey + rng.uniform(-15, 15, size=3)  # muted: backgrounds are low-saturation
    angle = rng.uniform(0, np.pi)
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)[..., None]
    image = base + rng.uniform(-60, 60, size=3) * ramp
    if rng.random() < 0.6:  # stripes
        period = rng.uniform(6, 24)
        phase = np.sin(2 * np.pi * (xx * np.cos(angle + 1) + yy * np.sin(angle + 1)) / period)
        image = image + rng.uniform(10, 35) * phase[..., None]
    image = image + rng.normal(0, rng.uniform(4, 16), size=(height, width, 3))
    return image


def _shape_mask(kind: int, rng, height: int, width: int) -> np.ndarray:
    import cv2

    mask = np.zeros((height, width), np.uint8)
    size = rng.uniform(0.12, 0.3) * min(height, width)
    cy, cx = rng.uniform(size * 0.6, height - size * 0.6), rng.uniform(size * 0.6, width - size * 0.6)
    centre = (int(round(cx)), int(round(cy)))
    if kind == 1:  # disc
        cv2.circle(mask, centre, int(size), 1, -1)
    elif kind == 2:  # square, rotated
        box = cv2.boxPoints(((cx, cy), (2 * size, 2 * size), float(rng.uniform(0, 90))))
        cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
    elif kind == 3:  # triangle
        start = rng.uniform(0, 2 * np.pi)
        pts = [
            (cx + 1.3 * size * np.cos(start + k * 2 * np.pi / 3), cy + 1.3 * size * np.sin(start + k * 2 * np.pi / 3))
            for k in range(3)
        ]
        cv2.fillPoly(mask, [np.round(np.array(pts)).astype(np.int32)], 1)
    else:  # ring
        cv2.circle(mask, centre, int(size), 1, max(2, int(size * 0.35)))
    return mask.astype(bool)


def make_scene(
    seed: int, height: int = 96, width: int = 128, max_objects: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generates one scene.

    Args:
        seed: Seed; the same seed always gives the same scene.
        height: Image height.
        width: Image width.
        max_objects: At most this many objects (at least one).

    Returns:
        ``(image uint8 (H, W, 3), label uint8 (H, W), instances int32 (H, W))``: class index
        per pixel (0 = background) and instance id per pixel (0 = none, 1..K in drawing order;
        later objects occlude earlier ones).
    """
    if height < 16 or width < 16 or max_objects < 1:
        raise ValueError(f"make_scene needs height, width >= 16 and max_objects >= 1, got "
                         f"{height}x{width}, {max_objects}")
    rng = np.random.default_rng(int(seed))
    image = _background(rng, height, width)
    label = np.zeros((height, width), np.uint8)
    instances = np.zeros((height, width), np.int32)
    count = int(rng.integers(1, max_objects + 1))
    instance = 0
    for _ in range(count):
        kind = int(rng.integers(1, len(CLASS_NAMES)))
        mask = _shape_mask(kind, rng, height, width)
        if not mask.any():
            continue
        instance += 1
        colour = _CLASS_COLOURS[kind] + rng.uniform(-45, 45, size=3)
        texture = rng.normal(0, rng.uniform(3, 12), size=(height, width, 3))
        image[mask] = colour + texture[mask]
        label[mask] = kind
        instances[mask] = instance
    return np.clip(image, 0, 255).astype(np.uint8), label, instances


def write_synthetic_dataset(
    root: str | os.PathLike,
    num_train: int = 64,
    num_val: int = 16,
    height: int = 96,
    width: int = 128,
    seed: int = 0,
) -> Path:
    """Writes a synthetic dataset in the folder layout of the real datasets.

    Layout: ``<root>/<split>/images/<stem>.png``, ``<root>/<split>/labels/<stem>.png`` (8-bit
    class indices), ``<root>/<split>/instances/<stem>.png`` (16-bit instance ids),
    ``<root>/<split>.txt`` and ``<root>/meta.json``.

    Returns:
        ``root`` as a Path.
    """
    import cv2

    root = Path(root)
    splits = {"train": (num_train, seed), "val": (num_val, seed + 1_000_000)}
    for split, (count, base) in splits.items():
        for sub in ("images", "labels", "instances"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        stems = []
        for i in range(count):
            stem = f"{split}_{i:05d}"
            image, label, instances = make_scene(base + i, height, width)
            cv2.imwrite(str(root / split / "images" / f"{stem}.png"), image[..., ::-1])
            cv2.imwrite(str(root / split / "labels" / f"{stem}.png"), label)
            cv2.imwrite(str(root / split / "instances" / f"{stem}.png"), instances.astype(np.uint16))
            stems.append(stem)
        (root / f"{split}.txt").write_text("\n".join(stems) + "\n")
    meta = {
        "name": "synthetic_shapes",
        "classes": list(CLASS_NAMES),
        "num_classes": len(CLASS_NAMES),
        "ignore_label": IGNORE_LABEL,
        "source": "synthetic (deconvnet_tf.data.synthetic, seeded)",
        "encoding": "labels: 8-bit PNG, pixel = class index; instances: 16-bit PNG, 0 = none",
        "seed": seed,
    }
    (root / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return root
