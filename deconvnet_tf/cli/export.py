"""``deconvnet-export``: SavedModel or TFLite export of a trained model (thin CLI over
:mod:`deconvnet_tf.export`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deconvnet_tf.cli._common import add_verbose_flag

__all__ = ["build_parser", "main"]

DEFAULT_DIR = Path("saved_models")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``deconvnet-export``."""
    parser = argparse.ArgumentParser(
        prog="deconvnet-export",
        description="Export a .keras model as a SavedModel (serving signature on raw uint8 RGB) "
                    "or as TFLite that runs on the stock LiteRT interpreter (builtin ops only).",
    )
    parser.add_argument("--model", required=True,
                        help=".keras model file, a training run folder (with model.keras) or a "
                        "shipped model's name (camvid_compact, horse_compact)")
    parser.add_argument("--format", choices=("saved_model", "tflite"), default="tflite",
                        help="export format (default: tflite)")
    parser.add_argument("--output", default=None,
                        help="output folder (saved_model) or .tflite file (default: "
                             "saved_models/<name>/ or saved_models/<name>[_<quantize>].tflite, "
                             "<name> from the model file: runs/camvid/model.keras -> camvid, "
                             "horse.keras -> horse)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing export at --output (a SavedModel folder, or "
                             "a .tflite file and its .json sidecar)")
    parser.add_argument("--quantize", choices=("none", "fp16", "dynamic", "int8"), default="none",
                        help="TFLite quantisation: none (fp32), fp16 weights, dynamic-range int8 "
                             "weights, or full-integer int8 (calibrated)")
    parser.add_argument("--input-size", default=None, metavar="HxW",
                        help="fixed input size, e.g. 224x224, or 'dynamic' (default: dynamic "
                             "height/width unless the model was built with a fixed size)")
    parser.add_argument("--representative-data", default=None, metavar="DIR",
                        help="int8 calibration images: a dataset folder (train split) or a "
                             "folder of images (default: generated scenes)")
    parser.add_argument("--calibration-count", type=int, default=None,
                        help="number of int8 calibration images (default 32)")
    names = parser.add_mutually_exclusive_group()
    names.add_argument("--class-names", default=None,
                       help="comma-separated class names (default: from the run's dataset "
                            "meta.json when found, else class_<i>)")
    names.add_argument("--meta", default=None, help="a dataset meta.json with 'classes'")
    parser.add_argument("--allow-flex", action="store_true",
                        help="keep the argmax pooling and allow TensorFlow (Flex) ops: for "
                             "comparison only, does NOT run on the stock LiteRT interpreter")
    add_verbose_flag(parser)
    return parser


def _check_arguments(parser: argparse.ArgumentParser, args) -> None:
    """Bad flag combinations: one-line errors before anything is loaded."""
    if args.format == "saved_model" and (args.quantize != "none" or args.allow_flex):
        parser.error("--quantize and --allow-flex apply to --format tflite only")
    if args.calibration_count is not None and args.calibration_count < 1:
        parser.error(f"--calibration-count must be >= 1, got {args.calibration_count}")
    calibration = args.representative_data is not None or args.calibration_count is not None
    if calibration and args.quantize != "int8":
        parser.error("--representative-data and --calibration-count apply to --quantize int8 "
                     f"only (got --format {args.format} --quantize {args.quantize})")
    if args.representative_data is not None and not Path(args.representative_data).is_dir():
        parser.error(f"--representative-data {args.representative_data!r} is not a folder "
                     "(expected a dataset folder or a folder of images)")
    if not Path(args.model).exists():
        # pure Python (no Keras): a shipped model's name is looked up like deconvnet-predict's
        from deconvnet_tf.models import registry

        if args.model not in registry.REGISTRY:
            parser.error(f"--model {args.model!r}: no such file (expected a .keras model, a "
                         "training run folder with model.keras or a shipped model's name: "
                         f"{', '.join(registry.list_models())})")
        try:
            args.model = str(registry.resolve(args.model)[0])
        except (OSError, ValueError) as err:
            parser.error(f"--model {args.model!r}: {err}")
    if args.meta is not None and not Path(args.meta).is_file():
        parser.error(f"--meta {args.meta!r}: no such file (expected a meta.json with 'classes')")
    if args.class_names is not None:
        names = [n.strip() for n in args.class_names.split(",")]
        if not all(names):
            parser.error(f"--class-names {args.class_names!r}: expected comma-separated, "
                         "non-empty names")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``deconvnet-export``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    class_names = args.meta
    if args.class_names is not None:
        class_names = [n.strip() for n in args.class_names.split(",")]

    from deconvnet_tf._backend import BackendUnavailableError
    from deconvnet_tf.cli._common import quiet_frameworks

    try:
        quiet_frameworks(args.verbose)
    except BackendUnavailableError as err:
        parser.error(str(err))

    from deconvnet_tf.export import (
        ExportError,
        export_saved_model,
        export_tflite,
        read_metadata,
        tflite_name,
    )
    from deconvnet_tf.export._common import (
        check_output,
        export_name,
        require_tensorflow_backend,
        resolve_class_names,
        resolve_model,
    )

    try:
        require_tensorflow_backend()
        # The output is checked before the model loads: a taken path fails at once.
        name = export_name(args.model)
        if args.format == "saved_model":
            output = Path(args.output) if args.output else DEFAULT_DIR / name
        else:
            default = tflite_name(name + ("_flex" if args.allow_flex else ""), args.quantize)
            output = Path(args.output) if args.output else DEFAULT_DIR / default
        check_output(output, args.format, overwrite=args.overwrite)
        model, model_file = resolve_model(args.model)
        if class_names is None or isinstance(class_names, str):
            class_names = resolve_class_names(model, class_names, model_file)
        if args.format == "saved_model":
            path = export_saved_model(model, output, input_size=args.input_size,
                                      class_names=class_names, overwrite=args.overwrite)
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            print(f"SavedModel: {path}/ ({size / 2**20:.2f} MiB); signature serving_default: "
                  "images uint8 [B, H, W, 3] -> probabilities, labels")
        else:
            path = export_tflite(model, output, quantize=args.quantize,
                                 input_size=args.input_size,
                                 representative_data=args.representative_data,
                                 allow_flex=args.allow_flex, class_names=class_names,
                                 calibration_count=args.calibration_count or 32,
                                 overwrite=args.overwrite)
            meta = read_metadata(path)
            stock = ("builtin ops only: runs on stock LiteRT" if meta.builtins_only else
                     "NEEDS Flex ops: does not run on stock LiteRT")
            print(f"TFLite ({args.quantize}): {path} ({path.stat().st_size / 2**20:.2f} MiB), "
                  f"input {meta.input_shape}, {len(meta.ops)} op kinds, {stock}")
            print(f"metadata: {path.with_suffix('.json')}")
        scales = tuple(getattr(model, "test_time_scales", (1.0,)))
        if scales != (1.0,):
            print(f"note: the model's test-time scales {', '.join(f'{v:g}' for v in scales)} "
                  "are not part of the export: its runtime runs the working size only "
                  "(with the flip and colour normalisation, if the model has them)")
    except (ExportError, OSError) as err:
        text = str(err).strip() or type(err).__name__
        parser.error(text.splitlines()[0])
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
