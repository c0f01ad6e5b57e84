"""``deconvnet-train``: train a model on a dataset folder or on the generated default.

Precedence of settings: defaults < ``--config FILE`` (JSON) < flags < ``--set key=value``.
The resolved config is written to ``<output>/config.json``; re-running the same command after an
interruption resumes from the last backup. After training the model is evaluated on the
validation split at native resolution (``<output>/eval/``).
"""

from __future__ import annotations

import argparse
import sys

from deconvnet_tf.cli._common import select_backend

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deconvnet-train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="dataset root in the folder layout (default: generated shapes)")
    p.add_argument("--preset", help="model preset (deconvnet-presets lists them)")
    p.add_argument("--output", help="run folder: checkpoints, logs, config, model")
    p.add_argument("--stage", choices=["crop", "whole"], help="training input (crop: random crops)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--config", help="JSON file of config fields")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field (repeatable), e.g. --set crop_size=[256,256]")
    p.add_argument("--encoder-weights", help="None, imagenet, hed or a path")
    p.add_argument("--mixed-precision", action="store_true", default=None,
                   help="bfloat16 on CPU, float16 (loss scaling) on GPUs without bf16")
    p.add_argument("--jit-compile", action="store_true", default=None,
                   help="XLA-compile the train step (uses the switch unpooling)")
    p.add_argument("--strategy", choices=["default", "mirrored", "multiworker"])
    p.add_argument("--backend", choices=["tensorflow", "jax"],
                   help="Keras backend (sets KERAS_BACKEND before Keras loads)")
    p.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    p.add_argument("--quiet", action="store_true", help="one line per epoch")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    select_backend(args.backend)

    from deconvnet_tf.training.config import ConfigError, TrainConfig

    try:
        config = TrainConfig.load(args.config) if args.config else TrainConfig()
        flags = {
            "data": args.data, "preset": args.preset, "output": args.output, "stage": args.stage,
            "epochs": args.epochs, "batch_size": args.batch_size,
            "encoder_weights": args.encoder_weights, "mixed_precision": args.mixed_precision,
            "jit_compile": args.jit_compile, "strategy": args.strategy,
        }
        data = config.to_dict()
        data.update({k: v for k, v in flags.items() if v is not None})
        if data.get("encoder_weights") in ("None", "none", ""):
            data["encoder_weights"] = None
        config = TrainConfig.from_dict(data, source="command line").with_overrides(args.set)
    except ConfigError as err:
        parser.error(str(err))

    from deconvnet_tf.data.folder import DatasetError
    from deconvnet_tf.training.evaluate import evaluate, save_report
    from deconvnet_tf.training.train import resolve_dataset_root, train

    try:
        result = train(config, verbose=2 if args.quiet else "auto")
    except (DatasetError, FileNotFoundError) as err:
        print(f"deconvnet-train: error: {err}", file=sys.stderr)
        return 2
    print(f"Model: {result.model_path}")
    if not args.no_eval and config.val_split:
        report = evaluate(result.model_path, resolve_dataset_root(config), config.val_split)
        paths = save_report(report, result.output / "eval")
        print(report.table())
        print(f"Metrics: {paths['metrics']}  Confusion matrix: {paths['confusion']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
