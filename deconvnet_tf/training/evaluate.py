"""``evaluate()``: scores of a model on a dataset split at native resolution (the library
behind ``deconvnet-evaluate``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np

from deconvnet_tf.training.metrics import SegmentationReport, report_from_confusion

__all__ = ["evaluate", "predict_native", "save_report"]


def predict_native(model: keras.Model, image: np.ndarray) -> np.ndarray:
    """Class scores ``(H, W, C)`` of one RGB image at its own size.

    Images smaller than the model's minimum input are padded at the bottom/right (with the
    VGG mean colour, i.e. zeros after preprocessing) and the scores cropped back.
    """
    height, width = image.shape[:2]
    minimum = getattr(model, "min_input_size", 1)
    pad_h, pad_w = max(0, minimum - height), max(0, minimum - width)
    batch = image[None]
    if pad_h or pad_w:
        mean_rgb = np.array(getattr(model, "mean", (0, 0, 0))[::-1], np.float32)
        padded = np.broadcast_to(mean_rgb, (height + pad_h, width + pad_w, 3)).copy()
        padded[:height, :width] = image
        batch = padded[None]
    scores = np.asarray(model.predict_on_batch(batch.astype(np.float32)))[0]
    return scores[:height, :width]


def evaluate(
    model: keras.Model | str | os.PathLike,
    data: str | os.PathLike,
    split: str = "val",
    *,
    limit: int | None = None,
    progress: bool = True,
) -> SegmentationReport:
    """Predicts every image of ``split`` at native resolution and scores it.

    Uses ``keras.metrics.MeanIoU(ignore_class=...)`` for the confusion matrix; the report adds
    per-class IoU, global pixel accuracy and class-average accuracy.

    Args:
        model: A model or the path of a ``.keras`` file.
        data: Dataset root in the folder layout.
        split: Split name.
        limit: Evaluate only the first ``limit`` images.
        progress: Show a progress bar.
    """
    from deconvnet_tf.data.folder import list_examples, load_example, read_meta
    from deconvnet_tf.models import load_model

    if not isinstance(model, keras.Model):
        model = load_model(model)
    info = read_meta(data)
    examples = list_examples(data, split)[:limit]
    num_classes = int(model.output_shape[-1])
    if num_classes < info.num_classes:
        raise ValueError(f"The model predicts {num_classes} classes but {str(data)!r} has "
                         f"{info.num_classes}")
    metric = keras.metrics.MeanIoU(num_classes=num_classes, ignore_class=info.ignore_label)
    bar = keras.utils.Progbar(len(examples), unit_name="image") if progress else None
    for i, (image_path, label_path) in enumerate(examples, 1):
        image, label = load_example(image_path, label_path)
        pred = predict_native(model, image).argmax(-1)
        metric.update_state(label.astype(np.int32), pred.astype(np.int32))
        if bar is not None:
            bar.update(i)
    confusion = np.asarray(metric.total_cm)[: info.num_classes, : info.num_classes]
    return report_from_confusion(confusion, info.class_names)


def save_report(report: SegmentationReport, output: str | os.PathLike) -> dict[str, Path]:
    """Writes ``metrics.json`` and ``confusion.png`` (row-normalised) into ``output``."""
    import cv2

    from deconvnet_tf.render import save_png

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    json_path = output / "metrics.json"
    tmp = json_path.with_name(".metrics.json.tmp")
    tmp.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    os.replace(tmp, json_path)

    cm = report.confusion
    rows = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(report.class_names)
    cell, margin = 28, 120
    canvas = np.full((margin + n * cell, margin + n * cell, 3), 255, np.uint8)
    heat = cv2.applyColorMap((rows * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)[..., ::-1]
    canvas[margin:, margin:] = cv2.resize(heat, (n * cell, n * cell), interpolation=cv2.INTER_NEAREST)
    for i, name in enumerate(report.class_names):
        y = margin + i * cell + cell // 2 + 4
        cv2.putText(canvas, name[:14], (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
        text = np.full((cell, margin - 8, 3), 255, np.uint8)
        cv2.putText(text, name[:14], (2, cell // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
        canvas[4 : margin - 4, margin + i * cell : margin + (i + 1) * cell] = np.rot90(text)
    png_path = save_png(output / "confusion.png", canvas)
    return {"metrics": json_path, "confusion": png_path}
