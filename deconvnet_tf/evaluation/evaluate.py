"""``evaluate()``: scores of a model on a dataset split at native resolution (the library
behind ``deconvnet-evaluate``)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras
import numpy as np

from deconvnet_tf.data.folder import DatasetError
from deconvnet_tf.data.sources import open_source
from deconvnet_tf.evaluation.metrics import SegmentationReport, report_from_confusion
from deconvnet_tf.inference.predict import as_predictor, check_scales, predict_images
from deconvnet_tf.inference.segmenter import load_model
from deconvnet_tf.io import check_color_target, check_creatable, write_bytes
from deconvnet_tf.models.registry import list_models, resolve

__all__ = ["ModelFileError", "check_input_size", "check_report_output", "confusion_png", "evaluate",
           "load_model_file", "predict_native", "save_report"]

REPORT_FILES = ("metrics.json", "confusion.png")


class ModelFileError(ValueError):
    """A model path that is missing, a folder without ``model.keras``, or not a loadable
    ``.keras`` file; the message is one line naming the path."""


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    line = text.splitlines()[0]
    return line if len(line) <= 300 else line[:297] + "..."


def load_model_file(path: str | os.PathLike, what: str = "--model") -> tuple[keras.Model, Path]:
    """Loads a ``.keras`` file (or a training run folder's ``model.keras``) with clear errors.

    Args:
        path: A ``.keras`` file, a run folder that holds ``model.keras``, or the name of a
            shipped model (``camvid_compact``; see :mod:`deconvnet_tf.models.registry`).
        what: How the path is named in messages (the command-line flag).

    Returns:
        ``(model, path of the .keras file)``.

    Raises:
        ModelFileError: Missing path, a folder without ``model.keras``, or a file that is not
            a loadable ``.keras`` model (corrupt, truncated, another format).
    """
    text = os.fspath(path)
    if not Path(text).exists() and (text in list_models() or "://" in text):
        try:  # a shipped model's name (or a URL): the registry finds the file
            path, _ = resolve(text)
        except (FileNotFoundError, ValueError) as err:
            raise ModelFileError(f"{what} {text!r}: {_first_line(err)}") from err
    path = Path(path)
    if path.is_dir():
        if not (path / "model.keras").is_file():
            raise ModelFileError(f"{what} {str(path)!r} is a folder without model.keras "
                                 "(expected a .keras file or a training run folder)")
        path = path / "model.keras"
    if not path.exists():
        raise ModelFileError(f"{what} {str(path)!r}: no such file (expected a .keras model)")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelFileError(f"{what} {str(path)!r} is not a .keras model file (expected the "
                             "zip archive that model.save writes)")
    try:
        model = load_model(path)
    except Exception as err:  # keras raises many types for a damaged archive
        raise ModelFileError(f"{what} {str(path)!r} is not a loadable .keras model "
                             f"({type(err).__name__}: {_first_line(err)})") from err
    if not isinstance(model, keras.Model) or len(model.output_shape) != 4:
        raise ModelFileError(f"{what} {str(path)!r} is not a segmentation model (expected "
                             f"outputs (batch, height, width, classes), got "
                             f"{getattr(model, 'output_shape', None)})")
    return model, path


def check_input_size(model: keras.Model, input_size, what: str = "input_size"):
    """Checks ``(height, width)`` against the model's minimum input size.

    Returns:
        ``(height, width)`` as ints, or ``None``.

    Raises:
        ValueError: Not two positive ints, below ``model.min_input_size``, or another size
            than the one a fixed-size model was built for.
    """
    if input_size is None:
        return None
    try:
        height, width = (int(v) for v in input_size)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be (height, width), got {input_size!r}") from err
    if min(height, width) < 1:
        raise ValueError(f"{what} must be positive, got {height}x{width}")
    minimum = int(getattr(model, "min_input_size", 1) or 1)
    if min(height, width) < minimum:
        raise ValueError(f"{what} {height}x{width} is below the minimum input size of model "
                         f"{model.name!r}: {minimum}x{minimum}")
    fixed = tuple(getattr(model, "image_shape", (None, None, 3)))[:2]
    if None not in fixed and tuple(int(v) for v in fixed) != (height, width):
        raise ValueError(f"{what} {height}x{width}: model {model.name!r} was built for a fixed "
                         f"input of {fixed[0]}x{fixed[1]} (leave {what} out to use it)")
    return height, width


def check_report_output(output: str | os.PathLike, *, overwrite: bool = False,
                        what: str = "--output") -> Path:
    """Checks, before a long evaluation, that the report can be written to folder ``output``.

    Nothing is created: the nearest existing folder on the way must be writable.

    Raises:
        ValueError: ``output`` (or a parent) is a file, the folder already holds a report and
            not ``overwrite``, or the folder cannot be written.
    """
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ValueError(f"{what} {str(output)!r} is a file; expected a folder for "
                         "metrics.json and confusion.png")
    if output.is_dir() and not overwrite:
        taken = [name for name in REPORT_FILES if (output / name).exists()]
        if taken:
            raise ValueError(f"{what} {str(output)!r} already holds {', '.join(taken)}: pass "
                             "--overwrite to replace the report, or choose another folder")
    return check_creatable(output, what, ValueError)


def predict_native(model: keras.Model, image: np.ndarray,
                   input_size: tuple[int, int] | None = None, *,
                   flip: bool | None = None, color_norm: bool = True,
                   color_target=None, scales=None) -> np.ndarray:
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
        flip: Average with the scores of the mirrored image (test-time augmentation);
            ``None``: the model's own setting (a Segmenter's ``test_time_flip``).
        color_norm: Apply the model's test-time colour normalisation (a Segmenter's
            ``color_target``, if it has one); ``False``: the image as it is.
        color_target: ``{"mean": [r, g, b], "std": [r, g, b]}`` to normalise to instead of
            the model's own (e.g. the ``color_target`` of a run trained with ``color_norm``,
            whose ``model.keras`` is a bare network); ignored when ``color_norm`` is False.
        scales: Test-time multi-scale (multiples of the working size, the probabilities
            averaged, :class:`~deconvnet_tf.inference.predict.Predictor`); ``None``: the
            model's own setting (a Segmenter's ``test_time_scales``). The scores are then the
            log of the mean probabilities for a logits model (the same argmax).

    Returns:
        ``(H, W, C)`` float32 scores.
    """
    import dataclasses

    predictor = as_predictor(model)
    if input_size is not None:
        predictor = dataclasses.replace(predictor, input_size=(int(input_size[0]), int(input_size[1])))
    if flip is not None:
        predictor = dataclasses.replace(predictor, flip=bool(flip))
    if not color_norm:
        predictor = dataclasses.replace(predictor, color_target=None)
    elif color_target is not None:
        predictor = dataclasses.replace(
            predictor, color_target=check_color_target(color_target, "color_target"))
    if scales is not None:
        predictor = dataclasses.replace(predictor, scales=scales)
    if predictor.scales != (1.0,):
        probs = predict_images(predictor, [image])[0]
        if predictor.outputs == "probabilities":
            return probs
        return np.log(np.maximum(probs, np.finfo(np.float32).tiny))
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
    flip: bool | None = None,
    color_norm: bool = True, color_target=None, scales=None,
    exact_classes: bool = False,
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
            (``None``: the working resolution a Segmenter records, else each image at its own size).
        flip: Average each image's scores with those of its mirror image (test-time
            augmentation, twice the inference time); ``None``: the model's own setting (a
            Segmenter's ``test_time_flip``).
        color_norm: Apply the model's test-time colour normalisation (a Segmenter's
            ``color_target``); ``False``: images as they are.
        color_target: Normalise to these statistics instead of the model's own
            (:func:`predict_native`).
        scales: Test-time multi-scale, e.g. ``(1.0, 1.5)`` (:func:`predict_native`); ``None``:
            the model's own setting (a Segmenter's ``test_time_scales``).
        exact_classes: Require the model's class count to equal the dataset's (what
            ``deconvnet-evaluate`` does). Otherwise a model with more outputs than the dataset
            has classes (trained with a ``num_classes`` override) is scored, its extra classes
            counting as errors.

    Returns:
        A :class:`SegmentationReport`.

    Raises:
        DatasetError: bad data (naming the file), including label values outside the
            dataset's classes that are not its void label.
        ValueError: the model predicts fewer classes than the dataset has (or, with
            ``exact_classes``, another number); ``input_size`` below the model's minimum.
        ModelFileError: ``model`` is a path that does not load.

    Uses ``keras.metrics.MeanIoU(ignore_class=...)`` for the confusion matrix; the report adds
    per-class IoU, global pixel accuracy and class-average accuracy.

    Example:
        >>> report = evaluate("runs/camvid/model.keras", "/data/camvid_360x480", "val")
        >>> print(report.table())
    """
    model, input_size, color_target, scales = _checked_settings(model, input_size, color_target,
                                                                scales)
    if source is None:
        source = open_source(data, tfds=tfds)
    info = source.info
    num_classes = _check_class_count(model, source, exact_classes)
    total = source.num_examples(split)
    total = total if limit is None else min(limit, total)
    records = _label_records(source, split)
    metric = keras.metrics.MeanIoU(num_classes=num_classes, ignore_class=info.ignore_label)
    bar = keras.utils.Progbar(total, unit_name="image") if progress else None
    for i, (image, label) in enumerate(source.numpy_examples(split, limit=limit), 1):
        _check_label_values(label, source, split, records, i - 1)
        pred = predict_native(model, image, input_size, flip=flip, color_norm=color_norm,
                              color_target=color_target,
                              scales=scales).argmax(-1).astype(np.int32)
        metric.update_state(label.astype(np.int32), pred)
        if bar is not None:
            bar.update(i)
    # Rows: the dataset's classes; columns: every class the model predicts (predictions past
    # the dataset's classes are errors, not dropped).
    confusion = np.asarray(metric.total_cm)[: info.num_classes]
    return report_from_confusion(confusion, info.class_names)


def _checked_settings(model, input_size, color_target, scales):
    """:func:`evaluate`'s model (loaded from a path), ``input_size``, ``color_target`` and
    ``scales``, each checked before any image is read."""
    if not isinstance(model, keras.Model):
        model, _ = load_model_file(model, "model")
    return (model, check_input_size(model, input_size),
            check_color_target(color_target, "color_target"),
            None if scales is None else check_scales(scales, "scales"))


def _check_class_count(model: keras.Model, source, exact_classes: bool) -> int:
    """The model's class count, checked against the dataset's (see :func:`evaluate`)."""
    info = source.info
    num_classes = int(model.output_shape[-1])
    if num_classes < info.num_classes or (exact_classes and num_classes != info.num_classes):
        names = ", ".join(info.class_names)
        raise ValueError(f"class mismatch: model {model.name!r} predicts {num_classes} classes "
                         f"but dataset {source.name!r} has {info.num_classes} ({names[:200]}); "
                         "evaluate a model trained on this dataset's classes")
    return num_classes


def _label_records(source, split: str):
    """The split's file records (to name a bad label file), or ``None`` when the source is not
    file-based (TFDS: examples are named by index)."""
    try:
        return source.records(split)
    except DatasetError:
        return None


def _check_label_values(label: np.ndarray, source, split: str, records, index: int) -> None:
    """Raises ``DatasetError`` for label values outside the dataset's classes that are not its
    void label, naming the label file (or ``split[index]``)."""
    info = source.info
    bad = [int(v) for v in np.unique(label)
           if v >= info.num_classes and v != info.ignore_label]
    if bad:
        where = str(records[index].label) if records is not None else f"{split}[{index}]"
        void = ("no void label" if info.ignore_label is None
                else f"void label {info.ignore_label}")
        raise DatasetError(f"label {where!r} of {source.name!r} has value(s) {bad[:5]} "
                           f"outside the dataset's {info.num_classes} classes "
                           f"[0, {info.num_classes}) ({void})")


def save_report(report: SegmentationReport, output: str | os.PathLike, *,
                overwrite: bool = True) -> dict[str, Path]:
    """Writes ``metrics.json`` and ``confusion.png`` (row-normalised) into folder ``output``.

    Each file is written to a unique temporary name in ``output`` and renamed into place.

    Args:
        report: The report.
        output: The folder (created if missing).
        overwrite: Replace an earlier report in ``output`` (else raise).

    Raises:
        ValueError: ``output`` is a file, or holds a report and not ``overwrite``.
        OSError: The folder cannot be written.
    """
    output = check_report_output(output, overwrite=overwrite, what="output")
    png = confusion_png(report)  # drawn before anything is written
    output.mkdir(parents=True, exist_ok=True)
    json_path = write_bytes(output / "metrics.json",
                            (json.dumps(report.to_dict(), indent=2) + "\n").encode())
    png_path = write_bytes(output / "confusion.png", png)
    return {"metrics": json_path, "confusion": png_path}


def _row_normalised(report: SegmentationReport) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(rows, column names, row totals)``: the confusion matrix divided by each true class's
    pixel count; predictions outside the dataset's classes are summed into an ``other``
    column when there are any."""
    cm = np.asarray(report.confusion, np.float64)
    names = [str(n) for n in report.class_names]
    n = len(names)
    totals = cm.sum(1)
    shown = cm[:, :n]
    columns = list(names)
    if cm.shape[1] > n and cm[:, n:].sum() > 0:
        shown = np.concatenate([shown, cm[:, n:].sum(1, keepdims=True)], axis=1)
        columns.append("other")
    return shown / np.maximum(totals, 1)[:, None], columns, totals


