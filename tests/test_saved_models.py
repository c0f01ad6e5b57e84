"""The models shipped in saved_models/ load and predict, in Keras and on LiteRT, with their
metadata (class names, palette) and model card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import deconvnet_tf
from tests.conftest import requires_tf

SAVED = Path(__file__).resolve().parents[1] / "saved_models"
SHIPPED = sorted(p.stem for p in SAVED.glob("*.keras"))


def test_models_are_shipped_within_budget():
    assert {"camvid_compact", "horse_compact"} <= set(SHIPPED)
    total = sum(p.stat().st_size for p in SAVED.iterdir() if p.is_file())
    assert total < 60 * 2**20, f"saved_models/ holds {total / 2**20:.1f} MiB (budget 60)"


@requires_tf  # the argmax pooling of the saved models is rebuilt as switch pooling elsewhere
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_and_predicts(name, tmp_path):
    from deconvnet_tf.inference.predict import predict_image
    from deconvnet_tf.lite import LiteSegmenter

    meta = json.loads((SAVED / f"{name}.json").read_text())
    classes = meta["class_names"]
    assert (SAVED / f"{name}.md").read_text().startswith(f"# Model card: `{name}`")
    model = deconvnet_tf.load_model(SAVED / f"{name}.keras")
    assert model.output_shape[-1] == len(classes)
    fixed = meta["input_shape"][1:3]
    height, width = fixed if None not in fixed else (45, 61)
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    keras_probs = predict_image(model, image)
    assert keras_probs.shape == (height, width, len(classes))
    np.testing.assert_allclose(keras_probs.sum(-1), 1.0, atol=1e-4)
    for suffix in ("", "_int8"):
        segmenter = LiteSegmenter(SAVED / f"{name}{suffix}.tflite", threads=1)
        assert list(segmenter.class_names) == classes
        label, probs = segmenter.predict(image)
        assert label.shape == (height, width) and probs.shape == (height, width, len(classes))
        if not suffix:  # fp32 LiteRT: the Keras model's labels
            assert (label == keras_probs.argmax(-1)).mean() > 0.999
