"""Resuming never loses or repeats work: an interrupted deterministic run ends with the weights
of an uninterrupted one (interrupted between epochs, just after an epoch's outputs, or in the
middle of an epoch), backups at every epoch end, the best-so-far value survives a resume, a
finished run is not trained again (unless overwrite / resume to more epochs), and a run folder
holds one training at a time. Backend-portable (tf.data on TensorFlow, the PyDataset on JAX);
the tests marked ``jax`` also run under JAX in ``make test``."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.training.checkpointing import TrainingBackup
from deconvnet_tf.training.config import TrainConfig
from deconvnet_tf.training.runfolder import RunFolderError, RunLock, RunLockedError
from deconvnet_tf.training.train import train

ROOT = Path(__file__).resolve().parents[2]


class Interrupt(Exception):
    """Stands for a kill: fit stops where it is, nothing is cleaned up by Keras."""


class InterruptAt(keras.callbacks.Callback):
    def __init__(self, epoch_begin=None, batch_begin=None):
        super().__init__()
        self.epoch_begin, self.batch_begin = epoch_begin, batch_begin
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        if epoch == self.epoch_begin:
            raise Interrupt(f"before epoch {epoch}")

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.batch_begin:
            raise Interrupt(f"before step {batch} of epoch {self.epoch}")


def config_for(folder: Path, **changes) -> TrainConfig:
    base = dict(preset="deconvnet_tiny", output=str(folder / "run"), epochs=3, batch_size=4,
                crop_size=[48, 64], optimizer="sgd", momentum=0.9, learning_rate=0.05,
                lr_schedule="step", lr_decay_epochs=1, lr_decay_factor=0.5, bn_momentum=0.9,
                synthetic_train=8, synthetic_val=4, synthetic_size=[48, 64], steps_per_epoch=2,
                checkpoint_every=50, deterministic=True, mixed_precision=False)
    base.update(changes)
    return TrainConfig(**base)


def log_rows(output: Path) -> list[dict]:
    with open(output / "log.csv") as f:
        return list(csv.DictReader(f))


def weights(path: Path) -> list[np.ndarray]:
    return [np.asarray(w) for w in deconvnet_tf.load_model(path).weights]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run."""
    config = config_for(tmp_path_factory.mktemp("reference"))
    result = train(config, verbose=0)
    return config, result


@pytest.mark.jax
@pytest.mark.slow
def test_step_decay_inside_train(reference):
    config, result = reference
    lrs = [float(row["learning_rate"]) for row in log_rows(result.output)]
    np.testing.assert_allclose(lrs, [0.05, 0.025, 0.0125], rtol=1e-6)


