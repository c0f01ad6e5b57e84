"""Result files of the tools. A file named on a tool's command line (``--json``, ``--output``)
is a new file: an existing one is refused before the run and left as it was, and the write is
atomic (a unique temporary file next to it, never replacing a file created meanwhile).
Markdown sections that a benchmark keeps up to date (``--markdown``) are the exception: they
are updated in place by design (``bench_gpu.write_markdown_section``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from deconvnet_tf.io import make_temp_file

__all__ = ["existing_output_error", "write_json_new", "replace_text"]


def existing_output_error(path: str | os.PathLike | None, flag: str = "--json") -> str | None:
    """The one-line error for a result file that exists already, or ``None``."""
    if path is not None and str(path) and Path(path).exists():
        return f"{flag} {str(path)!r} exists; name a new file"
    return None


def write_json_new(path: str | os.PathLike, obj: Any, *, indent: int = 2, default=None,
                   overwrite: bool = False) -> Path:
    """Writes ``obj`` as JSON to the new file ``path`` (see the module docstring); with
    ``overwrite`` an existing file is replaced (atomically). Standard library only:
    ``tools/bench_gpu.py`` runs on machines where the package is not installed.

    Raises:
        FileExistsError: ``path`` exists (e.g. created since the check) and ``overwrite`` is
            false; nothing is written.
    """
    path = Path(path)
    text = json.dumps(obj, indent=indent, default=default) + "\n"
    if overwrite:
        return replace_text(path, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_temp_file(path)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # atomic, and fails instead of replacing an existing file
    finally:
        os.unlink(tmp)
    return path


def replace_text(path: str | os.PathLike, text: str) -> Path:
    """Replaces ``path`` with ``text`` atomically (for files a tool updates in place by design,
    such as a benchmark's markdown section)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_temp_file(path)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
