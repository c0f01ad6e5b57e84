"""SavedModel export: serving signature, reload, atomic writes, load_saved_model."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import assert_labels_match, requires_tf
from tests.export.artifacts import CLASSES, get_artifacts

pytestmark = requires_tf


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    return get_artifacts(tmp_path_factory)


def test_serving_signature(art):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(art.saved_model))
    fn = loaded.signatures["serving_default"]
    spec = fn.structured_input_signature[1]["images"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, None, None, 3]
    assert set(fn.structured_outputs) == {"probabilities", "labels"}
    batch = np.stack([np.full((40, 50, 3), v, np.uint8) for v in (0, 128, 255)])
    out = fn(images=tf.constant(batch))
    assert out["probabilities"].shape == (3, 40, 50, len(CLASSES))
    assert out["labels"].dtype == tf.int32 and out["labels"].shape == (3, 40, 50)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1, atol=1e-5)


def test_metadata_in_assets(art):
    from deconvnet_tf.lite import read_metadata

    meta = read_metadata(art.saved_model)
    assert (art.saved_model / "assets" / "deconvnet_metadata.json").is_file()
    assert meta.format == "saved_model" and meta.class_names == CLASSES
    assert meta.input_shape == [None, None, None, 3] and meta.min_input_size == 17
    assert meta.palette_array().shape == (len(CLASSES), 3)


def test_load_saved_model_predictor(art, rng):
    from deconvnet_tf.export import load_saved_model

    predictor = load_saved_model(art.saved_model)
    assert predictor.class_names == CLASSES and predictor.fixed_size is None
    images = rng.integers(0, 256, (2, 30, 41, 3), dtype=np.uint8)
    probs = predictor(images)
    expected = np.asarray(art.model(images.astype("float32"), training=False))
    expected = np.exp(expected - expected.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    assert probs.shape == (2, 30, 41, len(CLASSES))
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    label, single = predictor.predict(images[0])
    assert_labels_match(label, expected[0], 1e-5)
    small = predictor(images[0, :9, :12])  # below the minimum 17: scaled up and back
    assert small.shape == (9, 12, len(CLASSES))


def test_fixed_size_export_replaces_atomically(art, tmp_path, monkeypatch, rng):
    import deconvnet_tf.export.saved_model as sm
    from deconvnet_tf.export import ExportError, export_saved_model, load_saved_model

    target = tmp_path / "fixed"
    export_saved_model(art.model, target, input_size="48x64", class_names=CLASSES)
    predictor = load_saved_model(target)
    assert predictor.fixed_size == (48, 64)
    probs = predictor(rng.integers(0, 256, (1, 60, 80, 3), dtype=np.uint8))
    assert probs.shape == (1, 60, 80, len(CLASSES))  # resized to 48x64 and back

    before = sorted(p.name for p in target.rglob("*"))

    def broken(model, directory, input_shape, **kwargs):
        directory.mkdir()
        (directory / "saved_model.pb").write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sm, "write_archive", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(art.model, target)
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(art.model, tmp_path / "new")
    assert sorted(p.name for p in target.rglob("*")) == before  # old export intact
    assert not (tmp_path / "new").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["fixed"]  # no temporary leftovers
    with pytest.raises(ExportError, match="below the model's minimum"):
        export_saved_model(art.model, tmp_path / "x", input_size="8x8")
    with pytest.raises(ExportError, match="not a SavedModel"):
        load_saved_model(tmp_path)
