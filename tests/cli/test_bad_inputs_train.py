"""The bad-input corpus of ``deconvnet-train``: every case ends with one clear error line (no
traceback) that names the argument, field or file and what was expected."""

from __future__ import annotations

import json
import os
import zipfile

import pytest

import deconvnet_tf
from deconvnet_tf.cli import train as train_cli
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from deconvnet_tf.training.config import TrainConfig
from deconvnet_tf.training.runfolder import RunLock
from tests.cli.corpus import assert_one_line_error, run_main
from tests.conftest import requires_tf

pytestmark = requires_tf  # training reads the data through tf.data

# A run that would train (tiny, one step) if nothing were wrong. Later flags win over these.
BASE = ["--preset", "deconvnet_tiny", "--epochs", "1", "--batch-size", "2", "--quiet",
        "--no-eval", "--set", "crop_size=[32,32]", "--set", "steps_per_epoch=1",
        "--output", "{out}"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Datasets and files, good and bad, shared by the cases."""
    tmp = tmp_path_factory.mktemp("corpus")

    def dataset(name):
        return write_synthetic_dataset(tmp / name, num_train=4, num_val=2, height=32, width=32)

    paths = {"tmp": tmp, "data": dataset("data"), "empty": tmp / "empty", "afile": tmp / "afile.txt"}
    paths["empty"].mkdir()
    paths["afile"].write_text("not a folder")
    paths["bad_meta"] = dataset("bad_meta")
    (paths["bad_meta"] / "meta.json").write_text("{")
    paths["empty_split"] = dataset("empty_split")
    (paths["empty_split"] / "train.txt").write_text("")
    paths["no_image"] = dataset("no_image")
    sorted((paths["no_image"] / "train" / "images").iterdir())[0].unlink()
    paths["corrupt_image"] = dataset("corrupt_image")
    sorted((paths["corrupt_image"] / "train" / "images").iterdir())[0].write_bytes(b"junk")
    for name, text in {"broken.json": "{", "list.json": "[1]", "epochz.json": '{"epochz": 1}',
                       "typed.json": '{"epochs": "x"}', "text.keras": "not a model",
                       "text.h5": "not hdf5"}.items():
        (tmp / name).write_text(text)
    (tmp / "binary.json").write_bytes(b"\xff\xfe\x00")
    with zipfile.ZipFile(tmp / "zip.keras", "w") as archive:
        archive.writestr("notes.txt", "a zip, not a model")
    (tmp / "folder.keras").mkdir()
    deconvnet_tf.build_model("deconvnet_tiny", num_classes=7).save(tmp / "seven.keras")
    return {k: str(v) for k, v in paths.items()}


CASES = [
    # numeric flags
    ("epochs-zero", ["--epochs", "0"], ["'epochs'", ">= 1"]),
    ("epochs-negative", ["--epochs", "-3"], ["'epochs'", ">= 1"]),
    ("epochs-not-an-integer", ["--epochs", "abc"], ["--epochs", "invalid int"]),
    ("batch-size-zero", ["--batch-size", "0"], ["'batch_size'", ">= 1"]),
    ("batch-size-fraction", ["--batch-size", "2.5"], ["--batch-size", "invalid int"]),
    # choices
    ("unknown-preset", ["--preset", "nope"], ["'preset'", "unknown 'nope'", "deconvnet_tiny"]),
    ("unknown-stage", ["--stage", "stage3"], ["--stage", "invalid choice"]),
    ("unknown-input-mode", ["--input-mode", "stage1"], ["--input-mode", "invalid choice"]),
    ("stage-and-input-mode", ["--stage", "whole", "--input-mode", "crop"], ["--stage is deprecated"]),
    ("two-stage-on-whole", ["--two-stage", "--input-mode", "whole"], ["'two_stage'", "proposal_windows"]),
    ("unknown-backend", ["--backend", "torch"], ["--backend", "invalid choice"]),
    ("unknown-strategy", ["--strategy", "ring"], ["--strategy", "invalid choice"]),
    ("data-and-tfds", ["--data", "{data}", "--tfds", "oxford_iiit_pet"], ["--tfds", "not allowed"]),
    ("overwrite-and-resume", ["--overwrite", "--resume"], ["--resume", "not allowed"]),
    # --set values
    ("set-unknown-field", ["--set", "nonsense=1"], ["unknown field 'nonsense'"]),
    ("set-without-value", ["--set", "epochs"], ["key=value", "'epochs'"]),
    ("set-epochs-fraction", ["--set", "epochs=1.5"], ["--set epochs", "1.5"]),
    ("set-crop-too-small", ["--set", "crop_size=[8,8]"], ["'crop_size'", ">= 16"]),
    ("set-crop-strings", ["--set", 'crop_size=["a","b"]'], ["'crop_size'", "list of integers"]),
    ("set-crop-not-a-list", ["--set", "crop_size=abc"], ["--set crop_size", "abc"]),
    ("set-lr-negative", ["--set", "learning_rate=-1"], ["'learning_rate'", "> 0"]),
    ("set-lr-infinite", ["--set", "learning_rate=Infinity"], ["'learning_rate'", "finite"]),
    ("set-weight-decay-nan", ["--set", "weight_decay=NaN"], ["'weight_decay'", "finite"]),
    ("set-weight-decay-negative", ["--set", "weight_decay=-0.1"], ["'weight_decay'", ">= 0"]),
    ("set-momentum", ["--set", "momentum=1.5"], ["'momentum'", "[0, 1)"]),
    ("set-steps-zero", ["--set", "steps_per_epoch=0"], ["'steps_per_epoch'", ">= 1"]),
    ("set-checkpoint-every-zero", ["--set", "checkpoint_every=0"], ["'checkpoint_every'"]),
    ("set-validation-freq-zero", ["--set", "validation_freq=0"], ["'validation_freq'"]),
    ("set-bool", ["--set", "mixed_precision=maybe"], ["--set mixed_precision", "maybe"]),
    ("set-num-classes-zero", ["--set", "num_classes=0"], ["'num_classes'", ">= 1"]),
    ("set-optimizer", ["--set", "optimizer=rmsprop"], ["'optimizer'", "rmsprop"]),
    ("set-lr-schedule", ["--set", "lr_schedule=linear"], ["'lr_schedule'", "linear"]),
    ("set-decay-factor", ["--set", "lr_decay_factor=2"], ["'lr_decay_epochs'", "lr_decay_factor"]),
    ("set-unpooling", ["--set", "unpooling=maxout"], ["'unpooling'", "maxout"]),
    ("jit-with-argmax", ["--jit-compile", "--set", "unpooling=argmax"], ["'unpooling'", "no XLA"]),
    ("set-frozen-negative", ["--set", "frozen_blocks=-1"], ["'frozen_blocks'", ">= 0"]),
    ("set-bn-momentum", ["--set", "bn_momentum=2"], ["'bn_momentum'", "[0, 1)"]),
    ("set-class-weighting", ["--set", "class_weighting=inverse"], ["'class_weighting'"]),
    ("set-window-size", ["--set", "window_size=8"], ["'window_size'", ">= 16"]),
    ("set-stage2-iou", ["--set", "stage2_min_iou=2"], ["'stage2_min_iou'", "(0, 1]"]),
    ("set-synthetic-train", ["--set", "synthetic_train=0"], ["'synthetic_train'", ">= 1"]),
    ("set-stage1-epochs", ["--two-stage", "--set", "stage1_epochs=0"],
     ["'stage1_epochs'", ">= 1"]),
    ("stage1-crop-over-window", ["--input-mode", "object_crops", "--set", "crop_size=[300,300]"],
     ["'crop_size'", "larger than window_size"]),
    ("tfds-stage1", ["--tfds", "oxford_iiit_pet", "--input-mode", "object_crops"], ["file-based dataset"]),
    # settings that only the data or the model can refuse
    ("num-classes-below-the-data", ["--data", "{data}", "--set", "num_classes=2"],
     ["'num_classes'", "fewer than the 5 classes"]),
    ("frozen-blocks-beyond-the-preset", ["--data", "{data}", "--set", "frozen_blocks=9"],
     ["frozen_blocks", "[0, 3]"]),
    # --config
    ("config-missing", ["--config", "{tmp}/missing.json"], ["config file not found", "missing.json"]),
    ("config-folder", ["--config", "{tmp}"], ["is a folder", "JSON file"]),
    ("config-broken", ["--config", "{tmp}/broken.json"], ["broken.json", "not valid JSON"]),
    ("config-not-an-object", ["--config", "{tmp}/list.json"], ["list.json", "JSON object"]),
    ("config-binary", ["--config", "{tmp}/binary.json"], ["cannot read config file", "binary.json"]),
    ("config-unknown-field", ["--config", "{tmp}/epochz.json"], ["epochz.json", "unknown field"]),
    ("config-wrong-type", ["--config", "{tmp}/typed.json"], ["'epochs'", "expected an integer"]),
    # data
    ("data-missing", ["--data", "{tmp}/nowhere"], ["nowhere", "not a directory"]),
    ("data-is-a-file", ["--data", "{afile}"], ["afile.txt", "not a directory"]),
    ("data-empty-folder", ["--data", "{empty}"], ["meta.json", "missing"]),
    ("data-bad-meta", ["--data", "{bad_meta}"], ["meta.json", "not valid JSON"]),
    ("data-empty-split", ["--data", "{empty_split}"], ["train.txt", "empty"]),
    ("data-missing-image", ["--data", "{no_image}"], ["train_00000", "no image"]),
    ("data-corrupt-image", ["--data", "{corrupt_image}"], ["train_00000.png", "cannot read image"]),
    ("data-missing-train-split", ["--data", "{data}", "--set", "train_split=nosuch"], ["nosuch.txt"]),
    ("data-missing-val-split", ["--data", "{data}", "--set", "val_split=nosuch"], ["nosuch.txt"]),
    ("tfds-unknown", ["--tfds", "nosuch_ds"], ["nosuch_ds", "not supported"]),
    ("tfds-not-prepared", ["--tfds", "oxford_iiit_pet", "--set", "tfds_data_dir={tmp}/tfds_empty"],
     ["oxford_iiit_pet", "not available", "tfds build"]),
    # init_from / --encoder-weights
    ("init-from-missing", ["--data", "{data}", "--set", "init_from={tmp}/missing.keras"],
     ["'init_from'", "no such file", "missing.keras"]),
    ("init-from-folder", ["--data", "{data}", "--set", "init_from={tmp}/folder.keras"],
     ["'init_from'", "is a folder"]),
    ("init-from-text-file", ["--data", "{data}", "--set", "init_from={tmp}/text.keras"],
     ["'init_from'", "cannot load", "text.keras"]),
    ("init-from-zip-not-a-model", ["--data", "{data}", "--set", "init_from={tmp}/zip.keras"],
     ["'init_from'", "cannot load", "zip.keras"]),
    ("init-from-other-classes", ["--data", "{data}", "--set", "init_from={tmp}/seven.keras"],
     ["init_from", "does not match preset 'deconvnet_tiny' with 5 classes"]),
    ("encoder-weights-missing", ["--data", "{data}", "--encoder-weights", "{tmp}/missing.h5"],
     ["'encoder_weights'", "no such file", "missing.h5"]),
    ("encoder-weights-unknown-name", ["--data", "{data}", "--encoder-weights", "vgg19"],
     ["'encoder_weights'", "'vgg19'", "'imagenet', 'hed'"]),
    ("encoder-weights-bad-file", ["--data", "{data}", "--encoder-weights", "{tmp}/text.h5"],
     ["'encoder_weights'", "text.h5", "not a Keras VGG16 weights file"]),
    ("encoder-weights-into-a-narrow-encoder", ["--data", "{data}", "--encoder-weights", "hed"],
     ["'encoder_weights'", "encoder_width=1.0"]),
    # --output
    ("output-empty", ["--output", ""], ["'output'", "empty"]),
    ("output-is-a-file", ["--data", "{data}", "--output", "{afile}"], ["afile.txt", "existing file"]),
    ("output-under-a-file", ["--data", "{data}", "--output", "{afile}/run"],
     ["cannot create output folder", "afile.txt/run"]),
    ("output-read-only-location", ["--data", "{data}", "--output", "/sys/deconvnet_train_test"],
     ["cannot create output folder", "/sys/deconvnet_train_test"]),
    ("output-not-writable", ["--data", "{data}", "--output", "/sys/fs"],
     ["cannot write to output folder", "/sys/fs"]),
]


def _format(items, values):
    return [item.format(**values) for item in items]


@pytest.mark.parametrize("argv, needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(files, tmp_path, argv, needles):
    values = dict(files, out=str(tmp_path / "run"))
    outcome = run_main(train_cli.main, _format(BASE + argv, values))
    assert_one_line_error(outcome, *_format(needles, values))
    # a failed start leaves no run folder behind (it did not exist before)
    assert not (tmp_path / "run").exists(), sorted((tmp_path / "run").iterdir())


def test_a_failed_start_keeps_a_folder_that_existed_or_holds_more(files, tmp_path):
    """Only a folder the run created, holding only what the run wrote before its first step
    (config.json, the lock file), is removed when the start fails."""
    mine = tmp_path / "mine"
    mine.mkdir()
    outcome = run_main(train_cli.main, _format(BASE + ["--data", "{corrupt_image}"],
                                               dict(files, out=str(mine))))
    assert outcome.code != 0
    assert mine.is_dir() and (mine / "config.json").is_file()  # existed before: kept as is
    # a two-stage run on bad data: its stage folder and its own folder go
    two = tmp_path / "two"
    outcome = run_main(train_cli.main, _format(
        BASE + ["--data", "{corrupt_image}", "--two-stage", "--set", "window_size=32"],
        dict(files, out=str(two))))
    assert outcome.code != 0 and "Traceback" not in outcome.stderr
    assert not two.exists(), sorted(two.rglob("*"))


def _finished_run(files, out, epochs=1):
    """A run folder as a finished `BASE --data DATA` run leaves it (the model file is not
    read before the settings are compared)."""
    out.mkdir()
    TrainConfig(preset="deconvnet_tiny", output=str(out), data=files["data"], epochs=epochs,
                batch_size=2, crop_size=[32, 32], steps_per_epoch=1).save(out / "config.json")
    (out / "model.keras").write_bytes(b"trained")
    (out / "finished.json").write_text(json.dumps({"epochs": epochs, "target": epochs}))


@pytest.mark.parametrize("argv, needles", [
    (["--set", "learning_rate=0.5"], ["finished run with other settings",
                                      "learning_rate: 0.01 -> 0.5", "--overwrite"]),
    (["--epochs", "2"], ["finished run of 1 epochs", "--resume", "--overwrite"]),
], ids=["other-settings", "more-epochs-without-resume"])
def test_finished_run_in_output(files, tmp_path, argv, needles):
    out = tmp_path / "run"
    _finished_run(files, out)
    values = dict(files, out=str(out))
    outcome = run_main(train_cli.main, _format(BASE + ["--data", "{data}"] + argv, values))
    assert_one_line_error(outcome, *needles)
    assert (out / "model.keras").read_bytes() == b"trained"


def test_output_that_is_not_a_run_folder(files, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "model.keras").write_bytes(b"the user's model")
    for extra in ([], ["--overwrite"]):
        outcome = run_main(train_cli.main, _format(BASE + ["--data", "{data}"] + extra,
                                                   dict(files, out=str(out))))
        assert_one_line_error(outcome, "has model.keras but no config.json",
                              "not a deconvnet-train run folder")
    assert sorted(p.name for p in out.iterdir()) == ["model.keras"]


def test_output_in_use_by_another_training(files, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):
        outcome = run_main(train_cli.main, _format(BASE + ["--data", "{data}"],
                                                   dict(files, out=str(out))))
    assert_one_line_error(outcome, "in use by another training run", f"pid {os.getpid()}")
    assert not (out / "config.json").exists()
