"""``deconvnet-predict``: segment images with a trained model.

Writes, per image, ``<stem>_labels.png`` (class ids), ``<stem>_color.png`` (palette),
``<stem>_overlay.png`` (palette over the photo) and, with ``--save-probs``, ``<stem>_probs.npy``
(float16 class probabilities). The names never collide with an input (the output folder may be
the input folder), and folder inputs skip files this project wrote. Existing outputs are only
replaced with ``--overwrite``; each image's files are written as soon as it is done.

``--mode instance`` segments object proposals one by one and aggregates them (the paper's
instance-wise inference); ``--ensemble FCN_MODEL`` combines the result with an FCN run on the
whole image (EDeconvNet); ``--crf`` refines with a dense CRF (``--no-crf``: not even when the
model ships with the CRF as its default, as ``horse_compact`` does). A model whose
``largest_component`` names classes (a scene prior: one object of each per image) keeps only the
largest connected region of each after that (``--no-largest-component`` skips it). Images above ``--max-pixels`` are
scaled down for all of that (a warning says so) and the labels scaled back to the image size.
"""

from __future__ import annotations

import argparse
import sys

from deconvnet_tf.cli._common import (
    Reporter,
    add_prediction_output_flags,
    add_verbose_flag,
    check_scales_flag,
    plain_text,
    positive_int,
    select_backend,
)

__all__ = ["main"]

PROG = "deconvnet-predict"


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _input_size(text: str):
    """``native`` / ``HxW`` (working resolution) or a bare ``N`` (instance crop size)."""
    value = text.strip()
    if value.isdigit():
        return positive_int(value)
    from deconvnet_tf.cli.lite_predict import input_size_type

    return input_size_type(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=plain_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s --model MODEL --input INPUT [INPUT ...] --output OUTPUT [options]")
    parser.add_argument("--model", required=True,
                        help=".keras file, SavedModel folder, or a shipped model's name "
                        "(camvid_compact, horse_compact; found in $DECONVNET_HOME, default "
                        "~/.deconvnet, or the source tree's saved_models/)")
    parser.add_argument("--input", required=True, nargs="+", help="image file(s) and/or folder(s)")
    parser.add_argument("--output", required=True, help="output folder")
    add_prediction_output_flags(parser)
    parser.add_argument("--input-size", type=_input_size, metavar="native|HxW",
                        help="resolution the model runs at: default the model's working "
                        "resolution (e.g. 360x480 for camvid_compact; native for a model "
                        "without one); 'native': each image at its own size; HxW. (A bare "
                        "number N is the instance-mode crop size, as --crop-size N.)")
    parser.add_argument("--mode", choices=["whole", "instance"], default="whole",
                        help="whole: one pass over the image (default); instance: the paper's "
                        "instance-wise inference over object proposals, combined per pixel")
    parser.add_argument("--ensemble", metavar="FCN_MODEL",
                        help="second model run on the whole image and combined (EDeconvNet)")
    parser.add_argument("--ensemble-method", choices=["mean", "product"], default="mean",
                        help="mean of probabilities (paper text) or product (released code)")
    parser.add_argument("--crf", action=argparse.BooleanOptionalAction, default=None,
                        help="dense-CRF post-processing (default: the model's own default, "
                        "e.g. on for horse_compact and camvid_compact)")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="test-time augmentation: average with the mirrored image's scores "
                        "(default: the model's own setting, e.g. on for camvid_compact)")
    parser.add_argument("--scales", type=float, nargs="+", metavar="S",
                        help="test-time multi-scale: also run the network at these multiples "
                        "of the working size and average the probabilities, e.g. --scales 1 "
                        "1.5 (a Keras model only); --scales 1: the working size only "
                        "(default: the model's own setting)")
    parser.add_argument("--no-color-norm", dest="color_norm", action="store_false",
                        help="skip the model's test-time colour normalisation (its "
                        "color_target, e.g. camvid_compact's): images as they are")
    parser.add_argument("--no-largest-component", dest="largest_component",
                        action="store_false",
                        help="skip the model's largest-region post-processing (its "
                        "largest_component classes, whose largest connected region alone is "
                        "kept)")
    parser.add_argument("--crf-preset", choices=["deconvnet", "deeplab"], default="deconvnet",
                        help="dense CRF parameters with --crf (default: deconvnet)")
    parser.add_argument("--batch-size", type=positive_int, default=8,
                        help="images (whole mode) or proposal crops (instance mode) per call")
    parser.add_argument("--save-probs", action="store_true",
                        help="also write <stem>_probs.npy (float16 class probabilities)")
    group = parser.add_argument_group("instance-wise inference")
    group.add_argument("--proposals", choices=["edgeboxes", "selective_search"],
                       default="edgeboxes", help="object proposals (default: edgeboxes, the paper's)")
    group.add_argument("--edge", choices=["hed", "gradient"], default="hed",
                       help="edge map for EdgeBoxes (hed falls back to gradient if unavailable)")
    group.add_argument("--top-k", type=positive_int, default=50,
                       help="proposals per image (paper: 50)")
    group.add_argument("--min-box", type=positive_int, default=16,
                       help="smallest proposal side (pixels)")
    group.add_argument("--enlarge", type=_positive_float, default=1.2, help="proposal box scale")
    group.add_argument("--crop-size", type=positive_int, default=None, metavar="N",
                       help="proposal crop size fed to the model (default 224)")
    group.add_argument("--aggregate", choices=["max", "mean"], default="max",
                       help="how overlapping proposal scores combine per pixel (default: max, "
                       "the paper's)")
    group.add_argument("--proposal-cache", metavar="DIR", help="cache proposals per image here")
    parser.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=None,
                        help="run a Keras model XLA-compiled (TensorFlow). Default: on in "
                        "instance mode (many crops of one size: ~1.2x faster after a 1-3 s "
                        "compile), off in whole mode (each image size would compile anew)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--backend", choices=["tensorflow", "jax"],
                        help="Keras backend (default: KERAS_BACKEND, else tensorflow)")
    add_verbose_flag(parser)
    return parser


