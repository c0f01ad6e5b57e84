"""LiteRT runtime (deconvnet_tf.lite) and deconvnet-lite-predict: outputs, sizes, errors, and
no TensorFlow/Keras on the mobile path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_labels_match, requires_tf
from tests.export.artifacts import CLASSES, HEIGHT, WIDTH, get_artifacts, held_out_scenes

ROOT = Path(__file__).resolve().parents[2]
pytestmark = requires_tf  # the .tflite files come from the exporter (TensorFlow)


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    return get_artifacts(tmp_path_factory)


@pytest.fixture
def image_dir(tmp_path):
    import cv2

    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(held_out_scenes(2, 50, 70)):
        cv2.imwrite(str(folder / f"scene{i}.png"), image[..., ::-1])
    (folder / "notes.txt").write_text("not an image")
    return folder


_NO_TF_SCRIPT = """
import importlib.abc, sys, types
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras", "jax"):
            raise ImportError(f"blocked on the mobile path: {name}")
sys.meta_path.insert(0, Block())
@PRELUDE@
import numpy as np
from deconvnet_tf.lite import LiteSegmenter, predict_paths
from deconvnet_tf.cli.lite_predict import main
for path in @MODELS@:
    seg = LiteSegmenter(path, threads=1)
    label, probs = seg.predict(np.full((40, 52, 3), 120, np.uint8))
    assert label.shape == (40, 52) and probs.shape[:2] == (40, 52), (label.shape, probs.shape)
