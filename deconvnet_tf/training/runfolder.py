"""The run folder of ``train()``: one training at a time (a lock naming its holder), what an
earlier run left there (finished, resumable, other settings), ``--overwrite`` and the log.

A run folder holds ``config.json`` (written first), ``backup/`` (resumable state),
``checkpoints/``, ``log.csv``, ``tensorboard/``, ``model.keras`` and, once ``model.keras`` is
final, ``finished.json`` (``{"epochs": <epochs done>, "target": <epochs asked for>}``).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from deconvnet_tf.io import RUN_COLOR_TARGET
from deconvnet_tf.training.atomic import write_text_atomic
from deconvnet_tf.training.config import ConfigError, TrainConfig

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["FINISHED", "RunFolderError", "RunLock", "RunLockedError", "RunState", "check_settings",
           "clear_run", "inspect_run", "mark_finished", "prepare_output", "read_log", "run_folder",
           "truncate_log"]

FINISHED = "finished.json"
LOCK = ".lock"
# What train() writes into a run folder (config.json first), and what --overwrite removes.
ARTIFACTS = ("model.keras", FINISHED, "log.csv", "checkpoints", "backup", "tensorboard", "eval",
             RUN_COLOR_TARGET)
# Sub-runs (two_stage stages, multi-worker workers) and generated data, removed by --overwrite.
SUBRUNS = ("stage1", "stage2")
GENERATED = ("synthetic_data",)
# Settings a resumed or continued run may change.
RESUMABLE_CHANGES = ("output", "epochs", "stage1_epochs")


class RunFolderError(ConfigError):
    """The output folder cannot be used (not a folder, not writable, another run's)."""


class RunLockedError(RunFolderError):
    """Another process trains into the same output folder."""


def _where(folder: Path) -> str:
    return f"output folder {str(folder)!r}"


def prepare_output(folder: str | os.PathLike) -> Path:
    """Creates ``folder`` if needed and checks that it can hold a run.

    Raises:
        RunFolderError: ``folder`` is a file, cannot be created, or holds files of a run
            folder (``model.keras``, ``log.csv``...) without the ``config.json`` that
            ``train()`` writes first: it is not a run folder and nothing in it is replaced.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"{_where(folder)} is an existing file; expected a folder (new or "
                             "of an earlier run)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunFolderError(f"cannot create {_where(folder)}: {err.strerror or err}") from err
    config = folder / "config.json"
    if not config.is_file():
        found = [name for name in ARTIFACTS + SUBRUNS if (folder / name).exists()]
        if found:
            raise RunFolderError(
                f"{_where(folder)} has {', '.join(found)} but no config.json: it is not a "
                "deconvnet-train run folder and nothing in it is replaced; choose a new or empty "
                "folder")
    return folder


# What a run writes before its first step; a folder it created with nothing else is unused.
_BEFORE_FIRST_STEP = frozenset({"config.json", LOCK})


@contextlib.contextmanager
def run_folder(folder: str | os.PathLike):
    """:func:`prepare_output` for the length of a ``with`` block (a training run). When the
    block fails and ``folder`` did not exist before, and the run left nothing in it but its
    ``config.json`` and lock file (bad data, a setting rejected before the first step), the
    folder is removed again: a failed start leaves nothing behind. A folder that existed
    before, or that holds anything else (checkpoints, logs, another file), stays as it is.

    Raises:
        RunFolderError: As :func:`prepare_output`; whatever the block raises comes through.
    """
    created = not os.path.lexists(folder)
    path = prepare_output(folder)
    try:
        yield path
    except BaseException:
        if created:
            _remove_unused(path)
        raise


def _remove_unused(folder: Path) -> None:
    """Removes ``folder`` if it holds nothing but ``_BEFORE_FIRST_STEP`` files."""
    try:
        names = set(os.listdir(folder))
        if not names <= _BEFORE_FIRST_STEP:
            return
        for name in names:
            (folder / name).unlink()
        folder.rmdir()
    except OSError:  # raced with something else, or not ours to remove: leave it
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class RunLock:
    """An exclusive lock on a run folder (``<folder>/.lock`` holds the holder's pid and host).

    ``fcntl.flock`` where it works (released by the kernel when the holder dies, so the lock
    of a killed run is taken over); elsewhere an ``O_EXCL`` lock file, taken over when it names
    a dead process of this host.

    Raises (on ``acquire``/``with``):
        RunLockedError: another process holds the lock (the message names it).
        RunFolderError: the lock file cannot be written (read-only or not writable folder).
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self._fd: int | None = None
        self._exclusive = False

    def _info(self) -> str:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "since": time.strftime("%Y-%m-%d %H:%M:%S")})

    def _holder(self) -> dict:
        try:
            data = json.loads(self.path.read_text() or "{}")
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _locked(self, holder: dict) -> RunLockedError:
        who = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since "
               f"{holder.get('since', '?')}")
        return RunLockedError(
            f"{_where(self.folder)} is in use by another training run ({who}); wait for it to "
            f"finish or choose another output folder (lock file {str(self.path)!r})")

    def _unwritable(self, err: OSError) -> RunFolderError:
        return RunFolderError(f"cannot write to {_where(self.folder)}: {err.strerror or err}")

    def acquire(self) -> RunLock:
        if fcntl is not None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise self._unwritable(err) from err
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise self._locked(self._holder()) from None
            except OSError as err:  # no flock on this file system (some network mounts)
                os.close(fd)
                if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise self._unwritable(err) from err
            else:
                os.ftruncate(fd, 0)
                os.write(fd, self._info().encode())
                self._fd = fd
                return self
        self._acquire_exclusive()
        return self

    def _acquire_exclusive(self) -> None:
        path = self.folder / (LOCK + ".pid")
        for _ in range(3):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    holder = json.loads(path.read_text() or "{}")
                except (OSError, ValueError):
                    holder = {}
                pid = holder.get("pid")
                if (holder.get("host") == socket.gethostname() and isinstance(pid, int)
                        and not _pid_alive(pid)):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()  # a stale lock of a dead process
                    continue
                raise self._locked(holder) from None
            except OSError as err:
                raise self._unwritable(err) from err
            os.write(fd, self._info().encode())
            os.close(fd)
            self.path = path
            self._exclusive = True
            return
        raise self._locked({})

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing releases the flock
            self._fd = None
        elif self._exclusive:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._exclusive = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@dataclass
