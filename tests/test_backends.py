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


@requires_tf
@pytest.mark.parametrize("preset", ["deconvnet_tiny", "fcn8s_tiny"])
def test_model_saved_under_jax_loads_under_tensorflow(tmp_path, preset):
    _run_jax(
        f"""
        import numpy as np, keras, deconvnet_tf
        assert keras.backend.backend() == "jax"
        model = deconvnet_tf.build_model({preset!r}, num_classes=4)
        x = np.random.default_rng(0).integers(0, 256, (2, 37, 45, 3)).astype("uint8")
        y = np.random.default_rng(1).integers(0, 4, (2, 37, 45))
        model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.train_on_batch(x, y)  # moves BN statistics and weights away from their init
        model.save("model.keras")
        np.save("x.npy", x)
        np.save("out.npy", np.asarray(model.predict(x, verbose=0)))
        """,
        tmp_path,
    )
    model = deconvnet_tf.load_model(tmp_path / "model.keras")
    x = np.load(tmp_path / "x.npy")
    np.testing.assert_allclose(model.predict(x, verbose=0), np.load(tmp_path / "out.npy"), atol=1e-4)
    if preset.startswith("deconvnet"):
        assert model.unpooling == "switch"
        argmax = deconvnet_tf.load_model(tmp_path / "model.keras", unpooling="argmax")
        np.testing.assert_allclose(argmax.predict(x, verbose=0), np.load(tmp_path / "out.npy"), atol=1e-4)


@requires_tf
def test_argmax_model_saved_under_tensorflow_loads_under_jax(tmp_path):
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3, unpooling="argmax")
    x = np.random.default_rng(0).integers(0, 256, (1, 40, 40, 3)).astype("uint8")
    model.save(tmp_path / "tf.keras")
    np.save(tmp_path / "out.npy", model.predict(x, verbose=0))
    np.save(tmp_path / "x.npy", x)
    _run_jax(
        """
        import numpy as np, deconvnet_tf
        model = deconvnet_tf.load_model("tf.keras")
        assert model.unpooling == "switch", model.unpooling
        np.testing.assert_allclose(model.predict(np.load("x.npy"), verbose=0), np.load("out.npy"), atol=1e-4)
        """,
        tmp_path,
    )


def test_package_imports_without_tensorflow_under_jax(tmp_path):
    proc = _run_jax(
        """
        import sys, numpy as np
        import deconvnet_tf, deconvnet_tf.layers, deconvnet_tf.models
        model = deconvnet_tf.build_model("deconvnet_tiny", encoder_weights=None)
        model(np.zeros((1, 24, 24, 3), "uint8"))
        deconvnet_tf.build_model("deconvnet_vgg16_slim", encoder_weights="hed")
        print("tensorflow" in sys.modules)
        """,
        tmp_path,
    )
    assert proc.stdout.strip().splitlines()[-1] == "False"