def assert_same_run(result, reference_result, compare_losses=True):
    assert [int(r["epoch"]) for r in log_rows(result.output)] == [0, 1, 2]  # each epoch once
    for a, b in zip(weights(result.model_path), weights(reference_result.model_path)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    if compare_losses:
        ours = [float(r["loss"]) for r in log_rows(result.output)]
        theirs = [float(r["loss"]) for r in log_rows(reference_result.output)]
        np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    best = json.loads((result.output / "checkpoints" / "best.json").read_text())
    assert best == json.loads((reference_result.output / "checkpoints" / "best.json").read_text())
    assert not (result.output / "backup").exists()


@pytest.mark.slow
def test_interrupted_between_epochs_resumes_at_the_next_epoch(tmp_path, reference):
    """checkpoint_every (50) is longer than an epoch (2 steps): the epoch-end backup alone
    lets the re-run start at epoch 2, with the batches and weights of the uninterrupted run."""
    config = config_for(tmp_path)
    with pytest.raises(Interrupt):
        train(config, verbose=0, callbacks=[InterruptAt(epoch_begin=2)])
    meta = json.loads((Path(config.output) / "backup" / "training_metadata.json").read_text())
    assert (meta["epoch"], meta["step"]) == (2, 0)
    result = train(config, verbose=0)
    assert result.initial_epoch == 2 and len(result.history["loss"]) == 1
    assert_same_run(result, reference[1])


@pytest.mark.slow
def test_interrupted_after_an_epochs_outputs_redoes_it_once(tmp_path, reference, monkeypatch):
    """Killed after epoch 1 wrote its log row and checkpoints but before its backup: the
    re-run redoes epoch 1, and log.csv still lists every epoch once."""
    config = config_for(tmp_path)
    original = TrainingBackup.on_epoch_end

    def crash_before_backup(self, epoch, logs=None):
        if epoch == 1:
            raise Interrupt("after epoch 1's outputs")
        original(self, epoch, logs)

    monkeypatch.setattr(TrainingBackup, "on_epoch_end", crash_before_backup)
    with pytest.raises(Interrupt):
        train(config, verbose=0)
    assert [int(r["epoch"]) for r in log_rows(Path(config.output))] == [0, 1]
    monkeypatch.setattr(TrainingBackup, "on_epoch_end", original)
    result = train(config, verbose=0)
    assert result.initial_epoch == 1
    assert_same_run(result, reference[1])


@pytest.mark.jax
@pytest.mark.slow
def test_interrupted_mid_epoch_continues_at_the_step(tmp_path, reference):
    """With a backup every step, a run stopped after step 1 of epoch 1 does step 2 of epoch 1,
    then epoch 2: the same weights as the uninterrupted run (the loss of epoch 1 is then the
    mean of its remaining step only)."""
    config = config_for(tmp_path, checkpoint_every=1)
    with pytest.raises(Interrupt):
        train(config, verbose=0, callbacks=[InterruptAt(batch_begin=(1, 1))])
    meta = json.loads((Path(config.output) / "backup" / "training_metadata.json").read_text())
    assert (meta["epoch"], meta["step"]) == (1, 1)
    result = train(config, verbose=0)
    assert result.initial_epoch == 1
    assert_same_run(result, reference[1], compare_losses=False)


class ScriptedMetric(keras.callbacks.Callback):
    """Replaces the epoch's mean_iou (read by the checkpoint callback after this one) by a
    scripted value, and keeps the weights of every epoch."""

    def __init__(self, values):
        super().__init__()
        self.values, self.weights = values, {}

    def on_epoch_end(self, epoch, logs=None):
        logs["mean_iou"] = self.values[epoch]
        self.weights[epoch] = [np.asarray(w) for w in self.model.weights]


@pytest.mark.slow
def test_best_checkpoint_survives_a_resume(tmp_path):
    """Epoch 1 is the best (0.9); after a resume at epoch 2, epochs 2 and 3 (0.1, 0.2) are
    worse and must not replace best.keras."""
    config = config_for(tmp_path, epochs=4, steps_per_epoch=1, val_split="")
    values = [0.5, 0.9, 0.1, 0.2]
    first = ScriptedMetric(values)
    with pytest.raises(Interrupt):
        train(config, verbose=0, callbacks=[first, InterruptAt(epoch_begin=2)])
    train(config, verbose=0, callbacks=[ScriptedMetric(values)])
    out = Path(config.output)
    best = json.loads((out / "checkpoints" / "best.json").read_text())
    assert (best["epoch"], best["value"]) == (1, 0.9)
    for a, b in zip(weights(out / "checkpoints" / "best.keras"), first.weights[1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_finished_run_is_kept_unless_overwrite_or_resume(tmp_path):
    config = config_for(tmp_path, epochs=1, steps_per_epoch=1, val_split="")
    out = Path(config.output)
    train(config, verbose=0)
    stamp = (out / "model.keras").stat().st_mtime_ns
    again = train(config, verbose=0)
    assert again.already_finished and again.epochs_done == 1
    assert len(again.history["loss"]) == 1  # read from log.csv
    assert (out / "model.keras").stat().st_mtime_ns == stamp
    longer = config_for(tmp_path, epochs=2, steps_per_epoch=1, val_split="")
    with pytest.raises(RunFolderError, match="finished run of 1 epochs.*resume"):
        train(longer, verbose=0)
    continued = train(longer, verbose=0, resume=True)  # continues the finished run
    assert (continued.initial_epoch, continued.epochs_done) == (1, 2)
    assert [int(r["epoch"]) for r in log_rows(out)] == [0, 1]
    other = config_for(tmp_path, epochs=2, steps_per_epoch=1, val_split="", learning_rate=0.01)
    with pytest.raises(RunFolderError, match=r"other settings \(learning_rate: 0.05 -> 0.01\)"):
        train(other, verbose=0)
    fresh = train(other, verbose=0, overwrite=True)
    assert (fresh.initial_epoch, fresh.epochs_done, fresh.already_finished) == (0, 2, False)
    assert [int(r["epoch"]) for r in log_rows(out)] == [0, 1]
    assert TrainConfig.load(out / "config.json").learning_rate == 0.01


def test_a_folder_that_is_not_a_run_is_never_written(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"the user's own model")
    config = config_for(tmp_path, output=str(folder))
    for overwrite in (False, True):
        with pytest.raises(RunFolderError, match="has model.keras but no config.json"):
            train(config, verbose=0, overwrite=overwrite)
    assert (folder / "model.keras").read_bytes() == b"the user's own model"
    assert sorted(p.name for p in folder.iterdir()) == ["model.keras"]


def test_second_process_gets_a_clear_error_and_a_dead_holders_lock_is_taken_over(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from deconvnet_tf.training.runfolder import RunLock\n"
         "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(300)", str(out)],
        stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3"))
    try:
        assert holder.stdout.readline().strip() == "locked"
        config = config_for(tmp_path)
        with pytest.raises(RunLockedError, match=f"in use by another training run \\(pid {holder.pid} "
                                                 f"on {socket.gethostname()}"):
            train(config, verbose=0)
        assert not (out / "config.json").exists()  # the holder's folder is untouched
    finally:
        holder.kill()  # kill -9: the lock is left behind with a dead pid in it
        holder.wait()
    assert json.loads((out / ".lock").read_text())["pid"] == holder.pid
    with RunLock(out):
        assert json.loads((out / ".lock").read_text())["pid"] == os.getpid()


def test_lock_file_fallback_without_flock(tmp_path, monkeypatch):
    """Where fcntl is missing, an O_EXCL lock file: a dead holder of this host is taken over,
    a live one (or one on another host) is reported."""
    from deconvnet_tf.training import runfolder

    monkeypatch.setattr(runfolder, "fcntl", None)
    lock_file = tmp_path / ".lock.pid"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = socket.gethostname()
    lock_file.write_text(json.dumps({"pid": dead.pid, "host": here, "since": "then"}))
    with RunLock(tmp_path):
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()} on {here}"):
            RunLock(tmp_path).acquire()
    assert not lock_file.exists()  # released
    lock_file.write_text(json.dumps({"pid": dead.pid, "host": "elsewhere", "since": "then"}))
    with pytest.raises(RunLockedError, match=f"pid {dead.pid} on elsewhere"):
        RunLock(tmp_path).acquire()
