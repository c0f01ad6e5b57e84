"""EnsembleNetwork (EDeconvNet as one network) and float16 weight storage of .keras files:
the mean of the members' probabilities against a NumPy reference, the mixing weights, errors,
and the Segmenter round trip with float16 storage on every backend."""

from __future__ import annotations

import zipfile

import numpy as np
import keras
import pytest

import deconvnet_tf
from deconvnet_tf.models import EnsembleNetwork, store_weights


def _softmax(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def members():
    keras.utils.set_random_seed(7)
    return (deconvnet_tf.build_model("deconvnet_tiny", num_classes=3),
            deconvnet_tf.build_model("fcn8s_tiny", num_classes=3))


@pytest.mark.jax
@pytest.mark.parametrize("weights", [None, [3.0, 1.0], [0.0, 2.0]])
def test_the_weighted_mean_of_the_members_probabilities(members, rng, weights):
    image = rng.integers(0, 256, (2, 40, 56, 3)).astype("float32")
    ensemble = EnsembleNetwork(list(members), weights=weights)
    w = np.ones(2) if weights is None else np.asarray(weights)
    expected = sum(wi / w.sum() * _softmax(m(image)) for wi, m in zip(w, members))
    out = np.asarray(ensemble(image))
    np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    assert ensemble.output_activation == "softmax"
    assert ensemble.min_input_size == max(m.min_input_size for m in members)
    # the members' variables, not copies: no parameters of its own
    assert ensemble.count_params() == sum(m.count_params() for m in members)


def test_odd_sizes(members):
    ensemble = EnsembleNetwork(list(members))
    for size in ((17, 23), (33, 17)):
        assert tuple(ensemble(np.zeros((1, *size, 3), "float32")).shape) == (1, *size, 3)


def test_bad_members_and_weights_are_named(members):
    tiny, fcn = members
    with pytest.raises(ValueError, match="two or more"):
        EnsembleNetwork([tiny])
    with pytest.raises(ValueError, match="2 weights for 3 members"):
        EnsembleNetwork([tiny, fcn, tiny], weights=[1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        EnsembleNetwork([tiny, fcn], weights=[1, -1])
    with pytest.raises(ValueError, match="different numbers of classes"):
        EnsembleNetwork([tiny, deconvnet_tf.build_model("fcn8s_tiny", num_classes=4)])
    softmax = deconvnet_tf.build_model("fcn8s_tiny", num_classes=3, output_activation="softmax")
    with pytest.raises(ValueError, match="outputs probabilities"):
        EnsembleNetwork([tiny, softmax])
    effnet = deconvnet_tf.build_model("fcn8s_efficientnet_lite0", num_classes=3)
    with pytest.raises(ValueError, match="preprocess images differently"):
        EnsembleNetwork([tiny, effnet])


@pytest.mark.jax
def test_segmenter_file_with_float16_weights(members, rng, tmp_path):
    ensemble = EnsembleNetwork(list(members), weights=[2.0, 1.0])
    seg = deconvnet_tf.Segmenter(ensemble, class_names=["a", "b", "c"], test_time_flip=True)
    seg.save(tmp_path / "fp32.keras")
    half = seg.with_options(weights_storage="float16")
    half.save(tmp_path / "fp16.keras")
    size32, size16 = ((tmp_path / f"{n}.keras").stat().st_size for n in ("fp32", "fp16"))
    float_bytes = 4 * seg.count_params()
    assert size32 - size16 >= 0.49 * float_bytes  # two bytes saved per weight
    loaded = deconvnet_tf.load_model(tmp_path / "fp16.keras")
    assert isinstance(loaded.network, EnsembleNetwork)
    assert loaded.weights_storage == "float16" and loaded.test_time_flip
    assert loaded.network.mixing_weights == [2.0, 1.0]
    assert {str(v.dtype) for v in loaded.weights} == {"float32"}
    for ours, saved in zip(loaded.get_weights(), seg.get_weights()):  # float16 rounding only
        np.testing.assert_allclose(ours, saved, rtol=2**-10, atol=1e-7)
    images = rng.integers(0, 256, (3, 40, 56, 3)).astype("uint8")
    # rounded weights move the probabilities a little (and a pooling switch here and there)
    ours, saved = loaded.predict_proba(images), seg.predict_proba(images)
    diff = np.abs(ours - saved)
    assert diff.mean() < 1e-3 and diff.max() < 0.1
    assert (ours.argmax(-1) == saved.argmax(-1)).mean() > 0.99
    loaded.save(tmp_path / "again.keras")  # the setting travels: saved as float16 again
    assert (tmp_path / "again.keras").stat().st_size <= size16 + 1024


def test_store_weights_float32_is_a_no_op_and_errors_are_clear(members, tmp_path):
    model = members[1]
    path = tmp_path / "m.keras"
    model.save(path)
    before = path.read_bytes()
    assert store_weights(path, "float32") == {"arrays": 0, "max_relative_error": 0.0}
    assert path.read_bytes() == before
    with pytest.raises(ValueError, match="dtype must be one of"):
        store_weights(path, "bfloat16")
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        store_weights(tmp_path / "missing.keras")
    (tmp_path / "photo.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="photo.keras.*not a .keras model file"):
        store_weights(tmp_path / "photo.keras")
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(ValueError, match="no model.weights.h5"):
        store_weights(tmp_path / "other.keras")
    layer = model.get_layer("score_fr")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, np.full_like(bias, 1e5)])
    try:
        model.save(tmp_path / "big.keras")
    finally:
        layer.set_weights([kernel, bias])
    with pytest.raises(ValueError, match="beyond float16's range"):
        store_weights(tmp_path / "big.keras")


def test_store_weights_float16_rounds_only(members, tmp_path):
    model = members[0]
    path = tmp_path / "m.keras"
    model.save(path)
    stats = store_weights(path)
    assert stats["arrays"] == len(model.weights) and 0 < stats["max_relative_error"] <= 2**-11
    loaded = deconvnet_tf.load_model(path)
    for ours, saved in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(ours, saved.astype(np.float16).astype(np.float32))
