"""The bad-input corpus: run a console script's ``main`` in-process and classify the outcome.

Every case of the corpus (``tests/cli/test_bad_inputs_*.py``) must end as one of:

- ``"error"``: a non-zero exit status with one clear line on stderr (``<prog>: error: ...``),
  and no Python traceback;
- ``"ok"``: exit status 0 (the input was handled correctly; the test then checks the result).

An exception escaping ``main`` (what a user sees as a traceback) fails the case.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        """Non-empty stderr lines that are not progress bars or warnings."""
        return [line for line in self.stderr.splitlines()
                if line.strip() and "error" in line.lower()]


def run_main(main: Callable[[Sequence[str]], int | None], argv: Sequence[str]) -> Outcome:
    """Runs ``main(argv)`` as the console script would, capturing its output and status."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exit_:
            if exit_.code is None or isinstance(exit_.code, int):
                code = exit_.code or 0
            else:  # sys.exit("message"): Python prints the message and exits with 1
                print(exit_.code, file=err)
                code = 1
    return Outcome(int(code or 0), out.getvalue(), err.getvalue())


def assert_one_line_error(outcome: Outcome, *needles: str) -> str:
    """Asserts a clean failure: non-zero status, no traceback, one error line containing needles.

    Returns the error line.
    """
    assert outcome.code != 0, f"expected a failure, got status 0: {outcome.stdout[-500:]}"
    assert "Traceback" not in outcome.stderr, outcome.stderr
    lines = outcome.error_lines
    assert len(lines) == 1, f"expected one error line, got: {outcome.stderr!r}"
    for needle in needles:
        assert needle.lower() in lines[0].lower(), f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def run_console_script(script: str, argv: Sequence[str], *, env: dict | None = None,
                       hide_modules: Sequence[str] = (), cwd=None,
                       timeout: float = 300) -> Outcome:
    """Runs an installed console script (``.venv/bin/<script>``) in a subprocess.

    ``hide_modules`` makes ``import <name>`` fail in that process as if the package were not
    installed (a ``sitecustomize`` on ``PYTHONPATH`` sets ``sys.modules[name] = None``), e.g.
    ``KERAS_BACKEND=jax`` without jax. ``env`` entries are added to this process's environment.
    """
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    executable = Path(sys.executable).parent / script
    environment = dict(os.environ, **(env or {}))
    with tempfile.TemporaryDirectory(prefix="corpus_site_") as site:
        if hide_modules:
            lines = ["import sys"] + [f"sys.modules[{name!r}] = None" for name in hide_modules]
            Path(site, "sitecustomize.py").write_text("\n".join(lines) + "\n")
            environment["PYTHONPATH"] = os.pathsep.join(
                [site] + [p for p in [environment.get("PYTHONPATH")] if p])
        proc = subprocess.run([str(executable), *argv], env=environment, cwd=cwd,
                              capture_output=True, text=True, timeout=timeout)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)
