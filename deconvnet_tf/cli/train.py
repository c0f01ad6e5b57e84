"""``deconvnet-train``: train a model on a dataset folder (folder layout or PASCAL VOC), a
TensorFlow Datasets dataset (``--tfds``) or the generated default; ``--two-stage`` runs the
paper's stage 1 (object crops) then stage 2 (proposal windows) in one command.

Precedence of settings: defaults < ``--config FILE`` (JSON) < flags < ``--set key=value``.
The resolved config is written to ``<output>/config.json``; re-running the same command after an
interruption (even kill -9) resumes from the last backup. Re-running a finished command trains
nothing and says so (exit status 0); ``--overwrite`` starts again, ``--resume`` with more
``--epochs`` continues a finished run. One training at a time per ``--output``. After training
the model is evaluated on the validation split at native resolution (``<output>/eval/``).
"""

from __future__ import annotations

import argparse
import sys

from deconvnet_tf.cli._common import add_verbose_flag, select_backend, plain_text
from deconvnet_tf.training.config import INPUT_MODES, LEGACY_STAGES

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deconvnet-train", description=plain_text(__doc__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", help="dataset root: folder layout or PASCAL VOC (default: "
                     "generated shapes)")
    src.add_argument("--tfds", help="TensorFlow Datasets name: oxford_iiit_pet, "
                     "cityscapes/semantic_segmentation, camvid_segmentation, voc2012_segmentation "
                     "(--set tfds_manual_dir=DIR to build from local files)")
    p.add_argument("--recipe", help="start from a bundled recipe, the settings of a shipped "
                   "model (camvid_compact, horse_compact); needs --data; flags, --config and "
                   "--set override it")
    p.add_argument("--preset", help="model preset (deconvnet-presets lists them)")
    p.add_argument("--output", help="run folder: checkpoints, logs, config, model")
    p.add_argument("--input-mode", choices=list(INPUT_MODES),
                   help="what a training step sees: crop (random crops, the default), whole "
                   "(whole images), object_crops (the paper's stage 1: object-centred instance "
                   "crops), proposal_windows (its stage 2: windows around proposals)")
    p.add_argument("--two-stage", action="store_true", default=None,
                   help="the paper's two-stage training: object_crops for stage1_epochs, then "
                   "proposal_windows initialised from it (sets --input-mode proposal_windows)")
    p.add_argument("--stage", choices=list(LEGACY_STAGES),
                   help="deprecated: --input-mode (crop, whole; stage1 = object_crops, stage2 = "
                   "proposal_windows) or --two-stage (two_stage)")
    p.add_argument("--epochs", type=int, help="epochs to train (default 10)")
    p.add_argument("--batch-size", type=int, help="images per step (default 8)")
    p.add_argument("--config", help="JSON file of config fields")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field (repeatable), e.g. --set crop_size=[256,256]")
    p.add_argument("--encoder-weights", help="None, imagenet, hed or a path")
    p.add_argument("--mixed-precision", action="store_true", default=None,
                   help="bfloat16 on CPU, float16 (loss scaling) on GPUs without bf16 (default: "
                   "automatic, mixed on GPUs and AMX CPUs, float32 elsewhere)")
    p.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=None,
                   help="XLA-compile the train step (uses the switch unpooling); default: on for "
                   "JAX and GPUs; on TensorFlow's CPU path when the run is long enough to pay "
                   "for compiling")
    p.add_argument("--strategy", choices=["default", "mirrored", "multiworker"],
                   help="distribution: one device (default), all local GPUs/CPUs (mirrored) "
                   "or several machines (multiworker, TF_CONFIG)")
    p.add_argument("--backend", choices=["tensorflow", "jax"],
                   help="Keras backend (re-runs the command with KERAS_BACKEND set)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--overwrite", action="store_true",
                       help="remove what an earlier run wrote into --output and train from scratch")
    again.add_argument("--resume", action="store_true",
                       help="continue a finished run in --output to --epochs (more than it did)")
    p.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    p.add_argument("--quiet", action="store_true", help="one line per epoch")
    add_verbose_flag(p)
    return p


