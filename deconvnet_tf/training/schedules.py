"""Learning-rate schedules: per-epoch ``LearningRateScheduler`` functions for the paper's step
decay, DeepLab's polynomial decay and cosine decay (:data:`LR_SCHEDULES`)."""

from __future__ import annotations

import math

__all__ = ["LR_SCHEDULES", "lr_schedule", "step_decay"]

LR_SCHEDULES = ("step", "poly", "cosine")


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
