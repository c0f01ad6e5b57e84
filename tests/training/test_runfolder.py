"""The run folder's rules, unit by unit and without training (fast; mutation-checked):
what counts as a run folder, the lock, finished/interrupted state, settings checks, --overwrite
and the log."""

from __future__ import annotations

import json
import os
import socket

import pytest

from deconvnet_tf.training import runfolder
from deconvnet_tf.training.atomic import atomic_path, write_text_atomic
from deconvnet_tf.training.config import TrainConfig
from deconvnet_tf.training.runfolder import (
    RunFolderError,
    RunLock,
    RunLockedError,
    check_settings,
    clear_run,
    inspect_run,
    mark_finished,
    prepare_output,
    read_log,
    run_folder,
    truncate_log,
)

pytestmark = pytest.mark.jax  # no TensorFlow


def config(tmp_path, **overrides):
    return TrainConfig(output=str(tmp_path), data="synthetic", **overrides)


def test_prepare_output_creates_and_refuses_what_is_not_a_run(tmp_path):
    assert prepare_output(tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="'.*file' is an existing file; expected a folder"):
        prepare_output(tmp_path / "file")
    with pytest.raises(RunFolderError, match="cannot create"):
        prepare_output(tmp_path / "file" / "below")
    for name in ("model.keras", "log.csv", "stage1"):
        folder = tmp_path / f"user_{name}"
        folder.mkdir()
        (folder / name).write_text("mine")
        with pytest.raises(RunFolderError, match=f"has {name} but no config.json"):
            prepare_output(folder)
        assert (folder / name).read_text() == "mine"
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "notes.txt").write_text("unrelated files are fine")
    assert prepare_output(tmp_path / "ok") == tmp_path / "ok"


@pytest.mark.parametrize("flock", [True, False])
def test_lock_is_exclusive_names_its_holder_and_is_released(tmp_path, monkeypatch, flock):
    if not flock:
        monkeypatch.setattr(runfolder, "fcntl", None)
    with RunLock(tmp_path) as lock:
        holder = json.loads(lock.path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        if flock:  # a second open file description of this process conflicts too
            with pytest.raises(RunLockedError, match=rf"pid {os.getpid()} on "):
                RunLock(tmp_path).acquire()
        else:
            with pytest.raises(RunLockedError, match="in use by another training run"):
                RunLock(tmp_path).acquire()
    with RunLock(tmp_path):  # released: free again
        pass
    if not flock:
        assert not (tmp_path / ".lock.pid").exists()


def test_stale_lock_file_of_a_dead_process_is_taken_over(tmp_path, monkeypatch):
    monkeypatch.setattr(runfolder, "fcntl", None)
    dead = {"pid": 2**22 + 12345, "host": socket.gethostname()}
    (tmp_path / ".lock.pid").write_text(json.dumps(dead))
    assert not runfolder._pid_alive(dead["pid"]) and runfolder._pid_alive(os.getpid())
    with RunLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    other_host = {"pid": dead["pid"], "host": "elsewhere"}
    (tmp_path / ".lock.pid").write_text(json.dumps(other_host))
    with pytest.raises(RunLockedError, match="on elsewhere"):
        RunLock(tmp_path).acquire()


def test_lock_in_an_unwritable_folder_is_a_run_folder_error(tmp_path):
    with pytest.raises(RunFolderError, match="cannot write to output folder"):
        RunLock(tmp_path / "missing").acquire()


def test_inspect_run_finished_interrupted_and_old_runs(tmp_path):
    cfg = config(tmp_path, epochs=3)
    cfg.save(tmp_path / "config.json")
    state = inspect_run(tmp_path)
    assert state.config == cfg and state.finished is None and not state.has_backup
    assert state.epochs_done == 0
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "training_metadata.json").write_text("{}")
    (tmp_path / "model.keras").write_text("model")
    state = inspect_run(tmp_path)
    assert state.has_backup and state.finished is None  # interrupted: model.keras not final
    mark_finished(tmp_path, 2, 3, seconds=1.5)
    state = inspect_run(tmp_path)
    assert state.finished == {"epochs": 2, "target": 3, "seconds": 1.5}
    assert state.epochs_done == 2
    (tmp_path / "finished.json").write_text("{broken")
    (tmp_path / "backup" / "training_metadata.json").unlink()
    state = inspect_run(tmp_path)  # an older version's run: model.keras and no backup
    assert state.finished == {"epochs": 3, "target": 3}
    (tmp_path / "config.json").write_text('{"nonsense": 1}')
    with pytest.raises(RunFolderError, match="config.json that train\\(\\) cannot use"):
        inspect_run(tmp_path)


