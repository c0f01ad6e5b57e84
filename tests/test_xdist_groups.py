"""The scheduling of tests/_xdist_schedule.py: every file that uses the shared export artifacts
is in their unit (else a second worker would train and export them again), no other file is,
the longest units go first, and under ``-n 2 --dist loadgroup`` each file runs whole on one
worker."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from tests._xdist_schedule import (
    LONGEST_FIRST, SHARED_CACHE_GROUPS, schedule_rank, unit_of_work, xdist_group_of,
)
from tests.conftest import ROOT


def test_files_sharing_the_export_artifacts_form_one_group():
    call = "get_artifacts" + "(tmp_path_factory)"  # split: this file is not a user
    users = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("test_*.py")
                   if call in p.read_text())
    assert users == sorted(SHARED_CACHE_GROUPS["export_artifacts"])
    assert {xdist_group_of(f) for f in users} == {"export_artifacts"}


def test_other_files_are_their_own_group():
    assert xdist_group_of("tests/test_io.py") == "tests/test_io.py"
    assert xdist_group_of("tests/export/test_int8_pooling.py") == "tests/export/test_int8_pooling.py"
    assert unit_of_work("tests/test_io.py::test_a[x-y]") == "tests/test_io.py"
    assert unit_of_work("tests/lite/test_lite_runtime.py::test_b") == "export_artifacts"


def test_longest_units_first():
    for unit in LONGEST_FIRST:
        group_files = SHARED_CACHE_GROUPS.get(unit, (unit,))
        assert all((ROOT / f).is_file() for f in group_files), unit
    ranks = [schedule_rank(unit_of_work(n)) for n in (
        "tests/lite/test_lite_runtime.py::test_b",
        "tests/test_docs.py::test_block[README.md:64-tensorflow]",
        "tests/tools/test_benchmark.py::test_a", "tests/test_io.py::test_c")]
    assert ranks == sorted(ranks) and len(set(ranks)) == 4


def test_two_workers_run_each_file_whole_longest_first(tmp_path):
    """The scheduler in force on three tiny files (pytest >= 9.2 made xdist's own group marks
    a silent no-op): each file runs on one worker, and the LONGEST_FIRST file starts first."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(
        "from tests._xdist_schedule import pytest_collection_modifyitems, "
        "pytest_xdist_make_scheduler  # noqa: F401\n")
    tests = tmp_path / "tests"
    tests.mkdir()
    body = "".join(f"def test_{i}():\n    pass\n\n\n" for i in range(4))
    files = ["tests/test_a.py", "tests/test_b.py", LONGEST_FIRST[-1]]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup",
                             "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-v",
                             *files], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = re.findall(r"\[(gw\d)\] \[\s*\d+%\] PASSED (\S+)", result.stdout)
    workers = {}
    for worker, nodeid in runs:
        workers.setdefault(nodeid.split("::")[0], set()).add(worker)
    assert set(workers) == set(files)
    assert all(len(w) == 1 for w in workers.values()), workers
    (longest_worker,) = workers[LONGEST_FIRST[-1]]
    first_there = next(nodeid for worker, nodeid in runs if worker == longest_worker)
    assert first_there.startswith(LONGEST_FIRST[-1]), textwrap.shorten(result.stdout, 2000)
