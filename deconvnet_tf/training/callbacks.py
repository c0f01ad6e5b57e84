"""Training-time callbacks that are neither checkpoints nor schedules: the training time
estimate (:class:`TimeEstimate`) and its duration format.

The learning-rate schedules moved to :mod:`deconvnet_tf.training.schedules` and the atomic
saves, checkpoints and training backup to :mod:`deconvnet_tf.training.checkpointing`; their old
names here still work, with a ``DeprecationWarning`` naming the new module, until the next
release (looked up on use, PEP 562)."""

from __future__ import annotations

import time
from collections.abc import Callable

import keras

from deconvnet_tf._deprecated import moved_names

__all__ = ["TimeEstimate", "format_duration"]

_CHECKPOINTING = "deconvnet_tf.training.checkpointing"
_SCHEDULES = "deconvnet_tf.training.schedules"
moved_names(globals(), {  # deprecated name here -> the module that holds it now
    "AtomicModelCheckpoint": _CHECKPOINTING,
    "TrainingBackup": _CHECKPOINTING,
    "restore_backup": _CHECKPOINTING,
    "save_model_atomic": _CHECKPOINTING,
    "set_batchnorm_sync": _CHECKPOINTING,
    "LR_SCHEDULES": _SCHEDULES,
    "lr_schedule": _SCHEDULES,
    "step_decay": _SCHEDULES,
})


def format_duration(seconds: float) -> str:
    """``42 s``, ``3.5 min``, ``2.1 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class TimeEstimate(keras.callbacks.Callback):
    """Prints the estimated training time, measured on the first steps, before long work.

    The first ``warmup`` steps (tracing, XLA compilation) are not timed; the next ``measure``
    are, and their mean step time times the steps left gives the estimate (training steps only:
    validation comes on top). Printed once, and only when the whole run is estimated to take
    more than ``threshold`` seconds.

    Args:
        total_steps: Training steps of this run (all epochs, minus those already done).
        warmup: Untimed first steps.
        measure: Timed steps.
        threshold: Seconds below which nothing is printed.
        printer: Where the line goes (default ``print``).
        clock: Seconds counter (tests pass a fake one).
    """

    def __init__(self, total_steps: int, *, warmup: int = 1, measure: int = 3,
                 threshold: float = 120.0, printer: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.perf_counter):
        super().__init__()
        self.total_steps, self.warmup, self.measure = int(total_steps), warmup, measure
        self.threshold, self.printer, self.clock = threshold, printer, clock
        self.seconds_per_step: float | None = None
        self.estimate: float | None = None
        self._seen = 0
        self._start: float | None = None

    def on_train_batch_begin(self, batch, logs=None):
        if self._seen == self.warmup and self._start is None:
            self._start = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        self._seen += 1
        if self.estimate is not None or self._seen != self.warmup + self.measure:
            return
        self.seconds_per_step = (self.clock() - self._start) / self.measure
        self.estimate = self.seconds_per_step * self.total_steps
        if self.estimate > self.threshold:
            left = self.seconds_per_step * max(self.total_steps - self._seen, 0)
            self.printer(
                f"deconvnet-train: estimated training time {format_duration(self.estimate)} "
                f"({self.total_steps} steps at {self.seconds_per_step:.2f} s/step, measured on "
                f"steps {self.warmup + 1}-{self.warmup + self.measure}; about "
                f"{format_duration(left)} left; validation comes on top)")