assert main(["--model", @MODELS@[0], "--input", @IMAGE@, "--output", @OUT@]) == 0
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "jax"))
assert not loaded, loaded
print("OK", sorted(m for m in sys.modules if m.startswith("deconvnet_tf")))
"""


def _run_without_tf(art, image_dir, tmp_path, prelude: str):
    models = [str(art.tflite["none"]), str(art.tflite["int8"])]
    script = (_NO_TF_SCRIPT.replace("@PRELUDE@", prelude).replace("@MODELS@", repr(models))
              .replace("@IMAGE@", repr(str(image_dir / "scene0.png")))
              .replace("@OUT@", repr(str(tmp_path / "out"))))
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)


def test_lite_runs_without_tensorflow_keras_or_jax(art, image_dir, tmp_path):
    """The mobile path on a runtime that has only ai-edge-litert, NumPy and OpenCV: with
    TensorFlow, Keras and JAX imports blocked, ``import deconvnet_tf.lite`` (through the package
    ``__init__``) and the lite CLI run the fp32 and int8 models."""
    result = _run_without_tf(art, image_dir, tmp_path, prelude="")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout and "deconvnet_tf.lite.runtime" in result.stdout


def test_cli_writes_predict_outputs(art, image_dir, tmp_path, capsys):
    import cv2

    from deconvnet_tf.cli.lite_predict import main
    from deconvnet_tf.lite import LiteSegmenter, read_image

    out = tmp_path / "out"
    assert main(["--model", str(art.tflite["none"]), "--input", str(image_dir), "--output",
                 str(out), "--threads", "1", "--save-probs"]) == 0
    printed = capsys.readouterr().out
    assert "2 image(s)" in printed
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"scene{i}{s}" for i in range(2)
                           for s in ("_labels.png", "_color.png", "_overlay.png", "_probs.npy"))
    seg = LiteSegmenter(art.tflite["none"], threads=2)
    for i in range(2):
        image = read_image(image_dir / f"scene{i}.png")
        label, probs = seg.predict(image)
        np.testing.assert_array_equal(
            cv2.imread(str(out / f"scene{i}_labels.png"), cv2.IMREAD_UNCHANGED),
            label)  # threads 1 and 2 agree
        saved = np.load(out / f"scene{i}_probs.npy")
        assert saved.shape == (50, 70, len(CLASSES))
        np.testing.assert_allclose(saved, probs, atol=1e-3)
        colour = cv2.cvtColor(cv2.imread(str(out / f"scene{i}_color.png")), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(colour, seg.palette[label])


def test_cli_flip_follows_the_sidecar_unless_told(art, image_dir, tmp_path):
    """--flip / --no-flip / neither (the sidecar's test_time_flip: off for this export)."""
    from deconvnet_tf.cli.lite_predict import main
    from deconvnet_tf.lite import LiteSegmenter, read_image

    image = read_image(image_dir / "scene0.png")
    expected = {flip: LiteSegmenter(art.tflite["none"], flip=flip).predict(image)[1]
                for flip in (False, True)}
    assert not np.allclose(expected[False], expected[True], atol=1e-3)
    for flags, flip in (([], False), (["--flip"], True), (["--no-flip"], False)):
        out = tmp_path / f"out{len(flags)}{flags[0] if flags else ''}"
        assert main(["--model", str(art.tflite["none"]), "--input", str(image_dir / "scene0.png"),
                     "--output", str(out), "--save-probs", *flags]) == 0
        np.testing.assert_allclose(np.load(out / "scene0_probs.npy").astype(np.float32),
                                   expected[flip], atol=1e-3, err_msg=str(flags))


def test_sizes_dynamic_and_fixed(art):
    from deconvnet_tf.lite import LiteSegmenter

    dynamic = LiteSegmenter(art.tflite["none"])
    assert dynamic.fixed_size is None and dynamic.min_input_size == 17
    assert dynamic.class_names == CLASSES and dynamic.palette.shape == (len(CLASSES), 3)
    for shape in [(HEIGHT, WIDTH), (23, 31), (10, 12)]:  # 10x12 is below the minimum 17
        image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
        label, probs = dynamic.predict(image)
        assert label.shape == shape and probs.shape == (*shape, len(CLASSES))
        assert label.dtype == np.int32 and 0 <= label.min() and label.max() < len(CLASSES)
    fixed = LiteSegmenter(art.tflite["int8"])
    label, probs = fixed.predict(np.zeros((30, 100, 3), np.uint8))
    assert label.shape == (30, 100) and np.array_equal(label, np.argmax(probs, -1))
    float_image = held_out_scenes(1)[0].astype(np.float32)
    np.testing.assert_array_equal(dynamic.predict(float_image)[0],
                                  dynamic.predict(float_image.astype(np.uint8))[0])


def test_errors(art, tmp_path, image_dir, capsys):
    from deconvnet_tf.cli.lite_predict import main
    from deconvnet_tf.lite import LiteSegmenter, ModelMetadata, list_images

    with pytest.raises(FileNotFoundError, match="not found"):
        LiteSegmenter(tmp_path / "missing.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="not a TFLite model"):
        LiteSegmenter(junk)
    with pytest.raises(ValueError, match="threads"):
        LiteSegmenter(art.tflite["none"], threads=0)
    seg = LiteSegmenter(art.tflite["none"])
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        seg.predict(np.zeros((8, 8), np.uint8))
    # the pixel check every runtime shares (deconvnet_tf.io.check_pixels)
    nan = np.zeros((8, 8, 3))
    nan[2, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"predict: 1 NaN or infinite value\(s\)"):
        seg.predict(nan)
    with pytest.raises(ValueError, match=r"values 300..300 \(int64\)"):
        seg.predict(np.full((8, 8, 3), 300))
    wrong = ModelMetadata.create("m", "deconvnet", ["a", "b"], input_shape=[1, None, None, 3])
    with pytest.raises(ValueError, match="lists 2 classes, the model outputs 5"):
        LiteSegmenter(art.tflite["none"], metadata=wrong)
    with pytest.raises(ValueError, match="No images"):
        list_images(tmp_path)
    with pytest.raises(ValueError, match="not an image file"):
        list_images(image_dir / "notes.txt")
    assert main(["--model", str(art.tflite["none"]), "--output", str(tmp_path / "o"),
                 "--input", str(tmp_path / "nope.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deconvnet-lite-predict: error: Input not found") and "nope.png" in err
    with pytest.raises(SystemExit) as exc:
        main(["--model", str(art.tflite["none"]), "--output", str(tmp_path / "o"),
              "--input", str(image_dir), "--threads", "0"])
    assert exc.value.code == 2
    assert "argument --threads: expected an integer >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_small_images_follow_the_keras_size_rule(tmp_path):
    """Below the network's minimum (17) a dynamic model gets the image padded with the mean
    colour and the scores cropped back, as the Keras and SavedModel predictors do, so the
    probabilities agree with Keras (the runtime used to scale such images up instead). A
    randomly initialised network: its probabilities are far from saturated, so a different
    size rule shows."""
    import dataclasses

    import deconvnet_tf
    from deconvnet_tf.export import export_tflite
    from deconvnet_tf.inference.predict import as_predictor, predict_image
    from deconvnet_tf.lite import LiteSegmenter

    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    seg = LiteSegmenter(export_tflite(model, tmp_path / "random.tflite"))
    assert seg.min_input_size == 17 and seg.fixed_size is None
    image = held_out_scenes(1, 32, 40)[0][:10]
    label, probs = seg.predict(image)
    # The Keras predictor fed uint8 (padding rounded to whole pixel values, as for LiteRT).
    expected = predict_image(dataclasses.replace(as_predictor(model), input_dtype="uint8"), image)
    assert probs.shape == expected.shape == (10, 40, 5)
    np.testing.assert_allclose(probs, expected, atol=1e-4)
    assert_labels_match(label, expected, 1e-4, min_decided=0.5)  # untrained: near-ties


def test_max_pixels_bounds_the_model_input(art, tmp_path, capsys):
    import cv2

    from deconvnet_tf.cli.lite_predict import main
    from deconvnet_tf.lite import LiteSegmenter

    image = held_out_scenes(1, 96, 128)[0]
    seen = []
    seg = LiteSegmenter(art.tflite["none"], max_pixels=3072)
    run = seg.run
    seg.run = lambda batch: (seen.append(batch.shape), run(batch))[1]
    label, probs = seg.predict(image)
    assert seen == [(1, 48, 64, 3)] and label.shape == (96, 128) and probs.shape[:2] == (96, 128)
    small = LiteSegmenter(art.tflite["none"]).predict(
        cv2.resize(image, (64, 48), interpolation=cv2.INTER_AREA))[1]
    np.testing.assert_allclose(probs, cv2.resize(small, (128, 96)), atol=1e-5)
    # The command line: a warning with the size used, labels at the image's size.
    cv2.imwrite(str(tmp_path / "big.png"), image[..., ::-1])
    assert main(["--model", str(art.tflite["none"]), "--input", str(tmp_path / "big.png"),
                 "--output", str(tmp_path / "out"), "--max-pixels", "3072"]) == 0
    err = capsys.readouterr().err
    assert "deconvnet-lite-predict: warning: " in err and "predicting at 48x64" in err
    written = cv2.imread(str(tmp_path / "out" / "big_labels.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(written, cv2.resize(small, (128, 96)).argmax(-1))


def test_model_without_sidecar_uses_defaults(art, tmp_path):
    from deconvnet_tf.lite import LiteSegmenter

    bare = tmp_path / "bare.tflite"
    shutil.copy(art.tflite["none"], bare)
    seg = LiteSegmenter(bare)
    assert seg.metadata is None and seg.class_names == [f"class_{i}" for i in range(5)]
    assert seg.palette.shape == (5, 3)


def test_metadata_roundtrip_and_validation(tmp_path):
    from deconvnet_tf.lite import (
        METADATA_FORMAT,
        MetadataError,
        ModelMetadata,
        metadata_path,
        read_metadata,
        write_metadata,
    )

    meta = ModelMetadata.create("net", "deconvnet", ["bg", "cat"], input_shape=[1, 64, 96, 3],
                                min_input_size=17, quantize="int8")
    path = write_metadata(tmp_path / "net.tflite", meta)
    assert path == tmp_path / "net.json" == metadata_path(tmp_path / "net.tflite")
    assert read_metadata(tmp_path / "net.tflite") == meta == read_metadata(path)
    assert meta.fixed_size == (64, 96) and meta.num_classes == 2
    assert meta.outputs["labels"]["shape"] == [1, 64, 96]
    assert metadata_path(tmp_path) == tmp_path / "assets" / "deconvnet_metadata.json"
    data = json.loads(path.read_text())
    assert data["schema"] == METADATA_FORMAT and data["palette"] == [[0, 0, 0], [128, 0, 0]]
    assert read_metadata(tmp_path / "other.tflite", required=False) is None
    with pytest.raises(MetadataError, match="not found"):
        read_metadata(tmp_path / "other.tflite")
    for broken, message in [("{", "not valid JSON"),
                            (json.dumps({**data, "schema": "x"}), "expected schema"),
                            (json.dumps({**data, "colour": 1}), "unknown metadata keys"),
                            (json.dumps({"schema": METADATA_FORMAT}), "missing metadata keys")]:
        path.write_text(broken)
        with pytest.raises(MetadataError, match=message):
            read_metadata(path)
