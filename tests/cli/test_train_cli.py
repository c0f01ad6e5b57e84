"""deconvnet-train: --tfds (a TFDS builder built offline), --input-mode/--two-stage (and the deprecated --stage), clear errors."""

from __future__ import annotations

import csv
import json

import pytest

from deconvnet_tf.cli import train as train_cli
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from tests.conftest import requires_tf

pytestmark = requires_tf


@pytest.mark.slow
def test_train_on_a_tfds_dataset_built_from_a_manual_dir(tmp_path, capsys):
    import tensorflow_datasets  # noqa: F401  (a dependency of the package: must import)
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
        train_cli.main(["--tfds", "oxford_iiit_pet", "--two-stage"])
    assert "need a file-based dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_cli.main(["--input-mode", "object_crops", "--set", "crop_size=[300,300]"])
    assert "larger than window_size 250" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_cli.main(["--input-mode", "stage1"])
    assert "invalid choice" in capsys.readouterr().err
    code = train_cli.main(["--data", str(tmp_path / "nowhere"), "--output", str(tmp_path / "o"),
                           "--preset", "deconvnet_tiny"])
    assert code == 2 and "is not a directory" in capsys.readouterr().err


@pytest.mark.slow
def test_rerunning_a_finished_command_trains_nothing(tmp_path, capsys):
    """A finished run says so and exits 0 (model and evaluation kept); --resume with more
    --epochs continues it; --overwrite trains again from scratch."""
    data = write_synthetic_dataset(tmp_path / "data", num_train=4, num_val=2, height=32, width=32)
    out = tmp_path / "run"
    argv = ["--data", str(data), "--preset", "deconvnet_tiny", "--output", str(out),
            "--batch-size", "2", "--quiet", "--set", "crop_size=[32,32]", "--set", "steps_per_epoch=1"]

    def epochs():
        with open(out / "log.csv") as f:
            return [int(row["epoch"]) for row in csv.DictReader(f)]

    assert train_cli.main(argv + ["--epochs", "1"]) == 0
    assert "Metrics:" in capsys.readouterr().out
    kept = ("model.keras", "eval/metrics.json", "log.csv")
    stamps = {name: (out / name).stat().st_mtime_ns for name in kept}
    assert train_cli.main(argv + ["--epochs", "1"]) == 0
    text = capsys.readouterr().out
    assert "holds a finished run (1 epochs): nothing to train" in text
    assert "Metrics:" not in text  # evaluated before: not again
    assert {name: (out / name).stat().st_mtime_ns for name in kept} == stamps
    assert train_cli.main(argv + ["--epochs", "2", "--resume", "--no-eval"]) == 0
    assert epochs() == [0, 1]
    assert json.loads((out / "finished.json").read_text())["epochs"] == 2
    assert train_cli.main(argv + ["--epochs", "1", "--overwrite", "--no-eval"]) == 0
    assert epochs() == [0]
    assert json.loads((out / "finished.json").read_text())["epochs"] == 1
    assert not (out / "eval").exists()  # the old evaluation went with the old model


def test_input_mode_two_stage_and_the_deprecated_stage_flag_resolve_the_same(capsys):
    def resolved(argv):
        parser = train_cli._parser()
        config = train_cli.resolve_config(parser, parser.parse_args(argv))
        return config.input_mode, config.two_stage

    assert resolved([]) == ("crop", False)
    assert resolved(["--two-stage"]) == ("proposal_windows", True)
    assert resolved(["--input-mode", "object_crops"]) == ("object_crops", False)
    assert capsys.readouterr().err == ""
    for old, new in (("two_stage", ("proposal_windows", True)), ("stage1", ("object_crops", False)),
                     ("whole", ("whole", False))):
        assert resolved(["--stage", old]) == new
        assert f"--stage is deprecated; --stage {old} means --input-mode {new[0]}" in \
            capsys.readouterr().err


def test_an_old_config_file_with_stage_under_a_recipe_keeps_its_stage(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"stage": "whole", "epochs": 3}))
    parser = train_cli._parser()
    args = parser.parse_args(["--recipe", "horse_compact", "--data", str(tmp_path),
                              "--config", str(old)])
    with pytest.warns(FutureWarning, match="stage=whole as input_mode=whole"):
        config = train_cli.resolve_config(parser, args)
    assert (config.input_mode, config.two_stage, config.epochs) == ("whole", False, 3)
    assert config.preset == "deconvnet_vgg16_compact"  # the recipe's