def test_check_settings_allows_only_resumable_changes(tmp_path):
    cfg = config(tmp_path, epochs=3, learning_rate=0.01)
    cfg.save(tmp_path / "config.json")
    (tmp_path / "model.keras").write_text("model")
    mark_finished(tmp_path, 3, 3)
    state = inspect_run(tmp_path)
    check_settings(state, config(tmp_path, epochs=9, learning_rate=0.01))  # more epochs: fine
    with pytest.raises(RunFolderError, match=r"holds a finished run with other settings "
                                             r"\(learning_rate: 0.01 -> 0.02\)"):
        check_settings(state, config(tmp_path, epochs=3, learning_rate=0.02))
    many = config(tmp_path, learning_rate=0.5, batch_size=3, weight_decay=0.1, seed=9,
                  momentum=0.5, epochs=3)
    with pytest.raises(RunFolderError, match=r"and 1 more\); use overwrite"):
        check_settings(state, many)
    (tmp_path / "finished.json").unlink()
    (tmp_path / "model.keras").unlink()
    check_settings(inspect_run(tmp_path), many)  # no work there: nothing to protect
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "training_metadata.json").write_text("{}")
    with pytest.raises(RunFolderError, match="holds an interrupted run"):
        check_settings(inspect_run(tmp_path), many)


