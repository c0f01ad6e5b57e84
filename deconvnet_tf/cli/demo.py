"""``deconvnet-demo``: the main job end to end on the embedded default (no external data).

Prints the preset table, generates a synthetic segmentation dataset, builds a small DeconvNet,
checks that both pooling/unpooling implementations agree on it, trains it briefly with Keras
``fit``, evaluates pixel accuracy and mean IoU on held-out scenes, and writes a picture (image |
ground truth | prediction | overlay) to the output folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "run_demo"]


def _scenes(seeds, height, width):
    from deconvnet_tf.data.synthetic import make_scene

    images, labels = [], []
    for seed in seeds:
        image, label, _ = make_scene(int(seed), height, width)
        images.append(image)
        labels.append(label)
    return np.stack(images), np.stack(labels).astype("int32")


def run_demo(
    output: str | Path = "demo_output",
    preset: str = "deconvnet_tiny",
    epochs: int = 30,
    num_train: int = 64,
    size: tuple[int, int] = (96, 128),
    seed: int = 0,
    verbose: int = 1,
) -> dict:
    """Runs the demo; returns the paths written and the metrics measured.

    Args:
        output: Folder for the outputs.
        preset: Preset to train (a small one: the demo runs on 2 CPU cores in minutes).
        epochs: Training epochs over the synthetic scenes.
        num_train: Number of synthetic training scenes.
        size: ``(height, width)`` of the scenes.
        seed: Seed of the scene generator and of Keras.
        verbose: Keras progress bars (1) or quiet (0).
    """
    import keras

    import deconvnet_tf
    from deconvnet_tf.data.synthetic import CLASS_NAMES
    from deconvnet_tf.models import count_flops, with_unpooling
    from deconvnet_tf.models.summary import format_table, preset_summaries
    from deconvnet_tf.render import colorize, overlay, save_png, side_by_side

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    classes = len(CLASS_NAMES)
    h, w = size

    print("== Presets (parameters, FLOPs per 224x224 image) ==")
    print(format_table(preset_summaries(num_classes=21)))

    print(f"\n== Synthetic data: {num_train} training + 8 test scenes of {h}x{w}, {classes} classes ==")
    x_train, y_train = _scenes(range(seed, seed + num_train), h, w)
    x_test, y_test = _scenes(range(seed + 10_000, seed + 10_008), h, w)

    # BN momentum 0.9: the moving statistics keep up with a run of a few hundred steps.
    model = deconvnet_tf.build_model(preset, num_classes=classes, bn_momentum=0.9)
    print(
        f"\n== Model {preset}: {model.count_params():,} parameters, "
        f"{count_flops(model, (h, w)) / 1e9:.3f} GFLOP per {h}x{w} image, unpooling="
        f"{getattr(model, 'unpooling', '-')} =="
    )
    if hasattr(model, "unpooling"):
        other = with_unpooling(model, "switch" if model.unpooling == "argmax" else "argmax") \
            if keras.backend.backend() == "tensorflow" else None
        if other is not None:
            same = np.array_equal(np.asarray(model(x_test[:2])), np.asarray(other(x_test[:2])))
            print(f"argmax and switch unpooling give identical outputs: {same}")

    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.MeanIoU(classes, sparse_y_pred=False, name="mean_iou")],
    )
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=8, epochs=epochs, verbose=2 if verbose else 0)
    train_seconds = time.perf_counter() - start

    logits = np.asarray(model.predict(x_test, verbose=0))
    pred = logits.argmax(-1)
    pixel_acc = float((pred == y_test).mean())
    miou = keras.metrics.MeanIoU(classes)
    miou.update_state(y_test, pred)
    mean_iou = float(miou.result())
    print(f"\n== Held-out scenes: pixel accuracy {pixel_acc:.3f}, mean IoU {mean_iou:.3f} "
          f"(after {train_seconds:.0f} s of training) ==")

    rows = [
        side_by_side(x_test[i], colorize(y_test[i]), colorize(pred[i]), overlay(x_test[i], pred[i]))
        for i in range(3)
    ]
    picture = save_png(output / "prediction.png", np.concatenate(rows, axis=0))
    model_path = output / f"{preset}.keras"
    model.save(model_path)
    print(f"\nWrote {picture} (image | ground truth | prediction | overlay)")
    print(f"Wrote {model_path}")
    return {
        "picture": picture,
        "model": model_path,
        "pixel_accuracy": pixel_acc,
        "mean_iou": mean_iou,
        "train_seconds": train_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deconvnet-demo", description=__doc__)
    parser.add_argument("--output", default="demo_output", help="output folder")
    parser.add_argument("--preset", default="deconvnet_tiny")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--num-train", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bars")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.num_train < 1:
        parser.error("--epochs and --num-train must be >= 1")
    from deconvnet_tf.models.presets import list_presets

    if args.preset not in list_presets():
        parser.error(f"unknown --preset {args.preset!r}; available: {', '.join(list_presets())}")
    run_demo(
        args.output, args.preset, args.epochs, args.num_train, seed=args.seed,
        verbose=0 if args.quiet else 1,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
