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
