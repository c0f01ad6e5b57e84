"""Ship a trained run into ``saved_models/``: ``.keras``, LiteRT fp32 + int8, metadata, model card.

For a run folder written by ``deconvnet-train`` (``config.json``, ``model.keras``) and the
dataset it was trained on, this writes

* ``<out>/<name>.keras``: the model without optimizer state (loads with ``deconvnet_tf.load_model``);
* ``<out>/<name>.tflite`` and ``<name>_int8.tflite`` (+ ``.json`` sidecars with class names and
  palette): builtins-only LiteRT models, int8 calibrated on the training split;
* ``<out>/<name>.md``: the model card (data and its terms, preset, training command, metrics of
  the Keras model and of both LiteRT files on the validation split, sizes).

    python tools/ship_model.py --run runs/camvid --data /path/to/camvid_180x240 --name camvid_compact \
        --input-size 180x240 --terms "CamVid ... CC BY-NC 4.0" --command "deconvnet-train ..."
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _confusion(pred: np.ndarray, label: np.ndarray, num_classes: int, ignore) -> np.ndarray:
    keep = label != ignore if ignore is not None else np.ones(label.shape, bool)
    keep &= label < num_classes
    index = label[keep].astype(np.int64) * num_classes + np.clip(pred[keep], 0, num_classes - 1)
    return np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def ship(run: Path, data: Path, name: str, out: Path, *, input_size=None, terms: str = "",
         command: str = "", notes: str = "", split: str = "val") -> dict:
    """Writes the shipped files of one model; returns the measured numbers."""
    import deconvnet_tf
    from deconvnet_tf.data.folder import list_examples, load_example, read_meta
    from deconvnet_tf.export import export_tflite_variants
    from deconvnet_tf.lite import LiteSegmenter
    from deconvnet_tf.training.callbacks import save_model_atomic
    from deconvnet_tf.evaluation.evaluate import evaluate, predict_native
    from deconvnet_tf.evaluation.metrics import report_from_confusion

    info = read_meta(data)
    model = deconvnet_tf.load_model(run / "model.keras")
    out.mkdir(parents=True, exist_ok=True)
    keras_path = save_model_atomic(model, out / f"{name}.keras")
    start = time.perf_counter()
    tflite = export_tflite_variants(
        model, {"none": out / f"{name}.tflite", "int8": out / f"{name}_int8.tflite"},
        input_size=input_size, representative_data=data, class_names=list(info.class_names))
    export_seconds = time.perf_counter() - start

    reports = {"Keras (.keras)": evaluate(model, data, split, progress=False)}
    examples = list_examples(data, split)
    agreement = {}
    for key, label_name in (("none", "LiteRT fp32"), ("int8", "LiteRT int8")):
        segmenter = LiteSegmenter(tflite[key], threads=2)
        confusion = np.zeros((info.num_classes,) * 2, np.int64)
        same = total = 0
        for image_path, label_path in examples:
            image, label = load_example(image_path, label_path)
            pred, _ = segmenter.predict(image)
            keras_pred = predict_native(model, image).argmax(-1)
            same += int((pred == keras_pred).sum())
            total += pred.size
            confusion += _confusion(pred, label, info.num_classes, info.ignore_label)
        reports[label_name] = report_from_confusion(confusion, info.class_names)
        agreement[label_name] = same / total
    config = json.loads((run / "config.json").read_text())
    sizes = {p.name: p.stat().st_size for p in [keras_path, *map(Path, tflite.values())]}

    lines = [f"# Model card: `{name}`", "",
             f"DeconvNet-family segmentation model trained with deconvnet-tf, preset "
             f"`{config['preset']}` ({model.count_params():,} parameters), "
             f"{info.num_classes} classes: {', '.join(info.class_names)}"
             + (f"; label {info.ignore_label} (void) is ignored." if info.ignore_label is not None
                else "."), "",
             "## Data and terms", "", terms or "(see the dataset's own terms)", "",
             "## Training", "", f"    {command}" if command else "(command not recorded)", "",
             f"Resolved config: encoder weights `{config.get('encoder_weights')}`, frozen blocks "
             f"{config.get('frozen_blocks')}, {config.get('epochs')} epochs, batch "
             f"{config.get('batch_size')}, crops {config.get('crop_size')}, optimizer "
             f"{config.get('optimizer')} lr {config.get('learning_rate')}, class weighting "
             f"{config.get('class_weighting')}.", ""]
    if notes:
        lines += [notes, ""]
    lines += [f"## Metrics on the `{split}` split ({len(examples)} images, native resolution)", "",
              "| model file | mean IoU | pixel acc. | class-avg acc. | labels equal to Keras |",
              "|---|---:|---:|---:|---:|"]
    for key, report in reports.items():
        agree = agreement.get(key)
        lines.append(f"| {key} | {100 * report.mean_iou:.1f} | {100 * report.pixel_accuracy:.1f} "
                     f"| {100 * report.mean_class_accuracy:.1f} | "
                     f"{'-' if agree is None else f'{100 * agree:.2f}%'} |")
    keras_report = reports["Keras (.keras)"]
    lines += ["", "Per-class IoU (Keras): " + ", ".join(
        f"{c} {100 * v:.1f}" for c, v in zip(info.class_names, keras_report.per_class_iou)), "",
        "## Files", "", "| file | MiB |", "|---|---:|"]
    lines += [f"| `{n}` | {s / 2**20:.1f} |" for n, s in sizes.items()]
    lines += ["", f"LiteRT files: builtin ops only (stock `ai-edge-litert`), input uint8 RGB "
              f"{'of any size' if input_size is None else 'of %dx%d' % tuple(input_size)}; "
              f"outputs `probabilities` and `labels`; class names and palette in the `.json` "
              f"sidecars. Export took {export_seconds:.0f} s.", "",
              "    deconvnet-predict --model saved_models/%s.keras --input IMG --output out/" % name,
              "    deconvnet-lite-predict --model saved_models/%s_int8.tflite --input IMG --output out/"
              % name, ""]
    card = out / f"{name}.md"
    card.write_text("\n".join(lines))
    return {"card": card, "reports": {k: r.to_dict() for k, r in reports.items()},
            "agreement": agreement, "sizes": sizes}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path, help="run folder of deconvnet-train")
    parser.add_argument("--data", required=True, type=Path, help="dataset root (folder layout)")
    parser.add_argument("--name", required=True, help="file name stem in the output folder")
    parser.add_argument("--output", type=Path, default=Path("saved_models"))
    parser.add_argument("--input-size", default=None, help="HxW of the LiteRT input (default dynamic)")
    parser.add_argument("--terms", default="", help="data source and licence line")
    parser.add_argument("--command", default="", help="the training command, for the card")
    parser.add_argument("--notes", default="", help="extra paragraph for the card")
    args = parser.parse_args(argv)
    if not (args.run / "model.keras").is_file():
        parser.error(f"--run {str(args.run)!r} has no model.keras")
    size = None
    if args.input_size:
        try:
            size = tuple(int(v) for v in args.input_size.lower().split("x"))
        except ValueError:
            parser.error(f"--input-size must look like 180x240, got {args.input_size!r}")
    result = ship(args.run, args.data, args.name, args.output, input_size=size, terms=args.terms,
                  command=args.command, notes=args.notes)
    print(result["card"].read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
