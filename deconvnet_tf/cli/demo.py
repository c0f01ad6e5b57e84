"""``deconvnet-demo``: the main job end to end on the embedded default (no external data).

Prints the preset table, generates a synthetic segmentation dataset (shapes on textured
backgrounds), checks that both pooling/unpooling implementations agree on a small DeconvNet,
trains it with ``deconvnet_tf.training.train`` (Keras ``fit`` on a tf.data pipeline, resumable
checkpoints), evaluates it on the validation split with ``deconvnet_tf.training.evaluate`` and
writes a picture (image | ground truth | prediction | overlay).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "run_demo"]


def run_demo(
    output: str | Path = "demo_output",
    preset: str = "deconvnet_tiny",
    epochs: int = 40,
    num_train: int = 64,
    size: tuple[int, int] = (96, 128),
    seed: int = 0,
    verbose: int = 1,
) -> dict:
    """Runs the demo; returns the paths written and the metrics measured.

    Args:
        output: Folder for the outputs (the training run goes to ``<output>/run``).
        preset: Preset to train (a small one: the demo runs on 2 CPU cores in about a minute).
        epochs: Training epochs.
        num_train: Number of generated training images (validation: a quarter of it).
        size: ``(height, width)`` of the generated images.
        seed: Seed of the data generator and of Keras.
        verbose: 1 prints one line per epoch, 0 is quiet.
    """
    import keras

    import deconvnet_tf
    from deconvnet_tf.data.folder import list_examples, load_example
    from deconvnet_tf.models import count_flops, with_unpooling
    from deconvnet_tf.models.summary import format_table, preset_summaries
    from deconvnet_tf.render import colorize, overlay, save_png, side_by_side
    from deconvnet_tf.training.config import TrainConfig
    from deconvnet_tf.training.evaluate import evaluate, predict_native, save_report
    from deconvnet_tf.training.train import resolve_dataset_root, train

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    print("== Presets (parameters, FLOPs per 224x224 image) ==")
    print(format_table(preset_summaries(num_classes=21)))

    config = TrainConfig(
        preset=preset, output=str(output / "run"), stage="whole", epochs=epochs, batch_size=8,
        crop_size=list(size), optimizer="adam", learning_rate=3e-3, weight_decay=0.0,
        bn_momentum=0.9,  # moving statistics that keep up with a run of a few hundred steps
        lr_decay_epochs=max(1, epochs * 5 // 8), lr_decay_factor=0.3,
        class_weighting="median_frequency",  # thin rings are few pixels: weigh them up
        synthetic_train=num_train, synthetic_val=max(4, num_train // 4), synthetic_size=list(size),
        checkpoint_every=100, seed=seed, deterministic=True,
    )
    root = resolve_dataset_root(config)
    print(f"\n== Generated data: {root} ({num_train} train / {config.synthetic_val} val images "
          f"of {size[0]}x{size[1]}, 5 classes) ==")

    keras.utils.set_random_seed(seed)
    model = deconvnet_tf.build_model(preset, num_classes=5)
    print(f"\n== {preset}: {model.count_params():,} parameters, "
          f"{count_flops(model, size) / 1e9:.3f} GFLOP per {size[0]}x{size[1]} image ==")
    if keras.backend.backend() == "tensorflow" and hasattr(model, "unpooling"):
        image, _ = load_example(*list_examples(root, "val")[0])
        other = with_unpooling(model, "switch")
        same = np.array_equal(np.asarray(model(image[None])), np.asarray(other(image[None])))
        print(f"argmax and switch unpooling give identical outputs: {same}")

    print(f"\n== Training ({epochs} epochs, Adam 3e-3, batch 8, median-frequency class weights) ==")
    start = time.perf_counter()
    result = train(config, verbose=2 if verbose else 0)
    train_seconds = time.perf_counter() - start

    print(f"\n== Evaluation on the validation split (after {train_seconds:.0f} s of training) ==")
    trained = deconvnet_tf.load_model(result.model_path)
    report = evaluate(trained, root, "val", progress=bool(verbose))
    print(report.table())
    paths = save_report(report, output / "eval")

    rows = []
    for image_path, label_path in list_examples(root, "val")[:3]:
        image, label = load_example(image_path, label_path)
        pred = predict_native(trained, image).argmax(-1)
        rows.append(side_by_side(image, colorize(label), colorize(pred), overlay(image, pred)))
    picture = save_png(output / "prediction.png", np.concatenate(rows, axis=0))
    print(f"\nWrote {picture} (image | ground truth | prediction | overlay)")
    print(f"Wrote {result.model_path}, {paths['metrics']}, {paths['confusion']}")
    print(f"Run folder (config, checkpoints, log.csv, tensorboard): {result.output}")
    return {
        "picture": picture,
        "model": result.model_path,
        "metrics": paths["metrics"],
        "pixel_accuracy": report.pixel_accuracy,
        "mean_iou": report.mean_iou,
        "train_seconds": train_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deconvnet-demo", description=__doc__)
    parser.add_argument("--output", default="demo_output", help="output folder")
    parser.add_argument("--preset", default="deconvnet_tiny")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--num-train", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.num_train < 1:
        parser.error("--epochs and --num-train must be >= 1")
    from deconvnet_tf.models.presets import list_presets

    if args.preset not in list_presets():
        parser.error(f"unknown --preset {args.preset!r}; available: {', '.join(list_presets())}")
    run_demo(args.output, args.preset, args.epochs, args.num_train, seed=args.seed,
             verbose=0 if args.quiet else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
