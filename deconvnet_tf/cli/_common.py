"""Helpers shared by the console scripts."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

__all__ = ["Reporter", "error_line", "max_pixels_type", "positive_int", "select_backend"]

# Set in the environment of a re-executed console script, so that it never loops.
_REEXEC_FLAG = "DECONVNET_TF_BACKEND_REEXEC"


def select_backend(name: str | None, argv: Sequence[str] | None = None) -> None:
    """Makes Keras run on backend ``name`` (``--backend`` of the console scripts).

    The Keras backend is fixed when Keras is first imported, and importing ``deconvnet_tf`` (which
    every console script does, to register its layers) imports Keras. So when Keras is already
    loaded with another backend, a console script re-executes itself (same arguments) with
    ``KERAS_BACKEND=name``; called from Python (e.g. ``main([...])`` in a test) it stops with a
    message saying to set ``KERAS_BACKEND`` instead.

    Args:
        name: ``"tensorflow"``, ``"jax"`` or ``None`` (keep the active backend).
        argv: The script's arguments, for the re-execution (default ``sys.argv[1:]``).

    Raises:
        SystemExit: Keras is loaded with another backend and this is not a console script.
    """
    if name is None:
        return
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = name
        return
    import keras

    active = keras.backend.backend()
    if active == name:
        return
    script = os.path.basename(sys.argv[0] or "")
    if script.startswith("deconvnet-") and not os.environ.get(_REEXEC_FLAG):
        env = dict(os.environ, KERAS_BACKEND=name, **{_REEXEC_FLAG: "1"})
        args = list(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.argv[0], [sys.argv[0], *args], env)
    raise SystemExit(
        f"--backend {name}: Keras is already loaded with the '{active}' backend in this process; "
        f"set KERAS_BACKEND={name} in the environment instead"
    )


def error_line(err: BaseException) -> str:
    """One line for an exception: its first non-empty message line (OS errors: the reason and
    the file)."""
    if isinstance(err, OSError) and err.strerror and err.filename is not None and (
            type(err).__str__ is OSError.__str__):
        return f"{err.strerror}: {str(err.filename)!r}"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def positive_int(text: str) -> int:
    """``argparse`` type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def max_pixels_type(text: str) -> int | None:
    """``argparse`` type of ``--max-pixels``: a pixel count >= 1 (``2000000``, ``2e6``) or
    ``none`` (no limit)."""
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a pixel count such as 2000000 or 2e6, or 'none', got {text!r}") from None
    if not value >= 1 or value != value or value == float("inf") or value != int(value):
        raise argparse.ArgumentTypeError(f"expected a whole pixel count >= 1, got {text!r}")
    return int(value)


class Reporter:
    """Messages of a console script on stderr: ``<prog>: warning: ...``, ``<prog>: skipped
    ...`` and the one-line ``<prog>: error: ...``."""

    def __init__(self, prog: str):
        self.prog = prog
        self.skipped: list[tuple[str, str]] = []

    def warning(self, message: str) -> None:
        print(f"{self.prog}: warning: {message}", file=sys.stderr, flush=True)

    def skip(self, path, message: str) -> None:
        self.skipped.append((str(path), message))
        where = "" if str(path) in message else f" {str(path)!r}"
        print(f"{self.prog}: skipped{where}: {message}", file=sys.stderr, flush=True)

    def error(self, err: BaseException | str) -> int:
        """Prints the error line and returns exit status 2."""
        text = err if isinstance(err, str) else error_line(err)
        print(f"{self.prog}: error: {text}", file=sys.stderr, flush=True)
        return 2

    def finish(self, done: int) -> int:
        """Exit status of a run: 0, or 1 with an error line when images were skipped."""
        if not self.skipped:
            return 0
        print(f"{self.prog}: error: {len(self.skipped)} of {done + len(self.skipped)} image(s) "
              f"skipped (listed above): {', '.join(repr(p) for p, _ in self.skipped[:3])}"
              f"{' ...' if len(self.skipped) > 3 else ''}", file=sys.stderr, flush=True)
        return 1
