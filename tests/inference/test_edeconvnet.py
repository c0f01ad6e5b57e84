"""EDeconvNet and the probability combination, with fakes whose output depends on what they see,
so skipping or changing a step of the ensemble changes the result (mutation-checked)."""

from __future__ import annotations

import numpy as np
import pytest

from deconvnet_tf.inference.ensemble import combine_probabilities, predict_edeconvnet
from deconvnet_tf.inference.instance import predict_instances
from deconvnet_tf.inference.predict import Predictor, predict_image

pytestmark = pytest.mark.jax  # NumPy fakes: no TensorFlow needed


class Recorder:
    """A fake network: logits from the pixel colours (so crops see different things); records
    the shape of every batch it is called with."""

    def __init__(self, scale: float):
        self.scale = scale
        self.calls: list[tuple[int, ...]] = []

    def __call__(self, batch):
        batch = np.asarray(batch, np.float32)
        self.calls.append(batch.shape)
        red, green = batch[..., 0] / 255.0, batch[..., 1] / 255.0
        return self.scale * np.stack([red, green, 1.0 - red], axis=-1)


def scene() -> np.ndarray:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    image[10:30, 20:50, 0] = 250  # a red object: crops around it disagree with the whole image
    return image


BOXES = np.array([[18, 8, 52, 32], [0, 0, 40, 40], [24, 4, 63, 47], [30, 20, 60, 45]])


def predictors():
    dn_fn, fcn_fn = Recorder(6.0), Recorder(2.0)
    return (Predictor(dn_fn, outputs="logits"), dn_fn,
            Predictor(fcn_fn, outputs="logits"), fcn_fn)


@pytest.mark.parametrize("method", ["mean", "product"])
@pytest.mark.parametrize("aggregate", ["max", "mean"])
def test_edeconvnet_is_the_instance_pass_combined_with_the_whole_fcn(method, aggregate):
    image = scene()
    dn, _, fcn, _ = predictors()
    got = predict_edeconvnet(dn, fcn, image, method=method, boxes=BOXES, input_size=24,
                             batch_size=3, aggregate=aggregate)
    instance = predict_instances(dn, image, BOXES, input_size=24, batch_size=3,
                                 aggregate=aggregate)
    whole_fcn = predict_image(fcn, image)
    np.testing.assert_allclose(got, combine_probabilities([instance, whole_fcn], method),
                               rtol=1e-5, atol=1e-6)
    # Each ingredient matters: not the FCN alone, not the whole-image DeconvNet, and the
    # aggregation rule reaches the instance pass.
    whole_dn = predict_image(dn, image)
    assert not np.allclose(got, whole_fcn, atol=1e-3)
    assert not np.allclose(got, combine_probabilities([whole_dn, whole_fcn], method), atol=1e-3)
    other = "mean" if aggregate == "max" else "max"
    assert not np.allclose(
        got, predict_edeconvnet(dn, fcn, image, method=method, boxes=BOXES, input_size=24,
                                batch_size=3, aggregate=other), atol=1e-4)


def test_boxes_input_size_and_batch_size_reach_the_instance_pass():
    image = scene()
    dn, dn_calls, fcn, fcn_calls = predictors()
    predict_edeconvnet(dn, fcn, image, boxes=BOXES, input_size=24, batch_size=3)
    crops = [shape for shape in dn_calls.calls if shape[1:3] == (24, 24)]
    assert [shape[0] for shape in crops] == [3, 1]  # 4 boxes in batches of 3
    assert all(shape[1:3] in ((24, 24), (48, 64)) for shape in dn_calls.calls)
    assert fcn_calls.calls == [(1, 48, 64, 3)]  # the FCN sees the whole image once


def test_defaults_are_the_papers_crops_in_batches_of_eight():
    image = scene()
    dn, dn_calls, fcn, _ = predictors()
    boxes = np.tile(BOXES, (3, 1))[:10]
    predict_edeconvnet(dn, fcn, image, boxes=boxes)
    crops = [shape for shape in dn_calls.calls if shape[1:3] == (224, 224)]
    assert [shape[0] for shape in crops] == [8, 2]


def test_proposal_options_reach_the_proposals():
    image = scene()
    dn, dn_calls, fcn, _ = predictors()
    predict_edeconvnet(dn, fcn, image, input_size=24,
                       proposals={"top_k": 2, "edge": "gradient", "min_size": 8})
    crops = sum(shape[0] for shape in dn_calls.calls if shape[1:3] == (24, 24))
    assert 1 <= crops <= 2


def test_combine_checks_its_arguments_with_clear_messages():
    a = np.full((2, 2, 3), 1 / 3, np.float32)
    with pytest.raises(ValueError, match="combine_probabilities needs at least one probability"):
        combine_probabilities([])
    with pytest.raises(ValueError, match="models must predict the same classes"):
        combine_probabilities([a, a[..., :2]])
    for weights in ([-1, 3], [0, 0], [1, 1, 1]):
        with pytest.raises(ValueError, match="weights must be 2 non-negative numbers"):
            combine_probabilities([a, a], weights=weights)


def test_combine_returns_float32_distributions_from_any_input():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), (3, 5))  # float64
    for method in ("mean", "product"):
        out = combine_probabilities([p], method)  # one map: itself, renormalised
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, p, rtol=1e-5)
        out = combine_probabilities([p, p[::-1]], method, weights=[1, 3])
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.sum(-1), 1, rtol=1e-5)


def test_product_is_stable_per_pixel_with_large_exponents():
    """Per-pixel max subtraction in log space: tiny products still give distributions."""
    flat = np.array([[[0.3, 0.3, 0.4], [0.98, 0.01, 0.01]]])
    out = combine_probabilities([flat, flat], "product", weights=[100, 100])
    np.testing.assert_allclose(out.sum(-1), 1, rtol=1e-5)
    assert out[0, 0].argmax() == 2 and out[0, 1].argmax() == 0
