"""The segmentation report against a loop-based reference, without running a framework op.

Nothing here executes TensorFlow (the Keras metric's constructor is replaced by a recorder), so
these tests also run inside mutmut's forked workers (``python tools/mutation.py --groups
metrics``), where a Keras metric that has run an op in the parent process deadlocks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from deconvnet_tf.evaluation import metrics
from deconvnet_tf.evaluation.metrics import SegmentationReport, report_from_confusion


def _reference(cm, n):
    """Per-class IoU / accuracy and the means, one class at a time in plain Python."""
    ious, accs = [], []
    total = sum(sum(row) for row in cm)
    correct = 0
    for c in range(n):
        tp = cm[c][c]
        correct += tp
        gt = sum(cm[c])
        pred = sum(cm[r][c] for r in range(n))
        union = gt + pred - tp
        ious.append(tp / union if union else math.nan)
        accs.append(tp / gt if gt else math.nan)
    kept_iou = [v for v in ious if not math.isnan(v)]
    kept_acc = [v for v in accs if not math.isnan(v)]
    return {
        "iou": ious,
        "mean_iou": sum(kept_iou) / len(kept_iou) if kept_iou else 0.0,
        "pixel_accuracy": correct / total if total else 0.0,
        "mean_class_accuracy": sum(kept_acc) / len(kept_acc) if kept_acc else 0.0,
    }


@pytest.mark.parametrize("seed", range(6))
def test_report_matches_the_loop_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 7))
    extra = int(rng.integers(0, 3))  # a model with more outputs than the dataset has classes
    cm = rng.integers(0, 20, size=(n, n + extra))
    cm[rng.integers(0, n)] = 0  # one class absent from the ground truth
    ref = _reference(cm.tolist(), n)
    r = report_from_confusion(cm, [f"c{i}" for i in range(n)])
    np.testing.assert_allclose(r.per_class_iou, ref["iou"], rtol=1e-12)
    assert r.mean_iou == pytest.approx(ref["mean_iou"], rel=1e-12)
    assert r.pixel_accuracy == pytest.approx(ref["pixel_accuracy"], rel=1e-12)
    assert r.mean_class_accuracy == pytest.approx(ref["mean_class_accuracy"], rel=1e-12)
    assert r.confusion.dtype == np.float64
    np.testing.assert_array_equal(r.confusion, cm)


def test_columns_past_the_classes_are_errors_of_their_row():
    cm = np.array([[4, 0, 6], [0, 5, 0]])
    r = report_from_confusion(cm, ["a", "b"])
    assert r.per_class_iou == (0.4, 1.0)  # a: 4 / (10 + 4 - 4); the 6 count as misses
    assert r.pixel_accuracy == pytest.approx(9 / 15)
    assert r.mean_class_accuracy == pytest.approx((0.4 + 1.0) / 2)


def test_a_class_predicted_but_never_present_scores_zero_not_nan():
    cm = np.array([[3, 1], [0, 0]])  # b never in the ground truth, predicted once
    r = report_from_confusion(cm, ["a", "b"])
    assert r.per_class_iou == (0.75, 0.0)
    assert r.mean_iou == pytest.approx(0.375)
    assert r.mean_class_accuracy == pytest.approx(0.75)  # b has no ground truth: left out


def test_empty_confusion_scores_zero_without_warnings():
    with np.errstate(all="raise"):
        r = report_from_confusion(np.zeros((3, 3)), ["a", "b", "c"])
    assert all(math.isnan(v) for v in r.per_class_iou)
    assert (r.mean_iou, r.pixel_accuracy, r.mean_class_accuracy) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("shape", [(2, 3), (3, 2), (3,), (3, 3, 1)])
def test_bad_confusion_shapes_name_the_expected_shape(shape):
    with pytest.raises(ValueError) as err:
        report_from_confusion(np.zeros(shape), ["a", "b", "c"])
    assert str(err.value) == f"confusion must be (3, K >= 3) for 3 classes, got {shape}"


def test_report_dict_and_table():
    r = report_from_confusion(np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]]), ["a", "b", "c"])
    assert isinstance(r, SegmentationReport) and r.class_names == ("a", "b", "c")
    d = r.to_dict()
    assert list(d) == ["mean_iou", "pixel_accuracy", "mean_class_accuracy", "per_class_iou",
                       "confusion"]
    assert d["mean_iou"] == r.mean_iou and d["pixel_accuracy"] == r.pixel_accuracy
    assert d["mean_class_accuracy"] == r.mean_class_accuracy
    assert list(d["per_class_iou"]) == ["a", "b", "c"]
    assert d["per_class_iou"]["a"] == pytest.approx(5 / 8)
    assert d["confusion"] == [[5, 1, 0], [2, 3, 0], [0, 0, 0]]
    assert all(type(v) is int for row in d["confusion"] for v in row)
    assert r.table().splitlines() == [
        "| class | IoU |",
        "|---|---:|",
        "| a | 62.5 |",
        "| b | 50.0 |",
        "| c | nan |",
        "| **mean IoU** | **56.2** |",
        "| pixel accuracy | 72.7 |",
        "| class-average accuracy | 71.7 |",
    ]


def test_mean_iou_metric_passes_the_ignore_label_and_dense_predictions(monkeypatch):
    made = []

    def recorder(**kwargs):
        made.append(kwargs)
        return "metric"

    monkeypatch.setattr(metrics.keras.metrics, "MeanIoU", recorder)
    assert metrics.mean_iou_metric(11, 255) == "metric"
    assert metrics.mean_iou_metric(3, None, name="val_iou") == "metric"
    assert made == [
        {"num_classes": 11, "ignore_class": 255, "sparse_y_pred": False, "name": "mean_iou"},
        {"num_classes": 3, "ignore_class": None, "sparse_y_pred": False, "name": "val_iou"},
    ]


def test_one_pixel_classes_are_scored():
    # One labelled pixel, predicted right: every score is 1 (no threshold above one pixel).
    r = report_from_confusion(np.array([[1, 0], [0, 0]]), ["a", "b"])
    assert r.per_class_iou[0] == 1.0 and math.isnan(r.per_class_iou[1])
    assert (r.mean_iou, r.pixel_accuracy, r.mean_class_accuracy) == (1.0, 1.0, 1.0)