def confusion_png(report: SegmentationReport, *, title: str | None = None) -> bytes:
    """The confusion matrix as a PNG (matplotlib, Agg backend): rows are the true classes,
    columns the predicted ones, each cell the fraction of the true class's pixels (the row
    sums to 1) written in the cell, class names on both axes and a colour bar. Sized for up to
    ~30 classes (cells, fonts and label rotation adapt to the class count). Without matplotlib,
    a plain OpenCV heat map with the names.

    Args:
        report: The evaluation report.
        title: Figure title (default: mean IoU, pixel accuracy, class-average accuracy).
    """
    rows, columns, totals = _row_normalised(report)
    names = [str(n) for n in report.class_names]
    if title is None:
        title = (f"Confusion matrix (row-normalised)\nmean IoU {report.mean_iou * 100:.1f}, "
                 f"pixel accuracy {report.pixel_accuracy * 100:.1f}")
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        return _confusion_png_cv2(rows, names)
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_rows, n_cols = rows.shape
    cell = 0.42 if max(n_rows, n_cols) > 12 else 0.55  # inches per cell
    longest = max(len(c) for c in columns + names)
    label_in = min(2.2, 0.3 + 0.075 * longest)  # room for the tick labels
    width = n_cols * cell + label_in + 1.6
    height = n_rows * cell + label_in + 1.0
    font = 9 if n_cols <= 12 else (7 if n_cols <= 21 else 5.5)
    fig = Figure(figsize=(max(width, 5.5), max(height, 4.2)), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)  # Agg, whatever pyplot's backend is (pyplot is never imported)
    ax = fig.add_subplot()
    image = ax.imshow(rows, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest",
                      aspect="equal")
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    colorbar.set_label("fraction of the true class's pixels", fontsize=font + 1)
    colorbar.ax.tick_params(labelsize=font)
    for i in range(n_rows):
        for j in range(n_cols):
            if totals[i] == 0:
                text, colour = "-", "0.5"
            else:
                value = rows[i, j]
                text = ("0" if value == 0 else "1" if value == 1 else
                        "<.01" if value < 0.005 else f"{value:.2f}".lstrip("0"))
                colour = "white" if value > 0.55 else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=font, color=colour)
    ax.set_xticks(range(n_cols), columns, rotation=45 if n_cols > 6 else 0,
                  ha="right" if n_cols > 6 else "center", rotation_mode="anchor",
                  fontsize=font + 1)
    ax.set_yticks(range(n_rows), names, fontsize=font + 1)
    ax.set_xlabel("predicted class", fontsize=font + 2)
    ax.set_ylabel("true class", fontsize=font + 2)
    ax.set_xticks(np.arange(-0.5, n_cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, n_rows, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    ax.set_title(title, fontsize=font + 2)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()


def _confusion_png_cv2(rows: np.ndarray, names: list[str]) -> bytes:
    import cv2

    n = len(names)
    cell, margin = 28, 120
    canvas = np.full((margin + n * cell, margin + rows.shape[1] * cell, 3), 255, np.uint8)
    heat = cv2.applyColorMap((rows * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)[..., ::-1]
    canvas[margin:, margin:] = cv2.resize(heat, (rows.shape[1] * cell, n * cell),
                                          interpolation=cv2.INTER_NEAREST)
    for i, name in enumerate(names):
        y = margin + i * cell + cell // 2 + 4
        cv2.putText(canvas, name[:14], (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
        text = np.full((cell, margin - 8, 3), 255, np.uint8)
        cv2.putText(text, name[:14], (2, cell // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
        canvas[4 : margin - 4, margin + i * cell : margin + (i + 1) * cell] = np.rot90(text)
    ok, png = cv2.imencode(".png", canvas[..., ::-1])
    if not ok:  # pragma: no cover - a uint8 image always encodes
        raise ValueError("could not encode the confusion matrix as PNG")
    return png.tobytes()
