"""What the training crops show: each class's share of the crop pixels, and the share of crops
that hold it, under the training augmentation's crop windows (random scale, crop with padding)
for one or more ``class_uniform`` probabilities (config ``class_uniform_crops``). Draws only the
windows (labels; no image work, no training), with the keys the pipelines use.

    python tools/crop_class_share.py --data /path/to/camvid_180x240 --split "train[-0001TP]" \\
        --crop-size 176x240 --scale-range 0.5 2.0 --class-uniform 0 0.5 1 --draws 1200

The measurement behind docs/results.md, section "Class-uniform crops".
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def crop_class_share(labels: list[np.ndarray], *, num_classes: int, ignore_label: int,
                     crop_size: tuple[int, int], scale: tuple[float, float] | None,
                     class_uniform: float, draws: int, seed: int = 0) -> dict:
    """Per class, the share of non-ignored crop pixels and of crops holding it.

    Draw ``i`` crops ``labels[i % len(labels)]`` with the key ``(seed, i)`` (no flip: it moves
    no pixel in or out of a window).

    Returns:
        ``{"pixel_share": [...], "crop_share": [...], "draws": draws}``, lists of
        ``num_classes`` floats in [0, 1] (``pixel_share`` sums to 1 unless every crop pixel is
        ignored).
    """
    from deconvnet_tf.data import augment_np

    if not labels:
        raise ValueError("crop_class_share needs at least one label")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws!r}")
    pixels = np.zeros(num_classes)
    holding = np.zeros(num_classes)
    for index in range(draws):
        label = labels[index % len(labels)]
        image = np.zeros(label.shape + (3,), np.uint8)  # the window does not read the image
        _, crop = augment_np.augment(image, label, (seed, index), crop_size=crop_size,
                                     ignore_label=ignore_label, scale=scale, flip=False,
                                     jitter=False, class_uniform=class_uniform)
        counts = np.bincount(crop.ravel(), minlength=256)[:num_classes]
        pixels += counts
        holding += counts > 0
    total = pixels.sum()
    return {"pixel_share": (pixels / total if total else pixels).tolist(),
            "crop_share": (holding / draws).tolist(), "draws": int(draws)}


def _table(names, shares: dict) -> list[str]:
    probabilities = list(shares)
    head = " | ".join(f"pixels % (p={p:g}) | crops % (p={p:g})" for p in probabilities)
    lines = [f"| class | {head} |", "|---|" + "---:|" * (2 * len(probabilities))]
    for c, name in enumerate(names):
        cells = [f"{100 * shares[p]['pixel_share'][c]:.2f} | {100 * shares[p]['crop_share'][c]:.0f}"
                 for p in probabilities]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    from _args import unit_interval  # tools/ siblings (pytest's pythonpath has tools/)
    from multiscale_table import parse_size

    parser = argparse.ArgumentParser(prog="crop_class_share",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="dataset root (folder layout or PASCAL VOC)")
    parser.add_argument("--split", default="train", help="split, e.g. 'train[-0001TP]'")
    parser.add_argument("--crop-size", type=parse_size, required=True, metavar="HxW",
                        help="training crop size, e.g. 176x240")
    parser.add_argument("--scale-range", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                        help="random rescale before the crop (default: none)")
    parser.add_argument("--class-uniform", type=unit_interval, nargs="+", default=[0.0, 0.5],
                        metavar="P", help="class_uniform probabilities (default 0 0.5)")
    parser.add_argument("--draws", type=int, default=1200, help="crops per probability")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.draws < 1:
        parser.error(f"--draws must be >= 1, got {args.draws}")
    if args.scale_range is not None and not 0 < args.scale_range[0] <= args.scale_range[1]:
        parser.error(f"--scale-range must be MIN MAX with 0 < MIN <= MAX, got {args.scale_range}")
    from deconvnet_tf.data.folder import DatasetError
    from deconvnet_tf.data.sources import open_source

    try:
        source = open_source(args.data)
        info = source.info
        labels = [label for _, label in source.numpy_examples(args.split)]
        ignore = 255 if info.ignore_label is None else int(info.ignore_label)
        shares = {p: crop_class_share(labels, num_classes=info.num_classes, ignore_label=ignore,
                                      crop_size=args.crop_size, scale=args.scale_range,
                                      class_uniform=p, draws=args.draws, seed=args.seed)
                  for p in args.class_uniform}
    except (DatasetError, FileNotFoundError, ValueError) as err:
        print(f"crop_class_share: error: {err}", file=sys.stderr)
        return 2
    print("\n".join(_table(info.class_names, shares)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
