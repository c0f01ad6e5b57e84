"""``deconvnet-demo``: the main job end to end on the embedded default (no external data).

1. prints the preset table; 2. generates a synthetic segmentation dataset (shapes on textured
backgrounds); 3. checks that both pooling/unpooling implementations agree on a small DeconvNet;
4. trains it with ``deconvnet_tf.training.train`` (Keras ``fit`` on a tf.data pipeline,
resumable checkpoints); 5. evaluates it on the validation split and writes a picture (image |
ground truth | prediction | overlay); 6. refines the predictions with the dense CRF and scores
both; 7. exports a SavedModel and builtins-only LiteRT models (fp32, int8) and runs them with
``ai-edge-litert``; 8. draws a Zeiler-Fergus top-9 grid of a unit of the trained network.
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
    overwrite: bool = False,
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
        overwrite: Train again from scratch even if ``<output>/run`` holds a run (a finished
            run with the same settings is otherwise reused, one with other settings is an
            error).
    """
    from deconvnet_tf.data.folder import read_meta

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    _print_presets()
    config = _demo_config(output, preset, epochs, num_train, size, seed)
    root = _generate_data(config, num_train, size)
    _describe_model(preset, size, seed, root)
    result, train_seconds = _train_model(config, epochs, verbose, overwrite)
    trained, report, paths = _evaluate_model(result, root, output, verbose, train_seconds)
    class_names = read_meta(root).class_names
    picture = _render_predictions(trained, root, output, class_names)
    comparison, crf_picture = _refine_with_crf(trained, root, output, class_names, verbose)
    exported = _export_models(result, root, output)
    grid = _visualize_unit(trained, root, output)
    summary = {"mean_iou": report.mean_iou, "pixel_accuracy": report.pixel_accuracy,
               "crf_mean_iou": comparison.reports["deconvnet_whole_crf"].mean_iou,
               "litert_agreement": dict(exported.agreement), "train_seconds": train_seconds,
               "preset": preset, "epochs": epochs, "num_train": num_train, "seed": seed}
    paths["summary"] = _write_summary(output / "summary.json", summary)
    _print_outputs(output, paths)
    return {
        "picture": picture,
        "crf_picture": crf_picture,
        "visualization": grid.path,
        "export": exported,
        "model": result.model_path,
        "metrics": paths["metrics"],
        "pixel_accuracy": report.pixel_accuracy,
        "mean_iou": report.mean_iou,
        "crf_mean_iou": comparison.reports["deconvnet_whole_crf"].mean_iou,
        "train_seconds": train_seconds,
    }


def _write_summary(path: Path, summary: dict) -> Path:
    """``summary.json``: the demo's numbers (what README's set-up line quotes), atomically."""
    import json

    from deconvnet_tf.training.atomic import write_text_atomic

    return write_text_atomic(path, json.dumps(summary, indent=2) + "\n")


def _print_presets() -> None:
    """Step 1: the preset table."""
    from deconvnet_tf.models.summary import format_table, preset_summaries

    print("== Presets (parameters, FLOPs per 224x224 image) ==")
    print(format_table(preset_summaries(num_classes=21)))


