"""deconvnet-evaluate: folder and TFDS sources, --input-size (scores resized back to native
resolution), clear errors."""

from __future__ import annotations

import json

import pytest

import deconvnet_tf
from deconvnet_tf.cli import evaluate as evaluate_cli
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from tests.conftest import requires_tf

pytestmark = requires_tf


@pytest.fixture
def setup(tmp_path):
    data = write_synthetic_dataset(tmp_path / "ds", num_train=1, num_val=2, height=32, width=40)
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=11)
    path = tmp_path / "m.keras"
    model.save(path)
    return data, path


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
    assert evaluate_cli.main(["--model", str(model), "--data", str(data), "--flip",
                              "--output", str(tmp_path / "flip")]) == 0
    flipped = json.loads((tmp_path / "flip" / "metrics.json").read_text())
    assert sum(map(sum, flipped["confusion"])) == 2 * 32 * 40


def test_evaluate_tfds_and_errors(setup, tmp_path, capsys):
    pytest.importorskip("tensorflow_datasets")
    data, model = setup
    assert evaluate_cli.main(["--model", str(model), "--tfds", "camvid_segmentation",
                              "--tfds-data-dir", str(tmp_path / "tfds"), "--tfds-manual-dir", str(data),
                              "--output", str(tmp_path / "e2")]) == 0
    assert len(json.loads((tmp_path / "e2" / "metrics.json").read_text())["per_class_iou"]) == 11
    capsys.readouterr()
    with pytest.raises(SystemExit):
        evaluate_cli.main(["--model", str(model), "--data", str(data), "--limit", "0"])
    assert "--limit must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate_cli.main(["--model", str(model)])
    assert "one of the arguments --data --tfds is required" in capsys.readouterr().err
    assert evaluate_cli.main(["--model", str(model), "--tfds", "mnist"]) == 2
    assert "not supported" in capsys.readouterr().err
