"""Re-measures README's set-up line: ``make demo`` from a fresh clone, timed, and its numbers.

    python tools/readme_demo.py                 # clone HEAD into a temporary folder, run, rewrite
    python tools/readme_demo.py --dry-run       # print the new line only

It clones this repository's HEAD (``git clone``), runs ``make demo`` there (which creates the
clone's ``.venv``; pip's cache makes that quick on a machine that installed before), reads the
demo's ``demo_output/summary.json`` and rewrites the line of README.md that starts with
"Everything lands in `demo_output/`. Measured from a fresh clone here". Numbers are never typed
by hand.
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


def demo_line(seconds: float, summary: dict, day: datetime.date) -> str:
    """The README line for one measured run."""
    agreement = summary["litert_agreement"].get("int8")
    lite = f"; LiteRT int8 labels {100 * agreement:.1f}% equal to Keras" if agreement is not None else ""
    return (f"{PREFIX} ({day.isoformat()}): {seconds:.0f} s for `make demo`, creating `.venv` "
            f"with the packages already in pip's cache (val mean IoU "
            f"{100 * summary['mean_iou']:.1f}, {100 * summary['crf_mean_iou']:.1f} with the "
            f"CRF{lite}).")


def rewrite(readme: str, line: str) -> str:
    """``readme`` with its set-up line replaced (exactly one must exist)."""
    pattern = re.compile(rf"^{re.escape(PREFIX)}.*$", re.M)
    if len(pattern.findall(readme)) != 1:
        raise ValueError(f"README.md must have exactly one line starting with {PREFIX!r}")
    return pattern.sub(lambda _: line, readme)


def measure(clone: Path) -> tuple[float, dict]:
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    start = time.perf_counter()
    subprocess.run(["make", "demo"], cwd=clone, check=True)
    seconds = time.perf_counter() - start
    return seconds, json.loads((clone / "demo_output" / "summary.json").read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the line, change nothing")
    parser.add_argument("--clone", type=Path, default=None,
                        help="where to clone (must not exist; default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="readme_demo_") as tmp:
        clone = args.clone or Path(tmp) / "clone"
        if clone.exists():
            parser.error(f"--clone {str(clone)!r} exists; name a new folder")
        seconds, summary = measure(clone)
    line = demo_line(seconds, summary, datetime.date.today())
    print(line)
    if not args.dry_run:
        from deconvnet_tf.training.atomic import write_text_atomic

        readme = ROOT / "README.md"
        write_text_atomic(readme, rewrite(readme.read_text(), line))
        print(f"rewrote {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
