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
from deconvnet_tf.evaluation.evaluate import evaluate, predict_native, save_report
from deconvnet_tf.evaluation.metrics import report_from_confusion
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
    report_dir = tmp_path / "reports" / "val"
    assert evaluate_cli.main(["--model", str(out / "model.keras"), "--data",
                              str(out / "synthetic_data"), "--split", "val",
                              "--output", str(report_dir)]) == 0
    assert (report_dir / "confusion.png").is_file() and not (out / "eval_val").exists()
    assert evaluate_cli.main(["--model", str(out / "model.keras"), "--data",
                              str(tmp_path / "nowhere"), "--output", str(tmp_path / "x")]) == 2
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


def _labels_with(root, value):
    import cv2

    path = root / "val" / "labels" / "val_00001.png"
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    label[0, :5] = value
    cv2.imwrite(str(path), label)
    return path


def test_evaluate_refuses_label_values_outside_the_classes(tmp_path):
    """A label value >= the class count that is not the void label is bad data (naming the
    file), not a pixel silently counted or dropped; the void label (255) stays fine."""
    from deconvnet_tf.data.folder import DatasetError

    root = write_synthetic_dataset(tmp_path / "ds", num_train=1, num_val=2, height=24, width=32)
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    _labels_with(root, 255)
    assert evaluate(model, root, "val", progress=False).confusion.sum() == 2 * 24 * 32 - 5
    path = _labels_with(root, 7)
    with pytest.raises(DatasetError, match=r"val_00001\.png.*value\(s\) \[7\] outside the "
                                           r"dataset's 5 classes"):
        evaluate(model, root, "val", progress=False)
    # Also for a model with more outputs than the dataset has classes (7 < 11 would fit it).
    wide = deconvnet_tf.build_model("deconvnet_tiny", num_classes=11)
    with pytest.raises(DatasetError, match=str(path.name)):
        evaluate(wide, root, "val", progress=False)


def test_evaluate_class_count_checks(tmp_path):
    root = write_synthetic_dataset(tmp_path / "ds", num_train=1, num_val=1, height=24, width=32)
    wide = deconvnet_tf.build_model("deconvnet_tiny", num_classes=11)
    with pytest.raises(ValueError, match="predicts 11 classes but dataset .* has 5"):
        evaluate(wide, root, "val", progress=False, exact_classes=True)
    # The library default still scores a wider model (a num_classes override in training).
    assert evaluate(wide, root, "val", progress=False).confusion.shape == (5, 11)
    narrow = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3)
    with pytest.raises(ValueError, match="predicts 3 classes"):
        evaluate(narrow, root, "val", progress=False)


def test_evaluate_input_size_below_the_minimum_names_it(tmp_path):
    root = write_synthetic_dataset(tmp_path / "ds", num_train=1, num_val=1, height=24, width=32)
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    with pytest.raises(ValueError, match=r"8x8 is below the minimum input size .* 17x17"):
        evaluate(model, root, "val", progress=False, input_size=(8, 8))
    fixed = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5, input_shape=(24, 32, 3))
    with pytest.raises(ValueError, match=r"24x40: .* fixed input of 24x32"):
        evaluate(fixed, root, "val", progress=False, input_size=(24, 40))
    assert evaluate(fixed, root, "val", progress=False, input_size=(24, 32)).confusion.sum() > 0


def test_save_report_is_atomic_and_never_replaces_a_file(tmp_path, monkeypatch):
    import os

    cm = np.array([[3, 1], [0, 4]])
    report = report_from_confusion(cm, ["a", "b"])
    taken = tmp_path / "taken"
    taken.write_text("user data")
    with pytest.raises(ValueError, match="is a file"):
        save_report(report, taken)
    assert taken.read_text() == "user data"
    out = tmp_path / "eval"
    save_report(report, out)
    with pytest.raises(ValueError, match="already holds metrics.json, confusion.png"):
        save_report(report, out, overwrite=False)
    # A failure while renaming into place leaves no temporary file behind.
    real_replace = os.replace

    def failing(src, dst):
        if str(dst).endswith("confusion.png"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="No space left"):
        save_report(report, out)
    assert sorted(p.name for p in out.iterdir()) == ["confusion.png", "metrics.json"]


def test_report_output_is_checked_before_the_evaluation_without_creating_it(tmp_path,
                                                                             monkeypatch):
    import tempfile

    from deconvnet_tf.evaluation.evaluate import check_report_output

    out = tmp_path / "runs" / "eval"
    assert check_report_output(out) == out and list(tmp_path.iterdir()) == []
    (tmp_path / "user.txt").write_text("mine")
    with pytest.raises(ValueError) as err:
        check_report_output(tmp_path / "user.txt" / "eval", what="--output")
    assert str(err.value) == (f"--output {str(tmp_path / 'user.txt' / 'eval')!r}: "
                              f"{str(tmp_path / 'user.txt')!r} is a file, not a folder")

    def refuse(**kw):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ValueError, match=r"--output .* is not writable \(.*Permission denied"):
        check_report_output(out, what="--output")
    assert (tmp_path / "user.txt").read_text() == "mine"


def test_confusion_png_row_normalised_named_and_sized_for_many_classes(tmp_path):
    import cv2

    from deconvnet_tf.evaluation.evaluate import _row_normalised, confusion_png

    cm = np.array([[6, 2, 0, 2], [0, 0, 0, 0], [1, 1, 2, 0]])  # 4th column: outside the classes
    report = report_from_confusion(cm, ["sky", "road", "car"])
    rows, columns, totals = _row_normalised(report)
    assert columns == ["sky", "road", "car", "other"]
    np.testing.assert_allclose(rows, [[0.6, 0.2, 0, 0.2], [0, 0, 0, 0], [0.25, 0.25, 0.5, 0]])
    np.testing.assert_array_equal(totals, [10, 0, 4])
    assert _row_normalised(report_from_confusion(cm[:, :3], ["a", "b", "c"]))[1] == ["a", "b", "c"]
    small = cv2.imdecode(np.frombuffer(confusion_png(report), np.uint8), cv2.IMREAD_COLOR)
    names = [f"class_{i}" for i in range(21)]
    rng = np.random.default_rng(0)
    big_cm = rng.integers(0, 9, (21, 21)) + np.diag(np.full(21, 500))
    big = cv2.imdecode(np.frombuffer(confusion_png(report_from_confusion(big_cm, names)),
                                     np.uint8), cv2.IMREAD_COLOR)
    assert small is not None and big is not None
    assert big.shape[0] >= 21 * 40 and big.shape[1] >= 21 * 40  # >= 40 px per cell
    assert big.shape[0] > small.shape[0]
    paths = save_report(report, tmp_path / "eval")
    assert cv2.imread(str(paths["confusion"])).shape == small.shape


def test_load_model_file_finds_shipped_models_by_name():
    from deconvnet_tf.evaluation.evaluate import ModelFileError, load_model_file

    model, path = load_model_file("horse_compact")
    assert path.name == "horse_compact.keras" and model.output_shape[-1] == 2
    with pytest.raises(ModelFileError, match="no such file"):
        load_model_file("not_a_model_name")
