"""Checkpointing units without training: BatchNorm sync around saves, the best/last rule and its
record, and when the resumable backup is written (mutation-checked with tools/mutation.py)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from deconvnet_tf.training.checkpointing import (
    AtomicModelCheckpoint,
    TrainingBackup,
    save_model_atomic,
    set_batchnorm_sync,
)
from tests.conftest import requires_tf


def _model_with_nested_batchnorm():
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3),
                              keras.layers.BatchNormalization(name="inner_bn")], name="inner")
    inputs = keras.Input((3,))
    x = keras.layers.BatchNormalization(name="outer_bn")(inner(inputs))
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(x))


def _bn(model):
    return [model.get_layer("inner").get_layer("inner_bn"), model.get_layer("outer_bn")]


def test_set_batchnorm_sync_reaches_nested_layers_and_returns_what_changed():
    model = _model_with_nested_batchnorm()
    inner_bn, outer_bn = _bn(model)
    assert set_batchnorm_sync(model, True) == [inner_bn, outer_bn]
    assert inner_bn.synchronized and outer_bn.synchronized
    assert set_batchnorm_sync(model, True) == []  # already set: nothing changed
    outer_bn.synchronized = False
    assert set_batchnorm_sync(model, False) == [inner_bn]
    assert not inner_bn.synchronized and not outer_bn.synchronized


@requires_tf  # synchronized BatchNorm is a tf.distribute setting
def test_saved_files_have_per_device_batchnorm_and_the_model_keeps_its_setting(tmp_path):
    model = _model_with_nested_batchnorm()
    set_batchnorm_sync(model, True)
    path = save_model_atomic(model, tmp_path / "new" / "folder" / "m.keras")
    assert path == tmp_path / "new" / "folder" / "m.keras" and path.is_file()
    assert all(layer.synchronized for layer in _bn(model))  # restored after the save
    loaded = keras.saving.load_model(path)
    assert not any(layer.synchronized for layer in _bn(loaded))
    plain = _model_with_nested_batchnorm()  # per-device BatchNorm stays per-device
    save_model_atomic(plain, tmp_path / "plain.keras")
    assert [layer.synchronized for layer in _bn(plain)] == [False, False]


def _tiny():
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])


def test_checkpoint_defaults_and_mode_check(tmp_path):
    callback = AtomicModelCheckpoint(tmp_path)
    assert (callback.monitor, callback.mode, callback.fallback, callback.best) == (
        "val_mean_iou", "max", True, None)
    with pytest.raises(ValueError) as err:
        AtomicModelCheckpoint(tmp_path, mode="best")
    assert str(err.value) == "mode must be 'max' or 'min', got 'best'"


def test_monitored_value_falls_back_in_order_and_loss_is_always_minimised(tmp_path):
    callback = AtomicModelCheckpoint(tmp_path, monitor="val_mean_iou", mode="max")
    assert callback._keys() == ("val_mean_iou", "mean_iou", "loss")
    assert callback._value({"val_mean_iou": 0.5, "mean_iou": 0.7, "loss": 1.0}) == (0.5, "max")
    assert callback._value({"mean_iou": 0.7, "loss": 1.0}) == (0.7, "max")
    assert callback._value({"loss": 1.0}) == (1.0, "min")
    assert callback._value({"accuracy": 1.0}) == (None, "max")
    strict = AtomicModelCheckpoint(tmp_path, monitor="val_loss", mode="min", fallback=False)
    assert strict._keys() == ("val_loss",)
    assert strict._value({"loss": 1.0}) == (None, "min")
    assert strict._value({"val_loss": 2.0}) == (2.0, "min")


def test_best_follows_the_mode_and_records_the_metric_it_used(tmp_path):
    callback = AtomicModelCheckpoint(tmp_path, monitor="val_mean_iou", mode="max")
    callback.set_model(_tiny())
    callback.on_epoch_end(0, {"loss": 2.0})  # fallback to the loss: lower is better
    assert callback.best == 2.0
    assert json.loads((tmp_path / "best.json").read_text()) == {
        "monitor": "loss", "mode": "max", "value": 2.0, "epoch": 0}
    callback.on_epoch_end(1, {"loss": 3.0})
    assert callback.best == 2.0
    callback.on_epoch_end(2, {"loss": 1.0})
    assert callback.best == 1.0
    (tmp_path / "best.keras").unlink()
    callback.on_epoch_end(3, {"loss": 1.0})  # equal is not better
    assert not (tmp_path / "best.keras").exists()
    callback.on_epoch_end(4, None)  # no logs: last.keras only
    highest = AtomicModelCheckpoint(tmp_path / "max", monitor="val_mean_iou", mode="max")
    highest.set_model(_tiny())
    highest.on_epoch_end(0, {"val_mean_iou": 0.5})
    (tmp_path / "max" / "best.keras").unlink()
    highest.on_epoch_end(1, {"val_mean_iou": 0.5})  # equal is not better (max mode too)
    assert not (tmp_path / "max" / "best.keras").exists()
    assert (tmp_path / "last.keras").is_file() and not (tmp_path / "best.keras").exists()
    minimum = AtomicModelCheckpoint(tmp_path / "min", monitor="val_loss", mode="min")
    minimum.set_model(_tiny())
    minimum.on_epoch_end(0, {"val_loss": 0.5})
    minimum.on_epoch_end(1, {"val_loss": 0.7})
    minimum.on_epoch_end(2, {"val_loss": 0.4})
    assert minimum.best == 0.4
    assert json.loads((tmp_path / "min" / "best.json").read_text()) == {
        "monitor": "val_loss", "mode": "min", "value": 0.4, "epoch": 2}


def test_restore_best_needs_both_files_and_the_same_metric_and_mode(tmp_path):
    first = AtomicModelCheckpoint(tmp_path, monitor="val_mean_iou", mode="max")
    first.set_model(_tiny())
    first.on_epoch_end(0, {"val_mean_iou": 0.6})
    assert AtomicModelCheckpoint(tmp_path, monitor="val_mean_iou").restore_best() == 0.6
    assert AtomicModelCheckpoint(tmp_path, monitor="val_mean_iou", mode="min").restore_best() is None
    record = json.loads((tmp_path / "best.json").read_text())
    (tmp_path / "best.json").write_text(json.dumps(dict(record, value="high")))
    assert AtomicModelCheckpoint(tmp_path).restore_best() is None  # unreadable value
    (tmp_path / "best.json").write_text(json.dumps({"monitor": "val_mean_iou", "mode": "max"}))
    assert AtomicModelCheckpoint(tmp_path).restore_best() is None  # no value
    (tmp_path / "best.json").write_text(json.dumps(record))
    (tmp_path / "best.keras").unlink()
    assert AtomicModelCheckpoint(tmp_path).restore_best() is None  # the model is gone


def _recording_backup(tmp_path, **kwargs):
    backup = TrainingBackup(tmp_path, **kwargs)
    saved = []
    backup.save = lambda epoch, step: (saved.append((epoch, step)), setattr(backup, "_since", 0))
    return backup, saved


def test_backup_every_n_steps_but_not_at_an_epochs_last_step(tmp_path):
    backup, saved = _recording_backup(tmp_path, every=2, steps_per_epoch=5)
    for epoch in range(2):
        backup.on_epoch_begin(epoch)
        for batch in range(5):
            backup.on_train_batch_end(batch)
        backup.on_epoch_end(epoch)
    assert saved == [(0, 2), (0, 4), (1, 0), (1, 2), (1, 4), (2, 0)]
    assert backup.epochs_done == 2
    every_step, saved = _recording_backup(tmp_path, every=1)  # unknown epoch length
    every_step.on_epoch_begin(3)
    for batch in range(3):
        every_step.on_train_batch_end(batch)
    assert saved == [(3, 1), (3, 2), (3, 3)]
    short, saved = _recording_backup(tmp_path, every=1, steps_per_epoch=3)
    for batch in range(3):  # no on_epoch_begin before the first batch: epoch 0
        short.on_train_batch_end(batch)
    assert saved == [(0, 1), (0, 2)]  # not after step 3, the epoch's last: its end follows


def test_a_resumed_epoch_counts_its_steps_from_the_offset(tmp_path):
    backup, saved = _recording_backup(tmp_path, every=2, steps_per_epoch=6, step_offset=3)
    backup.on_epoch_begin(1)
    for batch in range(3):  # steps 4, 5, 6 of epoch 1
        backup.on_train_batch_end(batch)
    backup.on_epoch_end(1)
    backup.on_epoch_begin(2)
    for batch in range(2):  # the next epoch starts at step 1 again
        backup.on_train_batch_end(batch)
    assert saved == [(1, 5), (2, 0), (2, 2)]
    assert backup.step_offset == 0


def test_backup_arguments_and_files(tmp_path):
    with pytest.raises(ValueError) as err:
        TrainingBackup(tmp_path, every=0)
    assert str(err.value) == "every must be >= 1, got 0"
    nested = TrainingBackup(tmp_path / "new" / "run" / "backup", every=1)
    nested.set_model(_tiny())
    assert nested.save(0, 1).is_file()  # parent folders are created
    assert nested.epochs_done is None
    backup = TrainingBackup(tmp_path / "backup", every="3")
    assert (backup.every, backup.step_offset, backup.steps_per_epoch) == (3, 0, None)
    backup.set_model(_tiny())
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "notes.txt").write_text("kept")
    first = backup.save(0, 3)
    assert first == tmp_path / "backup" / "state-e0-s3.weights.h5" and first.is_file()
    second = backup.save(1, 0)
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text()) == {
        "epoch": 1, "step": 0, "weights": "state-e1-s0.weights.h5"}
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == [
        "notes.txt", second.name, "training_metadata.json"]
    assert backup._since == 0


def test_since_counter_restarts_after_each_backup(tmp_path):
    backup = TrainingBackup(tmp_path, every=3)
    backup.set_model(_tiny())
    backup.on_epoch_begin(0)
    for batch in range(7):
        backup.on_train_batch_end(batch)
    meta = json.loads((tmp_path / "training_metadata.json").read_text())
    assert (meta["epoch"], meta["step"]) == (0, 6)
    np.testing.assert_equal(backup._since, 1)


def _compiled(seed):
    keras.utils.set_random_seed(seed)
    model = _tiny()
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "mse")
    return model


def test_restore_backup_brings_back_weights_optimizer_state_and_position(tmp_path):
    """Without fit (mutmut runs these in forked workers): the optimizer is built and its
    state set by hand, saved, and loaded into a fresh model whose optimizer is not built."""
    from deconvnet_tf.training.checkpointing import restore_backup

    model = _compiled(0)
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(7)
    for variable in model.optimizer.variables:
        if variable.path.endswith("momentum") or "momentum" in variable.name:
            variable.assign(np.full(variable.shape, 0.25, "float32"))
    backup = TrainingBackup(tmp_path, every=1)
    backup.set_model(model)
    backup.save(2, 5)
    fresh = _compiled(1)
    assert not fresh.optimizer.built
    assert restore_backup(fresh, tmp_path) == (2, 5)
    for a, b in zip(fresh.weights, model.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(fresh.optimizer.iterations) == 7
    for a, b in zip(fresh.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_restore_backup_reads_keras_own_backups_and_names_bad_files(tmp_path):
    from deconvnet_tf.training.checkpointing import restore_backup

    model = _compiled(0)
    model.optimizer.build(model.trainable_variables)
    model.save_weights(tmp_path / "latest.weights.h5")
    (tmp_path / "training_metadata.json").write_text('{"epoch": 4}')  # BackupAndRestore's
    assert restore_backup(_compiled(1), tmp_path) == (4, 0)
    meta = tmp_path / "training_metadata.json"
    meta.write_text('{"step": 1}')
    with pytest.raises(ValueError) as err:
        restore_backup(_compiled(1), tmp_path)
    assert str(err.value) == f"backup {str(meta)!r} is unreadable ('epoch')"
    meta.write_text('{"epoch": 1, "weights": "gone.weights.h5"}')
    with pytest.raises(ValueError) as err:
        restore_backup(_compiled(1), tmp_path)
    assert str(err.value).startswith(
        f"backup {str(tmp_path / 'gone.weights.h5')!r} cannot be loaded into the model (")
    assert restore_backup(_compiled(1), tmp_path / "none") is None

