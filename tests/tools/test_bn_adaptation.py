"""tools/bn_adaptation.py: the adapted layers match a NumPy restatement of alpha-mixed batch
norm per image, frozen layers and alpha 0 leave the model as it is, and the CLI's rows are
tools/multiscale_table.py's rows of the adapted model."""

from __future__ import annotations

import re

import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.data.sources import open_source
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from tests.conftest import requires_tf

import bn_adaptation  # tools/bn_adaptation.py (pytest's pythonpath has tools/)
import multiscale_table

pytestmark = requires_tf


def two_bn_model(frozen_second: bool = True):
    """Input -> BN (trained statistics) -> BN (frozen unless told otherwise), 3 channels."""
    import keras

    inputs = keras.Input((4, 5, 3))
    first = keras.layers.BatchNormalization(name="trained_bn")
    second = keras.layers.BatchNormalization(name="frozen_bn")
    model = keras.Model(inputs, second(first(inputs)))
    rng = np.random.default_rng(0)
    for layer in (first, second):
        layer.moving_mean.assign(rng.normal(size=3).astype("float32"))
        layer.moving_variance.assign(rng.uniform(0.5, 2.0, size=3).astype("float32"))
        layer.gamma.assign(rng.uniform(0.5, 1.5, size=3).astype("float32"))
        layer.beta.assign(rng.normal(size=3).astype("float32"))
    second.trainable = not frozen_second
    return model


def reference(x: np.ndarray, layer, alpha: float) -> np.ndarray:
    """alpha-BN in float64: per image, over its spatial positions."""
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    mean = (1 - alpha) * np.asarray(layer.moving_mean) + alpha * mean
    var = (1 - alpha) * np.asarray(layer.moving_variance) + alpha * var
    y = (x - mean) / np.sqrt(var + layer.epsilon)
    return y * np.asarray(layer.gamma) + np.asarray(layer.beta)


def frozen(x: np.ndarray, layer) -> np.ndarray:
    return reference(x, layer, 0.0)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_matches_numpy_per_image_and_skips_frozen_layers(alpha):
    model = two_bn_model()
    x = np.random.default_rng(1).normal(2.0, 3.0, size=(2, 4, 5, 3)).astype("float32")
    count = bn_adaptation.adapt_batchnorm(model, alpha)
    assert count == (0 if alpha == 0 else 1)  # the frozen layer is never adapted
    first, second = model.get_layer("trained_bn"), model.get_layer("frozen_bn")
    expected = frozen(reference(x.astype(np.float64), first, alpha), second)
    got = np.asarray(model.predict_on_batch(x))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    alone = np.asarray(model.predict_on_batch(x[1:]))  # per image: the batch does not matter
    np.testing.assert_allclose(alone[0], got[1], rtol=1e-5, atol=1e-5)


def test_a_trainable_second_layer_adapts_too():
    model = two_bn_model(frozen_second=False)
    assert bn_adaptation.adapt_batchnorm(model, 0.5) == 2


def test_alpha_zero_leaves_a_network_as_it_is():
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    x = np.random.default_rng(2).uniform(0, 255, size=(1, 32, 32, 3)).astype("float32")
    before = np.asarray(model.predict_on_batch(x))
    assert bn_adaptation.adapt_batchnorm(model, 0) == 0
    fresh = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    fresh.set_weights(model.get_weights())
    np.testing.assert_array_equal(np.asarray(fresh.predict_on_batch(x)), before)
    adapted = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    adapted.set_weights(model.get_weights())
    assert bn_adaptation.adapt_batchnorm(adapted, 1.0) > 0
    assert not np.allclose(np.asarray(adapted.predict_on_batch(x)), before)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, True, "0.1", float("nan")])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha must be a number in \\[0, 1\\]"):
        bn_adaptation.adapt_batchnorm(two_bn_model(), alpha)


def test_models_it_cannot_adapt():
    import keras

    inputs = keras.Input((4, 5, 3))
    plain = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    with pytest.raises(ValueError, match="no trained BatchNormalization layer"):
        bn_adaptation.adapt_batchnorm(plain, 0.1)
    first = keras.layers.BatchNormalization(axis=1, name="channels_first_bn")
    channels_first = keras.Model(inputs, first(inputs))
    with pytest.raises(ValueError, match="channels_first_bn.*channels-last.*axis 1"):
        bn_adaptation.adapt_batchnorm(channels_first, 0.1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bn")
    data = write_synthetic_dataset(root / "ds", num_train=1, num_val=2, height=40, width=48)
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=11)
    model.save(root / "model.keras")
    return root / "model.keras", data


def test_rows_are_multiscale_rows_of_the_adapted_model(run, capsys):
    path, data = run
    assert bn_adaptation.main(["--model", str(path), "--data", str(data), "--split", "val",
                               "--size", "32x40", "--alphas", "0", "0.5", "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "| alpha | mean IoU (32x40) | + flip |"
    source = open_source(data)
    for line, alpha in zip(lines[2:], (0.0, 0.5), strict=True):
        model = multiscale_table._load(str(path), own=True)
        bn_adaptation.adapt_batchnorm(model, alpha)
        reports = multiscale_table.score_subsets(model, source, "val", [(32, 40)])
        expected = [f"{100 * reports[k].mean_iou:.1f}" for k in ("32x40", "32x40 flip")]
        assert line == f"| {alpha:g} | {expected[0]} | {expected[1]} |"


def test_crf_rows(run, capsys):
    path, data = run
    assert bn_adaptation.main(["--model", str(path), "--data", str(data), "--split", "val",
                               "--crf", "--alphas", "0.25", "--limit", "1", "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = open_source(data).info.class_names
    assert lines[0] == "| alpha | method | " + " | ".join(names) + " | mean IoU |"
    assert [line.split(" | ")[:2] for line in lines[2:]] == [["| 0.25", "network"],
                                                             ["| 0.25", "+ CRF"]]


@pytest.mark.parametrize("args, message", [
    (["--alphas", "2"], "expected a number in \\[0, 1\\], got '2'"),
    (["--alphas", "x"], "expected a number in \\[0, 1\\], got 'x'"),
    (["--crf", "--size", "32x40"], "--size and --color-target are not used with --crf"),
    ([], "--size is required without --crf"),
])
def test_bad_arguments(run, capsys, args, message):
    path, data = run
    with pytest.raises(SystemExit) as exit_info:
        bn_adaptation.main(["--model", str(path), "--data", str(data), *args])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_too_small_size_names_the_flag(run, capsys):
    path, data = run
    assert bn_adaptation.main(["--model", str(path), "--data", str(data), "--size", "4x4",
                               "--quiet"]) == 2
    assert re.search(r"^bn_adaptation: error: --size 4x4 is below the minimum input size",
                     capsys.readouterr().err)


def test_missing_model_is_a_clear_error(run, capsys, tmp_path):
    _, data = run
    missing = tmp_path / "none.keras"
    assert bn_adaptation.main(["--model", str(missing), "--data", str(data),
                               "--size", "32x40"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bn_adaptation: error:") and "none.keras" in err
