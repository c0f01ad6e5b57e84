"""MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 (TF_CONFIG) train a few steps
with ``train()``; losses are finite and both workers end with identical weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import deconvnet_tf
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from deconvnet_tf.training.config import TrainConfig
from tests.conftest import requires_tf

ROOT = Path(__file__).resolve().parents[2]
pytestmark = requires_tf


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multiworker_two_processes_identical_weights(tmp_path):
    data = write_synthetic_dataset(tmp_path / "data", num_train=8, num_val=2, height=32, width=48)
    config = TrainConfig(preset="deconvnet_tiny", output=str(tmp_path / "run"), data=str(data),
                         epochs=1, batch_size=4, crop_size=[32, 48], steps_per_epoch=2,
                         val_split="", strategy="multiworker", deterministic=True)
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
