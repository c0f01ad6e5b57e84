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
    parser.add_argument("--data", required=True, help="dataset root in the folder layout")
    parser.add_argument("--split", default="val")
    parser.add_argument("--output", help="folder for metrics.json and confusion.png "
                        "(default: <model folder>/eval_<split>)")
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--backend", choices=["tensorflow", "jax"])
    args = parser.parse_args(argv)
    select_backend(args.backend)

    from pathlib import Path

    from deconvnet_tf.data.folder import DatasetError
    from deconvnet_tf.training.evaluate import evaluate, save_report

    try:
        report = evaluate(args.model, args.data, args.split, limit=args.limit)
    except (DatasetError, FileNotFoundError, ValueError) as err:
        print(f"deconvnet-evaluate: error: {err}", file=sys.stderr)
        return 2
    output = Path(args.output) if args.output else Path(args.model).parent / f"eval_{args.split}"
    paths = save_report(report, output)
    print(report.table())
    print(f"Metrics: {paths['metrics']}  Confusion matrix: {paths['confusion']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
