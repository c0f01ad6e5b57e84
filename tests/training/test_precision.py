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


# ----------------------------------------------------------------- the machine's fastest defaults
AMX_CPUINFO = "processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
AVX512_CPUINFO = "processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n"
AVX2_CPUINFO = "processor\t: 0\nflags\t\t: fpu sse avx avx2 fma f16c\n"


def test_cpu_bf16_kernels_reads_the_flags_line():
    from deconvnet_tf.training.train import cpu_bf16_kernels

    assert cpu_bf16_kernels(AMX_CPUINFO) == "amx_bf16"
    assert cpu_bf16_kernels(AVX512_CPUINFO) == "avx512_bf16"
    assert cpu_bf16_kernels(AVX2_CPUINFO) is None
    assert cpu_bf16_kernels("model name\t: amx_bf16 in a name is not a flag\n") is None
    assert cpu_bf16_kernels("") is None  # no flags line: no claim of native bfloat16


@pytest.mark.parametrize("setting, gpus, cpuinfo, expected", [
    (None, [], AVX2_CPUINFO, False),        # no native bf16: float32
    (None, [], AVX512_CPUINFO, True),       # AVX-512 BF16: bfloat16 (1.45x, no XLA)
    (None, [], AMX_CPUINFO, True),          # AMX: bfloat16
    (None, [], "", False),                  # flags unknown: float32, the safe choice
    (None, [(9, 0)], AVX512_CPUINFO, True),  # GPU: mixed (bf16 from 8.0, fp16 before)
    (None, [(7, 0)], AVX512_CPUINFO, True),
    (False, [(9, 0)], AMX_CPUINFO, False),  # an explicit setting wins
    (True, [], AVX512_CPUINFO, True),
])
def test_mixed_precision_default_is_the_machines_fastest(setting, gpus, cpuinfo, expected):
    from deconvnet_tf.training.train import resolve_mixed_precision

    config = TrainConfig(preset="deconvnet_tiny", mixed_precision=setting)
    mixed, why = resolve_mixed_precision(config, gpu_capabilities=gpus, cpuinfo=cpuinfo)
    assert mixed is expected and why


@requires_tf
def test_xla_default_on_tensorflow_cpu_follows_the_run_length(monkeypatch):
    from deconvnet_tf.training import train as train_module

    monkeypatch.setattr(train_module, "_tf_gpus", lambda: [])
    config = TrainConfig(preset="deconvnet_tiny")
    limit = train_module.XLA_MIN_RUN_SECONDS * train_module.CPU_GFLOPS_ESTIMATE
    assert train_module.resolve_jit_compile(config, None) is False  # unknown length
    assert train_module.resolve_jit_compile(config, 0.5 * limit) is False
    assert train_module.resolve_jit_compile(config, 2 * limit) is True
    assert train_module.resolve_jit_compile(
        TrainConfig(preset="deconvnet_tiny", unpooling="argmax"), 2 * limit) is False
    assert train_module.resolve_jit_compile(
        TrainConfig(preset="deconvnet_tiny", jit_compile=False), 2 * limit) is False
    monkeypatch.setattr(train_module, "_tf_gpus", lambda: ["GPU:0"])
    assert train_module.resolve_jit_compile(config, None) is True


@requires_tf
def test_xla_default_is_off_for_bfloat16_on_cpus_with_native_bf16(monkeypatch):
    """XLA:CPU does not use the AMX tiles or AVX-512 BF16; oneDNN does: bf16 there runs
    without XLA."""
    from deconvnet_tf.training import train as train_module

    monkeypatch.setattr(train_module, "_tf_gpus", lambda: [])
    config = TrainConfig(preset="deconvnet_tiny")
    long_run = 2 * train_module.XLA_MIN_RUN_SECONDS * train_module.CPU_GFLOPS_ESTIMATE
    resolve = train_module.resolve_jit_compile
    assert resolve(config, long_run, mixed=True, cpuinfo=AMX_CPUINFO) is False
    assert resolve(config, long_run, mixed=False, cpuinfo=AMX_CPUINFO) is True  # fp32: XLA
    assert resolve(config, long_run, mixed=True, cpuinfo=AVX512_CPUINFO) is False
    assert resolve(config, long_run, mixed=False, cpuinfo=AVX512_CPUINFO) is True
    assert resolve(config, long_run, mixed=True, cpuinfo=AVX2_CPUINFO) is True  # emulated
    assert resolve(TrainConfig(preset="deconvnet_tiny", jit_compile=True), long_run,
                   mixed=True, cpuinfo=AMX_CPUINFO) is True  # an explicit setting wins
    monkeypatch.setattr(train_module, "_tf_gpus", lambda: ["GPU:0"])
    assert resolve(config, None, mixed=True, cpuinfo=AMX_CPUINFO) is True  # GPUs compile


@requires_tf
def test_run_gflop_counts_the_preset_at_the_crop_size():
    from deconvnet_tf.models import build_model, count_flops
    from deconvnet_tf.training.train import run_gflop

    config = TrainConfig(preset="deconvnet_tiny", crop_size=[48, 64], batch_size=4, epochs=3)
    per_image = count_flops(build_model("deconvnet_tiny", input_shape=(48, 64, 3),
                                        num_classes=5, unpooling="switch")) / 1e9
    assert run_gflop(config, 5, steps=10) == pytest.approx(3 * per_image * 4 * 10 * 3)
    # the shipped CamVid recipe's run (36 epochs of 46 steps at 176x240): XLA by default in
    # float32 (bfloat16 on CPUs with native bf16 runs without it)
    camvid = TrainConfig(preset="deconvnet_vgg16_compact", crop_size=[176, 240], batch_size=8,
                         epochs=36)
    from deconvnet_tf.training import train as train_module

    assert run_gflop(camvid, 11, steps=46) / train_module.CPU_GFLOPS_ESTIMATE > 3600


@requires_tf
def test_the_run_says_which_settings_it_chose(tmp_path, capsys):
    from deconvnet_tf.training.train import train

    config = TrainConfig(preset="deconvnet_tiny", output=str(tmp_path / "run"), epochs=1,
                         batch_size=2, crop_size=[32, 32], synthetic_train=4, synthetic_val=2,
                         synthetic_size=[32, 32], steps_per_epoch=1)
    train(config, verbose=2)
    line = next(l for l in capsys.readouterr().out.splitlines() if "XLA" in l)
    assert line.startswith("deconvnet-train: float32 (") or line.startswith(
        "deconvnet-train: mixed_bfloat16 (")
    assert "XLA off" in line and "too short to pay for compiling" in line
    assert "--set jit_compile=true|false" in line


@pytest.mark.parametrize("mixed, gpus, cpuinfo, warns", [
    (True, [], AVX2_CPUINFO, True),        # emulated bfloat16: the ~9x slower case
    (True, [], AVX512_CPUINFO, False),     # avx512_bf16
    (True, [], AMX_CPUINFO, False),
    (True, [(9, 0)], AVX2_CPUINFO, False),  # the GPU computes
    (False, [], AVX2_CPUINFO, False),      # float32
    (True, [], "model name\t: no flags line\n", False),  # unreadable: no claim
])
def test_precision_warning_names_emulated_bfloat16(mixed, gpus, cpuinfo, warns):
    from deconvnet_tf.training.train import cpu_has_native_bf16, precision_warning

    line = precision_warning(mixed, gpus, cpuinfo)
    assert (line is not None) == warns
    if warns:
        assert "no native bfloat16" in line and "--set mixed_precision=false" in line
        assert not cpu_has_native_bf16(cpuinfo)
