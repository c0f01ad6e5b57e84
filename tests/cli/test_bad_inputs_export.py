"""Bad-input corpus of deconvnet-export, deconvnet-evaluate and deconvnet-presets.

Every case ends either as one clear error line (non-zero status, no traceback, the line
names what was wrong) with nothing written or changed, or as a success whose result is
checked. See tests/cli/corpus.py.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.cli.evaluate import main as evaluate_main
from deconvnet_tf.cli.export import main as export_main
from deconvnet_tf.cli.presets import main as presets_main
from tests.cli.corpus import assert_one_line_error, run_console_script, run_main
from tests.conftest import requires_tf

pytestmark = requires_tf

MAINS = {"deconvnet-export": export_main, "deconvnet-evaluate": evaluate_main,
         "deconvnet-presets": presets_main}


@dataclass
class Case:
    name: str
    script: str
    argv: list[str]
    needles: tuple[str, ...] = ()  # expected in the error line; "ok" cases: none
    ok: bool = False
    check: Callable[[Path, object], None] | None = None  # (root, outcome) for "ok" cases
    env: dict = field(default_factory=dict)  # set: runs the console script in a subprocess
    hide: tuple[str, ...] = ()  # modules that fail to import in that subprocess


def _exists(*relative: str):
    def check(root: Path, outcome) -> None:
        for rel in relative:
            assert (root / rel).exists(), f"{rel} missing after: {outcome.stdout[-500:]}"
    return check


def _replaced(relative: str, before: bytes):
    def check(root: Path, outcome) -> None:
        after = (root / relative).read_bytes()
        assert after != before and after[4:8] == b"TFL3", f"not replaced: {outcome.stdout[-500:]}"
    return check


def _evaluated(folder: str, total: int):
    def check(root: Path, outcome) -> None:
        metrics = json.loads((root / folder / "metrics.json").read_text())
        assert sum(map(sum, metrics["confusion"])) == total
        assert (root / folder / "confusion.png").is_file()
        # The report goes to --output only: the model folders hold what they held.
        assert sorted(p.name for p in (root / "models").iterdir()) == MODEL_FILES
    return check


def _table_has(*rows: str):
    def check(root: Path, outcome) -> None:
        for row in rows:
            assert f"| `{row}` |" in outcome.stdout
    return check


MODEL_FILES = sorted(["shapes.keras", "camvid11.keras", "fixed.keras", "garbage.keras",
                      "zip.keras", "crc.keras", "truncated.keras", "shapes.tflite"])
NOJAX = {"KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
SHAPES = "{root}/models/shapes.keras"
DATA = "{root}/data"
X = ["--model", SHAPES]  # deconvnet-export's usual model
E = ["--model", SHAPES, "--data", DATA]  # deconvnet-evaluate's usual model and data
OUT = ["--output", "{root}/reports/new"]

CASES = [
    # ---- deconvnet-export: the model file
    Case("missing model", "deconvnet-export", ["--model", "{root}/models/nope.keras"],
         ("--model", "no such file")),
    Case("garbage model", "deconvnet-export", ["--model", "{root}/models/garbage.keras"],
         ("--model", "garbage.keras", "not a .keras model file")),
    Case("zip that is not a model", "deconvnet-export", ["--model", "{root}/models/zip.keras"],
         ("zip.keras", "not a loadable .keras model")),
    Case("model with a bad CRC", "deconvnet-export", ["--model", "{root}/models/crc.keras"],
         ("crc.keras", "not a loadable .keras model")),
    Case("truncated model", "deconvnet-export", ["--model", "{root}/models/truncated.keras"],
         ("truncated.keras", "not a .keras model file")),
    Case("tflite as model", "deconvnet-export", ["--model", "{root}/models/shapes.tflite"],
         ("shapes.tflite", "not a .keras model file")),
    Case("folder that is not a model", "deconvnet-export", ["--model", "{root}/emptydir"],
         ("emptydir", "folder without model.keras")),
    # ---- deconvnet-export: flags and their combinations
    Case("unknown format", "deconvnet-export", [*X, "--format", "onnx"],
         ("--format", "invalid choice")),
    Case("unknown quantisation", "deconvnet-export", [*X, "--quantize", "int4"],
         ("--quantize", "invalid choice")),
    Case("saved_model with int8", "deconvnet-export",
         [*X, "--format", "saved_model", "--quantize", "int8"], ("apply to --format tflite only",)),
    Case("saved_model with flex", "deconvnet-export",
         [*X, "--format", "saved_model", "--allow-flex"], ("apply to --format tflite only",)),
    Case("calibration data without int8", "deconvnet-export",
         [*X, "--quantize", "fp16", "--representative-data", DATA],
         ("--representative-data", "--quantize int8 only")),
    Case("calibration count without int8", "deconvnet-export",
         [*X, "--calibration-count", "8"], ("--calibration-count", "--quantize int8 only")),
    Case("calibration count 0", "deconvnet-export",
         [*X, "--quantize", "int8", "--calibration-count", "0"], ("--calibration-count", ">= 1")),
    Case("calibration count not a number", "deconvnet-export",
         [*X, "--quantize", "int8", "--calibration-count", "many"],
         ("--calibration-count", "invalid int")),
    Case("missing calibration folder", "deconvnet-export",
         [*X, "--quantize", "int8", "--representative-data", "{root}/nowhere"],
         ("--representative-data", "nowhere", "not a folder")),
    Case("calibration folder without images", "deconvnet-export",
         [*X, "--quantize", "int8", "--representative-data", "{root}/emptydir",
          "--output", "{root}/exports/c.tflite"], ("--representative-data", "no images")),
    Case("input size not HxW", "deconvnet-export", [*X, "--input-size", "big"],
         ("--input-size", "expected HxW")),
    Case("input size below the minimum", "deconvnet-export", [*X, "--input-size", "8x8"],
         ("--input-size 8x8", "below the model's minimum 17x17")),
    Case("input size 0", "deconvnet-export", [*X, "--input-size", "0x0"], ("positive",)),
    Case("too few class names", "deconvnet-export", [*X, "--class-names", "a,b"],
         ("got 2 names for a model with 5 classes",)),
    Case("empty class name", "deconvnet-export", [*X, "--class-names", "a,,b,c,d"],
         ("--class-names", "non-empty names")),
    Case("missing meta", "deconvnet-export", [*X, "--meta", "{root}/nope.json"],
         ("--meta", "no such file")),
    Case("meta that is not JSON", "deconvnet-export", [*X, "--meta", "{root}/broken.json"],
         ("--meta", "broken.json", "non-empty 'classes' list")),
    Case("meta of another dataset", "deconvnet-export", [*X, "--meta", "{root}/horse2/meta.json"],
         ("got 2 names for a model with 5 classes",)),
    # ---- deconvnet-export: where the output goes
    Case("saved_model onto a file", "deconvnet-export",
         [*X, "--format", "saved_model", "--output", "{root}/user.txt", "--overwrite"],
         ("--output", "user.txt", "is a file")),
    Case("saved_model inside a SavedModel", "deconvnet-export",
         [*X, "--format", "saved_model", "--output", "{root}/sm/variables", "--overwrite"],
         ("--output", "inside the existing SavedModel")),
    Case("saved_model deeper inside a SavedModel", "deconvnet-export",
         [*X, "--format", "saved_model", "--output", "{root}/sm/assets/new"],
         ("inside the existing SavedModel",)),
    Case("tflite inside a SavedModel", "deconvnet-export", [*X, "--output", "{root}/sm/m.tflite"],
         ("inside the existing SavedModel",)),
    Case("saved_model onto a folder of other files", "deconvnet-export",
         [*X, "--format", "saved_model", "--output", "{root}/userdir", "--overwrite"],
         ("userdir", "not a SavedModel and not empty")),
    Case("saved_model onto a SavedModel", "deconvnet-export",
         [*X, "--format", "saved_model", "--output", "{root}/sm"],
         ("already holds a SavedModel", "--overwrite")),
    Case("tflite onto a folder", "deconvnet-export", [*X, "--output", "{root}/userdir"],
         ("--output", "a TFLite export must end in .tflite")),
    Case("tflite onto a folder named .tflite", "deconvnet-export",
         [*X, "--output", "{root}/dir.tflite"], ("dir.tflite", "is a folder")),
    Case("tflite next to a user's json", "deconvnet-export",
         [*X, "--output", "{root}/user.tflite", "--overwrite"],
         ("user.json", "not a deconvnet metadata sidecar")),
    Case("tflite onto an existing file", "deconvnet-export",
         [*X, "--output", "{root}/old.tflite"], ("old.tflite", "already exist", "--overwrite")),
    Case("tflite without .tflite", "deconvnet-export", [*X, "--output", "{root}/model.bin"],
         ("must end in .tflite",)),
    Case("saved_model named .tflite", "deconvnet-export",
         [*X, "--format", "saved_model", "--output", "{root}/new.tflite"],
         ("a SavedModel is a folder",)),
    Case("tflite into a read-only folder", "deconvnet-export",
         [*X, "--output", "{unwritable}/m.tflite"], ("--output", "not writable")),
    Case("saved_model into a read-only folder", "deconvnet-export",
         [*X, "--format", "saved_model", "--output", "{unwritable}/sm"], ("not writable",)),
    Case("output under a file", "deconvnet-export", [*X, "--output", "{root}/user.txt/m.tflite"],
         ("user.txt", "is a file, not a folder")),
    Case("jax backend not installed", "deconvnet-export", [*X, "--output", "{root}/j.tflite"],
         ("KERAS_BACKEND=jax", "'jax'", "not installed"), env=NOJAX, hide=("jax",)),
    # ---- deconvnet-export: inputs that work
    Case("saved_model named after the run folder", "deconvnet-export",
         ["--model", "{root}/runs/horse_run", "--format", "saved_model"], ok=True,
         check=_exists("saved_models/horse_run/saved_model.pb",
                       "saved_models/horse_run/assets/deconvnet_metadata.json")),
    Case("saved_model replaced with --overwrite", "deconvnet-export",
         [*X, "--format", "saved_model", "--output", "{root}/sm2", "--overwrite"], ok=True,
         check=_exists("sm2/saved_model.pb")),
    Case("tflite replaced with --overwrite", "deconvnet-export",
         [*X, "--output", "{root}/replace.tflite", "--overwrite"], ok=True,
         check=_replaced("replace.tflite", b"an earlier export")),
    Case("tflite named after the model file", "deconvnet-export",
         [*X, "--input-size", "24x32"], ok=True,
         check=_exists("saved_models/shapes.tflite", "saved_models/shapes.json")),

    # ---- deconvnet-evaluate: the model file
    Case("missing model", "deconvnet-evaluate",
         ["--model", "{root}/models/nope.keras", "--data", DATA, *OUT],
         ("--model", "no such file")),
    Case("garbage model", "deconvnet-evaluate",
         ["--model", "{root}/models/garbage.keras", "--data", DATA, *OUT],
         ("--model", "not a .keras model file")),
    Case("zip that is not a model", "deconvnet-evaluate",
         ["--model", "{root}/models/zip.keras", "--data", DATA, *OUT],
         ("not a loadable .keras model",)),
    Case("model with a bad CRC", "deconvnet-evaluate",
         ["--model", "{root}/models/crc.keras", "--data", DATA, *OUT],
         ("not a loadable .keras model",)),
    Case("tflite as model", "deconvnet-evaluate",
         ["--model", "{root}/models/shapes.tflite", "--data", DATA, *OUT],
         ("not a .keras model file",)),
    Case("folder that is not a model", "deconvnet-evaluate",
         ["--model", "{root}/emptydir", "--data", DATA, *OUT], ("folder without model.keras",)),
    # ---- deconvnet-evaluate: the data
    Case("missing data folder", "deconvnet-evaluate",
         ["--model", SHAPES, "--data", "{root}/nowhere", *OUT], ("nowhere", "not a directory")),
    Case("data folder without meta.json", "deconvnet-evaluate",
         ["--model", SHAPES, "--data", "{root}/emptydir", *OUT], ("meta.json",)),
    Case("5-class model on 2-class data", "deconvnet-evaluate",
         ["--model", SHAPES, "--data", "{root}/horse2", *OUT],
         ("class mismatch", "predicts 5 classes", "has 2")),
    Case("11-class model on 5-class data", "deconvnet-evaluate",
         ["--model", "{root}/models/camvid11.keras", "--data", DATA, *OUT],
         ("predicts 11 classes", "has 5")),
    Case("label values above the classes", "deconvnet-evaluate",
         ["--model", SHAPES, "--data", "{root}/badlabels", *OUT],
         ("val_00001.png", "value(s) [9]", "outside the dataset's 5 classes")),
    Case("missing split", "deconvnet-evaluate", [*E, "--split", "nope", *OUT], ("nope",)),
    Case("TFDS name not supported", "deconvnet-evaluate",
         ["--model", SHAPES, "--tfds", "mnist", *OUT], ("mnist", "not supported")),
    Case("folder and TFDS both", "deconvnet-evaluate", [*E, "--tfds", "mnist", *OUT],
         ("not allowed with argument",)),
    # ---- deconvnet-evaluate: sizes and counts
    Case("input size below the minimum", "deconvnet-evaluate", [*E, "--input-size", "8", "8", *OUT],
         ("--input-size 8x8", "minimum input size", "17x17")),
    Case("input size of another fixed size", "deconvnet-evaluate",
         ["--model", "{root}/models/fixed.keras", "--data", DATA, "--input-size", "32", "48",
          *OUT], ("--input-size 32x48", "fixed input of 32x40")),
    Case("input size 0", "deconvnet-evaluate", [*E, "--input-size", "0", "5", *OUT],
         ("--input-size", "positive")),
    Case("input size with one number", "deconvnet-evaluate", [*E, "--input-size", "8", *OUT],
         ("--input-size", "expected 2 arguments")),
    Case("limit 0", "deconvnet-evaluate", [*E, "--limit", "0", *OUT], ("--limit must be >= 1",)),
    Case("limit not a number", "deconvnet-evaluate", [*E, "--limit", "all", *OUT],
         ("--limit", "invalid int")),
    # ---- deconvnet-evaluate: where the report goes
    Case("no output", "deconvnet-evaluate", E, ("required", "--output")),
    Case("output is a file", "deconvnet-evaluate", [*E, "--output", "{root}/user.txt"],
         ("--output", "user.txt", "is a file")),
    Case("output under a file", "deconvnet-evaluate", [*E, "--output", "{root}/user.txt/r"],
         ("user.txt", "is a file, not a folder")),
    Case("output in a read-only folder", "deconvnet-evaluate",
         [*E, "--output", "{unwritable}/r"], ("--output", "not writable")),
    Case("output holds a report", "deconvnet-evaluate", [*E, "--output", "{root}/reports/old"],
         ("already holds metrics.json", "--overwrite")),
    Case("jax backend not installed", "deconvnet-evaluate", [*E, *OUT],
         ("KERAS_BACKEND=jax", "'jax'", "not installed"), env=NOJAX, hide=("jax",)),
    # ---- deconvnet-evaluate: inputs that work
    Case("report under --output", "deconvnet-evaluate", [*E, "--output", "{root}/reports/ok"],
         ok=True, check=_evaluated("reports/ok", 2 * 32 * 40)),
    Case("report replaced with --overwrite", "deconvnet-evaluate",
         [*E, "--limit", "1", "--output", "{root}/reports/again", "--overwrite"], ok=True,
         check=_evaluated("reports/again", 32 * 40)),
    Case("run folder as model", "deconvnet-evaluate",
         ["--model", "{root}/runs/horse_run", "--data", DATA, "--output", "{root}/reports/run"],
         ok=True, check=_evaluated("reports/run", 2 * 32 * 40)),

    # ---- deconvnet-presets
    Case("size below one preset's minimum", "deconvnet-presets",
         ["deconvnet_tiny", "--size", "8x8"], ("--size 8x8", "deconvnet_tiny (17x17)")),
    Case("size below several minimums", "deconvnet-presets", ["--size", "64x64"],
         ("--size 64x64", "deconvnet_vgg16 (193x193)")),
    Case("size 0", "deconvnet-presets", ["--size", "0x0"], ("--size", "positive")),
    Case("negative size", "deconvnet-presets", ["--size=-4x10"], ("--size", "positive")),
    Case("size with one number", "deconvnet-presets", ["--size", "224"],
         ("--size must look like",)),
    Case("size not a number", "deconvnet-presets", ["--size", "axb"], ("--size must look like",)),
    Case("0 classes", "deconvnet-presets", ["--num-classes", "0"], ("--num-classes must be >= 1",)),
    Case("negative classes", "deconvnet-presets", ["--num-classes", "-3"],
         ("--num-classes must be >= 1, got -3",)),
    Case("classes not a number", "deconvnet-presets", ["--num-classes", "x"],
         ("--num-classes", "invalid int")),
    Case("unknown preset", "deconvnet-presets", ["nope"], ("unknown preset",)),
    Case("unknown backend", "deconvnet-presets", ["--backend", "torch"],
         ("--backend", "invalid choice")),
    Case("jax backend not installed", "deconvnet-presets", ["deconvnet_tiny"],
         ("KERAS_BACKEND=jax", "'jax'", "not installed"), env=NOJAX, hide=("jax",)),
    Case("smallest size and one class", "deconvnet-presets",
         ["deconvnet_tiny", "--size", "17x17", "--num-classes", "1"], ok=True,
         check=_table_has("deconvnet_tiny")),
    Case("FCN at its minimum", "deconvnet-presets", ["fcn8s_tiny", "--size", "8x8"], ok=True,
         check=_table_has("fcn8s_tiny")),
]


def _unwritable(root: Path) -> Path:
    """A folder this process cannot write to (root ignores permission bits: use sysfs)."""
    if os.geteuid() == 0:
        return Path("/sys/deconvnet_tf_corpus")
    folder = root / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def _write_labels(root: Path, fn) -> None:
    import cv2

    for path in sorted((root / "val" / "labels").glob("*.png")):
        label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(path), fn(path, label))


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory):
    from deconvnet_tf.data.synthetic import write_synthetic_dataset
    from deconvnet_tf.export import export_saved_model
    from deconvnet_tf.evaluation.evaluate import save_report
    from deconvnet_tf.evaluation.metrics import report_from_confusion

    root = tmp_path_factory.mktemp("corpus_export")
    models = root / "models"
    models.mkdir()
    shapes = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    shapes.save(models / "shapes.keras")
    deconvnet_tf.build_model("deconvnet_tiny", num_classes=11).save(models / "camvid11.keras")
    deconvnet_tf.build_model("deconvnet_tiny", num_classes=5,
                             input_shape=(32, 40, 3)).save(models / "fixed.keras")
    (models / "garbage.keras").write_bytes(np.random.default_rng(0).bytes(4096))
    with zipfile.ZipFile(models / "zip.keras", "w") as archive:
        archive.writestr("notes.txt", "not a model")
    data = (models / "shapes.keras").read_bytes()
    damaged = bytearray(data)
    damaged[len(data) // 3: len(data) // 3 + 2000] = bytes(2000)
    (models / "crc.keras").write_bytes(bytes(damaged))
    (models / "truncated.keras").write_bytes(data[: len(data) // 2])
    (models / "shapes.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    run = root / "runs" / "horse_run"
    run.mkdir(parents=True)
    shutil.copy(models / "shapes.keras", run / "model.keras")

    write_synthetic_dataset(root / "data", num_train=1, num_val=2, height=32, width=40)
    horse = write_synthetic_dataset(root / "horse2", num_train=1, num_val=2, height=32, width=40)
    meta = json.loads((horse / "meta.json").read_text())
    meta.update(classes=["background", "horse"], num_classes=2)
    (horse / "meta.json").write_text(json.dumps(meta))
    _write_labels(horse, lambda path, label: np.where((label > 0) & (label < 255), 1, label))
    bad = write_synthetic_dataset(root / "badlabels", num_train=1, num_val=2, height=32, width=40)
    _write_labels(bad, lambda path, label: np.where(
        np.arange(label.shape[1])[None] < 4, 9, label) if path.stem == "val_00001" else label)

    (root / "emptydir").mkdir()
    (root / "user.txt").write_text("the user's notes")
    (root / "userdir").mkdir()
    (root / "userdir" / "thesis.tex").write_text("\\documentclass{article}")
    (root / "user.json").write_text(json.dumps({"settings": True}))
    (root / "old.tflite").write_bytes(b"an earlier export")
    (root / "replace.tflite").write_bytes(b"an earlier export")
    (root / "dir.tflite").mkdir()
    (root / "broken.json").write_text("{not json")
    export_saved_model(shapes, root / "sm")
    export_saved_model(shapes, root / "sm2")
    save_report(report_from_confusion(np.eye(2, dtype=int), ["a", "b"]), root / "reports" / "old")
    save_report(report_from_confusion(np.eye(2, dtype=int), ["a", "b"]),
                root / "reports" / "again")
    return root


def _snapshot(root: Path) -> dict[str, tuple[int, int] | None]:
    """Every path under ``root``; files with size and modification time (folders' times
    change when a write test creates and removes a probe file: only their presence counts)."""
    return {str(p.relative_to(root)): None if p.is_dir() else (p.stat().st_size,
                                                               p.stat().st_mtime_ns)
            for p in root.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.script}:{c.name}" for c in CASES])
def test_bad_input(case: Case, corpus_root: Path, monkeypatch):
    monkeypatch.chdir(corpus_root)  # default outputs (saved_models/...) land in the corpus
    unwritable = _unwritable(corpus_root) if any("{unwritable}" in a for a in case.argv) else None
    argv = [a.format(root=corpus_root, unwritable=unwritable) for a in case.argv]
    before = _snapshot(corpus_root)
    try:
        if case.env:
            outcome = run_console_script(case.script, argv, env=case.env, hide_modules=case.hide,
                                         cwd=corpus_root)
        else:
            outcome = run_main(MAINS[case.script], argv)
    finally:
        if unwritable is not None and unwritable.is_relative_to(corpus_root):
            unwritable.chmod(0o755)
            unwritable.rmdir()
    if case.ok:
        assert outcome.code == 0, outcome.stderr[-3000:]
        assert "Traceback" not in outcome.stderr
        case.check(corpus_root, outcome)
        return
    line = assert_one_line_error(outcome, *case.needles)
    assert line.startswith(f"{case.script}: error: "), line
    assert _snapshot(corpus_root) == before, "a failed command wrote or changed files"


def test_corpus_covers_every_script():
    for script in MAINS:
        cases = [c for c in CASES if c.script == script]
        assert sum(c.ok for c in cases) >= 2 and sum(not c.ok for c in cases) >= 10, script
