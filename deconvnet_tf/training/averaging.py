"""Weight averaging during training: an exponential moving average (EMA) of the weights,
updated after every training step, kept in the run's resumable backup (``--set ema_decay=...``)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import keras
import numpy as np

__all__ = ["WeightEMA"]


class WeightEMA(keras.callbacks.Callback):
    """An exponential moving average of a model's weights, updated after every training step.

    After the ``n``-th update (``n`` = 1, 2, ...) every floating-point model variable ``w``
    (trainable weights and BatchNorm moving statistics; not the optimizer's) has the average
    ``a <- d * a + (1 - d) * w`` with ``d = min(decay, n / (n + 9))`` when ``warmup`` (the
    warm-up of TF Model Garden's and timm's EMA: early averages follow the weights closely,
    so the random initial weights do not linger in a short run), else ``d = decay``. The
    average starts from the model's weights at the start of training. Integer variables
    (random-seed states) are not averaged.

    The model trains on its own weights; :meth:`apply` copies the average into it (training
    calls it at the end, so ``model.keras`` holds the average). :meth:`save_state` and
    :meth:`load_state` write and read the average with its update count (a ``.npz`` file);
    :class:`~deconvnet_tf.training.checkpointing.TrainingBackup` keeps them with each backup,
    so an interrupted run resumes with the same average. Put this callback before the backup
    in the callback list.

    Args:
        decay: The per-step decay, ``0 < decay < 1`` (0.999 averages about the last 1000
            steps; a short run needs a smaller one, e.g. 0.99 for ~100 steps).
        warmup: Use ``min(decay, n / (n + 9))`` (default) instead of ``decay`` alone.

    Example:

    >>> import keras, numpy as np
    >>> from deconvnet_tf.training.averaging import WeightEMA
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> ema = WeightEMA(0.9)
    >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=4, epochs=1, verbose=0,
    ...               callbacks=[ema])
    >>> ema.updates
    2
    >>> ema.apply(model)  # the model now holds the average
    """

    backup_name = "ema"

    def __init__(self, decay: float, warmup: bool = True):
        super().__init__()
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not (
                math.isfinite(decay) and 0 < decay < 1):
            raise ValueError(f"decay must be a number with 0 < decay < 1, got {decay!r}")
        self.decay, self.warmup = float(decay), bool(warmup)
        self.updates = 0
        self._averages: list | None = None  # keras.Variable per averaged model variable

    # -- which variables ----------------------------------------------------------------
    @staticmethod
    def _averaged(model: keras.Model) -> list:
        return [v for v in model.weights if keras.backend.is_float_dtype(v.dtype)]

    def _sync(self, model: keras.Model) -> None:
        if hasattr(model, "jax_state_sync"):  # JAX: the trained values live outside the variables
            model.jax_state_sync()

    def start_from(self, model: keras.Model, updates: int = 0) -> None:
        """Starts the average at ``model``'s current weights, as if after ``updates`` updates."""
        self._sync(model)
        self._averages = [keras.Variable(keras.ops.convert_to_numpy(v.value).astype(np.float32),
                                         trainable=False, dtype="float32", name=f"ema_{i}")
                          for i, v in enumerate(self._averaged(model))]
        self.updates = int(updates)

    # -- the callback ---------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if self._averages is None:
            self.start_from(self.model)
        elif len(self._averages) != len(self._averaged(self.model)):
            raise ValueError(f"the average holds {len(self._averages)} variables, the model "
                             f"{len(self._averaged(self.model))}: it belongs to another model")

    def current_decay(self) -> float:
        """The decay of the next update."""
        n = self.updates + 1
        return min(self.decay, n / (n + 9)) if self.warmup else self.decay

    def on_train_batch_end(self, batch, logs=None):
        self._sync(self.model)
        d = self.current_decay()
        for average, variable in zip(self._averages, self._averaged(self.model)):
            value = keras.ops.cast(variable.value, "float32")
            average.assign(average * d + value * (1.0 - d))
        self.updates += 1

    # -- use and persistence ------------------------------------------------------------
    def apply(self, model: keras.Model | None = None) -> None:
        """Copies the average into ``model`` (default: the trained one)."""
        model = self.model if model is None else model
        if self._averages is None:
            raise ValueError("there is no average yet: train with this callback first")
        self._sync(model)
        for average, variable in zip(self._averages, self._averaged(model), strict=True):
            variable.assign(keras.ops.cast(average.value, variable.dtype))

    def save_state(self, path: str | os.PathLike) -> None:
        """Writes the average and the update count to ``path`` (an ``.npz`` file)."""
        if self._averages is None:
            raise ValueError("there is no average yet: train with this callback first")
        arrays = {f"a{i}": keras.ops.convert_to_numpy(a.value) for i, a in enumerate(self._averages)}
        with open(path, "wb") as f:  # a file object: np.savez adds no extension
            np.savez(f, updates=np.int64(self.updates), **arrays)

    def load_state(self, path: str | os.PathLike, model: keras.Model) -> None:
        """Reads :meth:`save_state`'s file for ``model``.

        Raises:
            ValueError: the file is unreadable or holds another model's average (named).
        """
        try:
            with np.load(Path(path)) as data:
                updates = int(data["updates"])
                arrays = [data[f"a{i}"] for i in range(len(data.files) - 1)]
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f"weight average {str(path)!r} is unreadable ({err})") from err
        variables = self._averaged(model)
        shapes = [tuple(v.shape) for v in variables]
        if [a.shape for a in arrays] != shapes:
            raise ValueError(f"weight average {str(path)!r} holds {len(arrays)} arrays that do "
                             f"not match the model's {len(shapes)} averaged variables")
        self.start_from(model, updates)
        for average, array in zip(self._averages, arrays):
            average.assign(array.astype(np.float32))
