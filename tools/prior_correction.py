"""Test-time prior correction of the class scores (logit adjustment, Menon et al. 2021): each
pixel's class is ``argmax_c z_c - tau * log(prior_c)``, ``z`` the network's logits (the log of
its probabilities if it ends in a softmax), ``prior_c`` the share of class ``c`` among the
labelled pixels of ``--prior`` (the model's training split; a class absent from it is not
corrected); ``tau > 0`` favours rare classes, ``tau = 0`` is the model as it is. Prints one row per ``--taus`` value: mean IoU and per-class
IoU from the native images, at one network input size, with or without test-time flip (as
``tools/multiscale_table.py``, its ``--color-target`` included); the network runs once per
image for every tau.

    python tools/prior_correction.py --model runs/s30_F36/model.keras \\
        --data /path/to/camvid_360x480 --split "train[0001TP]" --size 180x240 \\
        --prior "train[-0001TP]" --color-target "train[-0001TP]" --taus 0 0.1 0.2 0.3 0.5

The measurement behind docs/results.md, section "Test-time prior correction of the class
scores". Not a model setting: no runtime applies it.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def class_prior(source, split: str) -> np.ndarray:
    """Each class's share of the labelled (non-void) pixels of ``split``; float64, sums to 1.

    Raises:
        ValueError: When ``split`` has no labelled pixel.
    """
    counts, _ = source.validate(split)
    counts = np.asarray(counts, np.float64)[:source.info.num_classes]
    if counts.sum() <= 0:
        raise ValueError(f"--prior {split!r} has no labelled pixel")
    return counts / counts.sum()


def corrected_classes(scores: np.ndarray, prior: np.ndarray, tau: float, *,
                      logits: bool) -> np.ndarray:
    """``argmax_c log_score_c - tau * log(prior_c)`` over the last axis of ``scores`` (its
    first ``len(prior)`` classes); ``log_score`` is ``scores`` itself for logits, else its
    log (probabilities, clipped at 1e-12). A class absent from the prior (prior 0: the model
    never trained on it) is not corrected (its log-prior counts as 0)."""
    prior = np.asarray(prior, np.float64)
    scores = np.asarray(scores, np.float64)[..., :len(prior)]
    log_scores = scores if logits else np.log(np.maximum(scores, 1e-12))
    log_prior = np.log(np.where(prior > 0, prior, 1.0))
    return (log_scores - tau * log_prior).argmax(-1)


def prior_correction(model, source, split: str, *, prior: np.ndarray, taus, size, flip: bool,
                     color_target="model", limit: int | None = None) -> dict:
    """Reports per ``tau`` (:class:`deconvnet_tf.evaluation.metrics.SegmentationReport`).

    Args:
        model: A segmentation ``keras.Model``.
        source: An opened dataset (:func:`deconvnet_tf.data.sources.open_source`).
        split: The split scored.
        prior: Per-class prior (:func:`class_prior`).
        taus: Strengths of the correction.
        size: Network input size ``(height, width)``.
        flip: Average with the mirrored image's scores.
        color_target: As :func:`multiscale_table.score_subsets`' (``"model"``, ``None`` or a
            target).
        limit: Only the first ``limit`` images.
    """
    from deconvnet_tf.evaluation.evaluate import check_input_size, predict_native
    from deconvnet_tf.evaluation.metrics import report_from_confusion
    from deconvnet_tf.inference.predict import as_predictor
    from deconvnet_tf.io import check_color_target, normalize_colors

    own = isinstance(color_target, str) and color_target == "model"
    target = None if own else check_color_target(color_target, "color_target")
    size = check_input_size(model, size, "--size")
    info = source.info
    known = info.num_classes
    logits = as_predictor(model).outputs == "logits"
    confusion = {tau: np.zeros((known, known), np.int64) for tau in taus}
    for index, (image, label) in enumerate(source.numpy_examples(split, limit=limit)):
        label = label.astype(np.int64).ravel()
        keep = label != info.ignore_label if info.ignore_label is not None else label >= 0
        bad = np.unique(label[keep & (label >= known)])
        if bad.size:
            raise ValueError(f"{split}[{index}]: label values {bad[:5].tolist()} outside the "
                             f"dataset's {known} classes")
        if target is not None:
            image = normalize_colors(image, target)
        scores = predict_native(model, image, size, flip=flip, color_norm=own)
        scores = scores.reshape(-1, scores.shape[-1])
        for tau in taus:
            pred = corrected_classes(scores, prior, tau, logits=logits)
            confusion[tau] += np.bincount(label[keep] * known + pred[keep],
                                          minlength=known * known).reshape(known, known)
    return {tau: report_from_confusion(matrix, info.class_names)
            for tau, matrix in confusion.items()}


def _table(reports: dict, names) -> list[str]:
    def percent(value):
        return "-" if value != value else f"{100 * value:.1f}"  # NaN: absent from the split

    lines = ["| tau | mean IoU | " + " | ".join(names) + " |",
             "|---:|---:|" + "---:|" * len(names)]
    for tau, report in reports.items():
        cells = [percent(report.mean_iou)] + [percent(v) for v in report.per_class_iou]
        lines.append(f"| {tau:g} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    from _args import finite  # tools/ siblings (pytest's pythonpath has tools/)
    from multiscale_table import parse_size

    parser = argparse.ArgumentParser(prog="prior_correction",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help=".keras file or training run folder")
    parser.add_argument("--data", required=True, help="dataset root (folder layout or PASCAL VOC)")
    parser.add_argument("--split", default="val", help="split scored, e.g. 'train[0001TP]'")
    parser.add_argument("--prior", required=True, metavar="SPLIT",
                        help="split of --data whose labelled pixels give the class prior (the "
                        "model's training split, e.g. 'train[-0001TP]')")
    parser.add_argument("--size", type=parse_size, required=True, metavar="HxW",
                        help="network input size, e.g. 180x240")
    parser.add_argument("--taus", type=finite, nargs="+", default=[0.0, 0.2], metavar="TAU",
                        help="strengths of the correction (default 0 0.2)")
    parser.add_argument("--no-flip", dest="flip", action="store_false",
                        help="no test-time flip (default: flip)")
    parser.add_argument("--color-target", metavar="SPLIT|off", default=None,
                        help="as tools/multiscale_table.py's")
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--output", help="also write the rows as JSON here (a new file)")
    args = parser.parse_args(argv)
    from _outputs import existing_output_error, write_json_new

    taken = existing_output_error(args.output, "--output")
    if taken:
        parser.error(taken)
    if args.output:
        from deconvnet_tf.io import check_creatable

        try:  # before the scoring run, not after it
            check_creatable(args.output, "--output", error=ValueError)
        except ValueError as err:
            parser.error(str(err))
    from multiscale_table import _load, color_target_arg

    from deconvnet_tf.data.folder import DatasetError
    from deconvnet_tf.data.sources import open_source
    from deconvnet_tf.evaluation.evaluate import ModelFileError

    try:
        model = _load(args.model, own=args.color_target is None)
        source = open_source(args.data)
        target = color_target_arg(source, args.color_target)
        prior = class_prior(source, args.prior)
        reports = prior_correction(model, source, args.split, prior=prior,
                                   taus=list(dict.fromkeys(args.taus)), size=args.size,
                                   flip=args.flip, color_target=target, limit=args.limit)
        print("\n".join(_table(reports, source.info.class_names)))
        if args.output:
            rows = {f"{tau:g}": {"mean_iou": r.mean_iou,
                                 "per_class_iou": dict(zip(r.class_names, r.per_class_iou))}
                    for tau, r in reports.items()}
            path = write_json_new(args.output, {
                "model": args.model, "split": args.split, "prior": args.prior,
                "size": list(args.size), "flip": args.flip,
                "color_target": args.color_target or "model", "rows": rows})
            print(f"Wrote {path}")
    except (DatasetError, ModelFileError, FileNotFoundError, FileExistsError, OSError,
            ValueError) as err:
        print(f"prior_correction: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
