"""Backend portability: a model saved under JAX loads under TensorFlow with equal outputs, and
the package imports without TensorFlow under KERAS_BACKEND=jax."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import deconvnet_tf
from tests.conftest import requires_tf

ROOT = Path(__file__).resolve().parents[1]


def _run_jax(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    # `make test` installs the jax extra: a missing jax is a broken environment, not a skip.
    import importlib.util

    assert importlib.util.find_spec("jax") is not None, "jax is not installed: pip install .[jax]"
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


PRESETS = ("deconvnet_tiny", "fcn8s_tiny")


@pytest.fixture(scope="module")
def jax_side(tmp_path_factory):
    """One JAX process (KERAS_BACKEND is fixed when Keras starts; one process instead of four
    keeps the suite fast) that: imports the package and builds models without TensorFlow
    being imported; saves each of PRESETS after a train step, with its outputs; loads the
    argmax-pooled model saved under TensorFlow here and checks its outputs."""
    tmp = tmp_path_factory.mktemp("backends")
    tf_side = None
    if _has_tensorflow():
        model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3, unpooling="argmax")
        x = np.random.default_rng(0).integers(0, 256, (1, 40, 40, 3)).astype("uint8")
        model.save(tmp / "tf.keras")
        np.save(tmp / "tf_out.npy", model.predict(x, verbose=0))
        np.save(tmp / "tf_x.npy", x)
        tf_side = True
    proc = _run_jax(
        f"""
        import sys, os, numpy as np, keras
        import deconvnet_tf, deconvnet_tf.layers, deconvnet_tf.models
        assert keras.backend.backend() == "jax"
        model = deconvnet_tf.build_model("deconvnet_tiny", encoder_weights=None)
        model(np.zeros((1, 24, 24, 3), "uint8"))
        deconvnet_tf.build_model("deconvnet_vgg16_slim", encoder_weights="hed")
        # Keras' own trainer imports TensorFlow when it is installed (its data adapters): the
        # package's import and model building must not.
        print("tensorflow imported:", "tensorflow" in sys.modules)
        for preset in {PRESETS!r}:
            model = deconvnet_tf.build_model(preset, num_classes=4)
            x = np.random.default_rng(0).integers(0, 256, (2, 37, 45, 3)).astype("uint8")
            y = np.random.default_rng(1).integers(0, 4, (2, 37, 45))
            model.compile(optimizer="sgd",
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            model.train_on_batch(x, y)  # moves BN statistics and weights away from their init
            model.save(f"{{preset}}.keras")
            np.save(f"{{preset}}_x.npy", x)
            np.save(f"{{preset}}_out.npy", np.asarray(model.predict(x, verbose=0)))
        if os.path.exists("tf.keras"):
            model = deconvnet_tf.load_model("tf.keras")
            assert model.unpooling == "switch", model.unpooling
            np.testing.assert_allclose(model.predict(np.load("tf_x.npy"), verbose=0),
                                       np.load("tf_out.npy"), atol=1e-4)
            print("loaded tf.keras")
        """,
        tmp,
    )
    return tmp, proc.stdout.strip().splitlines(), tf_side


def _has_tensorflow() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


@requires_tf
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.slow
def test_model_saved_under_jax_loads_under_tensorflow(jax_side, preset):
    tmp, _, _ = jax_side
    model = deconvnet_tf.load_model(tmp / f"{preset}.keras")
    x = np.load(tmp / f"{preset}_x.npy")
    expected = np.load(tmp / f"{preset}_out.npy")
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-4)
    if preset.startswith("deconvnet"):
        assert model.unpooling == "switch"
        argmax = deconvnet_tf.load_model(tmp / f"{preset}.keras", unpooling="argmax")
        np.testing.assert_allclose(argmax.predict(x, verbose=0), expected, atol=1e-4)


@requires_tf
@pytest.mark.slow
def test_argmax_model_saved_under_tensorflow_loads_under_jax(jax_side):
    _, lines, tf_side = jax_side
    assert tf_side and "loaded tf.keras" in lines  # the JAX process asserted equal outputs


@pytest.mark.slow
def test_package_imports_without_tensorflow_under_jax(jax_side):
    _, lines, _ = jax_side
    assert "tensorflow imported: False" in lines, lines
