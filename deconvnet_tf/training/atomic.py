"""Atomic file writes: a temporary file next to the target, flushed to disk, then ``os.replace``.

A crash (or ``kill -9``) at any moment leaves either the previous file or the new one, never a
half-written file; a failed write removes its temporary file and leaves the target untouched.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "write_text_atomic"]


def _fsync(path: Path) -> None:
    """Flushes ``path`` (a file or a folder) to disk where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # e.g. folders on some file systems
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yields a temporary path to write; on success it replaces ``path`` atomically.

    Args:
        path: The final file.
        suffix: Ending of the temporary name (default: ``path``'s suffix), for writers that
            check the extension (``model.save`` needs ``.keras``, ``save_weights``
            ``.weights.h5``).

    On an exception the temporary file is removed, ``path`` is left as it was and the
    exception propagates.
    """
    path = Path(path)
    suffix = path.suffix if suffix is None else suffix
    stem = path.name[: len(path.name) - len(suffix)] if suffix and path.name.endswith(suffix) else path.name
    tmp = path.with_name(f".{stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync(path.parent)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
