"""deconvnet-train: --tfds (a TFDS builder built offline), --stage choices, clear errors."""

from __future__ import annotations

import json

import pytest

from deconvnet_tf.cli import train as train_cli
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from tests.conftest import requires_tf

pytestmark = requires_tf


def test_train_on_a_tfds_dataset_built_from_a_manual_dir(tmp_path, capsys):
    pytest.importorskip("tensorflow_datasets")
    manual = write_synthetic_dataset(tmp_path / "camvid", num_train=4, num_val=2, height=32, width=48)
    out = tmp_path / "run"
    code = train_cli.main([
        "--tfds", "camvid_segmentation", "--preset", "deconvnet_tiny", "--output", str(out),
        "--epochs", "1", "--batch-size", "2", "--quiet",
        "--set", f"tfds_data_dir={tmp_path / 'tfds'}", "--set", f"tfds_manual_dir={manual}",
        "--set", "crop_size=[32,48]", "--set", "steps_per_epoch=2",
    ])
    assert code == 0
    text = capsys.readouterr().out
    assert "| Bicyclist |" in text  # evaluated with the TFDS source's 11 CamVid classes
    config = json.loads((out / "config.json").read_text())
    assert config["tfds"] == "camvid_segmentation" and config["data"] is None
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert len(metrics["per_class_iou"]) == 11


def test_train_cli_rejects_bad_combinations(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        train_cli.main(["--data", str(tmp_path), "--tfds", "oxford_iiit_pet"])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_cli.main(["--tfds", "oxford_iiit_pet", "--stage", "two_stage"])
    assert "crops need a file-based dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_cli.main(["--stage", "stage1", "--set", "crop_size=[300,300]"])
    assert "larger than window_size 250" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_cli.main(["--stage", "stage3"])
    assert "invalid choice" in capsys.readouterr().err
    code = train_cli.main(["--data", str(tmp_path / "nowhere"), "--output", str(tmp_path / "o"),
                           "--preset", "deconvnet_tiny"])
    assert code == 2 and "is not a directory" in capsys.readouterr().err
