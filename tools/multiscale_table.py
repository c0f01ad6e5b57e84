"""Test-time multi-scale (and model ensembles) on a dataset split: the network runs on each
image resized to every size of ``--sizes``; each run's softmax probabilities are resized back
to the image's native size (bilinear, as ``deconvnet-evaluate --input-size`` does) and those of
every subset of the sizes are averaged, without and with test-time flip. A one-size row is
what ``deconvnet-evaluate --input-size H W [--flip|--no-flip]`` reports. Prints one mean-IoU
row per subset (void ignored, the metric of ``deconvnet-evaluate``); the network runs once per
size and flip setting, not once per subset.

With several ``--model`` files (networks of the same classes, e.g. two seeds of a recipe) the
rows are every non-empty subset of the models (``m1``, ``m2``, ``m1+m2``, ... in the order
given) times every subset of the sizes: an ensemble row averages the probabilities of all its
models at all its sizes.

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


Run = tuple[int, tuple[int, int], bool]  # (model index, network input size, flip)


def subsets(sizes: list[tuple[int, int]], models: int = 1) -> dict[str, list[Run]]:
    """Row name -> the ``(model, size, flip)`` runs it averages: every non-empty subset of
    ``sizes`` in the given order, without and with test-time flip (a ``flip`` run is the
    model's own mirrored-image averaging at that size, as ``deconvnet-evaluate --flip`` does
    it); with ``models > 1``, for every non-empty subset of the models (names prefixed
    ``m1``, ``m2``, ``m1+m2``, ...)."""
    rows = {}
    for model_count in range(1, models + 1):
        for members in itertools.combinations(range(models), model_count):
            prefix = "" if models == 1 else "+".join(f"m{m + 1}" for m in members) + " "
            for count in range(1, len(sizes) + 1):
                for subset in itertools.combinations(sizes, count):
                    name = prefix + "+".join(f"{h}x{w}" for h, w in subset)
                    for flip, suffix in ((False, ""), (True, " flip")):
                        rows[name + suffix] = [(m, size, flip) for m in members
                                               for size in subset]
    return rows


def _probabilities(scores: np.ndarray, logits: bool) -> np.ndarray:
    """Softmax probabilities of a model's scores (its output as it is if not ``logits``)."""
    if not logits:
        return scores
    scores = scores - scores.max(-1, keepdims=True)
    exp = np.exp(scores)
    return exp / exp.sum(-1, keepdims=True)


def _prediction(scores: dict, runs: list, logits: list) -> np.ndarray:
    """The class map of one row: a single run's argmax of its raw scores (exactly what
    ``evaluate`` reports, near-ties included), several runs' argmax of their mean softmax
    probabilities."""
    if len(runs) == 1:
        return scores[runs[0]].argmax(-1).ravel()
    probs = [_probabilities(scores[run], logits[run[0]]) for run in runs]
    return np.mean(probs, axis=0).argmax(-1).ravel()


def score_subsets(model, source, split: str, sizes: list[tuple[int, int]], *,
                  limit: int | None = None, progress: bool = False,
                  color_target="model") -> dict:
    """Mean IoU of every subset of ``sizes`` (and of the models; see the module docstring).

    Args:
        model: A segmentation ``keras.Model``, or a list of them (the same classes).
        source: An opened dataset (:func:`deconvnet_tf.data.sources.open_source`).
        split: Split name, with an optional selector (``"train[0001TP]"``).
        sizes: Network input sizes ``(height, width)``, each at least the model's minimum.
        limit: Only the first ``limit`` images.
        progress: Print a dot per image to stderr.
        color_target: Test-time colour normalisation: ``"model"`` (default) each model's own
            (a Segmenter's ``color_target``), ``None`` off, or a target
            (``{"mean": [r, g, b], "std": [r, g, b]}``) for every model instead of its own
            (:func:`deconvnet_tf.io.normalize_colors`, on each image at its native size).

    Returns:
        Row name (:func:`subsets`) -> :class:`deconvnet_tf.evaluation.metrics.SegmentationReport`.

    Raises:
        ValueError: A size below the model's minimum, or label values outside the dataset's
            classes that are not its void label (naming the split and image index).
    """
    from deconvnet_tf.evaluation.evaluate import check_input_size, predict_native
    from deconvnet_tf.evaluation.metrics import report_from_confusion
    from deconvnet_tf.inference.predict import as_predictor
    from deconvnet_tf.io import check_color_target, normalize_colors

    own = isinstance(color_target, str) and color_target == "model"
    target = None if own else check_color_target(color_target, "color_target")

    models = list(model) if isinstance(model, (list, tuple)) else [model]
    for member in models:
        sizes = [check_input_size(member, size, "--sizes") for size in sizes]
    info = source.info
    known = info.num_classes
    outputs = {int(member.output_shape[-1]) for member in models}
    if len(outputs) != 1:
        raise ValueError(f"the models predict different numbers of classes: {sorted(outputs)}")
    outputs = outputs.pop()
    if outputs < known:
        raise ValueError(f"model {models[0].name!r} predicts {outputs} classes, the dataset has "
                         f"{known}")
    logits = [as_predictor(member).outputs == "logits" for member in models]
    rows = subsets(sizes, len(models))
    confusion = {name: np.zeros((known, outputs), np.int64) for name in rows}
    for index, (image, label) in enumerate(source.numpy_examples(split, limit=limit)):
        label = label.astype(np.int64).ravel()
        void = label == info.ignore_label if info.ignore_label is not None else False
        bad = np.unique(label[~void & (label >= known)])
        if bad.size:
            raise ValueError(f"{split}[{index}]: label values {bad[:5].tolist()} outside the "
                             f"dataset's {known} classes")
        if target is not None:
            image = normalize_colors(image, target)
        scores = {(m, size, flip): predict_native(models[m], image, size, flip=flip,
                                                  color_norm=own)
                  for m, size, flip in {run for runs in rows.values() for run in runs}}
        keep = ~void
        for name, runs in rows.items():
            pred = _prediction(scores, runs, logits)
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