def _base_config(parser: argparse.ArgumentParser, args):
    """Defaults < ``--recipe`` < ``--config`` (the fields the file sets)."""
    import json

    from deconvnet_tf.training.config import ConfigError, TrainConfig

    if not args.recipe:
        return TrainConfig.load(args.config) if args.config else TrainConfig()
    from deconvnet_tf.models.recipes import get_recipe

    try:
        recipe = get_recipe(args.recipe)
    except ValueError as err:
        parser.error(f"--recipe: {err}")
    data = TrainConfig().to_dict()
    data.update(recipe["config"])
    if args.config:
        loaded = TrainConfig.load(args.config).to_dict()  # validates the file
        try:
            given = json.loads(open(args.config).read())
        except (OSError, ValueError) as err:
            raise ConfigError(f"--config {args.config!r}: {err}") from err
        if "stage" in given:  # an older config: its 'stage' is now these two fields
            given = [*given, "input_mode", "two_stage"]
        data.update({k: loaded[k] for k in given if k in loaded})
    if args.data is None and args.tfds is None and not data.get("data") and not data.get("tfds"):
        parser.error(f"--recipe {args.recipe} needs --data: {recipe['data']}")
    return TrainConfig.from_dict(data, source=f"recipe {args.recipe}")


def _input_flags(parser: argparse.ArgumentParser, args) -> dict:
    """``input_mode``/``two_stage`` from ``--input-mode``, ``--two-stage`` and the deprecated
    ``--stage`` (with a warning)."""
    mode, two = args.input_mode, args.two_stage
    if args.stage is not None:
        if mode is not None or two is not None:
            parser.error("--stage is deprecated: give --input-mode / --two-stage instead, "
                         "not both")
        mode, two = LEGACY_STAGES[args.stage]
        new = f"--input-mode {mode}" + (" --two-stage" if two else "")
        print(f"deconvnet-train: --stage is deprecated; --stage {args.stage} means {new}",
              file=sys.stderr)
    if two and mode is None:
        mode = "proposal_windows"
    return {"input_mode": mode, "two_stage": two}


def resolve_config(parser: argparse.ArgumentParser, args):
    """The run's :class:`TrainConfig` from parsed arguments: defaults < ``--recipe`` <
    ``--config`` < flags < ``--set`` (bad values end the script with one error line)."""
    from deconvnet_tf.training.config import ConfigError, TrainConfig

    try:
        config = _base_config(parser, args)
        flags = {
            "data": args.data, "tfds": args.tfds, "preset": args.preset, "output": args.output,
            **_input_flags(parser, args), "epochs": args.epochs, "batch_size": args.batch_size,
            "encoder_weights": args.encoder_weights, "mixed_precision": args.mixed_precision,
            "jit_compile": args.jit_compile, "strategy": args.strategy,
        }
        data = config.to_dict()
        data.update({k: v for k, v in flags.items() if v is not None})
        if args.tfds is not None:
            data["data"] = None
        elif args.data is not None:
            data["tfds"] = None
        if data.get("encoder_weights") in ("None", "none", ""):
            data["encoder_weights"] = None
        config = TrainConfig.from_dict(data, source="command line").with_overrides(args.set)
    except ConfigError as err:
        parser.error(" ".join(str(err).split()))
    return config


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    select_backend(args.backend, argv, verbose=args.verbose)

    config = resolve_config(parser, args)

    from deconvnet_tf.data.folder import DatasetError
    from deconvnet_tf.training.config import ConfigError
    from deconvnet_tf.evaluation.evaluate import evaluate, save_report
    from deconvnet_tf.training.train import open_data_source, train

    try:
        result = train(config, verbose=2 if args.quiet else "auto", overwrite=args.overwrite,
                       resume=args.resume)
        if result.already_finished:
            print(f"{result.output} holds a finished run ({result.epochs_done} epochs): nothing to "
                  f"train (--overwrite trains again from scratch, --resume --epochs N continues "
                  f"it to N epochs)")
        print(f"Model: {result.model_path}")
        evaluated = (result.output / "eval" / "metrics.json").is_file()
        if not args.no_eval and config.val_split and not (result.already_finished and evaluated):
            report = evaluate(result.model_path, split=config.val_split,
                              source=open_data_source(config), progress=not args.quiet,
                              color_target=result.color_target)
            paths = save_report(report, result.output / "eval")
            print(report.table())
            print(f"Metrics: {paths['metrics']}  Confusion matrix: {paths['confusion']}")
    except (DatasetError, ConfigError, OSError) as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"deconvnet-train: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
