"""What the training crops show: each class's share of the crop pixels, and the share of crops
that hold it, under the training augmentation's crop windows (random scale, crop with padding)
for one or more ``class_uniform`` probabilities (config ``class_uniform_crops``) and, with
``--class-paste``, class-paste probabilities (config ``class_paste``: the crops of each batch of
``--batch-size`` receive the pasted classes of their neighbour). Draws only the windows (labels;
no image work, no training), with the keys the pipelines use.

    python tools/crop_class_share.py --data /path/to/camvid_180x240 --split "train[-0001TP]" \\
        --crop-size 176x240 --scale-range 0.5 2.0 --class-uniform 0 0.5 1 --draws 1200

The measurement behind docs/results.md, sections "Class-uniform crops" and "Class paste".
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def crop_class_share(labels: list[np.ndarray], *, num_classes: int, ignore_label: int,
                     crop_size: tuple[int, int], scale: tuple[float, float] | None,
                     class_uniform: float, draws: int, seed: int = 0, class_paste: float = 0.0,
                     paste_classes=(), batch_size: int = 8) -> dict:
    """Per class, the share of non-ignored crop pixels and of crops holding it.

    Draw ``i`` crops ``labels[i % len(labels)]`` with the key ``(seed, i)`` (no flip: it moves
    no pixel in or out of a window). With ``class_paste``, draws ``0..batch_size-1``,
    ``batch_size..`` form the batches of the class paste of ``paste_classes`` (the last one
    possibly shorter).

    Returns:
        ``{"pixel_share": [...], "crop_share": [...], "draws": draws}``, lists of
        ``num_classes`` floats in [0, 1] (``pixel_share`` sums to 1 unless every crop pixel is
        ignored).
    """
    from deconvnet_tf.data import augment_np, augment_spec

    if not labels:
        raise ValueError("crop_class_share needs at least one label")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    paste = augment_spec.class_paste_setting(class_paste, paste_classes, True)
    pixels = np.zeros(num_classes)
    holding = np.zeros(num_classes)
    for start in range(0, draws, batch_size):
        crops = []
        for index in range(start, min(start + batch_size, draws)):
            label = labels[index % len(labels)]
            image = np.zeros(label.shape + (3,), np.uint8)  # the window does not read the image
            crops.append(augment_np.augment(image, label, (seed, index), crop_size=crop_size,
                                            ignore_label=ignore_label, scale=scale, flip=False,
                                            jitter=False, class_uniform=class_uniform)[1])
        crops = np.stack(crops)
        if paste is not None:
            pasted = [augment_spec.class_paste((seed, start + row), paste[0])
                      for row in range(len(crops))]
            crops = augment_np.paste_classes(np.zeros(crops.shape + (3,), np.uint8), crops,
                                             pasted, paste[1])[1]
        for crop in crops:
            counts = np.bincount(crop.ravel(), minlength=256)[:num_classes]
            pixels += counts
            holding += counts > 0
    total = pixels.sum()
    return {"pixel_share": (pixels / total if total else pixels).tolist(),
            "crop_share": (holding / draws).tolist(), "draws": int(draws)}


def _table(names, shares: dict) -> list[str]:
    """``shares``: column label (``p=0.5``, ``paste=0.5``) -> :func:`crop_class_share`'s result."""
    probabilities = list(shares)
    head = " | ".join(f"pixels % ({p}) | crops % ({p})" for p in probabilities)
    lines = [f"| class | {head} |", "|---|" + "---:|" * (2 * len(probabilities))]
    for c, name in enumerate(names):
        cells = [f"{100 * shares[p]['pixel_share'][c]:.2f} | {100 * shares[p]['crop_share'][c]:.0f}"
                 for p in probabilities]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _paste_classes(given, source, split: str) -> list[int]:
    """The classes pasted: ``given``, checked against the dataset, or those rarer than the
    median class of ``split`` (:func:`deconvnet_tf.training.losses.rare_classes`)."""
    from deconvnet_tf.training.losses import rare_classes

    num_classes = source.info.num_classes
    if given is None:
        return rare_classes(*source.validate(split))
    bad = [c for c in given if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"--class-paste-classes: {bad} are not classes of the dataset "
                         f"(0..{num_classes - 1})")
    return sorted(set(given))


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
    parser.add_argument("--class-paste", type=unit_interval, nargs="+", default=[],
                        metavar="Q", help="class_paste probabilities, each with class_uniform 0 "
                        "(default: none)")
    parser.add_argument("--class-paste-classes", type=int, nargs="+", default=None, metavar="C",
                        help="the classes pasted (default: those rarer than the median, "
                        "like the config's class_paste_classes null)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size of the paste")
    parser.add_argument("--draws", type=int, default=1200, help="crops per probability")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("draws", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.scale_range is not None and not 0 < args.scale_range[0] <= args.scale_range[1]:
        parser.error(f"--scale-range must be MIN MAX with 0 < MIN <= MAX, got {args.scale_range}")
    from deconvnet_tf.data.folder import DatasetError
    from deconvnet_tf.data.sources import open_source

    try:
        source = open_source(args.data)
        info = source.info
        labels = [label for _, label in source.numpy_examples(args.split)]
        ignore = 255 if info.ignore_label is None else int(info.ignore_label)
        common = dict(num_classes=info.num_classes, ignore_label=ignore, crop_size=args.crop_size,
                      scale=args.scale_range, draws=args.draws, seed=args.seed)
        shares = {f"p={p:g}": crop_class_share(labels, class_uniform=p, **common)
                  for p in args.class_uniform}
        if args.class_paste:
            classes = _paste_classes(args.class_paste_classes, source, args.split)
            print(f"class paste of: {', '.join(info.class_names[c] for c in classes)}")
            shares.update({f"paste={q:g}": crop_class_share(
                labels, class_uniform=0.0, class_paste=q, paste_classes=classes,
                batch_size=args.batch_size, **common) for q in args.class_paste})
    except (DatasetError, FileNotFoundError, ValueError) as err:
        print(f"crop_class_share: error: {err}", file=sys.stderr)
        return 2
    print("\n".join(_table(info.class_names, shares)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
