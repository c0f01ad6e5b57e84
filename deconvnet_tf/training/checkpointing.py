"""Checkpointing: atomic ``.keras`` saves, the ``last``/``best`` checkpoint callback and the
resumable training backup (weights, optimizer state, position) with its restore."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras

from deconvnet_tf.training.atomic import atomic_path, write_text_atomic

__all__ = ["AtomicModelCheckpoint", "TrainingBackup", "restore_backup", "save_model_atomic",
           "set_batchnorm_sync"]


def set_batchnorm_sync(model: keras.Model, synchronized: bool) -> list:
    """Sets ``synchronized`` of every ``BatchNormalization`` layer of ``model`` (cross-replica
    statistics under a ``tf.distribute`` strategy; TensorFlow only).

    Returns:
        The layers whose setting changed (to restore them).
    """
    changed = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization) and layer.synchronized != synchronized:
            layer.synchronized = synchronized
            changed.append(layer)
    return changed


def save_model_atomic(model: keras.Model, path: str | os.PathLike) -> Path:
    """Saves ``model`` to ``path`` through a temporary file and ``os.replace``.

    A crash while saving leaves the previous file intact (never a half-written model), and a
    failed save removes its temporary file. Saved files always have per-device BatchNorm
    (``synchronized=False``), which loads on every backend, also when the model trains with
    synchronised BatchNorm.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    synced = set_batchnorm_sync(model, False)
    try:
        with atomic_path(path, suffix=".keras") as tmp:
            model.save(tmp)
    finally:
        for layer in synced:
            layer.synchronized = True
    return path