def test_clear_run_removes_only_what_train_wrote(tmp_path):
    config(tmp_path).save(tmp_path / "config.json")
    for name in ("model.keras", "finished.json", "log.csv"):
        (tmp_path / name).write_text("x")
    for name in ("checkpoints", "backup", "tensorboard", "eval", "synthetic_data"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("x")
    stage = tmp_path / "stage1"
    stage.mkdir()
    config(stage).save(stage / "config.json")
    (stage / "model.keras").write_text("x")
    (tmp_path / "notes.txt").write_text("mine")
    clear_run(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "notes.txt"]


def test_log_truncation_and_reading(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss,val_mean_iou\n0,1.5,NA\n1,1.0,0.4\n2,0.8,0.5\n")
    assert read_log(log) == {"loss": [1.5, 1.0, 0.8], "val_mean_iou": [0.4, 0.5]}
    truncate_log(log, 2)
    assert log.read_text() == "epoch,loss,val_mean_iou\n0,1.5,NA\n1,1.0,0.4\n"
    truncate_log(log, 5)  # nothing to drop
    assert log.read_text().count("\n") == 3
    truncate_log(log, 0)
    assert not log.exists() and read_log(log) == {}
    truncate_log(log, 1)  # no file: nothing happens
    log.write_text("loss\n1.0\n")  # no epoch column: left alone
    truncate_log(log, 0 + 1)
    assert log.read_text() == "loss\n1.0\n"


def test_atomic_writes_leave_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "a.json"
    write_text_atomic(target, "one")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


# ----------------------------------------------------------------- exact messages and edges
# (each of these fails on a mutant of runfolder.py that the tests above let through)


def test_prepare_output_messages_name_the_folder_and_every_file_found(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError) as err:
        prepare_output(tmp_path / "file")
    assert str(err.value) == (f"output folder {str(tmp_path / 'file')!r} is an existing file; "
                              "expected a folder (new or of an earlier run)")
    with pytest.raises(RunFolderError) as err:
        prepare_output(tmp_path / "file" / "below")
    assert str(err.value) == (f"cannot create output folder {str(tmp_path / 'file' / 'below')!r}:"
                              " Not a directory")
    user = tmp_path / "user"
    user.mkdir()
    (user / "model.keras").write_text("mine")
    (user / "log.csv").write_text("mine")
    with pytest.raises(RunFolderError) as err:
        prepare_output(user)
    assert str(err.value) == (
        f"output folder {str(user)!r} has model.keras, log.csv but no config.json: it is not a "
        "deconvnet-train run folder and nothing in it is replaced; choose a new or empty folder")
    (user / "config.json").write_text("{}")  # a run folder (what it holds is checked later)
    assert prepare_output(user) == user


def test_pid_alive_probes_without_signalling_and_reads_each_error(tmp_path, monkeypatch):
    import signal
    import subprocess
    import sys
    import time

    # SIGHUP back to its default (a nohup'ed parent passes it on ignored): a probe that sent a
    # real signal would end the child.
    child = subprocess.Popen([sys.executable, "-c", "import signal, time; "
                              "signal.signal(signal.SIGHUP, signal.SIG_DFL); time.sleep(60)"])
    time.sleep(0.5)
    try:
        assert runfolder._pid_alive(child.pid)
        time.sleep(0.2)
        assert child.poll() is None  # signal 0 probes: the child was not signalled
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not runfolder._pid_alive(child.pid)

    def raising(error):
        def kill(pid, sig):
            raise error
        return kill

    for error, alive in ((PermissionError(), True), (ProcessLookupError(), False),
                         (OSError(22, "Invalid argument"), False)):
        monkeypatch.setattr(runfolder.os, "kill", raising(error))
        assert runfolder._pid_alive(12345) is alive, error


def _mode(path):
    import stat

    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_flock_lock_file_holds_the_holder_and_is_emptied_on_release(tmp_path, umask_022):
    (tmp_path / "fresh").mkdir()
    with RunLock(tmp_path / "fresh") as lock:
        assert _mode(lock.path) == 0o644  # created by the lock
        holder = json.loads(lock.path.read_text())
        with pytest.raises(RunLockedError) as err:
            RunLock(tmp_path / "fresh").acquire()
        assert f"(pid {holder['pid']} on {holder['host']}, since {holder['since']})" in str(err.value)
    (tmp_path / ".lock").write_text("left by an earlier run")
    lock = RunLock(tmp_path)
    lock.release()  # never acquired: nothing to do, the file stays
    assert (tmp_path / ".lock").read_text() == "left by an earlier run"
    with RunLock(tmp_path) as lock:
        assert lock.path == tmp_path / ".lock"
        holder = json.loads(lock.path.read_text())
        assert set(holder) == {"pid", "host", "since"}
        assert time_format(holder["since"])
    assert (tmp_path / ".lock").read_bytes() == b""  # released: the holder is wiped
    lock.release()  # twice: still nothing to do


def time_format(text: str) -> bool:
    import re

    return re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", text) is not None


def test_locked_message_with_an_unreadable_holder(tmp_path):
    with RunLock(tmp_path):
        (tmp_path / ".lock").write_text("[1, 2]")  # not the holder's record
        with pytest.raises(RunLockedError) as err:
            RunLock(tmp_path).acquire()
    assert str(err.value) == (
        f"output folder {str(tmp_path)!r} is in use by another training run (pid ? on ?, since "
        f"?); wait for it to finish or choose another output folder (lock file "
        f"{str(tmp_path / '.lock')!r})")


def test_file_systems_without_flock_fall_back_to_a_lock_file(tmp_path, monkeypatch, umask_022):
    import errno

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(runfolder.fcntl, "flock", no_flock)
    with RunLock(tmp_path) as lock:
        assert lock.path == tmp_path / ".lock.pid" and _mode(lock.path) == 0o644
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert not (tmp_path / ".lock.pid").exists()

    def broken_flock(fd, op):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(runfolder.fcntl, "flock", broken_flock)
    with pytest.raises(RunFolderError) as err:
        RunLock(tmp_path).acquire()
    assert str(err.value) == f"cannot write to output folder {str(tmp_path)!r}: Input/output error"


def test_flock_is_taken_exclusive_and_non_blocking(tmp_path, monkeypatch):
    seen = []
    real = runfolder.fcntl.flock
    monkeypatch.setattr(runfolder.fcntl, "flock", lambda fd, op: (seen.append(op), real(fd, op)))
    with RunLock(tmp_path):
        pass
    assert seen == [runfolder.fcntl.LOCK_EX | runfolder.fcntl.LOCK_NB]


def test_lock_file_fallback_edges(tmp_path, monkeypatch):
    monkeypatch.setattr(runfolder, "fcntl", None)
    (tmp_path / ".lock.pid").write_text("{broken")
    with pytest.raises(RunLockedError, match=r"\(pid \? on \?, since \?\)"):
        RunLock(tmp_path).acquire()
    (tmp_path / ".lock.pid").unlink()
    lock = RunLock(tmp_path).acquire()
    lock.path.unlink()  # removed by hand while held: releasing still works
    lock.release()
    (tmp_path / ".lock.pid").write_text("someone else's")
    lock.release()  # released before: never removes another holder's file
    assert (tmp_path / ".lock.pid").read_text() == "someone else's"
    with pytest.raises(RunFolderError) as err:
        RunLock(tmp_path / "missing").acquire()
    assert str(err.value) == (f"cannot write to output folder {str(tmp_path / 'missing')!r}: "
                              "No such file or directory")


def test_a_lock_file_that_keeps_coming_back_is_given_up_after_three_tries(tmp_path, monkeypatch):
    monkeypatch.setattr(runfolder, "fcntl", None)
    dead = json.dumps({"pid": 2**22 + 777, "host": socket.gethostname()})
    (tmp_path / ".lock.pid").write_text(dead)
    opened = []
    real_open = os.open

    def open_existing(path, flags, *mode):
        if str(path).endswith(".lock.pid"):
            opened.append(path)
            (tmp_path / ".lock.pid").write_text(dead)  # re-created by a racing process
            raise FileExistsError(path)
        return real_open(path, flags, *mode)

    monkeypatch.setattr(runfolder.os, "open", open_existing)
    with pytest.raises(RunLockedError, match=r"\(pid \? on \?, since \?\)"):
        RunLock(tmp_path).acquire()
    assert len(opened) == 3


def test_inspect_run_of_an_empty_folder_and_a_stray_finished_file(tmp_path):
    state = inspect_run(tmp_path)
    assert state.folder == tmp_path and state.config is None and state.finished is None
    mark_finished(tmp_path, 2, 2)  # finished.json without model.keras: not finished
    assert inspect_run(tmp_path).finished is None
    (tmp_path / "config.json").write_text('{"nonsense": 1}')
    with pytest.raises(RunFolderError) as err:
        inspect_run(tmp_path)
    message = str(err.value)
    assert message.startswith(f"output folder {str(tmp_path)!r} has a config.json that train() "
                              "cannot use (")
    assert message.endswith("); choose another output folder, or remove the folder if it is an "
                            "old run")


def test_check_settings_message_lists_four_changes_then_counts_the_rest(tmp_path):
    cfg = config(tmp_path, epochs=3)
    cfg.save(tmp_path / "config.json")
    (tmp_path / "model.keras").write_text("model")
    mark_finished(tmp_path, 3, 3)
    state = inspect_run(tmp_path)
    four = dict(learning_rate=0.5, batch_size=3, weight_decay=0.1, seed=9)
    with pytest.raises(RunFolderError) as err:
        check_settings(state, config(tmp_path, epochs=3, **four))
    import dataclasses

    order = [f.name for f in dataclasses.fields(TrainConfig) if f.name in four]  # field order
    changes = "; ".join(f"{k}: {getattr(cfg, k)!r} -> {four[k]!r}" for k in order)
    assert str(err.value) == (
        f"output folder {str(tmp_path)!r} holds a finished run with other settings ({changes}); "
        "use overwrite (--overwrite) to replace it, or another output folder")
    five = dict(four, momentum=0.5)
    with pytest.raises(RunFolderError) as err:
        check_settings(state, config(tmp_path, epochs=3, **five))
    order = [f.name for f in dataclasses.fields(TrainConfig) if f.name in five][:4]
    shown = "; ".join(f"{k}: {getattr(cfg, k)!r} -> {five[k]!r}" for k in order)
    assert f"with other settings ({shown}; and 1 more); use" in str(err.value)


def test_clear_run_leaves_stage_folders_that_are_not_runs(tmp_path):
    config(tmp_path).save(tmp_path / "config.json")
    (tmp_path / "stage1").mkdir()
    (tmp_path / "stage1" / "mine.txt").write_text("not a run")
    stage2 = tmp_path / "stage2"
    stage2.mkdir()
    config(stage2).save(stage2 / "config.json")
    (stage2 / "notes.txt").write_text("kept")  # the stage folder stays for it
    clear_run(tmp_path)
    assert (tmp_path / "stage1" / "mine.txt").read_text() == "not a run"
    assert sorted(p.name for p in stage2.iterdir()) == ["notes.txt"]


def test_log_truncation_writes_plain_newlines_and_drops_unreadable_rows(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss\n0,1.5\nbroken,1.0\n1,1.0\n2,0.5\n")
    truncate_log(log, 2)
    assert log.read_bytes() == b"epoch,loss\n0,1.5\n1,1.0\n"


def test_run_folder_removes_only_an_unused_folder_it_created(tmp_path):
    # Created here, fails with only config.json and the lock inside: removed, error kept.
    with pytest.raises(ValueError, match="bad data"):
        with run_folder(tmp_path / "new") as folder, RunLock(folder):
            (folder / "config.json").write_text("{}")
            raise ValueError("bad data")
    assert not (tmp_path / "new").exists()
    # Anything more than that (a log, a checkpoint folder): kept.
    with pytest.raises(ValueError):
        with run_folder(tmp_path / "logged") as folder:
            (folder / "config.json").write_text("{}")
            (folder / "log.csv").write_text("epoch\n")
            raise ValueError("late failure")
    assert sorted(p.name for p in (tmp_path / "logged").iterdir()) == ["config.json", "log.csv"]
    # Existed before: kept even when empty; success: kept.
    (tmp_path / "old").mkdir()
    with pytest.raises(KeyError):
        with run_folder(tmp_path / "old"):
            raise KeyError("x")
    assert (tmp_path / "old").is_dir()
    with run_folder(tmp_path / "ok") as folder:
        (folder / "config.json").write_text("{}")
    assert (tmp_path / "ok" / "config.json").is_file()
    # The checks of prepare_output come first.
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is an existing file"):
        with run_folder(tmp_path / "file"):
            raise AssertionError("not reached")
