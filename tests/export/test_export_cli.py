"""deconvnet-export CLI errors, class-name lookup, representative data, op-list parsing."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_export_name_follows_the_model_file(tmp_path):
    from deconvnet_tf.export._common import export_name

    run = tmp_path / "runs" / "camvid"
    (run / "checkpoints").mkdir(parents=True)
    (run / "model.keras").write_bytes(b"")
    assert export_name(run / "model.keras") == "camvid"
    assert export_name(run) == "camvid"  # a run folder
    assert export_name(run / "checkpoints" / "best.keras") == "camvid_best"
    assert export_name(tmp_path / "other" / "horse.keras") == "horse"


def test_cli_names_exports_after_the_model_and_needs_overwrite(art, tmp_path, monkeypatch,
                                                               capsys):
    """Two models of one preset get two exports (named after the files, not the shared
    architecture); an existing export is replaced only with --overwrite."""
    import shutil

    from deconvnet_tf.cli.export import main

    for name in ("a", "b"):
        shutil.copy(art.model_path, tmp_path / f"{name}.keras")
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):
        assert main(["--model", f"{name}.keras", "--format", "saved_model"]) == 0
    assert sorted(p.name for p in (tmp_path / "saved_models").iterdir()) == ["a", "b"]
    before = (tmp_path / "saved_models" / "a" / "saved_model.pb").read_bytes()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["--model", "a.keras", "--format", "saved_model"])
    assert exc.value.code == 2
    assert "already holds a SavedModel: pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "saved_models" / "a" / "saved_model.pb").read_bytes() == before
    assert main(["--model", "a.keras", "--format", "saved_model", "--overwrite"]) == 0
    assert sorted(p.name for p in (tmp_path / "saved_models").iterdir()) == ["a", "b"]


@pytest.mark.parametrize("failing", [".tflite", ".json"])
def test_failed_tflite_write_leaves_no_partial_pair(art, tmp_path, monkeypatch, failing):
    """A failure while the finished .tflite and its sidecar are renamed into place leaves
    nothing new: no temporary file, no sidecar without its model, and an earlier export's
    pair exactly as it was."""
    import os

    from deconvnet_tf.export import tflite as tflite_module

    data = art.tflite["none"].read_bytes()  # a converted model: only the writing is tested
    kwargs = dict(model=art.model, names=CLASSES, shape=[1, None, None, 3], minimum=17,
                  quantize="none", allow_flex=False, unpooling="switch", seconds=1.0,
                  calibration=None)
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith(failing) and ".tmp-" in str(src):
            raise OSError(28, "No space left on device (injected)")
        return real_replace(src, dst)

    fresh = tmp_path / "fresh" / "m.tflite"
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="injected"):
        tflite_module._write_tflite(data, fresh, **kwargs)
    assert not (tmp_path / "fresh").exists()  # the folder it created is gone too

    monkeypatch.setattr(os, "replace", real_replace)
    kept = tmp_path / "kept" / "m.tflite"
    tflite_module._write_tflite(data, kept, **kwargs)
    old_model, old_meta = kept.read_bytes(), kept.with_suffix(".json").read_bytes()
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="injected"):
        tflite_module._write_tflite(data, kept, **dict(kwargs, quantize="fp16"))
    assert sorted(p.name for p in kept.parent.iterdir()) == ["m.json", "m.tflite"]
    assert kept.read_bytes() == old_model and kept.with_suffix(".json").read_bytes() == old_meta


def _ours(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("deconvnet_export_"))


def test_failed_conversion_leaves_no_temporary_folder(art, tmp_path, monkeypatch):
    import tempfile

    from deconvnet_tf.export import ExportError, export_tflite
    from deconvnet_tf.export import tflite as tflite_module

    system_tmp = tmp_path / "systmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))

    class Broken:
        def convert(self):
            raise RuntimeError("converter crashed (injected)")

    monkeypatch.setattr(tflite_module, "_converter", lambda *args: Broken())
    out = tmp_path / "out" / "m.tflite"
    with pytest.raises(ExportError, match="injected"):
        export_tflite(art.model, out, input_size=(24, 32))
    assert _ours(system_tmp) == []
    assert not out.parent.exists()


def test_leftovers_of_a_killed_export_are_removed_by_the_next(art, tmp_path, monkeypatch):
    """An export killed mid-conversion (kill -9, out of memory: no cleanup runs) leaves its
    temporary folder in the system temp dir and, killed later, temporaries next to the
    target; the next export removes those of dead processes and keeps a running one's."""
    import os
    import subprocess
    import sys
    import tempfile
    import textwrap

    from deconvnet_tf.export import export_saved_model

    system_tmp, out = tmp_path / "systmp", tmp_path / "out"
    system_tmp.mkdir()
    out.mkdir()
    code = textwrap.dedent("""
        import os, signal, sys
        import deconvnet_tf.export.tflite as t

        class Killed:
            def convert(self):
                os.kill(os.getpid(), signal.SIGKILL)

        t._converter = lambda *args: Killed()
        t.export_tflite(sys.argv[1], sys.argv[2], input_size="24x32")
    """)
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, TMPDIR=str(system_tmp), PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, "-c", code, str(art.model_path),
                             str(out / "m.tflite")], env=env, stderr=subprocess.PIPE, text=True)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == -9, stderr[-2000:]
    dead = proc.pid
    left = _ours(system_tmp)  # (TensorFlow's autograph leaves files there too: not ours)
    assert len(left) == 1 and left[0].startswith(f"deconvnet_export_{dead}_"), left
    # What the same kill leaves next to the targets at a later moment of an export.
    (out / f".m.tflite.tmp-{dead}-0123abcd").write_bytes(b"half a model")
    (out / f".sm.tmp-{dead}-89abcdef").mkdir()
    (out / f".sm.tmp-{dead}-89abcdef" / "saved_model.pb").write_bytes(b"half")
    running = out / f".other.tflite.tmp-{os.getpid()}-deadbeef"  # this process: running
    running.write_bytes(b"in progress")
    user = out / "notes.tmp-1-00000000"  # not a name the exporter makes
    user.write_text("mine")

    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    export_saved_model(art.model, out / "sm")
    assert _ours(system_tmp) == []
    assert sorted(p.name for p in out.iterdir()) == sorted([running.name, user.name, "sm"])
