"""Distributed training gives the single-device result.

* ``strategy="mirrored"`` on TensorFlow (``tf.distribute.MirroredStrategy`` over two logical
  CPU devices) and on JAX (``keras.distribution.DataParallel`` over two forced host devices):
  the same seed, data and global batch trained for two SGD steps with and without the strategy
  end with the same per-step losses and the same weights (trainable and BatchNorm statistics).
* ``MultiWorkerMirroredStrategy``: two worker processes on 127.0.0.1 (TF_CONFIG) train a few
  steps with ``train()``; losses are finite and both workers end with identical weights.

Each run is a subprocess: the device count (logical CPU devices, ``XLA_FLAGS``) and the backend
are fixed when TensorFlow/JAX start.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from deconvnet_tf.training.config import TrainConfig
from tests.conftest import requires_tf

ROOT = Path(__file__).resolve().parents[2]

# Trains ``config`` (argv[1]) twice, with strategy "default" (one device) and "mirrored" (all
# devices), and saves per run: the replica count, the running loss after every step, and the
# weights before the first and after the last step (``model.get_weights()``: trainable and
# BatchNorm moving statistics).
SINGLE_VS_MIRRORED = """
import dataclasses, sys
from pathlib import Path
import keras
import numpy as np
from deconvnet_tf.training.config import TrainConfig
from deconvnet_tf.training.train import train

class Record(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.initial = [np.array(w) for w in self.model.get_weights()]
        self.losses = []
    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))
    def on_train_end(self, logs=None):
        self.final = [np.array(w) for w in self.model.get_weights()]

config = TrainConfig.load(sys.argv[1])
work = Path(sys.argv[2])
for strategy in ("default", "mirrored"):
    record = Record()
    run = dataclasses.replace(config, strategy=strategy, output=str(work / strategy))
    result = train(run, verbose=0, callbacks=[record])
    arrays = {f"initial{i}": w for i, w in enumerate(record.initial)}
    arrays.update({f"final{i}": w for i, w in enumerate(record.final)})
    np.savez(work / f"{strategy}.npz", replicas=result.replicas, losses=record.losses, **arrays)
