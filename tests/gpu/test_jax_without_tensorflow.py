"""The JAX path with TensorFlow unimportable: import, build, fit on the PyDataset pipeline,
save/reload ``.keras``; and ``keras.distribution.DataParallel`` over two CPU devices.

Each scenario runs in its own Python process (``KERAS_BACKEND`` and ``XLA_FLAGS`` are fixed
when Keras/JAX start) whose first statement installs an import hook that makes every
``tensorflow`` import fail, as on a machine without TensorFlow. The two processes run
concurrently (module fixture) to keep the suite's wall time down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

BLOCK_TENSORFLOW = r'''
import sys
class _NoTensorFlow:
    """Import hook: tensorflow is 'not installed'."""
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None
sys.meta_path.insert(0, _NoTensorFlow())
'''

COMMON = r'''
import json, os, sys
from pathlib import Path
import numpy as np
import keras
import deconvnet_tf
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from deconvnet_tf.data.pydataset import make_pydataset
from deconvnet_tf.training.losses import SegmentationCrossEntropy
result = {"backend": keras.backend.backend()}
try:
    import tensorflow  # noqa: F401
    result["tensorflow_importable"] = True
except ImportError:
    result["tensorflow_importable"] = False
work = Path(sys.argv[1])
root = write_synthetic_dataset(work / "ds", 8, 4, 32, 32, seed=0)

def tf_modules():
    return sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))

class StepLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []
    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))
'''

SINGLE_DEVICE = COMMON + r'''
from deconvnet_tf.training.checkpointing import save_model_atomic
from deconvnet_tf.evaluation.metrics import mean_iou_metric
keras.utils.set_random_seed(0)
# All 8 training images in every batch, no augmentation: each step sees the same data, so
# the per-step loss must go down.
train_ds = make_pydataset(root, "train", mode="whole", batch_size=8, crop_size=(32, 32), seed=0)
val_ds = make_pydataset(root, "val", mode="whole", training=False, batch_size=4,
                        crop_size=(32, 32))
model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5, bn_momentum=0.9)
model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=SegmentationCrossEntropy(5, 255),
              metrics=[mean_iou_metric(5, 255)])
steps = StepLosses()
history = model.fit(train_ds, epochs=3, steps_per_epoch=1, callbacks=[steps], verbose=0)
result["losses"] = [float(v) for v in history.history["loss"]]
result["unpooling"] = model.unpooling
path = save_model_atomic(model, work / "model.keras")
reloaded = deconvnet_tf.load_model(path)
x = val_ds[0][0]
result["reload_max_diff"] = float(np.abs(np.asarray(model.predict_on_batch(x))
                                         - np.asarray(reloaded.predict_on_batch(x))).max())
# The library's train() (the deconvnet-train path): PyDataset input, XLA on by default on JAX.
from deconvnet_tf.training.config import TrainConfig
from deconvnet_tf.training.train import resolve_jit_compile, train
config = TrainConfig(preset="deconvnet_tiny", data=str(root), output=str(work / "run"), epochs=1,
                     batch_size=4, crop_size=[32, 32], steps_per_epoch=2, optimizer="adam",
                     learning_rate=3e-3, bn_momentum=0.9, deterministic=True)
result["train_jit"] = resolve_jit_compile(config)
run = train(config, verbose=0)
result["train_model"] = run.model_path.is_file()
result["train_loss"] = run.history["loss"]
result["tf_modules"] = tf_modules()
print("RESULT " + json.dumps(result))
'''

DATA_PARALLEL = COMMON + r'''
import jax
from deconvnet_tf.training.distribution import JaxDataParallel, data_parallel
result["jax_devices"] = len(jax.devices())
try:
    data_parallel(batch_size=3)
    result["odd_batch_error"] = None
except ValueError as err:
    result["odd_batch_error"] = str(err)
keras.utils.set_random_seed(0)
strategy = data_parallel(batch_size=4)
result["replicas"] = strategy.num_replicas_in_sync
result["devices"] = strategy.devices
train_ds = make_pydataset(root, "train", batch_size=4, crop_size=(32, 32), seed=0)
with strategy.scope():
    result["current_is_ours"] = keras.distribution.distribution() is strategy.distribution
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5, bn_momentum=0.9)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=SegmentationCrossEntropy(5, 255))
    steps = StepLosses()
    model.fit(train_ds, epochs=1, steps_per_epoch=3, callbacks=[steps], verbose=0)
result["restored"] = keras.distribution.distribution() is None
result["losses"] = steps.losses
kernel = model.get_layer("block1_conv1").kernel.value
result["kernel_devices"] = len(kernel.sharding.device_set)
result["kernel_replicated"] = bool(kernel.sharding.is_fully_replicated)
from deconvnet_tf.training.config import TrainConfig
from deconvnet_tf.training.train import train
run = train(TrainConfig(preset="deconvnet_tiny", data=str(root), output=str(work / "run"),
                        epochs=1, batch_size=4, crop_size=[32, 32], steps_per_epoch=2,
                        optimizer="adam", learning_rate=3e-3, strategy="mirrored"), verbose=0)
result["train_replicas"] = run.replicas
result["tf_modules"] = tf_modules()
print("RESULT " + json.dumps(result))
'''


def _env(**extra: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def _result(proc: subprocess.Popen, name: str) -> dict:
    stdout, stderr = proc.communicate(timeout=600)
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"{name} failed:\n{stdout[-2000:]}\n{stderr[-4000:]}"
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    procs = {}
    for name, script, env in (
        ("single", SINGLE_DEVICE, _env()),
        ("parallel", DATA_PARALLEL,
         _env(XLA_FLAGS="--xla_force_host_platform_device_count=2")),
    ):
        work = tmp_path_factory.mktemp(name)
        procs[name] = subprocess.Popen(
            [sys.executable, "-c", BLOCK_TENSORFLOW + script, str(work)], env=env, cwd=str(work),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
    return {name: _result(proc, name) for name, proc in procs.items()}


@pytest.mark.slow
def test_trains_saves_and_reloads_without_tensorflow(runs):
    r = runs["single"]
    assert r["backend"] == "jax" and r["tensorflow_importable"] is False
    assert r["unpooling"] == "switch"
    losses = r["losses"]
    assert all(map(lambda v: v == v and v < 1e3, losses)), losses  # finite
    assert losses[-1] < losses[0], f"loss did not decrease: {losses}"
    assert r["reload_max_diff"] < 1e-5
    assert r["train_jit"] is True and r["train_model"]
    assert all(v == v for v in r["train_loss"])
    assert r["tf_modules"] == []


@pytest.mark.slow
def test_data_parallel_over_two_cpu_devices(runs):
    r = runs["parallel"]
    assert r["tensorflow_importable"] is False and r["tf_modules"] == []
    assert r["jax_devices"] == 2 and r["replicas"] == 2
    assert r["devices"] == ["cpu:0", "cpu:1"]
    assert "multiple of the number of devices (2)" in r["odd_batch_error"]
    assert r["current_is_ours"] and r["restored"]
    # Variables live on both devices, replicated (data parallelism shards batches only).
    assert r["kernel_devices"] == 2 and r["kernel_replicated"]
    assert len(r["losses"]) == 3 and all(v == v for v in r["losses"])
    assert r["train_replicas"] == 2  # train(strategy="mirrored") uses DataParallel on JAX


def test_data_parallel_needs_the_jax_backend():
    import keras

    from deconvnet_tf.training.distribution import check_global_batch, data_parallel

    assert check_global_batch(64, 4) == 16
    if keras.backend.backend() != "jax":
        with pytest.raises(RuntimeError, match="tf.distribute.MirroredStrategy"):
            data_parallel()
