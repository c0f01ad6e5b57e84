"""GPU tests (marker ``gpu``): training on the GPU lowers the loss, GPU and CPU forward passes
agree, and the paper's network trains a step at batch 64 in bf16.

Skipped, with the reason, where the active Keras backend sees no GPU (CI, the 2-core dev
machines). On a GPU machine with JAX::

    KERAS_BACKEND=jax python -m pytest -m gpu tests/gpu -q
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.data.synthetic import write_synthetic_dataset

BACKEND = keras.backend.backend()


def _gpu_status() -> tuple[bool, str]:
    if BACKEND == "jax":
        import jax

        try:
            gpus = jax.devices("gpu")
        except RuntimeError as err:
            return False, f"JAX sees no GPU ({str(err).splitlines()[0][:80]})"
        return bool(gpus), f"JAX GPUs: {gpus}"
    if BACKEND == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return bool(gpus), "TensorFlow sees no GPU" if not gpus else f"TF GPUs: {gpus}"
    return False, f"no GPU check for the {BACKEND} backend"


HAVE_GPU, REASON = _gpu_status()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not HAVE_GPU, reason=REASON)]


def _on(platform: str):
    """Context placing new computation on the first device of ``platform``."""
    if BACKEND == "jax":
        import jax

        return jax.default_device(jax.devices(platform)[0])
    import tensorflow as tf

    return tf.device(f"/{platform.upper()}:0")


def _variable_platform(model) -> str:
    value = model.trainable_variables[0].value
    if BACKEND == "jax":
        return next(iter(value.devices())).platform
    return "gpu" if "GPU" in value.device.upper() else "cpu"


def test_training_on_the_gpu_lowers_the_loss(tmp_path, mixed_policy):
    from deconvnet_tf.data.pydataset import make_pydataset
    from deconvnet_tf.training.losses import SegmentationCrossEntropy

    root = write_synthetic_dataset(tmp_path / "ds", 16, 2, 96, 128, seed=0)
    # Same 16 images every step (whole mode, no augmentation): the loss must go down.
    ds = make_pydataset(root, "train", mode="whole", batch_size=16, crop_size=(96, 128))
    keras.utils.set_random_seed(0)
    model = deconvnet_tf.build_model("deconvnet_small", num_classes=5, unpooling="switch",
                                     bn_momentum=0.9)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=SegmentationCrossEntropy(5, 255),
                  jit_compile=True)
    assert _variable_platform(model) == "gpu"
    history = model.fit(ds, epochs=8, steps_per_epoch=1, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize("policy,rtol,agree", [("float32", 2e-2, 0.98), ("mixed_bfloat16", 8e-2, 0.9)])
def test_gpu_and_cpu_forward_passes_agree(policy, rtol, agree, mixed_policy):
    """Same weights, same input: logits agree to TF32/bf16 precision (XLA uses TF32 for fp32
    convolutions on Ampere and later), and so do almost all argmax labels."""
    mixed_policy(policy)
    keras.utils.set_random_seed(1)
    x = np.random.default_rng(0).integers(0, 256, (2, 96, 128, 3)).astype(np.uint8)
    outputs = {}
    for platform in ("gpu", "cpu"):
        with _on(platform):
            model = deconvnet_tf.build_model("deconvnet_small", num_classes=5, unpooling="switch")
            if platform == "gpu":
                weights = model.get_weights()
            else:
                model.set_weights(weights)
            assert _variable_platform(model) == platform
            outputs[platform] = np.asarray(model(x, training=False), np.float32)
    gpu, cpu = outputs["gpu"], outputs["cpu"]
    scale = np.abs(cpu).max()
    assert np.abs(gpu - cpu).max() <= rtol * scale, (np.abs(gpu - cpu).max(), scale)
    assert (gpu.argmax(-1) == cpu.argmax(-1)).mean() >= agree


@pytest.mark.slow
def test_paper_network_trains_a_step_at_batch_64_in_bf16(mixed_policy):
    from deconvnet_tf.training.losses import SegmentationCrossEntropy

    mixed_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    model = deconvnet_tf.build_model("deconvnet_vgg16", num_classes=21, unpooling="switch",
                                     input_shape=(224, 224, 3))
    assert model.count_params() == 251_839_061
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=SegmentationCrossEntropy(21, 255), jit_compile=True)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 224, 224, 3)).astype(np.uint8)
    y = rng.integers(0, 21, (64, 224, 224)).astype(np.int32)
    first = float(model.train_on_batch(x, y))
    second = float(model.train_on_batch(x, y))
    assert np.isfinite([first, second]).all()
    assert _variable_platform(model) == "gpu"
    assert model.get_layer("block1_conv1").compute_dtype == "bfloat16"