def color_target_arg(source, value: str | None):
    """The ``color_target`` of a ``--color-target SPLIT|off`` argument (the tools' shared
    flag): ``None`` (flag not given) -> ``"model"`` (each model's own setting), ``"off"`` ->
    ``None``, a split -> the per-channel statistics of that split of ``source``."""
    if value is None:
        return "model"
    if value == "off":
        return None
    from deconvnet_tf.data.stats import color_statistics

    return color_statistics(source, value)


def _load(path: str, *, own: bool):
    """The model at ``path``; with ``own`` (each model's own colour setting), the bare
    ``model.keras`` of a run trained with ``color_norm`` comes as a Segmenter with the run's
    statistics (``color_target.json``), as deconvnet-evaluate and the exports read it."""
    from deconvnet_tf.evaluation.evaluate import load_model_file
    from deconvnet_tf.inference.segmenter import load_segmenter, run_color_target

    model, file = load_model_file(path)
    if own and not hasattr(model, "color_target") and run_color_target(file) is not None:
        model = load_segmenter(file, network=model)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="multiscale_table", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, nargs="+",
                        help=".keras file or training run folder; several (at most 4, the same "
                             "classes): rows for every subset of them, m1, m2, ... in this order")
    parser.add_argument("--data", required=True, help="dataset root (folder layout or PASCAL VOC)")
    parser.add_argument("--split", default="val", help="split, e.g. 'train[0001TP]'")
    parser.add_argument("--sizes", nargs="+", type=parse_size, required=True, metavar="HxW",
                        help="network input sizes, e.g. 180x240 240x320 (at most 5)")
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--color-target", metavar="SPLIT|off", default=None,
                        help="test-time colour normalisation to the per-channel mean / std of "
                        "this split of --data (e.g. the models' training split), instead of "
                        "each model's own setting; 'off': none (default: each model's own: a "
                        "Segmenter's color_target, or a run's color_target.json)")
    parser.add_argument("--output", help="also write the rows as JSON here (a new file)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= len(args.sizes) <= 5 or len(set(args.sizes)) != len(args.sizes):
        parser.error(f"--sizes: 1 to 5 different sizes, got {len(args.sizes)}")
    if len(args.model) > 4 or len(set(args.model)) != len(args.model):
        parser.error(f"--model: 1 to 4 different models, got {len(args.model)}")
    from _outputs import existing_output_error, write_json_new

    taken = existing_output_error(args.output, "--output")
    if taken:
        parser.error(taken)
    from deconvnet_tf.data.folder import DatasetError
    from deconvnet_tf.data.sources import open_source
    from deconvnet_tf.evaluation.evaluate import ModelFileError

    try:
        models = [_load(path, own=args.color_target is None) for path in args.model]
        source = open_source(args.data)
        target = color_target_arg(source, args.color_target)
        reports = score_subsets(models, source, args.split, args.sizes, limit=args.limit,
                                progress=not args.quiet, color_target=target)
    except (DatasetError, ModelFileError, FileNotFoundError, ValueError) as err:
        print(f"multiscale_table: error: {err}", file=sys.stderr)
        return 2
    if len(args.model) > 1:
        print("\n".join(f"m{i + 1} = {path}" for i, path in enumerate(args.model)) + "\n")
    print(table(reports))
    if args.output:
        rows = {name: {"mean_iou": r.mean_iou, "pixel_accuracy": r.pixel_accuracy,
                       "per_class_iou": dict(zip(r.class_names, r.per_class_iou))}
                for name, r in reports.items()}
        try:
            named = args.model[0] if len(args.model) == 1 else args.model
            path = write_json_new(args.output, {"model": named, "split": args.split,
                                                "color_target": args.color_target or "model",
                                                "rows": rows})
        except (FileExistsError, OSError) as err:
            print(f"multiscale_table: error: {err}", file=sys.stderr)
            return 2
        print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
