"""Segmentation metrics: Keras ``MeanIoU`` with the ignore label, and a full report from its
confusion matrix (per-class IoU, global and class-average pixel accuracy)."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

__all__ = ["SegmentationReport", "mean_iou_metric", "report_from_confusion"]


def mean_iou_metric(num_classes: int, ignore_label: int | None, name: str = "mean_iou"):
    """``keras.metrics.MeanIoU`` over logits/probabilities that skips ``ignore_label`` pixels."""
    return keras.metrics.MeanIoU(
        num_classes=num_classes, ignore_class=ignore_label, sparse_y_pred=False, name=name
    )


@dataclass(frozen=True)
class SegmentationReport:
    """Scores computed from a confusion matrix (rows = ground truth, columns = prediction)."""

    class_names: tuple[str, ...]
    per_class_iou: tuple[float, ...]
    mean_iou: float
    pixel_accuracy: float
    mean_class_accuracy: float
    confusion: np.ndarray

    def to_dict(self) -> dict:
        return {
            "mean_iou": self.mean_iou,
            "pixel_accuracy": self.pixel_accuracy,
            "mean_class_accuracy": self.mean_class_accuracy,
            "per_class_iou": dict(zip(self.class_names, self.per_class_iou)),
            "confusion": self.confusion.astype(int).tolist(),
        }

    def table(self) -> str:
        lines = ["| class | IoU |", "|---|---:|"]
        lines += [f"| {n} | {v * 100:.1f} |" for n, v in zip(self.class_names, self.per_class_iou)]
        lines += [
            f"| **mean IoU** | **{self.mean_iou * 100:.1f}** |",
            f"| pixel accuracy | {self.pixel_accuracy * 100:.1f} |",
            f"| class-average accuracy | {self.mean_class_accuracy * 100:.1f} |",
        ]
        return "\n".join(lines)


def report_from_confusion(confusion, class_names) -> SegmentationReport:
    """Builds the report from a ``(C, K)`` confusion matrix, ``K >= C``.

    Rows are the ``C`` ground-truth classes, columns the predicted classes; columns past ``C``
    (a model with more outputs than the dataset has classes) count as errors of their row.
    Classes absent from both ground truth and prediction get IoU NaN and are left out of the
    means (as ``keras.metrics.MeanIoU`` does).
    """
    cm = np.asarray(confusion, np.float64)
    n = len(class_names)
    if cm.ndim != 2 or cm.shape[0] != n or cm.shape[1] < n:
        raise ValueError(f"confusion must be ({n}, K >= {n}) for {n} classes, got {cm.shape}")
    tp = np.diag(cm[:, :n])
    gt = cm.sum(1)
    pred = cm[:, :n].sum(0)
    union = gt + pred - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
    total = cm.sum()
    return SegmentationReport(
        class_names=tuple(class_names),
        per_class_iou=tuple(float(v) for v in iou),
        mean_iou=float(np.nanmean(iou)) if np.any(union > 0) else 0.0,
        pixel_accuracy=float(tp.sum() / total) if total else 0.0,
        mean_class_accuracy=float(np.nanmean(acc)) if np.any(gt > 0) else 0.0,
        confusion=cm,
    )