print("DONE")
"""

TWO_TF_CPU_DEVICES = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""


def single_vs_mirrored(tmp_path: Path, backend: str) -> tuple[dict, dict]:
    """Runs :data:`SINGLE_VS_MIRRORED` on ``backend`` with two devices; the two runs' arrays."""
    # 4 training images, global batch 4: every step trains on all of them. (Under
    # tf.distribute, Keras' fit takes one batch from a first iterator of the dataset to build the
    # model, then starts a second one, which the pipeline shuffles differently: with more images
    # than the batch, a mirrored run would see other batches than a single-device run.)
    data = write_synthetic_dataset(tmp_path / "data", num_train=4, num_val=2, height=32, width=48)
    # "whole" mode at the images' size: no augmentation, no padding and no void pixels in the
    # generated data, so every replica's half-batch has the same number of labelled pixels and
    # the mean of the per-replica mean losses is the mean loss of the global batch. SGD (not
    # Adam, which is nearly invariant to a scaled gradient) so that a wrongly scaled gradient
    # changes the weights. 2 images per device.
    config = TrainConfig(preset="deconvnet_tiny", output=str(tmp_path / "unused"), data=str(data),
                         input_mode="whole", crop_size=[32, 48], epochs=1, steps_per_epoch=2,
                         batch_size=4, optimizer="sgd", learning_rate=0.05, bn_momentum=0.9,
                         val_split="", deterministic=True, checkpoint_every=100,
                         mixed_precision=False)
    path = config.save(tmp_path / "config.json")
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend,
               CUDA_VISIBLE_DEVICES="")
    prefix = ""
    if backend == "jax":
        env.update(JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    else:
        prefix = TWO_TF_CPU_DEVICES
    proc = subprocess.run([sys.executable, "-c", prefix + SINGLE_VS_MIRRORED, str(path),
                           str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "DONE" in proc.stdout, proc.stderr[-4000:]
    return tuple(dict(np.load(tmp_path / f"{name}.npz")) for name in ("default", "mirrored"))


def assert_same_training(single: dict, mirrored: dict) -> None:
    """Same initial weights, same running loss after each of the 2 steps, same final weights.

    Tolerance (rtol 1e-5, atol 1e-6): float32 summation order only. The all-reduce adds two
    half-batch gradients (and BatchNorm sums), one device sums the whole batch at once; measured
    on both backends: <= 2e-7 on weights of magnitude <= 1, <= 3e-7 relative on the larger
    BatchNorm moving statistics (variances up to ~360). A gradient scaled by the replica count,
    half of each batch dropped, or per-replica BatchNorm statistics move the weights by 1e-3 and
    more."""
    assert int(single["replicas"]) == 1 and int(mirrored["replicas"]) == 2
    count = sum(key.startswith("final") for key in single)
    assert count == sum(key.startswith("final") for key in mirrored) > 10
    changed = 0
    for i in range(count):
        # Same seed: the two runs start from the same weights ...
        np.testing.assert_array_equal(single[f"initial{i}"], mirrored[f"initial{i}"],
                                      err_msg=f"initial weight {i}")
        # ... and end with the same ones.
        np.testing.assert_allclose(mirrored[f"final{i}"], single[f"final{i}"], rtol=1e-5,
                                   atol=1e-6, err_msg=f"weight {i} after 2 steps")
        changed += bool(np.abs(single[f"final{i}"] - single[f"initial{i}"]).max() > 1e-4)
    # Training moved most weights by far more than the tolerance (the comparison has teeth;
    # the convolution biases before BatchNorm get no gradient).
    assert changed > count // 2, (changed, count)
    assert len(single["losses"]) == len(mirrored["losses"]) == 2
    np.testing.assert_allclose(mirrored["losses"], single["losses"], rtol=1e-5)


@requires_tf
@pytest.mark.slow
def test_mirrored_two_cpu_devices_trains_like_one_device(tmp_path):
    """MirroredStrategy: each replica's loss is scaled by 1/2 and the gradients summed, and
    BatchNorm uses the global batch's statistics (sync_batchnorm), so two steps on two devices
    give the single-device weights (tolerance: :func:`assert_same_training`)."""
    single, mirrored = single_vs_mirrored(tmp_path, "tensorflow")
    assert_same_training(single, mirrored)


@pytest.mark.slow
def test_jax_data_parallel_two_cpu_devices_trains_like_one_device(tmp_path):
    """keras.distribution.DataParallel (train(strategy="mirrored") on JAX) shards each global
    batch over two CPU devices; the jitted step is the single-device computation (the loss and
    BatchNorm statistics are those of the global batch), so the weights match to float32
    summation order (tolerance: :func:`assert_same_training`)."""
    single, mirrored = single_vs_mirrored(tmp_path, "jax")
    assert_same_training(single, mirrored)


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@requires_tf
@pytest.mark.slow
def test_multiworker_two_processes_identical_weights(tmp_path):
    data = write_synthetic_dataset(tmp_path / "data", num_train=8, num_val=2, height=32, width=48)
    config = TrainConfig(preset="deconvnet_tiny", output=str(tmp_path / "run"), data=str(data),
                         epochs=1, batch_size=4, crop_size=[32, 48], steps_per_epoch=2,
                         val_split="", strategy="multiworker", deterministic=True,
                         mixed_precision=False)
    path = config.save(tmp_path / "config.json")
    script = textwrap.dedent(f"""
        from deconvnet_tf.training.config import TrainConfig
        from deconvnet_tf.training.train import train
        result = train(TrainConfig.load({str(path)!r}), verbose=0)
        print("RESULT", result.replicas, result.history["loss"][-1], result.model_path)
    """)
    ports = free_ports(2)
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                     "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), PYTHONPATH=str(ROOT),
                   TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        procs.append(subprocess.Popen([sys.executable, "-c", script], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err[-3000:]
            outputs.append(out.split("RESULT")[-1].split())
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    (rep0, loss0, model0), (rep1, loss1, model1) = outputs
    assert rep0 == rep1 == "2"  # one replica per worker, two in sync
    assert np.isfinite(float(loss0)) and float(loss0) == float(loss1)  # logs averaged over workers
    assert Path(model0) == tmp_path / "run" / "model.keras"  # the chief
    assert Path(model1) == tmp_path / "run" / "worker1" / "model.keras"
    a, b = deconvnet_tf.load_model(model0), deconvnet_tf.load_model(model1)
    for wa, wb in zip(a.weights, b.weights):  # trainable and BatchNorm statistics (synced)
        np.testing.assert_array_equal(np.asarray(wa), np.asarray(wb), err_msg=wa.path)