def _demo_config(output: Path, preset: str, epochs: int, num_train: int,
                 size: tuple[int, int], seed: int):
    """The demo's :class:`~deconvnet_tf.training.config.TrainConfig` (run in ``<output>/run``)."""
    from deconvnet_tf.training.config import TrainConfig

    return TrainConfig(
        preset=preset, output=str(output / "run"), input_mode="whole", epochs=epochs, batch_size=8,
        crop_size=list(size), optimizer="adam", learning_rate=3e-3, weight_decay=0.0,
        bn_momentum=0.9,  # moving statistics that keep up with a run of a few hundred steps
        lr_decay_epochs=max(1, epochs * 5 // 8), lr_decay_factor=0.3,
        class_weighting="median_frequency",  # thin rings are few pixels: weigh them up
        synthetic_train=num_train, synthetic_val=max(4, num_train // 4), synthetic_size=list(size),
        checkpoint_every=100, seed=seed, deterministic=True,
    )


def _generate_data(config, num_train: int, size: tuple[int, int]) -> Path:
    """Step 2: generates (or reuses) the synthetic dataset; returns its root."""
    from deconvnet_tf.training.train import resolve_dataset_root

    root = resolve_dataset_root(config)
    print(f"\n== Generated data: {root} ({num_train} train / {config.synthetic_val} val images "
          f"of {size[0]}x{size[1]}, 5 classes) ==")
    return root


def _describe_model(preset: str, size: tuple[int, int], seed: int, root: Path) -> None:
    """Step 3: the model's size and cost; argmax and switch unpooling agree (TensorFlow)."""
    import keras

    import deconvnet_tf
    from deconvnet_tf.data.folder import list_examples, load_example
    from deconvnet_tf.models import count_flops, with_unpooling

    keras.utils.set_random_seed(seed)
    model = deconvnet_tf.build_model(preset, num_classes=5)
    print(f"\n== {preset}: {model.count_params():,} parameters, "
          f"{count_flops(model, size) / 1e9:.3f} GFLOP per {size[0]}x{size[1]} image ==")
    if keras.backend.backend() == "tensorflow" and hasattr(model, "unpooling"):
        image, _ = load_example(*list_examples(root, "val")[0])
        other = with_unpooling(model, "switch")
        same = np.array_equal(np.asarray(model(image[None])), np.asarray(other(image[None])))
        print(f"argmax and switch unpooling give identical outputs: {same}")


def _train_model(config, epochs: int, verbose: int, overwrite: bool):
    """Step 4: trains (or reuses a finished run); returns the result and the seconds taken."""
    from deconvnet_tf.training.train import train

    print(f"\n== Training ({epochs} epochs, Adam 3e-3, batch 8, median-frequency class weights) ==")
    start = time.perf_counter()
    result = train(config, verbose=1 if verbose else 0, overwrite=overwrite)
    return result, time.perf_counter() - start


def _evaluate_model(result, root: Path, output: Path, verbose: int, train_seconds: float):
    """Step 5a: loads the trained model, scores the validation split, writes ``eval/``."""
    import deconvnet_tf
    from deconvnet_tf.evaluation.evaluate import evaluate, save_report

    print(f"\n== Evaluation on the validation split (after {train_seconds:.0f} s of training) ==")
    trained = deconvnet_tf.load_model(result.model_path)
    report = evaluate(trained, root, "val", progress=bool(verbose))
    print(report.table())
    paths = save_report(report, output / "eval")
    return trained, report, paths


def _render_predictions(trained, root: Path, output: Path, class_names) -> Path:
    """Step 5b: ``prediction.png`` (image | ground truth | prediction | overlay)."""
    from deconvnet_tf.data.folder import list_examples, load_example
    from deconvnet_tf.evaluation.evaluate import predict_native
    from deconvnet_tf.render import colorize, figure_grid, overlay, save_png

    rows = []
    for image_path, label_path in list_examples(root, "val")[:3]:
        image, label = load_example(image_path, label_path)
        pred = predict_native(trained, image).argmax(-1)
        rows.append([image, colorize(label), colorize(pred), overlay(image, pred)])
    picture = save_png(output / "prediction.png", figure_grid(
        rows, ["image", "ground truth", "prediction", "overlay"], class_names=class_names))
    print(f"\nWrote {picture} (image | ground truth | prediction | overlay)")
    return picture


def _refine_with_crf(trained, root: Path, output: Path, class_names, verbose: int):
    """Step 6: scores the network with and without the dense CRF, writes ``crf.png``."""
    from deconvnet_tf.data.folder import list_examples, load_example
    from deconvnet_tf.render import colorize, figure_grid, save_png

    print("\n== Dense CRF (pydensecrf, DeconvNet's settings) on the validation split ==")
    from deconvnet_tf.evaluation.compare import compare_methods
    from deconvnet_tf.inference.crf import crf_comparison
    from deconvnet_tf.inference.predict import predict_image

    comparison = compare_methods(trained, root, "val",
                                 methods=["deconvnet_whole", "deconvnet_whole_crf"],
                                 progress=bool(verbose))
    print(comparison.table())
    crf_rows = []
    for image_path, label_path in list_examples(root, "val")[:3]:
        image, label = load_example(image_path, label_path)
        probs = predict_image(trained, image)
        refined = crf_comparison(image, probs, label=label)[0]
        crf_rows.append([image, colorize(label), colorize(probs.argmax(-1)),
                         colorize(refined.argmax(-1))])
    crf_picture = save_png(output / "crf.png", figure_grid(
        crf_rows, ["image", "ground truth", "network", "network + CRF"],
        class_names=class_names))
    print(f"Wrote {crf_picture} (image | ground truth | network | network + CRF)")
    return comparison, crf_picture


def _export_models(result, root: Path, output: Path):
    """Step 7: SavedModel and LiteRT (fp32, int8) exports, run on the validation images."""
    from deconvnet_tf.data.folder import list_examples

    print("\n== Export: SavedModel and LiteRT (builtin ops only), run with ai-edge-litert ==")
    from deconvnet_tf.export import export_all

    samples = [p for p, _ in list_examples(root, "val")]
    exported = export_all(result.model_path, output / "export", quantize=("none", "int8"),
                          representative_data=root, sample_images=samples,
                          predict_dir=output / "lite")
    print(exported.summary())
    print(f"Wrote {output / 'export'} (SavedModel, .tflite + .json sidecars) and the LiteRT "
          f"predictions in {output / 'lite'}")
    return exported


def _visualize_unit(trained, root: Path, output: Path):
    """Step 8: Zeiler-Fergus top-9 grid of 3 units of the last encoder conv."""
    print("\n== Zeiler-Fergus deconvnet: top-9 activations of 3 units of the last encoder conv ==")
    from deconvnet_tf.visualize import visualize

    layer = [l.name for l in trained.layers if l.name.endswith("_relu") and "_conv" in l.name][-1]
    grid = visualize(trained, layer, root / "val" / "images", output / "visualize.png",
                     top_channels=3, k=9)
    print(f"Wrote {grid.path} (layer {layer}: projection | receptive-field patch, strongest "
          f"first, over {grid.num_images} validation images)")
    return grid


def _print_outputs(output: Path, paths: dict) -> None:
    """The closing summary: what was written where."""
    print(f"\nOutputs in {output}/: prediction.png, crf.png, visualize.png, eval/ "
          f"({paths['metrics'].name}, {paths['confusion'].name}), export/, lite/, and the run "
          f"folder run/ (config, checkpoints, log.csv, tensorboard, model.keras)")

def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer in 0..4294967295, got {text!r}"
                                         ) from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected an integer in 0..4294967295, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    from deconvnet_tf.cli._common import (Reporter, add_verbose_flag, plain_text, positive_int,
                                          quiet_frameworks)

    parser = argparse.ArgumentParser(prog="deconvnet-demo", description=plain_text(__doc__))
    parser.add_argument("--output", default="demo_output",
                        help="output folder (a rerun reuses its data and replaces its pictures)")
    parser.add_argument("--preset", default="deconvnet_tiny",
                        help="model preset to train (default: deconvnet_tiny; see deconvnet-presets)")
    parser.add_argument("--epochs", type=positive_int, default=40, help="training epochs (default: 40)")
    parser.add_argument("--num-train", type=positive_int, default=64,
                        help="generated training scenes (default: 64)")
    parser.add_argument("--seed", type=_seed, default=0,
                        help="seed of the generated data and the training (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    parser.add_argument("--overwrite", action="store_true",
                        help="train again even if --output holds a demo run with other settings")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    from deconvnet_tf._backend import BackendUnavailableError

    try:
        quiet_frameworks(args.verbose)
    except BackendUnavailableError as err:
        parser.error(str(err))
    from deconvnet_tf.models.presets import list_presets

    if args.preset not in list_presets():
        parser.error(f"unknown --preset {args.preset!r}; available: {', '.join(list_presets())}")
    report = Reporter("deconvnet-demo")
    from deconvnet_tf.io import ensure_output_dir

    try:
        ensure_output_dir(args.output)  # a file or a read-only place fails before any work
        run_demo(args.output, args.preset, args.epochs, args.num_train, seed=args.seed,
                 verbose=0 if args.quiet else 1, overwrite=args.overwrite)
    except MemoryError:
        return report.error("out of memory; try a smaller --preset or --num-train")
    except (OSError, ValueError, ImportError) as err:
        return report.error(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
