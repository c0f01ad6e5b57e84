"""Helpers shared by the console scripts."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

__all__ = ["Reporter", "add_prediction_output_flags", "add_verbose_flag", "error_line", "max_pixels_type", "plain_text",
           "positive_int", "quiet_frameworks", "select_backend"]

# Set in the environment of a re-executed console script, so that it never loops.
_REEXEC_FLAG = "DECONVNET_TF_BACKEND_REEXEC"


def select_backend(name: str | None, argv: Sequence[str] | None = None, *,
                   verbose: bool = False) -> None:
    """Makes Keras run on backend ``name`` (``--backend`` of the console scripts).

    The Keras backend is fixed when Keras is first imported. Console scripts parse their
    arguments before anything imports Keras, so this sets ``KERAS_BACKEND`` and imports Keras
    quietly (:func:`quiet_frameworks`; a backend that is not installed ends the script with one
    error line). When Keras is already loaded with another backend, a console script
    re-executes itself (same arguments) with ``KERAS_BACKEND=name``; called from Python (e.g.
    ``main([...])`` in a test) it stops with a message saying to set ``KERAS_BACKEND`` instead.

    Args:
        name: ``"tensorflow"``, ``"jax"`` or ``None`` (keep the active backend).
        argv: The script's arguments, for the re-execution (default ``sys.argv[1:]``).
        verbose: Show TensorFlow's log lines (``--verbose``).

    Raises:
        SystemExit: Keras is loaded with another backend and this is not a console script.
    """
    if "keras" not in sys.modules:
        if name is not None:
            os.environ["KERAS_BACKEND"] = name
        from deconvnet_tf._backend import BackendUnavailableError

        try:
            quiet_frameworks(verbose)
        except BackendUnavailableError as err:
            script = os.path.basename(sys.argv[0] or "")
            prog = script if script.startswith("deconvnet-") else "deconvnet-tf"
            raise SystemExit(f"{prog}: error: {err}") from None
        return
    if name is None:
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


def plain_text(doc: str | None) -> str:
    """A module docstring as ``--help`` text: without reStructuredText markup."""
    return (doc or "").replace("``", "").replace(":func:", "").replace(":mod:", "")


def add_prediction_output_flags(parser: argparse.ArgumentParser) -> None:
    """``--overwrite``, ``--skip-errors`` and ``--max-pixels`` of the prediction scripts."""
    from deconvnet_tf.io import DEFAULT_MAX_PIXELS

    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs of an earlier run (never an input)")
    parser.add_argument("--skip-errors", action="store_true",
                        help="report unreadable images and go on (exit status 1 if any)")
    parser.add_argument("--max-pixels", type=max_pixels_type, default=DEFAULT_MAX_PIXELS,
                        metavar="N", help="scale larger images down to N pixels for prediction "
                        f"and the labels back up (default {DEFAULT_MAX_PIXELS}; 'none': no limit)")


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    """``--verbose``: show the TensorFlow/absl C++ log lines that are hidden by default."""
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow/absl start-up and C++ log lines (hidden by default)")


def quiet_frameworks(verbose: bool = False) -> None:
    """Imports Keras (and TensorFlow, when it is the backend) with their log lines hidden.

    TensorFlow prints a dozen C++ lines while it loads (some at E level, e.g. ``failed call to
    cuInit`` on machines without a GPU) before its log level can apply, so a console script's
    stderr would not be its own. Unless ``verbose``, this sets ``TF_CPP_MIN_LOG_LEVEL=3`` (if
    unset), absl's Python logging to errors, and points file descriptor 2 at a temporary file
    while the import runs; if the import fails, what was captured is printed before the error.
    Does nothing when Keras is already imported.
    """
    from deconvnet_tf._backend import BackendUnavailableError, check_keras

    if "keras" in sys.modules:
        return
    if verbose:
        check_keras()
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            keras = check_keras()
            if keras.backend.backend() == "tensorflow":
                import tensorflow  # noqa: F401
        except BackendUnavailableError:
            raise  # its message is the one line to show
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


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


def check_scales_flag(parser, scales) -> None:
    """``--scales``: finite numbers > 0, no repeats (else ``parser.error``, exit 2)."""
    if scales is None:
        return
    from deconvnet_tf.inference.predict import check_scales  # NumPy only

    try:
        check_scales(scales, "--scales")
    except ValueError as err:
        parser.error(str(err))
