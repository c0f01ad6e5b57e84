"""Learning-rate schedules, validation epochs and the best-checkpoint choice (NumPy references);
the names that moved out of training.callbacks still import from there, with a warning."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deconvnet_tf.training.checkpointing import AtomicModelCheckpoint
from deconvnet_tf.training.schedules import lr_schedule
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


def test_save_model_atomic_keeps_the_old_file_and_no_temp_file_on_failure(tmp_path, monkeypatch):
    from deconvnet_tf.training.checkpointing import save_model_atomic

    model = _model()
    path = save_model_atomic(model, tmp_path / "model.keras")
    before = path.read_bytes()
    seen = {}

    def crashing_save(target, *args, **kwargs):
        # A crash in the middle of writing: part of a file is on disk, the target is intact.
        with open(target, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")
        seen["target_during_write"] = path.read_bytes()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model, "save", crashing_save)
    with pytest.raises(OSError, match="No space left"):
        save_model_atomic(model, path)
    assert seen["target_during_write"] == before  # a kill at that moment leaves the old model
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]  # no temp file left


def test_training_backup_is_consistent_after_a_failed_save(tmp_path, monkeypatch):
    """A backup whose weights could not be written leaves the previous (weights, position)
    pair, which restores; a fresh model then gets exactly the backed-up weights."""
    import keras

    from deconvnet_tf.training.checkpointing import TrainingBackup, restore_backup

    model = _model()
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "mse")
    # Optimizer state set by hand, not by fit: tools/mutation.py runs this test in forked
    # workers, where TensorFlow's training loop can hang.
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(4)
    backup = TrainingBackup(tmp_path / "backup", every=1, steps_per_epoch=4)
    backup.set_model(model)
    backup.save(1, 0)
    saved = [np.asarray(w) for w in model.weights]
    iterations = int(model.optimizer.iterations)
    for weight in model.weights:  # the weights move on
        weight.assign(np.asarray(weight) + 1.0)
    model.optimizer.iterations.assign(8)

    def failing(target, *args, **kwargs):
        with open(target, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save_weights", failing)
    with pytest.raises(OSError):
        backup.save(1, 3)
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == [
        "state-e1-s0.weights.h5", "training_metadata.json"]
    fresh = _model()
    fresh.compile(keras.optimizers.SGD(0.1, momentum=0.9), "mse")
    assert restore_backup(fresh, tmp_path / "backup") == (1, 0)
    for a, b in zip(fresh.weights, saved):
        np.testing.assert_array_equal(np.asarray(a), b)
    assert int(fresh.optimizer.iterations) == iterations  # optimizer state restored too
    assert restore_backup(fresh, tmp_path / "nothing") is None


def test_best_value_is_restored_from_best_json(tmp_path):
    first = AtomicModelCheckpoint(tmp_path, monitor="val_mean_iou", fallback=False)
    first.set_model(_model())
    first.on_epoch_end(0, {"val_mean_iou": 0.6})
    stamp = (tmp_path / "best.keras").stat().st_mtime_ns
    resumed = AtomicModelCheckpoint(tmp_path, monitor="val_mean_iou", fallback=False)
    resumed.set_model(_model())
    assert resumed.restore_best() == 0.6
    resumed.on_epoch_end(1, {"val_mean_iou": 0.4})  # worse: best.keras stays
    assert (tmp_path / "best.keras").stat().st_mtime_ns == stamp
    other = AtomicModelCheckpoint(tmp_path, monitor="loss", mode="min", fallback=False)
    assert other.restore_best() is None  # recorded for another metric: not used


# Names of the old training.callbacks that moved (its former __all__) -> their module now.
MOVED = {
    "AtomicModelCheckpoint": "deconvnet_tf.training.checkpointing",
    "TrainingBackup": "deconvnet_tf.training.checkpointing",
    "restore_backup": "deconvnet_tf.training.checkpointing",
    "save_model_atomic": "deconvnet_tf.training.checkpointing",
    "set_batchnorm_sync": "deconvnet_tf.training.checkpointing",
    "LR_SCHEDULES": "deconvnet_tf.training.schedules",
    "lr_schedule": "deconvnet_tf.training.schedules",
    "step_decay": "deconvnet_tf.training.schedules",
}


@pytest.mark.parametrize("name, new", sorted(MOVED.items()))
def test_moved_names_warn_and_are_the_new_modules_objects(name, new):
    import importlib

    from deconvnet_tf.training import callbacks

    old = rf"deconvnet_tf\.training\.callbacks\.{name}"
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated.*{new}") as caught:
        value = getattr(callbacks, name)
    assert caught[0].filename == __file__  # attributed to the line that uses the old name
    assert value is getattr(importlib.import_module(new), name)
    assert name in dir(callbacks)


def test_old_import_statement_still_works_and_callbacks_keep_their_home():
    import warnings

    from deconvnet_tf.training import callbacks, checkpointing

    with pytest.warns(DeprecationWarning, match="deconvnet_tf.training.checkpointing") as caught:
        from deconvnet_tf.training.callbacks import save_model_atomic
    assert caught[0].filename == __file__
    assert save_model_atomic is checkpointing.save_model_atomic
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # what stays in callbacks.py imports without a warning
        from deconvnet_tf.training.callbacks import TimeEstimate, format_duration
    assert TimeEstimate.__module__ == "deconvnet_tf.training.callbacks"
    assert format_duration(30) == "30 s"
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(callbacks, "no_such_name")