def _model_post_processing(args, model, options):
    """``options`` with the model's default post-processing (dense CRF, largest region) that
    the command line did not turn off, each announced on stderr."""
    import dataclasses

    if args.crf is None and getattr(model, "default_crf", False):
        options = dataclasses.replace(options, crf=True)
        print(f"{PROG}: dense CRF on (the model's default post-processing); --no-crf to "
              "skip it", file=sys.stderr, flush=True)
    if args.largest_component and model.largest_component:
        options = dataclasses.replace(options, largest_component=model.largest_component)
        names = [model.class_names[i] if model.class_names else str(i)
                 for i in model.largest_component]
        print(f"{PROG}: largest connected region only for {', '.join(names)} (the model's "
              "default post-processing); --no-largest-component to skip it",
              file=sys.stderr, flush=True)
    return options


def _load_predictors(args, image_size):
    """The model's and the ``--ensemble`` model's predictors (``None`` without one), with
    ``--flip`` / ``--no-flip``, ``--scales`` and ``--no-color-norm`` applied (else each
    model's own ``test_time_flip``, ``test_time_scales`` and ``color_target``)."""
    import dataclasses

    from deconvnet_tf.inference.predict import check_multiscale, load_predictor

    # --no-color-norm: a run's color_target.json is not even read
    color = "model" if args.color_norm else None
    predictors = [load_predictor(path, image_size=image_size, color_target=color) if path
                  else None for path in (args.model, args.ensemble)]
    if args.flip is not None:
        predictors = [p if p is None else dataclasses.replace(p, flip=args.flip)
                      for p in predictors]
    if args.scales is not None:
        predictors = [p if p is None else dataclasses.replace(p, scales=args.scales)
                      for p in predictors]
    for predictor in predictors:
        if predictor is not None:
            check_multiscale(predictor)
    model = predictors[0]
    if args.scales is None and model.scales != (1.0,):
        print(f"{PROG}: test-time scales {', '.join(f'{v:g}' for v in model.scales)} (the "
              "model's default); --scales 1 to skip them", file=sys.stderr, flush=True)
    if args.flip is None and model.flip:
        print(f"{PROG}: test-time flip on (the model's default); --no-flip to skip it",
              file=sys.stderr, flush=True)
    if model.color_target is not None:
        print(f"{PROG}: colour normalisation on (the model's color_target, "
              f"mean {model.color_target['mean']}); --no-color-norm to skip it",
              file=sys.stderr, flush=True)
    return predictors


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    crop_flag = "--crop-size"
    working = args.input_size
    if isinstance(working, int):  # the instance-mode crop size, as before
        if args.crop_size is not None:
            parser.error("--input-size N and --crop-size N both give the crop size; use one")
        args.crop_size, working, crop_flag = working, None, "--input-size"
    crop_size = args.crop_size if args.crop_size is not None else 224
    check_scales_flag(parser, args.scales)
    select_backend(args.backend, verbose=args.verbose)
    report = Reporter(PROG)

    from deconvnet_tf.inference.pipeline import InferenceOptions, predict_files
    from deconvnet_tf.io import ensure_output_dir, output_folder
    from deconvnet_tf.render import plan_predictions

    options = InferenceOptions(
        mode=args.mode, ensemble_method=args.ensemble_method, crf=bool(args.crf),
        crf_preset=args.crf_preset, input_size=crop_size, batch_size=args.batch_size,
        aggregate=args.aggregate,
        proposals=dict(method=args.proposals, edge=args.edge, top_k=args.top_k,
                       min_size=args.min_box, enlarge=args.enlarge,
                       cache_dir=args.proposal_cache),
    )
    try:
        with output_folder(args.output):  # removed again if nothing is written
            # Inputs and outputs first: a bad input or an existing output fails before any work.
            planned = plan_predictions(args.input, args.output, probabilities=args.save_probs,
                                       overwrite=args.overwrite)
            if args.proposal_cache:
                ensure_output_dir(args.proposal_cache, "--proposal-cache")
            image_size = "model" if working is None else working
            model, ensemble = _load_predictors(args, image_size)
            options = _model_post_processing(args, model, options)
            if args.jit_compile is not None:
                model = model.with_jit_compile(args.jit_compile)
                if ensemble is not None:
                    ensemble = ensemble.with_jit_compile(args.jit_compile)
            if model.supports_jit:
                on = (args.jit_compile if args.jit_compile is not None
                      else args.mode == "instance")
                why = ("set by --jit-compile" if args.jit_compile else "set by --no-jit-compile"
                       ) if args.jit_compile is not None else f"default for --mode {args.mode}"
                flag = "--no-jit-compile" if on else "--jit-compile"
                print(f"{PROG}: XLA {'on' if on else 'off'} ({why}); {flag} to change it",
                      file=sys.stderr, flush=True)
            for predictor in (model, ensemble):
                size = predictor.input_size if predictor is not None else None
                if working not in (None, "native") and size is not None and size != tuple(working):
                    return report.error(f"--input-size {working[0]}x{working[1]}: "
                                        f"{predictor.name} takes only {size[0]}x{size[1]} images")
                if size is not None and min(size) < predictor.min_input_size:
                    return report.error(f"--input-size {size[0]}x{size[1]} is below the model's "
                                        f"minimum input size {predictor.min_input_size}")
            if (args.mode == "instance" and model.input_size is None
                    and crop_size < model.min_input_size):
                return report.error(f"{crop_flag} {crop_size} is below the model's minimum "
                                    f"input size {model.min_input_size}")
            written = predict_files(model, [path for path, _ in planned], args.output, options,
                                    ensemble=ensemble, save_probs=args.save_probs,
                                    progress=not args.quiet, overwrite=args.overwrite,
                                    skip_errors=args.skip_errors, max_pixels=args.max_pixels,
                                    on_skip=report.skip, on_warning=report.warning)
    except MemoryError:
        return report.error(f"out of memory; lower --max-pixels (now {args.max_pixels}) or "
                            f"--batch-size (now {args.batch_size})")
    except (OSError, ValueError, ImportError) as err:
        return report.error(err)
    print(f"Wrote predictions of {len(written)} image(s) to {args.output}")
    return report.finish(len(written))


if __name__ == "__main__":
    sys.exit(main())
