"""Atomic writes of deconvnet_tf.io at their edges: file systems without hard links, where the
temporary file lives, folders in the way (no framework; a unit of the size_rule mutation group)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from deconvnet_tf import io

pytestmark = pytest.mark.jax  # no TensorFlow


def _no_hard_links(monkeypatch, code=errno.EPERM):
    def link(src, dst):
        raise OSError(code, "hard links not supported here")

    monkeypatch.setattr(io.os, "link", link)


def test_without_hard_links_new_files_are_written_and_existing_ones_kept(tmp_path, monkeypatch):
    _no_hard_links(monkeypatch)
    target = tmp_path / "out.bin"
    assert io.write_bytes(target, b"new", overwrite=False) == target
    assert target.read_bytes() == b"new"
    with pytest.raises(io.OutputError) as err:
        io.write_bytes(target, b"other", overwrite=False)
    assert str(err.value) == f"{str(target)!r} already exists; pass --overwrite to replace it"
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]  # no temporary file left


def test_other_link_errors_are_not_hidden(tmp_path, monkeypatch):
    _no_hard_links(monkeypatch, errno.EIO)
    with pytest.raises(OSError) as err:
        io.write_bytes(tmp_path / "x.bin", b"1", overwrite=False)
    assert err.value.errno == errno.EIO
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_file_is_hidden_next_to_the_target(tmp_path, monkeypatch):
    seen = []
    publish = io._publish
    monkeypatch.setattr(io, "_publish", lambda tmp, path, overwrite: (
        seen.append(Path(tmp)), publish(tmp, path, overwrite)))
    target = tmp_path / "new" / "deeper" / "labels.png"  # its folders are created
    io.write_bytes(target, b"png")
    (tmp,) = seen
    assert tmp.parent == target.parent
    assert tmp.name.startswith(".labels.png.") and tmp.name.endswith(".tmp")
    assert target.read_bytes() == b"png" and not tmp.exists()


def test_a_folder_in_the_way(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(io.OutputError) as err:
        io.write_bytes(tmp_path / "taken", b"x")
    assert str(err.value) == f"{str(tmp_path / 'taken')!r} is a folder; cannot write a file there"


def test_ensure_output_dir_probes_inside_the_folder(tmp_path, monkeypatch):
    made = []
    mkstemp = io.tempfile.mkstemp
    monkeypatch.setattr(io.tempfile, "mkstemp", lambda **kw: (made.append(kw), mkstemp(**kw))[1])
    out = io.ensure_output_dir(tmp_path / "a" / "b")
    assert out == tmp_path / "a" / "b" and out.is_dir() and list(out.iterdir()) == []
    assert made == [{"prefix": ".deconvnet-write-test-", "dir": out}]
    (tmp_path / "file").write_text("x")
    with pytest.raises(io.OutputError) as err:
        io.ensure_output_dir(tmp_path / "file" / "below", what="--save-dir")
    assert str(err.value) == (f"--save-dir {str(tmp_path / 'file' / 'below')!r}: cannot write "
                              "there (a part of the path is a file)")


def test_check_creatable_probes_the_nearest_existing_folder_and_creates_nothing(tmp_path,
                                                                               monkeypatch):
    made = []
    mkstemp = io.tempfile.mkstemp
    monkeypatch.setattr(io.tempfile, "mkstemp", lambda **kw: (made.append(kw["dir"]),
                                                               mkstemp(**kw))[1])
    assert io.check_creatable(tmp_path / "a" / "b" / "m.tflite", "--output") == (
        tmp_path / "a" / "b" / "m.tflite")
    (tmp_path / "user.png").write_bytes(b"mine")
    io.check_creatable(tmp_path / "user.png", "--output")  # an existing file: its folder
    assert made == [tmp_path, tmp_path] and sorted(p.name for p in tmp_path.iterdir()) == [
        "user.png"]
    assert (tmp_path / "user.png").read_bytes() == b"mine"


def test_check_creatable_errors_name_the_argument_and_use_the_callers_class(tmp_path,
                                                                           monkeypatch):
    (tmp_path / "user.txt").write_text("x")
    with pytest.raises(ValueError) as err:
        io.check_creatable(tmp_path / "user.txt" / "r", "--output", ValueError)
    assert str(err.value) == (f"--output {str(tmp_path / 'user.txt' / 'r')!r}: "
                              f"{str(tmp_path / 'user.txt')!r} is a file, not a folder")

    def refuse(**kw):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(io.tempfile, "mkstemp", refuse)
    with pytest.raises(io.OutputError) as err:
        io.check_creatable(tmp_path / "new" / "sm", "--output")
    assert str(err.value) == (f"--output {str(tmp_path / 'new' / 'sm')!r} is not writable "
                              f"({str(tmp_path)!r}: Permission denied)")
    assert isinstance(err.value.__cause__, PermissionError)
