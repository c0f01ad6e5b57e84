"""``deconvnet-lite-predict``: segment images with a ``.tflite`` model on the LiteRT
interpreter (no TensorFlow), writing the same files as ``deconvnet-predict``."""

from __future__ import annotations

import argparse
import sys
import time

from deconvnet_tf.cli._common import Reporter, add_prediction_output_flags, positive_int

__all__ = ["build_parser", "input_size_type", "main"]

PROG = "deconvnet-lite-predict"


def input_size_type(text: str):
    """``--input-size``: ``"native"`` -> ``"native"``, ``"HxW"`` -> ``(H, W)``."""
    value = text.strip().lower()
    if value == "native":
        return "native"
    parts = value.split("x")
    try:
        height, width = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'native' or HxW (e.g. 180x240), got "
                                         f"{text!r}") from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"expected a positive HxW, got {text!r}")
    return height, width


def _registry():
    """:mod:`deconvnet_tf.models.registry` without importing :mod:`deconvnet_tf.models` (which
    loads Keras): the registry is pure Python, and this command runs where only LiteRT is."""
    import importlib.util
    from pathlib import Path

    name = "deconvnet_tf.models.registry"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).resolve().parents[1] / "models" / "registry.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def apply_input_size(segmenter, size) -> None:
    """Sets the size a :class:`~deconvnet_tf.lite.LiteSegmenter` resizes images to:
    ``None`` (default): the model's working resolution (its fixed input, or the exported
    Segmenter's ``image_size`` in the sidecar); ``"native"``; or ``(H, W)``.

    Raises:
        ValueError: A fixed-size model asked for another size.
    """
    fixed = segmenter.fixed_size
    model_size = fixed
    if fixed is None and segmenter.metadata is not None:
        model_size = segmenter.metadata.working_size
    if size is None:
        wanted = model_size
    elif size == "native":
        wanted = None
    else:
        wanted = tuple(size)
    if fixed is not None and wanted != fixed:
        what = "native" if wanted is None else f"{wanted[0]}x{wanted[1]}"
        raise ValueError(f"--input-size {what}: {segmenter.path.name} has a fixed "
                         f"{fixed[0]}x{fixed[1]} input; export it with --input-size dynamic "
                         "(or that size) to predict at another size")
    if wanted is not None and min(wanted) < segmenter.min_input_size:
        raise ValueError(f"--input-size {wanted[0]}x{wanted[1]} is below the model's minimum "
                         f"input size {segmenter.min_input_size}")
    segmenter.fixed_size = wanted  # the size rule of deconvnet_tf.io.plan_size resizes to it


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
    parser.add_argument("--model", required=True,
                        help=".tflite file from deconvnet-export, or a shipped model's name "
                        "(camvid_compact, camvid_compact_int8, horse_compact, ...)")
    parser.add_argument("--input", required=True, nargs="+", help="image file(s) or directory")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--threads", type=positive_int, default=2,
                        help="interpreter threads (default 2)")
    parser.add_argument("--save-probs", action="store_true",
                        help="also write <stem>_probs.npy (float16 class probabilities)")
    add_prediction_output_flags(parser)
    parser.add_argument("--input-size", type=input_size_type, metavar="native|HxW",
                        help="resolution the model runs at: default the model's working "
                        "resolution (a fixed-size export's input); 'native': each image at its "
                        "own size (dynamic-size exports)")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="test-time augmentation: average with the mirrored image's "
                        "probabilities (default: the exported model's own setting, e.g. on "
                        "for camvid_compact)")
    parser.add_argument("--no-color-norm", dest="color_norm", action="store_false",
                        help="skip the exported model's test-time colour normalisation "
                        "(sidecar extra.color_target, e.g. camvid_compact's)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``deconvnet-lite-predict``."""
    args = build_parser().parse_args(argv)
    report = Reporter(PROG)

    from deconvnet_tf.io import output_folder
    from deconvnet_tf.lite import LiteSegmenter, predict_paths
    from deconvnet_tf.render import plan_predictions

    try:
        with output_folder(args.output):  # removed again if nothing is written
            # Inputs, outputs and the model first: errors come before any image is processed.
            planned = plan_predictions(args.input, args.output, probabilities=args.save_probs,
                                       overwrite=args.overwrite)
            segmenter = LiteSegmenter(_registry().resolve_tflite(args.model),
                                      threads=args.threads, flip=args.flip,
                                      **({} if args.color_norm else {"color_target": None}))
            apply_input_size(segmenter, args.input_size)
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
