"""The xdist groups of tests/conftest.py: every file that uses the shared export artifacts is in
their group (else a second worker would train and export them again), and no other file is."""

from __future__ import annotations

from tests.conftest import ROOT, SHARED_CACHE_GROUPS, xdist_group_of


def test_files_sharing_the_export_artifacts_form_one_group():
    call = "get_artifacts" + "(tmp_path_factory)"  # split: this file is not a user
    users = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("test_*.py")
                   if call in p.read_text())
    assert users == sorted(SHARED_CACHE_GROUPS["export_artifacts"])
    assert {xdist_group_of(f) for f in users} == {"export_artifacts"}


def test_other_files_are_their_own_group():
    assert xdist_group_of("tests/test_io.py") == "tests/test_io.py"
    assert xdist_group_of("tests/export/test_int8_pooling.py") == "tests/export/test_int8_pooling.py"


def test_units_of_work():
    from tests.conftest import unit_of_work

    assert unit_of_work("tests/test_io.py::test_a[x-y]") == "tests/test_io.py"
    assert unit_of_work("tests/lite/test_lite_runtime.py::test_b") == "export_artifacts"
    docs = "tests/test_docs.py::test_block[README.md:64-tensorflow]"
    assert unit_of_work(docs) == docs  # the documented blocks spread over the workers


def test_two_workers_run_each_file_whole():
    """The scheduler is in force: under ``-n 2 --dist loadgroup`` every test of a file runs on
    the same worker (pytest >= 9.2 made xdist's own group marks a silent no-op)."""
    import re
    import subprocess
    import sys

    files = ["tests/test_io_atomic.py", "tests/test_render.py"]
    result = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup",
                             "-p", "no:cacheprovider", "-v", *files], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    workers = {}
    for worker, nodeid in re.findall(r"\[(gw\d)\] \[\s*\d+%\] PASSED (\S+)", result.stdout):
        workers.setdefault(nodeid.split("::")[0], set()).add(worker)
    assert set(workers) == set(files)
    assert all(len(w) == 1 for w in workers.values()), workers


def test_longest_units_first_and_documented_blocks_last():
    from tests.conftest import LONGEST_FIRST, schedule_rank, unit_of_work

    for unit in LONGEST_FIRST:
        group_files = SHARED_CACHE_GROUPS.get(unit, (unit,))
        assert all((ROOT / f).is_file() for f in group_files), unit
    ranks = [schedule_rank(unit_of_work(n)) for n in (
        "tests/tools/test_benchmark.py::test_a", "tests/lite/test_lite_runtime.py::test_b",
        "tests/test_io.py::test_c", "tests/test_docs.py::test_block[README.md:64-tensorflow]")]
    assert ranks == sorted(ranks) and len(set(ranks)) == 4
