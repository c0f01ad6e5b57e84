"""How ``make test`` spreads the TensorFlow run over two pytest-xdist workers (``-n 2 --dist
loadgroup``): pytest hooks that tests/conftest.py re-exports. Imports only pytest (and xdist when
scheduling), so tests/test_xdist_groups.py can run it on tiny files in a subprocess.

Each test file is one unit of work, so it runs whole on one worker and its module fixtures are
built once; files that share a process-level cache form one unit, so the cache is built once per
session (tests/export/artifacts.py: a trained model and its exports). The grouping is done here,
not with ``xdist_group`` marks: xdist 3.8 passes the marks to the scheduler by rewriting node
ids, which pytest >= 9.2 no longer lets it do (pytest-dev/pytest-xdist#1386), and the groups
were then silently ignored. Units are queued longest first (LONGEST_FIRST), then the other files
in collection order, so that the two workers finish together.
"""

from __future__ import annotations

import pytest

SHARED_CACHE_GROUPS = {
    "export_artifacts": (
        "tests/export/test_ensemble_export.py",
        "tests/export/test_export_cli.py",
        "tests/export/test_export_parity.py",
        "tests/export/test_export_saved_model.py",
        "tests/export/test_size_rule_parity.py",
        "tests/lite/test_lite_runtime.py",
    ),
}
# The longest units (``--durations``, 2026-12-03), scheduled first and in this order: the
# shared exports lead the default suite (``make test``, ~260 s of worker time); the documented
# blocks (one session fixture trains the runs they read) lead the slow tier (``make test-slow``),
# where only the export group's size-rule parity file runs; then the longest of either tier.
LONGEST_FIRST = (
    "export_artifacts",
    "tests/test_docs.py",
    "tests/tools/test_benchmark.py",
    "tests/training/test_train.py",
    "tests/models/test_presets.py",
    "tests/training/test_resume.py",
    "tests/training/test_distributed.py",
    "tests/test_backends.py",
    "tests/gpu/test_jax_without_tensorflow.py",
    "tests/cli/test_train_cli.py",
    "tests/gpu/test_bench_gpu.py",
    "tests/cli/test_predict_cli.py",
    "tests/cli/test_bad_inputs_export.py",
    "tests/cli/test_demo.py",
    "tests/tools/test_ship_model.py",
    "tests/cli/test_bad_inputs_predict.py",
    "tests/training/test_stage2.py")


def xdist_group_of(relative_path: str) -> str:
    """The unit of work of a test file (a path relative to the repository, with '/')."""
    for group, files in SHARED_CACHE_GROUPS.items():
        if relative_path in files:
            return group
    return relative_path


def unit_of_work(nodeid: str) -> str:
    """The scheduling unit of a test: its file's group."""
    return xdist_group_of(nodeid.split("::", 1)[0])


def schedule_rank(unit: str) -> int:
    """Where a unit of work goes in the queue (see LONGEST_FIRST)."""
    return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)


def _loadgroup(config) -> bool:
    """``--dist loadgroup``: on the controller ``dist``; xdist sets a worker's ``dist`` to
    ``"no"`` and its ``loadgroup`` option to True."""
    option = config.option
    return getattr(option, "dist", None) == "loadgroup" or getattr(option, "loadgroup", False)


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
