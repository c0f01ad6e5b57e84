"""train() on the PyDataset input path (the JAX backend's, and any backend without tf.data):
an epoch is a pass over the split when steps_per_epoch is None, and a resumed run continues
the batch stream where it stopped. Marked ``jax``: ``make test`` also runs it under JAX."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import keras
import numpy as np
import pytest

from deconvnet_tf.training import train as train_module
from deconvnet_tf.training.config import TrainConfig

pytestmark = pytest.mark.jax


class CountSteps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = []

    def on_epoch_begin(self, epoch, logs=None):
        self.steps.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.steps[-1] += 1


def test_train_without_steps_per_epoch_runs_a_pass_per_epoch(tmp_path, monkeypatch):
    """The GPU command of README/docs/gpu.md (`deconvnet-train --backend jax ...`, no
    steps_per_epoch) raised UnboundLocalError: num_train on this path."""
    if keras.config.backend() == "tensorflow":  # take the path JAX takes
        monkeypatch.setattr(train_module, "_use_tf_data", lambda: False)
    config = TrainConfig(preset="deconvnet_tiny", output=str(tmp_path / "run"), epochs=2,
                         batch_size=4, crop_size=[32, 32], optimizer="adam", learning_rate=3e-3,
                         synthetic_train=6, synthetic_val=2, synthetic_size=[32, 32],
                         steps_per_epoch=None, validation_steps=1, deterministic=True)
    counter = CountSteps()
    result = train_module.train(config, verbose=0, callbacks=[counter])
    assert counter.steps == [math.ceil(6 / 4)] * 2
    assert len(result.history["loss"]) == 2 and np.all(np.isfinite(result.history["loss"]))
    assert result.model_path.is_file()
    with open(Path(config.output) / "log.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1]


def test_skipped_pydataset_continues_the_stream(tmp_path):
    from deconvnet_tf.data.pydataset import make_pydataset
    from deconvnet_tf.data.synthetic import write_synthetic_dataset

    root = write_synthetic_dataset(tmp_path / "data", num_train=5, num_val=1, height=32, width=32)
    ds = make_pydataset(root, "train", batch_size=2, crop_size=(32, 32), seed=3)
    skipped = train_module._SkipBatches(ds, 7)
    assert skipped.num_batches is None
    for index in (0, 1, 4):
        for a, b in zip(skipped[index], ds[index + 7]):
            np.testing.assert_array_equal(a, b)