class AtomicModelCheckpoint(keras.callbacks.Callback):
    """Writes ``last.keras`` after every epoch and ``best.keras`` when ``monitor`` improves.

    Args:
        directory: Folder of the checkpoints.
        monitor: Metric name in the epoch logs (e.g. ``"val_mean_iou"``); falls back to
            ``"mean_iou"``/``"loss"`` when absent.
        mode: ``"max"`` or ``"min"``.
        fallback: Compare ``"mean_iou"``/``"loss"`` in epochs whose logs lack ``monitor``.
            ``False`` when validation runs only every few epochs (``validation_freq``), so
            that ``best.keras`` is chosen on validation numbers alone.

    The best value so far is kept in ``best.json`` next to ``best.keras``; a resumed run
    calls :meth:`restore_best` so that a worse model never replaces ``best.keras``.
    """

    def __init__(self, directory: str | os.PathLike, monitor: str = "val_mean_iou", mode: str = "max",
                 fallback: bool = True):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.directory = Path(directory)
        self.monitor = monitor
        self.mode = mode
        self.fallback = fallback
        self.best: float | None = None

    def _value(self, logs):
        keys = (self.monitor, "mean_iou", "loss") if self.fallback else (self.monitor,)
        for key in keys:
            if key in logs:
                mode = self.mode if key != "loss" else "min"
                return float(logs[key]), mode
        return None, self.mode

    def _keys(self) -> tuple[str, ...]:
        return (self.monitor, "mean_iou", "loss") if self.fallback else (self.monitor,)

    def restore_best(self) -> float | None:
        """Reads the best value of an earlier (interrupted) part of the run from ``best.json``
        (when ``best.keras`` exists and the file was written for the same metrics)."""
        state = self.directory / "best.json"
        if not (state.is_file() and (self.directory / "best.keras").is_file()):
            return self.best
        try:
            data = json.loads(state.read_text())
            if data.get("monitor") in self._keys() and data.get("mode") == self.mode:
                self.best = float(data["value"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # an unreadable record: the next epoch's model becomes the best
        return self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        save_model_atomic(self.model, self.directory / "last.keras")
        value, mode = self._value(logs)
        if value is None:
            return
        better = self.best is None or (value > self.best if mode == "max" else value < self.best)
        if better:
            self.best = value
            save_model_atomic(self.model, self.directory / "best.keras")
            key = next(k for k in self._keys() if k in logs)
            write_text_atomic(self.directory / "best.json", json.dumps(
                {"monitor": key, "mode": self.mode, "value": value, "epoch": epoch}) + "\n")


class TrainingBackup(keras.callbacks.Callback):
    """The resumable state of a run (weights, optimizer state, position) in ``directory``.

    Written every ``every`` steps and at every epoch end, atomically: the weights go to a new
    ``state-e<epoch>-s<step>.weights.h5``, then ``training_metadata.json``
    (``{"epoch", "step", "weights"}``: the epoch to run and the steps of it already done)
    switches to it, then older weight files are removed. A crash at any moment leaves a
    consistent pair. :func:`restore_backup` reads it back.

    Args:
        directory: The backup folder.
        every: Steps between two backups within an epoch.
        steps_per_epoch: Steps of an epoch (no step backup after an epoch's last step: the
            epoch-end backup follows).
        step_offset: Steps of the first epoch done before this ``fit`` (a resumed epoch).
        extras: Further state kept with each backup: objects with a ``backup_name`` and
            ``save_state(path)`` (e.g. :class:`~deconvnet_tf.training.averaging.WeightEMA`),
            written to ``<backup_name>-e<epoch>-s<step>.npz`` before the metadata names them
            (``"extras": {backup_name: file}``); :func:`restore_backup` reads them back.
    """

    METADATA = "training_metadata.json"

    def __init__(self, directory: str | os.PathLike, every: int, steps_per_epoch: int | None = None,
                 step_offset: int = 0, extras=()):
        super().__init__()
        if int(every) < 1:
            raise ValueError(f"every must be >= 1, got {every!r}")
        self.directory = Path(directory)
        self.every = int(every)
        self.steps_per_epoch = steps_per_epoch
        self.step_offset = int(step_offset)
        self.extras = list(extras)
        self.epochs_done: int | None = None
        self._epoch = 0
        self._since = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._since += 1
        step = self.step_offset + batch + 1
        if self._since >= self.every and (self.steps_per_epoch is None or step < self.steps_per_epoch):
            self.save(self._epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        self.step_offset = 0
        self.epochs_done = epoch + 1
        self.save(epoch + 1, 0)

    def save(self, epoch: int, step: int) -> Path:
        """Writes the backup of position ``(epoch, step)``; returns the weights file."""
        self._since = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"state-e{epoch}-s{step}.weights.h5"
        with atomic_path(self.directory / name, suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp)
        extras = {}
        for extra in self.extras:
            extras[extra.backup_name] = f"{extra.backup_name}-e{epoch}-s{step}.npz"
            with atomic_path(self.directory / extras[extra.backup_name], suffix=".npz") as tmp:
                extra.save_state(tmp)
        meta = {"epoch": epoch, "step": step, "weights": name}
        if extras:
            meta["extras"] = extras
        write_text_atomic(self.directory / self.METADATA, json.dumps(meta) + "\n")
        keep = {name, *extras.values()}
        for old in self.directory.iterdir():
            if old.name not in keep and (".weights.h5" in old.name or old.name.endswith(".npz")):
                old.unlink()
        return self.directory / name


def restore_backup(model: keras.Model, directory: str | os.PathLike,
                   extras=()) -> tuple[int, int] | None:
    """Loads the state of :class:`TrainingBackup` (or of ``keras.callbacks.BackupAndRestore``)
    from ``directory`` into the compiled ``model``, and into each of ``extras`` (objects with
    a ``backup_name`` and ``load_state(path, model)``) the state the backup keeps for it.

    Returns:
        ``(epoch, step)``: the epoch to continue and the steps of it already done; ``None``
        when there is no backup.

    Raises:
        ValueError: the backup cannot be read (the message names the file).
    """
    directory = Path(directory)
    meta_path = directory / TrainingBackup.METADATA
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        epoch, step = int(meta["epoch"]), int(meta.get("step", 0))  # Keras' own: no "step"
        weights = directory / str(meta.get("weights", "latest.weights.h5"))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"backup {str(meta_path)!r} is unreadable ({err})") from err
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(str(weights))
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"backup {str(weights)!r} cannot be loaded into the model ({err})") from err
    files = meta.get("extras") if isinstance(meta.get("extras"), dict) else {}
    for extra in extras:
        if extra.backup_name not in files:
            raise ValueError(f"backup {str(meta_path)!r} holds no {extra.backup_name!r} state "
                             "(the run was backed up without it)")
        extra.load_state(directory / str(files[extra.backup_name]), model)
    return epoch, step
