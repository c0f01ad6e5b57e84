"""Class names for a model file, found the way a run folder stores them (deconvnet_tf.io;
no framework: also a unit of ``tools/mutation.py --groups size_rule``)."""

from __future__ import annotations

import json

import pytest

from deconvnet_tf.io import classes_from_meta, find_class_names

pytestmark = pytest.mark.jax  # no TensorFlow


def _meta(folder, classes):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(json.dumps({"classes": classes}))
    return folder / "meta.json"


def test_classes_from_meta_reads_only_a_non_empty_list(tmp_path):
    assert classes_from_meta(_meta(tmp_path / "a", ["sky", 3])) == ["sky", "3"]
    assert classes_from_meta(_meta(tmp_path / "b", [])) is None
    assert classes_from_meta(_meta(tmp_path / "c", "sky,road")) is None
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "meta.json").write_text('["sky"]')  # not an object
    assert classes_from_meta(tmp_path / "d" / "meta.json") is None
    (tmp_path / "d" / "meta.json").write_text("{broken")
    assert classes_from_meta(tmp_path / "d" / "meta.json") is None
    assert classes_from_meta(tmp_path / "missing.json") is None
    (tmp_path / "d" / "meta.json").write_bytes(b'{"classes": ["\xe9t\xe9"]}')  # Latin-1
    assert classes_from_meta(tmp_path / "d" / "meta.json") is None
    (tmp_path / "d" / "meta.json").write_bytes(b'\xef\xbb\xbf{"classes": ["sky"]}')  # a BOM
    assert classes_from_meta(tmp_path / "d" / "meta.json") == ["sky"]


def test_meta_next_to_the_model_wins(tmp_path):
    _meta(tmp_path / "model", ["a", "b"])
    (tmp_path / "model" / "config.json").write_text(json.dumps({"data": None}))
    _meta(tmp_path / "model" / "synthetic_data", ["other"])
    assert find_class_names(tmp_path / "model" / "m.keras") == ["a", "b"]
    assert find_class_names(None) is None


def test_run_folder_data_relative_absolute_generated_and_tfds(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    _meta(tmp_path / "data", ["road", "car"])
    (run / "config.json").write_text(json.dumps({"data": str(tmp_path / "data")}))
    assert find_class_names(run / "model.keras") == ["road", "car"]
    assert find_class_names(run / "checkpoints" / "best.keras") == ["road", "car"]  # one up
    _meta(run / "local", ["x", "y"])  # relative to the run folder when it exists there
    (run / "config.json").write_text(json.dumps({"data": "local"}))
    assert find_class_names(run / "model.keras") == ["x", "y"]
    _meta(run / "synthetic_data", ["gen"])
    (run / "config.json").write_text(json.dumps({"data": None, "tfds": None}))
    assert find_class_names(run / "model.keras") == ["gen"]
    (run / "config.json").write_text(json.dumps({"data": None, "tfds": "camvid"}))
    assert find_class_names(run / "model.keras") is None  # TFDS names live elsewhere
    (run / "config.json").write_text(json.dumps({"data": str(tmp_path / "nowhere")}))
    assert find_class_names(run / "model.keras") is None


def test_unreadable_configs_are_skipped_for_the_next_folder(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    _meta(run / "synthetic_data", ["gen"])
    (run / "config.json").write_text(json.dumps({"data": None}))
    for bad in ("{broken", '["a list"]'):
        (run / "checkpoints" / "config.json").write_text(bad)
        assert find_class_names(run / "checkpoints" / "best.keras") == ["gen"]
    (run / "checkpoints" / "config.json").write_text(json.dumps({"data": None}))
    # its own folder first: checkpoints/ has no synthetic_data, so one up
    assert find_class_names(run / "checkpoints" / "best.keras") == ["gen"]
    _meta(run / "checkpoints" / "synthetic_data", ["inner"])
    assert find_class_names(run / "checkpoints" / "best.keras") == ["inner"]