class RunState:
    """What an earlier run left in a folder."""

    folder: Path
    config: TrainConfig | None  # its config.json
    finished: dict | None  # {"epochs": done, "target": asked for} once model.keras is final
    has_backup: bool  # resumable state of an interrupted run

    @property
    def epochs_done(self) -> int:
        return int(self.finished["epochs"]) if self.finished else 0


def inspect_run(folder: str | os.PathLike) -> RunState:
    """Reads the state of the run in ``folder`` (call under its :class:`RunLock`).

    Raises:
        RunFolderError: ``config.json`` is not a config of ``train()``.
    """
    folder = Path(folder)
    config = None
    if (folder / "config.json").is_file():
        try:
            config = TrainConfig.load(folder / "config.json")
        except ConfigError as err:
            raise RunFolderError(
                f"{_where(folder)} has a config.json that train() cannot use ({err}); choose "
                "another output folder, or remove the folder if it is an old run") from err
    has_backup = (folder / "backup" / "training_metadata.json").is_file()
    finished = None
    model = (folder / "model.keras").is_file()
    if model and (folder / FINISHED).is_file():
        try:
            finished = json.loads((folder / FINISHED).read_text())
            int(finished["epochs"])
        except (OSError, ValueError, KeyError, TypeError):
            finished = None
    if finished is None and model and config is not None and not has_backup:
        finished = {"epochs": config.epochs, "target": config.epochs}  # a run of an older version
    return RunState(folder, config, finished, has_backup)


def check_settings(state: RunState, config: TrainConfig) -> None:
    """Raises :class:`RunFolderError` when ``state`` holds work (a backup or a finished model)
    of a run whose settings differ from ``config`` (other than :data:`RESUMABLE_CHANGES`)."""
    if state.config is None or not (state.finished or state.has_backup):
        return
    changes = []
    for f in dataclasses.fields(TrainConfig):
        old, new = getattr(state.config, f.name), getattr(config, f.name)
        if f.name not in RESUMABLE_CHANGES and old != new:
            changes.append(f"{f.name}: {old!r} -> {new!r}")
    if changes:
        what = "a finished run" if state.finished else "an interrupted run"
        shown = "; ".join(changes[:4]) + (f"; and {len(changes) - 4} more" if len(changes) > 4 else "")
        raise RunFolderError(
            f"{_where(state.folder)} holds {what} with other settings ({shown}); use overwrite "
            "(--overwrite) to replace it, or another output folder")


def clear_run(folder: str | os.PathLike) -> None:
    """Removes what train() wrote into ``folder`` (``--overwrite``); other files stay (and the
    ``worker<i>/`` folders of a multi-worker run, which each worker clears itself)."""
    folder = Path(folder)
    for sub in (folder / name for name in SUBRUNS):
        if sub.is_dir() and (sub / "config.json").is_file():
            clear_run(sub)
            (sub / "config.json").unlink()
            with contextlib.suppress(OSError):
                (sub / LOCK).unlink()
            with contextlib.suppress(OSError):
                sub.rmdir()  # only when nothing else is left
    for name in ARTIFACTS + GENERATED:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def mark_finished(folder: str | os.PathLike, epochs: int, target: int, **info) -> Path:
    """Writes ``finished.json`` (``epochs`` done, ``target`` asked for, and ``info``): the
    run's ``model.keras`` is final."""
    data = {"epochs": int(epochs), "target": int(target), **info}
    return write_text_atomic(Path(folder) / FINISHED, json.dumps(data) + "\n")


def truncate_log(path: str | os.PathLike, start_epoch: int) -> None:
    """Drops the rows of epochs ``>= start_epoch`` from a ``CSVLogger`` file (they are redone),
    atomically; the whole file when ``start_epoch`` is 0."""
    path = Path(path)
    if not path.is_file():
        return
    if start_epoch <= 0:
        path.unlink()
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "epoch" not in rows[0]:
        return
    column = rows[0].index("epoch")

    def keep(row):
        try:
            return int(float(row[column])) < start_epoch
        except (IndexError, ValueError):
            return False

    kept = [rows[0]] + [row for row in rows[1:] if keep(row)]
    if len(kept) == len(rows):
        return
    from io import StringIO

    text = StringIO()
    csv.writer(text, lineterminator="\n").writerows(kept)
    write_text_atomic(path, text.getvalue())


def read_log(path: str | os.PathLike) -> dict[str, list[float]]:
    """The history of a ``CSVLogger`` file: ``{column: [values of the epochs that have it]}``."""
    path = Path(path)
    history: dict[str, list[float]] = {}
    if not path.is_file():
        return history
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key in (None, "epoch"):
                    continue
                try:
                    history.setdefault(key, []).append(float(value))
                except (TypeError, ValueError):  # "NA" / "": not measured that epoch
                    history.setdefault(key, [])
    return history
