"""Shared test helpers: a NumPy pooling reference and a backend-agnostic gradient."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest

import deconvnet_tf  # noqa: F401  (registers layers)

BACKEND = keras.backend.backend()
requires_tf = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="TensorFlow-only feature (argmax layers / tf.data / export)"
)


def np_switch_pool(x: np.ndarray, k: int = 2, padding: str = "valid"):
    """NumPy reference: pooled values and a one-hot switch mask (first max, row-major)."""
    n, h, w, c = x.shape
    if padding == "same":
        oh, ow = math.ceil(h / k), math.ceil(w / k)
    else:
        oh, ow = (h - k) // k + 1, (w - k) // k + 1
    pooled = np.zeros((n, oh, ow, c), x.dtype)
    mask = np.zeros_like(x)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    best, pos = None, None
                    for a in range(k):
                        for bb in range(k):
                            y, xx = i * k + a, j * k + bb
                            if y >= h or xx >= w:
                                continue
                            v = x[b, y, xx, ch]
                            if best is None or v > best:
                                best, pos = v, (y, xx)
                    pooled[b, i, j, ch] = best
                    mask[b, pos[0], pos[1], ch] = 1
    return pooled, mask


def np_unpool(values: np.ndarray, mask: np.ndarray, k: int = 2) -> np.ndarray:
    """NumPy reference unpooling: each value at its window's switch, zeros elsewhere."""
    n, h, w, c = mask.shape
    up = np.repeat(np.repeat(values, k, axis=1), k, axis=2)
    full = np.zeros_like(mask)
    hh, ww = min(h, up.shape[1]), min(w, up.shape[2])
    full[:, :hh, :ww] = up[:, :hh, :ww]
    return full * mask


def gradient(fn, x: np.ndarray) -> np.ndarray:
    """d sum(fn(x)) / dx on the active backend."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = keras.ops.sum(fn(xt))
        return np.asarray(tape.gradient(y, xt))
    if BACKEND == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: keras.ops.sum(fn(v)))(x))
    raise NotImplementedError(BACKEND)


ROOT = Path(__file__).resolve().parents[1]

# ``make test`` runs the TensorFlow suite on two pytest-xdist workers (``-n 2 --dist
# loadgroup``) with the scheduler below. Each test file is one unit of work, so it runs whole on
# one worker and its module fixtures are built once; files that share a process-level cache form
# one unit, so the cache is built once per session (tests/export/artifacts.py: a trained model
# and its exports); the documented blocks of tests/test_docs.py are independent subprocesses and
# spread over both workers (SPREAD_FILES). The grouping is done here, not with xdist_group marks:
# xdist 3.8 passes the marks to the scheduler by rewriting node ids, which pytest >= 9.2 no
# longer lets it do (pytest-dev/pytest-xdist#1386), and the groups were then silently ignored.
SHARED_CACHE_GROUPS = {
    "export_artifacts": (
        "tests/export/test_export_cli.py",
        "tests/export/test_export_parity.py",
        "tests/export/test_export_saved_model.py",
        "tests/export/test_size_rule_parity.py",
        "tests/lite/test_lite_runtime.py",
    ),
}
SPREAD_FILES = ("tests/test_docs.py",)
# The longest units (``--durations``, 2026-12-02), scheduled first and in this order so that the
# two workers finish together; then the other files in collection order; the short documented
# blocks of SPREAD_FILES last, to fill the gaps.
LONGEST_FIRST = (
    "tests/tools/test_benchmark.py",
    "tests/training/test_train.py",
    "tests/models/test_presets.py",
    "export_artifacts",
    "tests/training/test_resume.py",
    "tests/training/test_distributed.py",
    "tests/test_backends.py",
    "tests/gpu/test_jax_without_tensorflow.py",
    "tests/cli/test_train_cli.py",
    "tests/gpu/test_bench_gpu.py",
    "tests/cli/test_demo.py",
    "tests/cli/test_bad_inputs_export.py",
    "tests/tools/test_ship_model.py",
)


def xdist_group_of(relative_path: str) -> str:
    """The xdist group of a test file (a path relative to the repository, with '/')."""
    for group, files in SHARED_CACHE_GROUPS.items():
        if relative_path in files:
            return group
    return relative_path


def unit_of_work(nodeid: str) -> str:
    """The scheduling unit of a test: its file's group, or the test itself in SPREAD_FILES."""
    path = nodeid.split("::", 1)[0]
    return nodeid if path in SPREAD_FILES else xdist_group_of(path)


def schedule_rank(unit: str) -> int:
    """Where a unit of work goes in the queue (see LONGEST_FIRST)."""
    if unit in LONGEST_FIRST:
        return LONGEST_FIRST.index(unit)
    return len(LONGEST_FIRST) + (unit.split("::", 1)[0] in SPREAD_FILES)


def _loadgroup(config) -> bool:
    return getattr(config.option, "dist", None) == "loadgroup"


def pytest_collection_modifyitems(config, items):
    """Under ``--dist loadgroup`` the collection order is the queue order (stable: each file's
    tests stay together and in order)."""
    if _loadgroup(config):
        items.sort(key=lambda item: schedule_rank(unit_of_work(item.nodeid)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup``: xdist's scope scheduler over :func:`unit_of_work`, in the order of
    the collection (:func:`schedule_rank`)."""
    if not _loadgroup(config):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of_work(nodeid)

        def schedule(self) -> None:
            self.config.option.loadscopereorder = False  # keep the collection's order
            super().schedule()

    return FileGroupScheduling(config, log)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def mixed_policy():
    """Yields a setter for the global dtype policy and restores float32 afterwards."""
    yield keras.config.set_dtype_policy
    keras.config.set_dtype_policy("float32")
