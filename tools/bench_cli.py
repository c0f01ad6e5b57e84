#!/usr/bin/env python
"""Start-up time of every console script's ``--help`` (median of N runs), and whether Keras,
TensorFlow or JAX were imported to print it.

    python tools/bench_cli.py              # 5 runs each
    python tools/bench_cli.py --runs 3 --json out.json

The goal (issue: quiet, fast CLIs) is < 1 s per script; a timed test would be flaky, so the
number lives here and the import-free part is tested (tests/test_imports.py).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _outputs import existing_output_error, write_json_new

SCRIPTS = ["deconvnet-crf", "deconvnet-demo", "deconvnet-evaluate", "deconvnet-export",
           "deconvnet-lite-predict", "deconvnet-predict", "deconvnet-presets", "deconvnet-train",
           "deconvnet-visualize"]
GOAL_S = 1.0


def time_help(script: str, runs: int) -> dict:
    """Median wall seconds of ``<script> --help`` in a new process (the installed script)."""
    path = Path(sys.executable).parent / script
    if not path.exists():
        return {"script": script, "seconds": None, "note": "not installed"}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=120)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            return {"script": script, "seconds": None, "note": done.stderr.strip()[-200:]}
    return {"script": script, "seconds": statistics.median(times), "note": ""}


def table(rows: list[dict]) -> str:
    lines = ["| console script | `--help` median (s) | goal | met |", "|---|---:|---:|---|"]
    for r in rows:
        s = r["seconds"]
        shown = "-" if s is None else f"{s:.2f}"
        met = "-" if s is None else ("yes" if s < GOAL_S else "no")
        note = f" {r['note']}" if r["note"] else ""
        lines.append(f"| `{r['script']}` | {shown} | < {GOAL_S:g} | {met}{note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per script (median)")
    parser.add_argument("--scripts", nargs="+", choices=SCRIPTS, default=SCRIPTS,
                        help="console scripts to time (default: all)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    if error := existing_output_error(args.json):
        parser.error(error)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    rows = [time_help(script, args.runs) for script in args.scripts]
    print(table(rows))
    if args.json:
        write_json_new(args.json, rows, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
