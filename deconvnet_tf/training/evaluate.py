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


def predict_native(model: keras.Model, image: np.ndarray,
                   input_size: tuple[int, int] | None = None, *, flip: bool = False) -> np.ndarray:
    """Class scores ``(H, W, C)`` of one RGB image at its own size.

    The network runs on the image as it is, or resized (bilinear) to ``input_size`` (or to
    the model's fixed input size, if it has one); the scores are then resized back to the
    image's native resolution (bilinear), so metrics are always computed at native size.
    Inputs smaller than the model's minimum size are padded at the bottom/right (with the
    VGG mean colour, i.e. zeros after preprocessing) and the scores cropped back. This is
    :class:`deconvnet_tf.inference.predict.Predictor`'s logic (the one place for it), returning
    the model's raw scores.

    Args:
        model: A segmentation model (logits or probabilities out).
        image: ``(H, W, 3)`` RGB image.
        input_size: ``(height, width)`` to run the network at, or ``None``.
        flip: Average with the scores of the mirrored image (test-time augmentation).

    Returns:
        ``(H, W, C)`` float32 scores.
    """
    import dataclasses

    from deconvnet_tf.inference.predict import as_predictor

    predictor = as_predictor(model)
    if input_size is not None:
        predictor = dataclasses.replace(predictor, input_size=(int(input_size[0]), int(input_size[1])))
    if flip:
        predictor = dataclasses.replace(predictor, flip=True)
    net_input, back = predictor.prepare(image)
    return back(predictor.scores(net_input[None])[0])


def evaluate(
    model: keras.Model | str | os.PathLike,
    data: str | os.PathLike | None = None,
    split: str = "val",
    *,
    tfds: str | None = None,
    source=None,
    limit: int | None = None,
    progress: bool = True,
    input_size: tuple[int, int] | None = None,
    flip: bool = False,
) -> SegmentationReport:
    """Predicts every image of ``split`` at native resolution and scores it.

    Args:
        model: A model or the path of a ``.keras`` file.
        data: Dataset root (folder layout or PASCAL VOC).
        split: Split name.
        tfds: A TFDS name instead of ``data`` (see ``deconvnet_tf.data.tfds_sources``).
        source: An opened ``deconvnet_tf.data.sources.Source`` instead of ``data``/``tfds``.
        limit: Evaluate only the first ``limit`` images.
        progress: Show a progress bar.
        input_size: Run the network at this ``(height, width)`` and resize the scores back
            (``None``: each image at its own size).
        flip: Average each image's scores with those of its mirror image (test-time
            augmentation, twice the inference time).

    Returns:
        A :class:`SegmentationReport`.

    Raises:
        DatasetError: bad data (naming the file).
        ValueError: the model predicts fewer classes than the dataset has.

    Uses ``keras.metrics.MeanIoU(ignore_class=...)`` for the confusion matrix; the report adds
    per-class IoU, global pixel accuracy and class-average accuracy.

    Example:

    >>> report = evaluate("runs/camvid/model.keras", "/data/camvid_360x480", "val")
    >>> print(report.table())
    """
    from deconvnet_tf.data.sources import open_source
    from deconvnet_tf.models import load_model

    if not isinstance(model, keras.Model):
        model = load_model(model)
    if source is None:
        source = open_source(data, tfds=tfds)
    info = source.info
    total = source.num_examples(split)
    total = total if limit is None else min(limit, total)
    num_classes = int(model.output_shape[-1])
    if num_classes < info.num_classes:
        raise ValueError(f"The model predicts {num_classes} classes but {source.name!r} has "
                         f"{info.num_classes}")
    metric = keras.metrics.MeanIoU(num_classes=num_classes, ignore_class=info.ignore_label)
    bar = keras.utils.Progbar(total, unit_name="image") if progress else None
    for i, (image, label) in enumerate(source.numpy_examples(split, limit=limit), 1):
        pred = predict_native(model, image, input_size, flip=flip).argmax(-1)
        metric.update_state(label.astype(np.int32), pred.astype(np.int32))
        if bar is not None:
            bar.update(i)
    # Rows: the dataset's classes; columns: every class the model predicts (predictions past
    # the dataset's classes are errors, not dropped).
    confusion = np.asarray(metric.total_cm)[: info.num_classes]
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
    n = len(report.class_names)
    rows = cm[:, :n] / np.maximum(cm.sum(1, keepdims=True), 1)
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
