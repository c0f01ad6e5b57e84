"""Re-measures README's set-up line: ``make demo`` from a fresh clone, timed, and its numbers.

    python tools/readme_demo.py                 # clone HEAD into a temporary folder, run, rewrite
    python tools/readme_demo.py --dry-run       # print the new line only
    python tools/readme_demo.py --with-tests    # also time `make test` there; rewrite its line

It clones this repository's HEAD (``git clone``), runs ``make demo`` there (which creates the
clone's ``.venv``; pip's cache makes that quick on a machine that installed before), reads the
demo's ``demo_output/summary.json`` and rewrites the line of README.md that starts with
"Everything lands in `demo_output/`. Measured from a fresh clone here". Numbers are never typed
by hand. With ``--with-tests`` it then runs ``make test`` in the same clone, times it, reads
the pass/skip counts and durations of the TensorFlow and JAX runs from pytest's summary lines
and rewrites the README line that starts with "`make test` took".
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "Everything lands in `demo_output/`. Measured from a fresh clone here"
TEST_PREFIX = "`make test` took"
JAX_MARKER = "--- KERAS_BACKEND=jax"
TARGET_MINUTES = 10
_SUMMARY = re.compile(r"^=*\s*(?P<counts>\d+ passed[^\n]*?) in (?P<secs>[\d.]+)s"
                      r"(?: \((?P<clock>[\d:]+)\))?", re.M)


def demo_line(seconds: float, summary: dict, day: datetime.date) -> str:
    """The README line for one measured run."""
    agreement = summary["litert_agreement"].get("int8")
    lite = f"; LiteRT int8 labels {100 * agreement:.1f}% equal to Keras" if agreement is not None else ""
    return (f"{PREFIX} ({day.isoformat()}): {seconds:.0f} s for `make demo`, creating `.venv` "
            f"with the packages already in pip's cache (val mean IoU "
            f"{100 * summary['mean_iou']:.1f}, {100 * summary['crf_mean_iou']:.1f} with the "
            f"CRF{lite}).")


def pytest_summary(output: str) -> tuple[str, str]:
    """``(counts, clock)`` of the last pytest summary line in ``output``, e.g.
    ``("1098 passed, 6 skipped", "0:38:01")``.

    Raises:
        ValueError: ``output`` has no summary line with passed tests.
    """
    found = list(_SUMMARY.finditer(output))
    if not found:
        raise ValueError("no pytest summary line ('N passed ... in Xs (h:mm:ss)') in the output")
    last = found[-1]
    counts = re.sub(r",? *\d+ warnings?", "", last["counts"]).strip(" ,")
    seconds = round(float(last["secs"]))
    clock = last["clock"] or f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return counts, clock


def cpu_name(cpuinfo: str | None = None) -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``"unknown CPU"`` where it is not readable):
    the suite's time differs about 2x between the development machines' CPUs."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return "unknown CPU"
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return " ".join(line.split(":", 1)[1].split()) or "unknown CPU"
    return "unknown CPU"


def suite_line(seconds: float, output: str, day: datetime.date, cpu: str = "unknown CPU") -> str:
    """The README line for one measured ``make test`` run (its printed output) on ``cpu``."""
    if JAX_MARKER not in output:
        raise ValueError(f"make test output has no {JAX_MARKER!r} section")
    tf_part, jax_part = output.split(JAX_MARKER, 1)
    tf_counts, tf_clock = pytest_summary(tf_part)
    jax_counts, jax_clock = pytest_summary(jax_part)
    minutes = seconds / 60
    verdict = ("within" if minutes <= TARGET_MINUTES else "above")
    return (f"{TEST_PREFIX} {minutes:.1f} minutes from a fresh clone on the 2-core development "
            f"machine ({cpu}, {day.isoformat()}, `tools/readme_demo.py --with-tests`): the "
            f"TensorFlow run on two xdist workers ({tf_counts}, {tf_clock}) and the JAX run "
            f"({jax_counts}, {jax_clock}) overlap; {verdict} the {TARGET_MINUTES}-minute target.")


def rewrite(readme: str, line: str, prefix: str = PREFIX) -> str:
    """``readme`` with the line starting with ``prefix`` replaced (exactly one must exist)."""
    pattern = re.compile(rf"^{re.escape(prefix)}.*$", re.M)
    if len(pattern.findall(readme)) != 1:
        raise ValueError(f"README.md must have exactly one line starting with {prefix!r}")
    return pattern.sub(lambda _: line, readme)


def measure(clone: Path) -> tuple[float, dict]:
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    start = time.perf_counter()
    subprocess.run(["make", "demo"], cwd=clone, check=True)
    seconds = time.perf_counter() - start
    return seconds, json.loads((clone / "demo_output" / "summary.json").read_text())


def measure_tests(clone: Path) -> tuple[float, str]:
    """Runs ``make test`` in ``clone``; its wall seconds and printed output (also echoed).

    Raises:
        RuntimeError: The suite failed (the README is then left as it is).
    """
    start = time.perf_counter()
    run = subprocess.run(["make", "test"], cwd=clone, text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    print(run.stdout[-4000:])
    if run.returncode != 0:
        raise RuntimeError(f"make test failed (exit {run.returncode}) in {clone}")
    return seconds, run.stdout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the line, change nothing")
    parser.add_argument("--clone", type=Path, default=None,
                        help="where to clone (must not exist; default: a temporary folder)")
    parser.add_argument("--with-tests", action="store_true",
                        help="also run make test in the clone and rewrite README's make test line")
    args = parser.parse_args(argv)
    today = datetime.date.today()
    with tempfile.TemporaryDirectory(prefix="readme_demo_") as tmp:
        clone = args.clone or Path(tmp) / "clone"
        if clone.exists():
            parser.error(f"--clone {str(clone)!r} exists; name a new folder")
        seconds, summary = measure(clone)
        lines = {PREFIX: demo_line(seconds, summary, today)}
        print(lines[PREFIX])
        if args.with_tests:
            try:
                test_seconds, output = measure_tests(clone)
            except RuntimeError as err:
                print(f"readme_demo: {err}; README.md not changed", file=sys.stderr)
                return 1
            lines[TEST_PREFIX] = suite_line(test_seconds, output, today, cpu_name())
            print(lines[TEST_PREFIX])
    if not args.dry_run:
        from deconvnet_tf.training.atomic import write_text_atomic

        readme = ROOT / "README.md"
        text = readme.read_text()
        for prefix, line in lines.items():
            text = rewrite(text, line, prefix)
        write_text_atomic(readme, text)
        print(f"rewrote {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
