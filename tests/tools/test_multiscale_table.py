"""tools/multiscale_table.py: each row is the mean of its runs' probabilities, and a one-size row
is what ``evaluate`` reports at that input size (with and without flip)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.data.sources import open_source
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from deconvnet_tf.evaluation.evaluate import evaluate, predict_native
from deconvnet_tf.evaluation.metrics import report_from_confusion
from tests.conftest import requires_tf

import multiscale_table  # tools/multiscale_table.py (pytest's pythonpath has tools/)

pytestmark = requires_tf


def softmax(scores: np.ndarray) -> np.ndarray:
    """The softmax the tool averages (the maximum subtracted first). An untrained model's
    scores hold near-ties (margins of 1e-6 and exact ties), so the reference must round
    exactly as the tool does."""
    exp = np.exp(scores - scores.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ms")
    data = write_synthetic_dataset(root / "ds", num_train=1, num_val=2, height=40, width=48)
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=11)
    return model, data


def test_rows_are_subsets_in_order():
    rows = multiscale_table.subsets([(32, 40), (48, 64)])
    assert list(rows) == ["32x40", "32x40 flip", "48x64", "48x64 flip", "32x40+48x64",
                          "32x40+48x64 flip"]
    assert rows["32x40+48x64 flip"] == [(0, (32, 40), True), (0, (48, 64), True)]
    two = multiscale_table.subsets([(32, 40)], models=2)
    assert list(two) == ["m1 32x40", "m1 32x40 flip", "m2 32x40", "m2 32x40 flip",
                         "m1+m2 32x40", "m1+m2 32x40 flip"]
    assert two["m1+m2 32x40 flip"] == [(0, (32, 40), True), (1, (32, 40), True)]


def test_two_models_average_their_probabilities(setup):
    """A member's row is its one-model row; the ensemble row is the argmax of the members'
    mean softmax probabilities."""
    model, data = setup
    other = deconvnet_tf.build_model("deconvnet_tiny", num_classes=11)  # other random weights
    source = open_source(data)
    reports = multiscale_table.score_subsets([model, other], source, "val", [(32, 40)])
    alone = multiscale_table.score_subsets(other, source, "val", [(32, 40)])
    np.testing.assert_array_equal(reports["m2 32x40 flip"].confusion,
                                  alone["32x40 flip"].confusion)
    known = source.info.num_classes
    confusion = np.zeros((known, 11), np.int64)
    for image, label in source.numpy_examples("val"):
        probs = [softmax(predict_native(m, image, (32, 40))) for m in (model, other)]
        pred = np.mean(probs, axis=0).argmax(-1)
        keep = label < known
        np.add.at(confusion, (label[keep].astype(int), pred[keep]), 1)
    np.testing.assert_array_equal(reports["m1+m2 32x40"].confusion, confusion)
    three = deconvnet_tf.build_model("deconvnet_tiny", num_classes=7)
    with pytest.raises(ValueError, match="different numbers of classes: \\[7, 11\\]"):
        multiscale_table.score_subsets([model, three], source, "val", [(32, 40)])


def test_one_size_matches_evaluate_and_two_sizes_average(setup):
    model, data = setup
    source = open_source(data)
    sizes = [(32, 40), (48, 64)]
    reports = multiscale_table.score_subsets(model, source, "val", sizes)
    for flip in (False, True):  # a one-size row is evaluate's argmax, near-ties included
        expected = evaluate(model, data, "val", input_size=(32, 40), flip=flip, progress=False)
        got = reports["32x40 flip" if flip else "32x40"]
        np.testing.assert_array_equal(got.confusion, expected.confusion)
        assert got.mean_iou == pytest.approx(expected.mean_iou)
    # The two-size rows: argmax of the mean of the two sizes' softmax probabilities.
    for flip in (False, True):
        known = source.info.num_classes  # 5 classes; the model predicts 11 (extra = errors)
        confusion = np.zeros((known, 11), np.int64)
        for image, label in source.numpy_examples("val"):
            probs = [softmax(predict_native(model, image, size, flip=flip)) for size in sizes]
            pred = np.mean(probs, axis=0).argmax(-1)
            keep = label < known
            np.add.at(confusion, (label[keep].astype(int), pred[keep]), 1)
        expected = report_from_confusion(confusion, source.info.class_names)
        got = reports["32x40+48x64 flip" if flip else "32x40+48x64"]
        np.testing.assert_array_equal(got.confusion, expected.confusion)


def test_cli_writes_a_new_json_and_refuses_bad_input(setup, tmp_path, capsys):
    model, data = setup
    path = tmp_path / "m.keras"
    model.save(path)
    out = tmp_path / "ms.json"
    assert multiscale_table.main(["--model", str(path), "--data", str(data), "--sizes", "32x40",
                                  "48x64", "--limit", "1", "--output", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| 32x40+48x64 flip |" in printed
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 6 and 0 <= rows["48x64"]["mean_iou"] <= 1
    before = out.read_bytes()
    with pytest.raises(SystemExit):  # an existing result file is refused, untouched
        multiscale_table.main(["--model", str(path), "--data", str(data), "--sizes", "32x40",
                               "--output", str(out)])
    assert out.read_bytes() == before and "exists; name a new file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        multiscale_table.main(["--model", str(path), "--data", str(data), "--sizes", "32by40"])
    assert "expected HEIGHTxWIDTH" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the same model twice
        multiscale_table.main(["--model", str(path), str(path), "--data", str(data),
                               "--sizes", "32x40"])
    assert "--model: 1 to 4 different models" in capsys.readouterr().err
    second = tmp_path / "m2.keras"
    model.save(second)
    out2 = tmp_path / "ms2.json"
    assert multiscale_table.main(["--model", str(path), str(second), "--data", str(data),
                                  "--sizes", "32x40", "--limit", "1", "--output", str(out2),
                                  "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"m2 = {second}" in printed and "| m1+m2 32x40 flip |" in printed
    written = json.loads(out2.read_text())
    assert written["model"] == [str(path), str(second)] and len(written["rows"]) == 6
    assert multiscale_table.main(["--model", str(path), "--data", str(data), "--sizes", "4x4",
                                  "--quiet"]) == 2
    assert "below the minimum input size" in capsys.readouterr().err
    assert multiscale_table.main(["--model", str(tmp_path / "none.keras"), "--data", str(data),
                                  "--sizes", "32x40", "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_label_outside_the_classes_is_a_clear_error(tmp_path, capsys):
    from PIL import Image

    data = write_synthetic_dataset(tmp_path / "ds", num_train=1, num_val=1, height=40, width=48)
    label = next((data / "val" / "labels").glob("*.png"))
    values = np.array(Image.open(label))
    values[0, 0] = 7  # 5 classes, void 255: 7 is neither
    Image.fromarray(values).save(label)
    path = tmp_path / "m.keras"
    deconvnet_tf.build_model("deconvnet_tiny", num_classes=11).save(path)
    assert multiscale_table.main(["--model", str(path), "--data", str(data), "--split", "val",
                                  "--sizes", "32x40", "--quiet"]) == 2
    assert "val[0]: label values [7] outside the dataset's 5 classes" in capsys.readouterr().err


def _normalised_confusion(model, source, target, flip):
    """The confusion of ``model`` (its own colour setting skipped) on the val images brought
    to ``target`` (None: as they are), at 32x40."""
    from deconvnet_tf.io import normalize_colors

    known = source.info.num_classes
    confusion = np.zeros((known, 11), np.int64)
    for image, label in source.numpy_examples("val"):
        image = normalize_colors(image, target)
        pred = predict_native(model, image, (32, 40), flip=flip, color_norm=False).argmax(-1)
        keep = label < known
        np.add.at(confusion, (label[keep].astype(int), pred[keep]), 1)
    return confusion


def test_color_target_rows_score_the_normalised_images(setup, tmp_path, capsys):
    """--color-target SPLIT: every image is brought to that split's per-channel statistics
    first, instead of the model's own setting; 'off' skips a Segmenter's own."""
    from deconvnet_tf import Segmenter
    from deconvnet_tf.data.stats import color_statistics

    model, data = setup
    source = open_source(data)
    target = color_statistics(source, "train")
    reports = multiscale_table.score_subsets(model, source, "val", [(32, 40)],
                                             color_target=target)
    for flip in (False, True):
        np.testing.assert_array_equal(reports["32x40 flip" if flip else "32x40"].confusion,
                                      _normalised_confusion(model, source, target, flip))
    assert not np.array_equal(reports["32x40"].confusion,
                              _normalised_confusion(model, source, None, False))
    own = Segmenter(model, image_size=None, color_target={"mean": [9] * 3, "std": [3] * 3})
    path = tmp_path / "own.keras"
    own.save(path)
    for flag, expected in (("off", None), ("train", target)):
        out = tmp_path / f"{flag}.json"
        assert multiscale_table.main(["--model", str(path), "--data", str(data), "--sizes",
                                      "32x40", "--color-target", flag, "--output", str(out),
                                      "--quiet"]) == 0
        written = json.loads(out.read_text())
        assert written["color_target"] == flag
        confusion = _normalised_confusion(own, source, expected, False)
        assert written["rows"]["32x40"]["mean_iou"] == pytest.approx(
            report_from_confusion(confusion, source.info.class_names).mean_iou)
    assert multiscale_table.main(["--model", str(path), "--data", str(data), "--sizes", "32x40",
                                  "--color-target", "nosuch", "--quiet"]) == 2
    assert "multiscale_table: error:" in capsys.readouterr().err
