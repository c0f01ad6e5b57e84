"""deconvnet-evaluate: folder and TFDS sources, --input-size (scores resized back to native
resolution), --flip, the report under --output only, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.cli import evaluate as evaluate_cli
from deconvnet_tf.data.folder import list_examples, load_example
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from deconvnet_tf.evaluation.evaluate import predict_native
from tests.conftest import requires_tf

pytestmark = requires_tf


@pytest.fixture
def setup(tmp_path):
    data = write_synthetic_dataset(tmp_path / "ds", num_train=1, num_val=2, height=32, width=40)
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)  # the data's 5 classes
    path = tmp_path / "models" / "m.keras"
    path.parent.mkdir()
    model.save(path)
    return data, path


def _confusion(model, data, *, flip):
    cm = np.zeros((5, 5), np.int64)
    for image_path, label_path in list_examples(data, "val"):
        image, label = load_example(image_path, label_path)
        pred = predict_native(model, image, flip=flip).argmax(-1)
        valid = label != 255
        np.add.at(cm, (label[valid], pred[valid]), 1)
    return cm


def test_evaluate_folder_with_input_size(setup, tmp_path, capsys):
    data, model = setup
    out = tmp_path / "eval"
    assert evaluate_cli.main(["--model", str(model), "--data", str(data), "--split", "val",
                              "--input-size", "24", "32", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Network input 24x32" in text and "| **mean IoU** |" in text
    metrics = json.loads((out / "metrics.json").read_text())
    # The confusion matrix counts every pixel at native resolution (2 images of 32x40).
    assert sum(map(sum, metrics["confusion"])) == 2 * 32 * 40
    # Nothing was written next to the model: the report goes to --output only.
    assert sorted(p.name for p in model.parent.iterdir()) == ["m.keras"]


def test_evaluate_flip_averages_the_mirrored_scores(setup, tmp_path):
    """--flip must change what is scored: the CLI's confusion equals the flipped prediction's
    and differs from the plain one (this random-init model is not mirror-symmetric)."""
    data, model_path = setup
    model = deconvnet_tf.load_model(model_path)
    plain, flipped = _confusion(model, data, flip=False), _confusion(model, data, flip=True)
    assert not np.array_equal(plain, flipped)  # the check below can tell the two apart
    assert evaluate_cli.main(["--model", str(model_path), "--data", str(data), "--flip",
                              "--output", str(tmp_path / "flip")]) == 0
    got = np.array(json.loads((tmp_path / "flip" / "metrics.json").read_text())["confusion"])
    np.testing.assert_array_equal(got, flipped)
    # A Segmenter saved with test_time_flip: flipped by default, plain with --no-flip.
    seg_path = tmp_path / "seg_flip.keras"
    deconvnet_tf.Segmenter(model, image_size=None, test_time_flip=True).save(seg_path)
    for flags, expected in (([], flipped), (["--no-flip"], plain)):
        out = tmp_path / f"seg{len(flags)}"
        assert evaluate_cli.main(["--model", str(seg_path), "--data", str(data), *flags,
                                  "--output", str(out)]) == 0
        got = np.array(json.loads((out / "metrics.json").read_text())["confusion"])
        np.testing.assert_array_equal(got, expected, err_msg=str(flags))


def test_evaluate_refuses_to_replace_a_report_without_overwrite(setup, tmp_path, capsys):
    data, model = setup
    out = tmp_path / "eval"
    argv = ["--model", str(model), "--data", str(data), "--limit", "1", "--output", str(out)]
    assert evaluate_cli.main(argv) == 0
    first = (out / "metrics.json").read_bytes()
    capsys.readouterr()
    assert evaluate_cli.main(argv) == 2
    assert "already holds metrics.json" in capsys.readouterr().err
    assert (out / "metrics.json").read_bytes() == first
    assert evaluate_cli.main([*argv[:-2], "--output", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["confusion.png", "metrics.json"]


def test_evaluate_tfds_and_errors(tmp_path, capsys):
    data = write_synthetic_dataset(tmp_path / "ds", num_train=1, num_val=2, height=32, width=40)
    model = tmp_path / "camvid11.keras"  # the camvid_segmentation builder has 11 classes
    deconvnet_tf.build_model("deconvnet_tiny", num_classes=11).save(model)
    assert evaluate_cli.main(["--model", str(model), "--tfds", "camvid_segmentation",
                              "--tfds-data-dir", str(tmp_path / "tfds"), "--tfds-manual-dir", str(data),
                              "--output", str(tmp_path / "e2")]) == 0
    assert len(json.loads((tmp_path / "e2" / "metrics.json").read_text())["per_class_iou"]) == 11
    capsys.readouterr()
    with pytest.raises(SystemExit):
        evaluate_cli.main(["--model", str(model), "--data", str(data), "--limit", "0",
                           "--output", str(tmp_path / "e3")])
    assert "--limit must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate_cli.main(["--model", str(model), "--output", str(tmp_path / "e3")])
    assert "one of the arguments --data --tfds is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate_cli.main(["--model", str(model), "--data", str(data)])
    assert "the following arguments are required: --output" in capsys.readouterr().err
    assert evaluate_cli.main(["--model", str(model), "--tfds", "mnist",
                              "--output", str(tmp_path / "e3")]) == 2
    assert "not supported" in capsys.readouterr().err
    # An 11-class model on the 5-class folder data: refused, not scored.
    assert evaluate_cli.main(["--model", str(model), "--data", str(data),
                              "--output", str(tmp_path / "e4")]) == 2
    assert "predicts 11 classes but dataset" in capsys.readouterr().err
    assert not (tmp_path / "e3").exists() and not (tmp_path / "e4").exists()
