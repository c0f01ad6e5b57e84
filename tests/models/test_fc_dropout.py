"""``fc_dropout``: dropout after fc6 and fc7, in the architecture, the saved model and training."""

from __future__ import annotations

import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.models.presets import get_architecture
from deconvnet_tf.training.config import ConfigError, TrainConfig
from tests.conftest import requires_tf

DROPOUT_LAYERS = ["fc6_dropout", "fc7_dropout"]


def _dropout_names(model) -> list[str]:
    return [layer.name for layer in model.layers if "dropout" in layer.name]


@pytest.mark.jax
@pytest.mark.parametrize("preset", ["deconvnet_tiny", "fcn8s_tiny"])
def test_dropout_layers_only_when_set_and_active_only_in_training(preset, rng):
    plain = deconvnet_tf.build_model(preset, num_classes=3, input_shape=(32, 32, 3))
    assert _dropout_names(plain) == []  # rate 0 adds no layer: old models keep their layers
    model = deconvnet_tf.build_model(preset, num_classes=3, input_shape=(32, 32, 3),
                                     fc_dropout=0.5)
    assert _dropout_names(model) == DROPOUT_LAYERS
    assert model.architecture.fc_dropout == 0.5
    x = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(model(x, training=False)),
                                  np.asarray(model(x, training=False)))
    # Training mode: BatchNorm uses the batch's statistics (the same for both calls), so two
    # calls differ only through the dropout masks; without dropout they agree.
    first, second = model(x, training=True), model(x, training=True)
    assert not np.allclose(np.asarray(first), np.asarray(second))
    np.testing.assert_allclose(np.asarray(plain(x, training=True)),
                               np.asarray(plain(x, training=True)), rtol=1e-5, atol=1e-5)


@pytest.mark.jax
def test_saved_model_keeps_its_dropout(tmp_path, rng):
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3, fc_dropout=0.25)
    path = tmp_path / "dropout.keras"
    model.save(path)
    loaded = deconvnet_tf.load_model(path)
    assert loaded.architecture.fc_dropout == 0.25 and _dropout_names(loaded) == DROPOUT_LAYERS
    x = rng.uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2.0, float("nan")])
def test_bad_rates_name_the_field(bad):
    with pytest.raises(ValueError, match=r"fc_dropout must be a number in \[0, 1\)"):
        get_architecture("deconvnet_tiny", fc_dropout=bad)
    with pytest.raises(ConfigError, match=r"config field .fc_dropout.: must be a"):
        TrainConfig(fc_dropout=bad)


@requires_tf  # tf.data input pipelines
def test_training_builds_the_configured_dropout(tmp_path):
    from deconvnet_tf.training.train import train

    config = TrainConfig(preset="deconvnet_tiny", output=str(tmp_path / "run"), epochs=1,
                         batch_size=4, crop_size=[48, 64], optimizer="adam",
                         learning_rate=3e-3, bn_momentum=0.9, fc_dropout=0.5,
                         synthetic_train=8, synthetic_val=4, synthetic_size=[48, 64],
                         steps_per_epoch=2, deterministic=True, mixed_precision=False)
    result = train(config, verbose=0)
    assert np.all(np.isfinite(result.history["loss"]))
    model = deconvnet_tf.load_model(result.model_path)
    assert model.architecture.fc_dropout == 0.5 and _dropout_names(model) == DROPOUT_LAYERS
    assert TrainConfig.load(tmp_path / "run" / "config.json").fc_dropout == 0.5


@pytest.mark.parametrize("field", ["fc_dropout", "bn_momentum"])
@pytest.mark.parametrize("bad", ["abc", None, True, [0.5]])
def test_non_numbers_name_the_field(field, bad):
    with pytest.raises(ValueError, match=rf"{field} must be a number in \[0, 1\), got"):
        deconvnet_tf.build_model("deconvnet_tiny", **{field: bad})
