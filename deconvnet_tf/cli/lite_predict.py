"""``deconvnet-lite-predict``: segment images with a ``.tflite`` model on the LiteRT
interpreter (no TensorFlow), writing the same files as ``deconvnet-predict``."""

from __future__ import annotations

import argparse
import sys
import time

from deconvnet_tf.cli._common import Reporter, max_pixels_type, positive_int
from deconvnet_tf.io import DEFAULT_MAX_PIXELS

__all__ = ["build_parser", "main"]

PROG = "deconvnet-lite-predict"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``deconvnet-lite-predict``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage="%(prog)s --model MODEL --input INPUT [INPUT ...] --output OUTPUT [options]",
        description="Run an exported .tflite DeconvNet with ai-edge-litert (no TensorFlow) and "
                    "write <stem>_labels.png (class ids), <stem>_color.png and "
                    "<stem>_overlay.png per image. Existing outputs are replaced only with "
                    "--overwrite; folder inputs skip files this project wrote.",
    )
    parser.add_argument("--model", required=True, help=".tflite file from deconvnet-export")
    parser.add_argument("--input", required=True, nargs="+", help="image file(s) or directory")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--threads", type=positive_int, default=2,
                        help="interpreter threads (default 2)")
    parser.add_argument("--save-probs", action="store_true",
                        help="also write <stem>_probs.npy (float16 class probabilities)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs of an earlier run (never an input)")
    parser.add_argument("--skip-errors", action="store_true",
                        help="report unreadable images and go on (exit status 1 if any)")
    parser.add_argument("--max-pixels", type=max_pixels_type, default=DEFAULT_MAX_PIXELS,
                        metavar="N", help="scale larger images down to N pixels for prediction "
                        f"and the labels back up (default {DEFAULT_MAX_PIXELS}; 'none': no limit)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``deconvnet-lite-predict``."""
    args = build_parser().parse_args(argv)
    report = Reporter(PROG)

    from deconvnet_tf.io import ensure_output_dir
    from deconvnet_tf.lite import LiteSegmenter, predict_paths
    from deconvnet_tf.render import plan_predictions

    try:
        # Inputs, outputs and the model first: errors come before any image is processed.
        planned = plan_predictions(args.input, args.output, probabilities=args.save_probs,
                                   overwrite=args.overwrite)
        ensure_output_dir(args.output)
        segmenter = LiteSegmenter(args.model, threads=args.threads)
        started = time.perf_counter()
        written = predict_paths(segmenter, [path for path, _ in planned], args.output,
                                save_probabilities=args.save_probs, overwrite=args.overwrite,
                                skip_errors=args.skip_errors, max_pixels=args.max_pixels,
                                on_skip=report.skip, on_warning=report.warning,
                                on_written=lambda paths: print(paths["label"], flush=True))
    except MemoryError:
        return report.error(f"out of memory; lower --max-pixels (now {args.max_pixels})")
    except (OSError, ValueError, ImportError) as err:
        return report.error(err)
    seconds = time.perf_counter() - started
    per_image = seconds / max(len(written), 1)
    print(f"{len(written)} image(s) in {seconds:.2f} s ({per_image:.3f} s/image, "
          f"{args.threads} thread(s)) -> {args.output}")
    return report.finish(len(written))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
