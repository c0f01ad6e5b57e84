"""Learning-rate schedules, validation epochs and the best-checkpoint choice (NumPy references)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deconvnet_tf.training.callbacks import AtomicModelCheckpoint, lr_schedule
from deconvnet_tf.training.train import validation_epochs


@pytest.mark.parametrize("kind, expected", [
    ("step", [0.1, 0.1, 0.1, 0.01, 0.01, 0.01]),
    ("poly", [0.1 * (1 - e / 6) ** 0.9 for e in range(6)]),
    ("cosine", [0.1 * (1 + math.cos(math.pi * e / 6)) / 2 for e in range(6)]),
])
def test_schedules(kind, expected):
    schedule = lr_schedule(kind, 0.1, 6, every=3, factor=0.1)
    np.testing.assert_allclose([schedule(e) for e in range(6)], expected, rtol=1e-12)


def test_schedules_decrease_to_near_zero_and_never_go_negative():
    for kind in ("poly", "cosine"):
        schedule = lr_schedule(kind, 1.0, 40)
        values = [schedule(e) for e in range(45)]
        assert all(a >= b for a, b in zip(values, values[1:])), kind
        assert 0 < values[39] < 0.05 and min(values) >= 0, kind


def test_schedule_bad_arguments():
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        lr_schedule("linear", 0.1, 10)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        lr_schedule("poly", 0.1, 0)


@pytest.mark.parametrize("epochs, every, expected", [
    (5, 1, [1, 2, 3, 4, 5]), (10, 4, [4, 8, 10]), (8, 4, [4, 8]), (3, 5, [3])])
def test_validation_epochs(epochs, every, expected):
    assert validation_epochs(epochs, every) == expected


def _model():
    import keras

    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])


def test_best_checkpoint_ignores_epochs_without_validation(tmp_path):
    callback = AtomicModelCheckpoint(tmp_path, monitor="val_mean_iou", fallback=False)
    callback.set_model(_model())
    callback.on_epoch_end(0, {"mean_iou": 0.9})  # not validated: does not count
    assert callback.best is None and not (tmp_path / "best.keras").exists()
    callback.on_epoch_end(1, {"mean_iou": 0.5, "val_mean_iou": 0.3})
    callback.on_epoch_end(2, {"mean_iou": 0.99})
    assert callback.best == 0.3 and (tmp_path / "last.keras").is_file()
    fallback = AtomicModelCheckpoint(tmp_path / "f", monitor="val_mean_iou")
    fallback.set_model(_model())
    fallback.on_epoch_end(0, {"mean_iou": 0.9})
    assert fallback.best == 0.9
