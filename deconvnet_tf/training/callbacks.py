"""Callbacks: atomic ``.keras`` checkpoints and the learning-rate schedules (the paper's step
decay, polynomial and cosine decay)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import keras

__all__ = ["AtomicModelCheckpoint", "LR_SCHEDULES", "lr_schedule", "save_model_atomic",
           "set_batchnorm_sync", "step_decay"]

LR_SCHEDULES = ("step", "poly", "cosine")


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

    A crash while saving leaves the previous file intact (never a half-written model). Saved
    files always have per-device BatchNorm (``synchronized=False``), which loads on every
    backend, also when the model trains with synchronised BatchNorm.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    synced = set_batchnorm_sync(model, False)
    try:
        model.save(tmp)
    finally:
        for layer in synced:
            layer.synchronized = True
    os.replace(tmp, path)
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


def step_decay(initial: float, every: int, factor: float):
    """``LearningRateScheduler`` function: ``initial * factor ** (epoch // every)``."""

    def schedule(epoch, lr=None):
        if every <= 0:
            return float(initial)
        return float(initial * factor ** (epoch // every))

    return schedule


def lr_schedule(kind: str, initial: float, epochs: int, *, every: int = 0, factor: float = 0.1,
                power: float = 0.9):
    """``LearningRateScheduler`` function of one of :data:`LR_SCHEDULES` (set per epoch).

    Args:
        kind: ``"step"`` (``initial * factor ** (epoch // every)``, the paper's), ``"poly"``
            (``initial * (1 - epoch / epochs) ** power``, DeepLab's) or ``"cosine"``
            (``initial * (1 + cos(pi * epoch / epochs)) / 2``).
        initial: Learning rate of the first epoch.
        epochs: Length of the run (poly/cosine reach ~0 at its end).
        every: Step decay period in epochs (0: constant).
        factor: Step decay factor.
        power: Exponent of the poly schedule.

    Raises:
        ValueError: Unknown ``kind`` or ``epochs < 1``.
    """
    if kind not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {kind!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs!r}")
    if kind == "step":
        return step_decay(initial, every, factor)

    def schedule(epoch, lr=None):
        progress = min(epoch / epochs, 1.0)
        if kind == "poly":
            return float(initial * (1.0 - progress) ** power)
        return float(initial * 0.5 * (1.0 + math.cos(math.pi * progress)))

    return schedule
