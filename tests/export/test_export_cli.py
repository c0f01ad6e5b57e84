"""deconvnet-export CLI errors, class-name lookup, representative data, op-list parsing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import requires_tf
from tests.export.artifacts import CLASSES, get_artifacts

pytestmark = requires_tf


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    return get_artifacts(tmp_path_factory)


def test_cli_int8_export_wrote_model_and_sidecar(art):
    path = art.tflite["int8"]
    assert path.is_file() and path.with_suffix(".json").is_file()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["quantize"] == "int8" and meta["input_shape"] == [1, 48, 64, 3]
    assert meta["outputs"]["probabilities"]["shape"] == [1, 48, 64, len(CLASSES)]
    assert meta["extra"]["calibration_images"] == 16 and meta["class_names"] == CLASSES
    assert path.stat().st_size < art.tflite["none"].stat().st_size
    fp16 = json.loads(art.tflite["fp16"].with_suffix(".json").read_text())
    assert fp16["input_shape"] == [1, None, None, 3]
    assert art.tflite["fp16"].stat().st_size < art.tflite["none"].stat().st_size


@pytest.mark.parametrize("argv, message", [
    (["--model", "missing.keras"], "no such file"),
    (["--format", "saved_model", "--quantize", "int8"], "apply to --format tflite only"),
    (["--input-size", "big"], "expected HxW"),
    (["--input-size", "8x8"], "below the model's minimum"),
    (["--class-names", "a,b"], "got 2 names for a model with 5 classes"),
    (["--output", "model.bin"], "must end in .tflite"),
    (["--calibration-count", "0"], "--calibration-count must be >= 1"),
])
def test_cli_errors(art, tmp_path, capsys, argv, message):
    from deconvnet_tf.cli.export import main

    base = [] if "--model" in argv else ["--model", str(art.model_path)]
    argv = [a.replace("model.bin", str(tmp_path / "model.bin")) for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(base + argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "deconvnet-export: error:" in err and message in err
    assert not any(tmp_path.iterdir())


def test_find_class_names_from_run_folder(tmp_path):
    from deconvnet_tf.export import find_class_names

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"data": None, "tfds": None}))
    (run / "synthetic_data").mkdir()
    (run / "synthetic_data" / "meta.json").write_text(json.dumps({"classes": ["a", "b"]}))
    assert find_class_names(run / "model.keras") == ["a", "b"]
    assert find_class_names(run / "checkpoints" / "best.keras") == ["a", "b"]
    data = tmp_path / "camvid"
    data.mkdir()
    (data / "meta.json").write_text(json.dumps({"classes": ["sky", "road", "car"]}))
    (run / "config.json").write_text(json.dumps({"data": str(data)}))
    assert find_class_names(run / "model.keras") == ["sky", "road", "car"]
    assert find_class_names(tmp_path / "elsewhere" / "m.keras") is None


def test_representative_images_sources(art, tmp_path):
    import cv2

    from deconvnet_tf.export import ExportError, representative_images

    from_dataset = representative_images(art.data_dir, count=4, input_size=(24, 32))
    assert len(from_dataset) == 4 and all(im.shape == (24, 32, 3) for im in from_dataset)
    default = representative_images(None, count=3, min_size=17)
    assert len(default) == 3 and default[0].dtype == np.uint8 and default[0].shape == (96, 128, 3)
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((10, 12, 3), np.uint8))
    scaled = representative_images(folder, count=5, min_size=20)
    assert len(scaled) == 1 and min(scaled[0].shape[:2]) == 20  # scaled up to the minimum
    arrays = representative_images([np.ones((30, 30, 3))] * 10, count=2)
    assert len(arrays) == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="no images"):
        representative_images(tmp_path / "empty", count=1)
    with pytest.raises(ExportError, match=r"expected \(H, W, 3\)"):
        representative_images([np.zeros((4, 4))])


def test_op_names_rejects_other_files(tmp_path):
    from deconvnet_tf.export import ExportError, tflite_op_names

    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ExportError, match="not a TFLite flatbuffer"):
        tflite_op_names(bad)
    with pytest.raises(ExportError, match="not found"):
        tflite_op_names(tmp_path / "none.tflite")
