"""Test-time multi-scale on a dataset split: the network runs on each image resized to every
size of ``--sizes``; each run's softmax probabilities are resized back to the image's native
size (bilinear, as ``deconvnet-evaluate --input-size`` does) and those of every subset of the
sizes are averaged, without and with test-time flip. A one-size row is what
``deconvnet-evaluate --input-size H W [--flip|--no-flip]`` reports. Prints one mean-IoU row
per subset (void ignored, the metric of ``deconvnet-evaluate``); the network runs once per
size and flip setting, not once per subset.

    python tools/multiscale_table.py --model runs/dev36_C/model.keras \
        --data /path/to/camvid_360x480 --split "train[0001TP]" \
        --sizes 180x240 240x320 --output multiscale_dev.json

The measurement behind docs/results.md, section "Training at 240x320, test-time multi-scale,
the Lovasz term and the weight average on the dev split". Not a model setting: no runtime
applies it.
"""

from __future__ import annotations

import argparse
import itertools
import sys

import numpy as np


def parse_size(text: str) -> tuple[int, int]:
    """``"180x240"`` -> ``(180, 240)`` (height x width)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 180x240, got {text!r}")
    if min(height, width) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return height, width


def subsets(sizes: list[tuple[int, int]]) -> dict[str, list[tuple[tuple[int, int], bool]]]:
    """Row name -> the ``(size, flip)`` runs it averages: every non-empty subset of ``sizes``
    in the given order, without and with test-time flip (a ``flip`` run is the model's own
    mirrored-image averaging at that size, as ``deconvnet-evaluate --flip`` does it)."""
    rows = {}
    for count in range(1, len(sizes) + 1):
        for subset in itertools.combinations(sizes, count):
            name = "+".join(f"{h}x{w}" for h, w in subset)
            rows[name] = [(size, False) for size in subset]
            rows[f"{name} flip"] = [(size, True) for size in subset]
    return rows


def _probabilities(model, image: np.ndarray, size: tuple[int, int], flip: bool,
                   logits: bool) -> np.ndarray:
    from deconvnet_tf.evaluation.evaluate import predict_native

    scores = predict_native(model, image, size, flip=flip)
    if not logits:
        return scores
    scores = scores - scores.max(-1, keepdims=True)
    exp = np.exp(scores)
    return exp / exp.sum(-1, keepdims=True)


def score_subsets(model, source, split: str, sizes: list[tuple[int, int]], *,
                  limit: int | None = None, progress: bool = False) -> dict:
    """Mean IoU of every subset of ``sizes`` (see the module docstring).

    Args:
        model: A segmentation ``keras.Model``.
        source: An opened dataset (:func:`deconvnet_tf.data.sources.open_source`).
        split: Split name, with an optional selector (``"train[0001TP]"``).
        sizes: Network input sizes ``(height, width)``, each at least the model's minimum.
        limit: Only the first ``limit`` images.
        progress: Print a dot per image to stderr.

    Returns:
        Row name (:func:`subsets`) -> :class:`deconvnet_tf.evaluation.metrics.SegmentationReport`.

    Raises:
        ValueError: A size below the model's minimum, or label values outside the dataset's
            classes that are not its void label (naming the split and image index).
    """
    from deconvnet_tf.evaluation.evaluate import check_input_size
    from deconvnet_tf.evaluation.metrics import report_from_confusion
    from deconvnet_tf.inference.predict import as_predictor

    sizes = [check_input_size(model, size, "--sizes") for size in sizes]
    info = source.info
    known, outputs = info.num_classes, int(model.output_shape[-1])
    if outputs < known:
        raise ValueError(f"model {model.name!r} predicts {outputs} classes, the dataset has {known}")
    logits = as_predictor(model).outputs == "logits"
    rows = subsets(sizes)
    confusion = {name: np.zeros((known, outputs), np.int64) for name in rows}
    for index, (image, label) in enumerate(source.numpy_examples(split, limit=limit)):
        label = label.astype(np.int64).ravel()
        void = label == info.ignore_label if info.ignore_label is not None else False
        bad = np.unique(label[~void & (label >= known)])
        if bad.size:
            raise ValueError(f"{split}[{index}]: label values {bad[:5].tolist()} outside the "
                             f"dataset's {known} classes")
        probs = {run: _probabilities(model, image, *run, logits)
                 for run in {run for runs in rows.values() for run in runs}}
        keep = ~void
        for name, runs in rows.items():
            pred = np.mean([probs[run] for run in runs], axis=0).argmax(-1).ravel()
            confusion[name] += np.bincount(label[keep] * outputs + pred[keep],
                                           minlength=known * outputs).reshape(known, outputs)
        if progress:
            print(".", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return {name: report_from_confusion(matrix, info.class_names)
            for name, matrix in confusion.items()}


def table(reports: dict) -> str:
    """A Markdown table: one row per subset, mean IoU and pixel accuracy (in %)."""
    lines = ["| network input sizes (averaged) | mean IoU | pixel acc. |", "|---|---:|---:|"]
    lines += [f"| {name} | {100 * r.mean_iou:.1f} | {100 * r.pixel_accuracy:.1f} |"
              for name, r in reports.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="multiscale_table", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help=".keras file or training run folder")
    parser.add_argument("--data", required=True, help="dataset root (folder layout or PASCAL VOC)")
    parser.add_argument("--split", default="val", help="split, e.g. 'train[0001TP]'")
    parser.add_argument("--sizes", nargs="+", type=parse_size, required=True, metavar="HxW",
                        help="network input sizes, e.g. 180x240 240x320 (at most 5)")
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--output", help="also write the rows as JSON here (a new file)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= len(args.sizes) <= 5 or len(set(args.sizes)) != len(args.sizes):
        parser.error(f"--sizes: 1 to 5 different sizes, got {len(args.sizes)}")
    from _outputs import existing_output_error, write_json_new

    taken = existing_output_error(args.output, "--output")
    if taken:
        parser.error(taken)
    from deconvnet_tf.data.folder import DatasetError
    from deconvnet_tf.data.sources import open_source
    from deconvnet_tf.evaluation.evaluate import ModelFileError, load_model_file

    try:
        model, _ = load_model_file(args.model)
        reports = score_subsets(model, open_source(args.data), args.split, args.sizes,
                                limit=args.limit, progress=not args.quiet)
    except (DatasetError, ModelFileError, FileNotFoundError, ValueError) as err:
        print(f"multiscale_table: error: {err}", file=sys.stderr)
        return 2
    print(table(reports))
    if args.output:
        rows = {name: {"mean_iou": r.mean_iou, "pixel_accuracy": r.pixel_accuracy,
                       "per_class_iou": dict(zip(r.class_names, r.per_class_iou))}
                for name, r in reports.items()}
        try:
            path = write_json_new(args.output, {"model": str(args.model), "split": args.split,
                                                "rows": rows})
        except (FileExistsError, OSError) as err:
            print(f"multiscale_table: error: {err}", file=sys.stderr)
            return 2
        print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
