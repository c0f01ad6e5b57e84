"""Dense CRF (pydensecrf) and the EDeconvNet ensemble."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from deconvnet_tf.data.synthetic import make_scene
from deconvnet_tf.inference.crf import (
    CRF_PRESETS,
    crf_comparison,
    crf_settings,
    dense_crf,
)
from deconvnet_tf.inference.ensemble import combine_probabilities, predict_edeconvnet
from deconvnet_tf.inference.predict import Predictor, softmax


pytestmark = pytest.mark.jax  # no TensorFlow needed: also runs under KERAS_BACKEND=jax

def noisy_probabilities(label: np.ndarray, classes: int, seed: int = 0, noise: float = 1.6):
    """Probabilities that favour the true class, with strong per-pixel noise."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, noise, label.shape + (classes,))
    logits[np.arange(label.shape[0])[:, None], np.arange(label.shape[1]), label] += 1.5
    return softmax(logits)


def test_dense_crf_cleans_noisy_predictions_along_image_edges():
    image, label, _ = make_scene(2, 64, 96)
    probs = noisy_probabilities(label, 5)
    refined = dense_crf(image, probs)
    assert refined.shape == probs.shape and refined.dtype == np.float32
    np.testing.assert_allclose(refined.sum(-1), 1, atol=1e-4)
    before = (probs.argmax(-1) == label).mean()
    after = (refined.argmax(-1) == label).mean()
    assert before < 0.75 and after > before + 0.15


def test_presets_and_overrides():
    assert CRF_PRESETS["deconvnet"] == crf_settings()
    d = crf_settings()
    assert (d.gaussian_sxy, d.gaussian_compat, d.bilateral_sxy, d.bilateral_srgb,
            d.bilateral_compat, d.iterations) == (3, 3, 20, 3, 5, 10)
    assert crf_settings("deeplab").bilateral_sxy == 121
    assert crf_settings("deeplab", iterations=3).iterations == 3
    with pytest.raises(ValueError, match="Unknown CRF preset"):
        crf_settings("fancy")
    with pytest.raises(ValueError, match="Unknown CRF setting"):
        crf_settings(sigma=3)
    with pytest.raises(ValueError, match="iterations"):
        crf_settings(iterations=0)
    with pytest.raises(ValueError, match="bilateral_srgb must be > 0"):
        crf_settings(bilateral_srgb=-1)
    image, label, _ = make_scene(2, 32, 48)
    probs = noisy_probabilities(label, 5)
    one = dense_crf(image, probs, iterations=1)
    assert not np.allclose(one, dense_crf(image, probs))  # the override is used
    assert not np.allclose(dense_crf(image, probs, preset="deeplab"), dense_crf(image, probs))
    # no pairwise weight: the CRF keeps the unaries' argmax
    plain = dense_crf(image, probs, gaussian_compat=0, bilateral_compat=0)
    np.testing.assert_array_equal(plain.argmax(-1), probs.argmax(-1))


def test_bad_crf_inputs_give_clear_errors():
    image, label, _ = make_scene(2, 32, 48)
    probs = noisy_probabilities(label, 5)
    with pytest.raises(ValueError, match="size 16x48 do not match the image's 32x48"):
        dense_crf(image, probs[:16])
    with pytest.raises(ValueError, match="class axis first"):
        dense_crf(image, np.moveaxis(probs, -1, 0))
    with pytest.raises(ValueError, match="must sum to 1"):
        dense_crf(image, probs * 0.5)
    with pytest.raises(ValueError, match="not logits"):
        dense_crf(image, np.log(probs))
    with pytest.raises(ValueError, match="NaN"):
        dense_crf(image, np.where(label[..., None] == 0, np.nan, probs))
    with pytest.raises(ValueError, match=r"RGB \(H, W, 3\)"):
        dense_crf(image[..., 0], probs)


def test_missing_pydensecrf_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    monkeypatch.setitem(sys.modules, "pydensecrf", None)
    image, label, _ = make_scene(2, 32, 48)
    with pytest.raises(ImportError, match="pip install pydensecrf2"):
        dense_crf(image, noisy_probabilities(label, 5))


def test_crf_comparison_picture():
    image, label, _ = make_scene(2, 32, 48)
    refined, picture = crf_comparison(image, noisy_probabilities(label, 5), label=label)
    assert refined.shape == (32, 48, 5)
    assert picture.shape == (32, 4 * 48 + 3 * 4, 3) and picture.dtype == np.uint8


def test_combine_probabilities_mean_and_product():
    a = np.array([[[0.8, 0.2]]], np.float32)
    b = np.array([[[0.4, 0.6]]], np.float32)
    np.testing.assert_allclose(combine_probabilities([a, b], "mean"), [[[0.6, 0.4]]])
    product = np.array([0.32, 0.12]) / 0.44
    np.testing.assert_allclose(combine_probabilities([a, b], "product")[0, 0], product, rtol=1e-5)
    # weights; geometric mean with weights 1:0 is the first map
    np.testing.assert_allclose(combine_probabilities([a, b], "product", [1, 0]), a, rtol=1e-5)
    np.testing.assert_allclose(combine_probabilities([a, b], "mean", [3, 1]), [[[0.7, 0.3]]],
                               rtol=1e-6)
    with pytest.raises(ValueError, match="ensemble method"):
        combine_probabilities([a, b], "vote")
    with pytest.raises(ValueError, match="differ in shape"):
        combine_probabilities([a, np.ones((1, 1, 3)) / 3])
    with pytest.raises(ValueError, match="weights"):
        combine_probabilities([a, b], weights=[1])


def test_predict_edeconvnet_combines_instance_and_whole_predictions():
    image = np.full((40, 40, 3), 100, np.uint8)

    def deconvnet(batch):  # says class 1 everywhere it looks
        return np.broadcast_to(np.array([0.0, 4.0], np.float32), batch.shape[:3] + (2,))

    def fcn(batch):  # says class 0 with probability 0.9
        return np.broadcast_to(np.array([0.9, 0.1], np.float32), batch.shape[:3] + (2,))

    dn = Predictor(deconvnet, outputs="logits")
    fc = Predictor(fcn, outputs="probabilities")
    out = predict_edeconvnet(dn, fc, image, boxes=np.array([[0, 0, 20, 20]]), input_size=16)
    p1 = softmax(np.array([0.0, 4.0]))
    np.testing.assert_allclose(out[5, 5], (p1 + [0.9, 0.1]) / 2, rtol=1e-5)  # box
    np.testing.assert_allclose(out[30, 30], (p1 + [0.9, 0.1]) / 2, rtol=1e-5)  # whole pass
    prod = predict_edeconvnet(dn, fc, image, boxes=np.array([[0, 0, 20, 20]]), input_size=16,
                              method="product")
    expected = p1 * [0.9, 0.1]
    np.testing.assert_allclose(prod[5, 5], expected / expected.sum(), rtol=1e-5)
