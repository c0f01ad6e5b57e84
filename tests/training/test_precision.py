"""Mixed-precision selection: bfloat16 on CPUs and Ampere+ GPUs, float16 with loss scaling on
older GPUs (device capabilities faked), and the float32 default."""

from __future__ import annotations

import keras
import pytest

from deconvnet_tf.training import train as train_module
from deconvnet_tf.training.config import TrainConfig
from deconvnet_tf.training.train import select_precision
from tests.conftest import requires_tf


@pytest.mark.jax
@pytest.mark.parametrize("mixed, capabilities, expected", [
    (False, [], "float32"),
    (False, [(7, 0)], "float32"),
    (True, [], "mixed_bfloat16"),  # CPU
    (True, [(8, 0)], "mixed_bfloat16"),  # A100
    (True, [(9, 0), (8, 6)], "mixed_bfloat16"),
    (True, [(7, 5)], "mixed_float16"),  # T4
    (True, [(9, 0), (7, 0)], "mixed_float16"),  # one V100 among the GPUs
    (True, [(0, 0)], "mixed_float16"),  # capability unknown
])
def test_select_precision(mixed, capabilities, expected):
    assert select_precision(mixed, capabilities) == expected


@pytest.mark.jax
def test_capability_strings_of_jax_devices():
    assert train_module._parse_capability("8.6") == (8, 6)
    assert train_module._parse_capability((7, 5)) == (7, 5)
    assert train_module._parse_capability(None) == (0, 0)
    assert train_module._parse_capability("unknown") == (0, 0)


@requires_tf
@pytest.mark.parametrize("capability, policy, loss_scaling", [
    ((7, 5), "mixed_float16", True), ((8, 0), "mixed_bfloat16", False)])
def test_tensorflow_gpu_without_bf16_trains_in_float16_with_loss_scaling(
        monkeypatch, capability, policy, loss_scaling):
    import tensorflow as tf

    fake_gpu = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
    monkeypatch.setattr(train_module, "_tf_gpus", lambda: [fake_gpu])
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda device: {"compute_capability": capability})
    try:
        assert train_module._set_precision(True) == policy
        config = TrainConfig(preset="deconvnet_tiny", mixed_precision=True)
        model = train_module._build_and_compile(config, 5, 255, None, False, {})
        assert model.get_layer("block1_conv1").dtype_policy.name == policy
        is_scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert is_scaled == loss_scaling
        if loss_scaling:  # the decay of the config reaches the wrapped optimizer
            assert model.optimizer.inner_optimizer.weight_decay == pytest.approx(5e-4)
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.jax
def test_jax_gpu_capabilities_are_read(monkeypatch):
    import jax  # the "jax" extra, installed by `make test`

    class FakeGpu:
        platform = "gpu"

        def __init__(self, capability):
            self.compute_capability = capability

    monkeypatch.setattr(jax, "devices", lambda *a: [FakeGpu("7.0"), FakeGpu("9.0")])
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")
    assert train_module._gpu_capabilities() == [(7, 0), (9, 0)]
    assert select_precision(True, train_module._gpu_capabilities()) == "mixed_float16"
