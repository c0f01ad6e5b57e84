"""evaluate() against a NumPy confusion matrix; the report; the CLIs."""

from __future__ import annotations

import json

import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.cli import evaluate as evaluate_cli
from deconvnet_tf.cli import train as train_cli
from deconvnet_tf.data.folder import list_examples, load_example
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from deconvnet_tf.training.evaluate import evaluate, predict_native, save_report
from deconvnet_tf.training.metrics import report_from_confusion
from tests.conftest import requires_tf

pytestmark = requires_tf


def test_report_from_confusion_matches_definitions():
    cm = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])
    r = report_from_confusion(cm, ["a", "b", "c"])
    np.testing.assert_allclose(r.per_class_iou[:2], [5 / 8, 3 / 6])
    assert np.isnan(r.per_class_iou[2])  # absent class: left out of the mean
    assert r.mean_iou == pytest.approx((5 / 8 + 3 / 6) / 2)
    assert r.pixel_accuracy == pytest.approx(8 / 11)
    assert r.mean_class_accuracy == pytest.approx((5 / 6 + 3 / 5) / 2)
    assert "| **mean IoU** | **56.2** |" in r.table()


def test_evaluate_matches_numpy_with_void(tmp_path):
    root = write_synthetic_dataset(tmp_path / "ds", num_train=1, num_val=3, height=40, width=52)
    # Mark a band of pixels as void in one label: they must not count.
    import cv2

    path = root / "val" / "labels" / "val_00001.png"
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    label[:10] = 255
    cv2.imwrite(str(path), label)
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    report = evaluate(model, root, "val", progress=False)
    cm = np.zeros((5, 5), np.int64)
    for image_path, label_path in list_examples(root, "val"):
        image, label = load_example(image_path, label_path)
        pred = np.asarray(model.predict_on_batch(image[None].astype("float32")))[0].argmax(-1)
        valid = label != 255
        np.add.at(cm, (label[valid], pred[valid]), 1)
    np.testing.assert_array_equal(report.confusion, cm)
    assert report.mean_iou == pytest.approx(report_from_confusion(cm, report.class_names).mean_iou)
    paths = save_report(report, tmp_path / "eval")
    assert json.loads(paths["metrics"].read_text())["mean_iou"] == pytest.approx(report.mean_iou)
    assert cv2.imread(str(paths["confusion"])) is not None


def test_predict_native_pads_small_images():
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3)
    scores = predict_native(model, np.zeros((9, 30, 3), np.uint8))  # below the 17-pixel minimum
    assert scores.shape == (9, 30, 3)


def test_train_and_evaluate_clis(tmp_path, capsys):
    out = tmp_path / "run"
    code = train_cli.main([
        "--preset", "deconvnet_tiny", "--output", str(out), "--epochs", "1", "--batch-size", "4",
        "--quiet", "--set", "crop_size=[48,64]", "--set", "synthetic_size=[48,64]",
        "--set", "synthetic_train=8", "--set", "synthetic_val=2", "--set", "steps_per_epoch=2",
    ])
    assert code == 0
    text = capsys.readouterr().out
    assert "| **mean IoU** |" in text and (out / "eval" / "metrics.json").is_file()
    assert evaluate_cli.main(["--model", str(out / "model.keras"), "--data",
                              str(out / "synthetic_data"), "--split", "val"]) == 0
    assert (out / "eval_val" / "confusion.png").is_file()
    assert evaluate_cli.main(["--model", str(out / "model.keras"), "--data",
                              str(tmp_path / "nowhere")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_cli.main(["--set", "epochs=zero"])
    assert "--set epochs" in capsys.readouterr().err


def test_predict_native_resizes_scores_back():
    import cv2

    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=4)
    image = np.random.default_rng(0).integers(0, 255, size=(30, 44, 3), dtype=np.uint8)
    scores = predict_native(model, image, input_size=(24, 32))
    assert scores.shape == (30, 44, 4)
    small = np.asarray(model.predict_on_batch(
        cv2.resize(image.astype("float32"), (32, 24), interpolation=cv2.INTER_LINEAR)[None]))[0]
    np.testing.assert_allclose(scores, cv2.resize(small, (44, 30), interpolation=cv2.INTER_LINEAR),
                               rtol=1e-5, atol=1e-5)
    # A model with a fixed input size runs at that size, scores back at native resolution.
    fixed = deconvnet_tf.build_model("deconvnet_tiny", num_classes=4, input_shape=(24, 32, 3))
    assert predict_native(fixed, image).shape == (30, 44, 4)


def test_predictions_outside_the_dataset_classes_count_as_errors():
    cm = np.array([[5, 1, 2], [2, 3, 0]])  # 2 dataset classes, a 3-class model
    r = report_from_confusion(cm, ["a", "b"])
    np.testing.assert_allclose(r.per_class_iou, [5 / (8 + 7 - 5), 3 / (5 + 4 - 3)])
    assert r.pixel_accuracy == pytest.approx(8 / 13)
    with pytest.raises(ValueError, match=r"confusion must be \(3, K >= 3\)"):
        report_from_confusion(cm, ["a", "b", "c"])
