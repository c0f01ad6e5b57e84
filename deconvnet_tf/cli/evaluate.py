"""``deconvnet-evaluate``: score a trained model on a dataset split at native resolution.

Prints mean IoU (void ignored), per-class IoU, pixel accuracy and class-average accuracy, and
writes ``metrics.json`` and ``confusion.png`` to ``--output``.
"""

from __future__ import annotations

import argparse
import sys

from deconvnet_tf.cli._common import select_backend

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deconvnet-evaluate", description=__doc__)
    parser.add_argument("--model", required=True, help=".keras model file")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="dataset root: folder layout or PASCAL VOC")
    src.add_argument("--tfds", help="TensorFlow Datasets name (prepared, or built from "
                     "--tfds-manual-dir)")
    parser.add_argument("--tfds-data-dir", help="TFDS data directory")
    parser.add_argument("--tfds-manual-dir", help="TFDS manual directory (build offline)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--output", help="folder for metrics.json and confusion.png "
                        "(default: <model folder>/eval_<split>)")
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                        help="run the network at HxW and resize the scores back to each "
                        "image's native size (default: each image at its own size)")
    parser.add_argument("--flip", action="store_true",
                        help="test-time augmentation: average with the mirrored image's scores")
    parser.add_argument("--backend", choices=["tensorflow", "jax"])
    args = parser.parse_args(argv)
    select_backend(args.backend)

    from pathlib import Path

    from deconvnet_tf.data.folder import DatasetError
    from deconvnet_tf.data.sources import open_source
    from deconvnet_tf.training.evaluate import evaluate, save_report

    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be >= 1, got {args.limit}")
    if args.input_size is not None and min(args.input_size) < 1:
        parser.error(f"--input-size must be positive, got {args.input_size}")
    try:
        source = open_source(args.data, tfds=args.tfds, tfds_data_dir=args.tfds_data_dir,
                             manual_dir=args.tfds_manual_dir)
        report = evaluate(args.model, split=args.split, source=source, limit=args.limit,
                          input_size=args.input_size, flip=args.flip)
    except (DatasetError, FileNotFoundError, ValueError) as err:
        print(f"deconvnet-evaluate: error: {err}", file=sys.stderr)
        return 2
    output = Path(args.output) if args.output else Path(args.model).parent / f"eval_{args.split}"
    if args.input_size is not None:
        print(f"Network input {args.input_size[0]}x{args.input_size[1]}, scores resized back "
              "to each image's native size")
    paths = save_report(report, output)
    print(report.table())
    print(f"Metrics: {paths['metrics']}  Confusion matrix: {paths['confusion']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
