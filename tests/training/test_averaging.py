"""WeightEMA against a NumPy reference (with and without warm-up), its state file, and
``ema_decay`` inside train(): model.keras holds the average, checkpoints/last.keras the trained
weights, and an interrupted or continued run ends with the average of an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from deconvnet_tf.training.averaging import WeightEMA
from deconvnet_tf.training.checkpointing import restore_backup
from deconvnet_tf.training.config import ConfigError, TrainConfig
from deconvnet_tf.training.train import train
from tests.training.test_resume import Interrupt, InterruptAt, config_for, weights


class Record(keras.callbacks.Callback):
    """The model's weights after every training step (runs after the EMA in the list)."""

    def __init__(self):
        super().__init__()
        self.start, self.steps = None, []

    def _weights(self):
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        return [keras.ops.convert_to_numpy(v.value).copy() for v in self.model.weights]

    def on_train_begin(self, logs=None):
        if self.start is None:
            self.start = self._weights()

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(self._weights())


def small_model():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.BatchNormalization(momentum=0.5), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def reference_ema(start, steps, decay, warmup):
    average = [w.astype(np.float64) for w in start]
    for n, step in enumerate(steps, start=1):
        d = min(decay, n / (n + 9)) if warmup else decay
        average = [d * a + (1 - d) * w for a, w in zip(average, step)]
    return average


def fit_with(ema, model, batches=6):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4 * batches, 3)), rng.normal(size=(4 * batches, 1))
    start = [np.asarray(w).copy() for w in model.weights]
    record = Record()
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[ema, record])
    return start, record.steps


@pytest.mark.jax
@pytest.mark.parametrize("warmup", [True, False])
def test_average_matches_numpy_reference(warmup):
    model = small_model()
    ema = WeightEMA(0.8, warmup=warmup)
    start, steps = fit_with(ema, model)
    assert ema.updates == 6
    expected = reference_ema(start, steps, 0.8, warmup)
    trained = [np.asarray(w).copy() for w in model.weights]
    ema.apply(model)  # includes the BatchNorm moving statistics
    for got, want in zip(model.weights, expected):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
    assert not all(np.allclose(a, np.asarray(b)) for a, b in zip(trained, model.weights))


def test_warmup_decay_and_bad_decay():
    ema = WeightEMA(0.99)
    assert ema.current_decay() == pytest.approx(1 / 10)  # the first update keeps 90% of w
    ema.updates = 10_000
    assert ema.current_decay() == 0.99
    assert WeightEMA(0.99, warmup=False).current_decay() == 0.99
    for bad in (0, 1, 1.5, -0.1, float("nan"), True, "0.9"):
        with pytest.raises(ValueError, match="decay must be a number with 0 < decay < 1"):
            WeightEMA(bad)
    with pytest.raises(ValueError, match="no average yet"):
        WeightEMA(0.9).apply(small_model())


def test_state_file_round_trip_and_errors(tmp_path):
    model = small_model()
    ema = WeightEMA(0.8)
    fit_with(ema, model)
    ema.save_state(tmp_path / "ema.npz")
    again = WeightEMA(0.8)
    again.load_state(tmp_path / "ema.npz", model)
    assert again.updates == 6
    for a, b in zip(again._averages, ema._averages):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"ema.npz.*do not match the model's 2 averaged"):
        again.load_state(tmp_path / "ema.npz", other)
    (tmp_path / "bad.npz").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match=r"weight average '.*bad.npz' is unreadable"):
        again.load_state(tmp_path / "bad.npz", model)


def test_config_field():
    assert TrainConfig().ema_decay == 0.0
    assert TrainConfig(ema_decay=0.99).ema_decay == 0.99
    for bad in (1, 1.0, -0.5, float("inf")):
        with pytest.raises(ConfigError, match="config field 'ema_decay': must be a"):
            TrainConfig(ema_decay=bad)


@pytest.fixture(scope="module")
def ema_reference(tmp_path_factory):
    """The uninterrupted 3-epoch run with an average, and the weights after every step."""
    config = config_for(tmp_path_factory.mktemp("ema"), ema_decay=0.5)
    record = Record()
    result = train(config, verbose=0, callbacks=[record])
    return config, result, record


@pytest.mark.slow
def test_train_saves_the_average_and_keeps_the_trained_weights(ema_reference):
    config, result, record = ema_reference
    out = Path(config.output)
    assert len(record.steps) == 6  # 3 epochs of 2 steps
    for got, want in zip(weights(out / "checkpoints" / "last.keras"), record.steps[-1]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    expected = reference_ema(record.start, record.steps, 0.5, True)
    saved = weights(out / "model.keras")
    for got, want in zip(saved, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not all(np.allclose(a, b) for a, b in zip(saved, record.steps[-1]))
    assert not (out / "backup").exists()


@pytest.mark.jax
@pytest.mark.slow
def test_interrupted_mid_epoch_ends_with_the_same_average(tmp_path, ema_reference):
    config = config_for(tmp_path, ema_decay=0.5, checkpoint_every=1)
    with pytest.raises(Interrupt):
        train(config, verbose=0, callbacks=[InterruptAt(batch_begin=(1, 1))])
    backup = Path(config.output) / "backup"
    meta = json.loads((backup / "training_metadata.json").read_text())
    assert (meta["epoch"], meta["step"]) == (1, 1) and meta["extras"] == {"ema": "ema-e1-s1.npz"}
    assert sorted(p.name for p in backup.glob("*.npz")) == ["ema-e1-s1.npz"]
    result = train(config, verbose=0)
    for a, b in zip(weights(result.model_path), weights(ema_reference[1].model_path)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_finished_run_continued_ends_with_the_same_average(tmp_path, ema_reference):
    """A 2-epoch run continued to 3 (``resume``) restarts the average from model.keras and the
    training from checkpoints/last.keras: the average of the 3-epoch run."""
    train(config_for(tmp_path, ema_decay=0.5, epochs=2), verbose=0)
    result = train(config_for(tmp_path, ema_decay=0.5), verbose=0, resume=True)
    assert (result.initial_epoch, result.epochs_done) == (2, 3)
    for a, b in zip(weights(result.model_path), weights(ema_reference[1].model_path)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_backup_without_the_average_is_refused(tmp_path):
    model = small_model()
    folder = tmp_path / "backup"
    folder.mkdir()
    model.save_weights(folder / "state-e1-s0.weights.h5")
    (folder / "training_metadata.json").write_text(
        json.dumps({"epoch": 1, "step": 0, "weights": "state-e1-s0.weights.h5"}))
    assert restore_backup(model, folder) == (1, 0)
    with pytest.raises(ValueError, match=r"training_metadata.json' holds no 'ema' state"):
        restore_backup(model, folder, extras=[WeightEMA(0.9)])
