"""``deconvnet-lite-predict``: segment images with a ``.tflite`` model on the LiteRT
interpreter (no TensorFlow), writing the same files as ``deconvnet-predict``."""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``deconvnet-lite-predict``."""
    parser = argparse.ArgumentParser(
        prog="deconvnet-lite-predict",
        description="Run an exported .tflite DeconvNet with ai-edge-litert (no TensorFlow) and "
                    "write <stem>.png (class ids), <stem>_color.png and <stem>_overlay.png.",
    )
    parser.add_argument("--model", required=True, help=".tflite file from deconvnet-export")
    parser.add_argument("--input", required=True, nargs="+", help="image file(s) or directory")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads (default 2)")
    parser.add_argument("--save-probs", action="store_true",
                        help="also write <stem>_probs.npy (float16 class probabilities)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``deconvnet-lite-predict``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")

    from deconvnet_tf.lite import LiteSegmenter, MetadataError, list_images, predict_paths

    try:
        images = list_images(args.input)
        segmenter = LiteSegmenter(args.model, threads=args.threads)
    except (FileNotFoundError, ValueError, MetadataError) as err:
        parser.error(str(err))
    started = time.perf_counter()
    try:
        written = predict_paths(segmenter, images, args.output, save_probabilities=args.save_probs)
    except ValueError as err:
        parser.error(str(err))
    seconds = time.perf_counter() - started
    for paths in written:
        print(paths["label"])
    per_image = seconds / max(len(written), 1)
    print(f"{len(written)} image(s) in {seconds:.2f} s ({per_image:.3f} s/image, "
          f"{args.threads} thread(s)) -> {args.output}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
