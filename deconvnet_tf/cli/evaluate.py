"""``deconvnet-evaluate``: score a trained model on a dataset split at native resolution.

Prints mean IoU (void ignored), per-class IoU, pixel accuracy and class-average accuracy, and
writes ``metrics.json`` and ``confusion.png`` to the folder ``--output``.
"""

from __future__ import annotations

import argparse
import sys

from deconvnet_tf.cli._common import (
    add_verbose_flag,
    check_scales_flag,
    plain_text,
    select_backend,
)

__all__ = ["main"]

PROG = "deconvnet-evaluate"


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _run_target(model, model_path, color_norm: bool):
    """The colour statistics of the run a bare ``model.keras`` comes from, if it was trained
    with ``color_norm`` (its network is fed normalised colours), announced; else ``None``."""
    from deconvnet_tf.inference.segmenter import run_color_target

    if not color_norm or hasattr(model, "color_target"):
        return None  # --no-color-norm: the record is not read (nor a damaged one refused)
    target = run_color_target(model_path)
    if target is not None:
        print(f"Colour normalisation: to the statistics the run trained on ({target}; "
              "--no-color-norm skips it)")
    return target


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=plain_text(__doc__))
    parser.add_argument("--model", required=True,
                        help=".keras model file (or a training run folder with model.keras)")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="dataset root: folder layout or PASCAL VOC")
    src.add_argument("--tfds", help="TensorFlow Datasets name (prepared, or built from "
                     "--tfds-manual-dir)")
    parser.add_argument("--tfds-data-dir", help="TFDS data directory")
    parser.add_argument("--tfds-manual-dir", help="TFDS manual directory (build offline)")
    parser.add_argument("--split", default="val",
                        help="split to score, with an optional selector such as "
                        "'train[0001TP]' (default: val)")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="folder for metrics.json and confusion.png (created if missing)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a report already in --output")
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                        help="run the network at HxW (at least the model's minimum input size) "
                        "and resize the scores back to each image's native size (default: the "
                        "working resolution a Segmenter file records, else each image at its "
                        "own size)")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="test-time augmentation: average with the mirrored image's scores "
                        "(default: the model's own setting, a Segmenter's test_time_flip)")
    parser.add_argument("--scales", type=float, nargs="+", metavar="S",
                        help="test-time multi-scale: also run the network at these multiples "
                        "of the working size and average the probabilities, e.g. --scales 1 "
                        "1.5; --scales 1: the working size only (default: the model's own "
                        "setting, a Segmenter's test_time_scales)")
    parser.add_argument("--no-color-norm", dest="color_norm", action="store_false",
                        help="skip the model's test-time colour normalisation (a Segmenter's "
                        "color_target, e.g. camvid_compact's, or the statistics a run trained "
                        "with color_norm recorded): images as they are")
    parser.add_argument("--backend", choices=["tensorflow", "jax"],
                        help="Keras backend (default: KERAS_BACKEND, else tensorflow)")
    add_verbose_flag(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be >= 1, got {args.limit}")
    if args.input_size is not None and min(args.input_size) < 1:
        height, width = args.input_size
        parser.error(f"--input-size must be positive, got {height} {width}")
    check_scales_flag(parser, args.scales)
    select_backend(args.backend, verbose=args.verbose)

    from deconvnet_tf._backend import BackendUnavailableError, check_keras

    try:
        check_keras()
    except BackendUnavailableError as err:
        return _fail(str(err))

    from deconvnet_tf.data.folder import DatasetError
    from deconvnet_tf.data.sources import open_source
    from deconvnet_tf.evaluation.evaluate import (
        check_input_size,
        check_report_output,
        evaluate,
        load_model_file,
        save_report,
    )

    try:
        # Everything that can be checked quickly is checked before the evaluation runs.
        output = check_report_output(args.output, overwrite=args.overwrite)
        model, model_path = load_model_file(args.model)
        run_target = _run_target(model, model_path, args.color_norm)
        input_size = check_input_size(model, args.input_size, "--input-size")
        source = open_source(args.data, tfds=args.tfds, tfds_data_dir=args.tfds_data_dir,
                             manual_dir=args.tfds_manual_dir)
        report = evaluate(model, split=args.split, source=source, limit=args.limit,
                          input_size=input_size, flip=args.flip, color_norm=args.color_norm,
                          color_target=run_target, scales=args.scales,
                          exact_classes=True)
        if input_size is not None:
            print(f"Network input {input_size[0]}x{input_size[1]}, scores resized back "
                  "to each image's native size")
        paths = save_report(report, output, overwrite=args.overwrite)
    except (DatasetError, ValueError, OSError) as err:
        text = str(err).strip() or type(err).__name__
        return _fail(text.splitlines()[0])
    print(report.table())
    print(f"Metrics: {paths['metrics']}  Confusion matrix: {paths['confusion']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
