"""tools/readme_demo.py writes README's set-up line from measured numbers."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

import readme_demo  # tools/readme_demo.py (pytest's pythonpath has tools/)

ROOT = Path(__file__).resolve().parents[2]


def test_the_line_quotes_the_summary_and_replaces_the_readme_line():
    summary = {"mean_iou": 0.7371, "crf_mean_iou": 0.8244, "litert_agreement": {"int8": 0.9881}}
    line = readme_demo.demo_line(111.6, summary, datetime.date(2026, 12, 1))
    assert line == (f"{readme_demo.PREFIX} (2026-12-01): 112 s for `make demo`, creating `.venv` "
                    "with the packages already in pip's cache (val mean IoU 73.7, 82.4 with "
                    "the CRF; LiteRT int8 labels 98.8% equal to Keras).")
    readme = (ROOT / "README.md").read_text()
    rewritten = readme_demo.rewrite(readme, line)
    assert line in rewritten.splitlines()
    assert len(rewritten.splitlines()) == len(readme.splitlines())
    with pytest.raises(ValueError, match="exactly one line"):
        readme_demo.rewrite("no such line\n", line)


MAKE_TEST_OUTPUT = """\
........................................................................ [ 99%]
1098 passed, 6 skipped, 3 warnings in 2281.23s (0:38:01)
--- KERAS_BACKEND=jax: tests marked jax ---
........................................................................ [100%]
222 passed, 6 skipped in 545.10s (0:09:05)
"""


def test_the_make_test_line_quotes_both_runs_and_replaces_its_readme_line():
    line = readme_demo.suite_line(2290.0, MAKE_TEST_OUTPUT, datetime.date(2026, 12, 1),
                                  "AMD EPYC 7B13")
    assert line == (f"{readme_demo.TEST_PREFIX} 38.2 minutes from a fresh clone on the 2-core "
                    "development machine (AMD EPYC 7B13, 2026-12-01, `tools/readme_demo.py "
                    "--with-tests`): the "
                    "TensorFlow run on two xdist workers (1098 passed, 6 skipped, 0:38:01) and "
                    "the JAX run (222 passed, 6 skipped, 0:09:05) overlap; above the 10-minute "
                    "target.")
    readme = (ROOT / "README.md").read_text()
    rewritten = readme_demo.rewrite(readme, line, readme_demo.TEST_PREFIX)
    assert line in rewritten.splitlines()
    assert len(rewritten.splitlines()) == len(readme.splitlines())
    quick = readme_demo.suite_line(540.0, MAKE_TEST_OUTPUT.replace(" (0:38:01)", "").replace(
        "2281.23s", "59.6s"), datetime.date(2026, 12, 1))
    assert "(1098 passed, 6 skipped, 0:01:00)" in quick and "within the 10-minute" in quick


def test_the_make_test_line_needs_both_summaries():
    with pytest.raises(ValueError, match="KERAS_BACKEND=jax"):
        readme_demo.suite_line(1.0, "1 passed in 1.00s\n", datetime.date(2026, 12, 1))
    with pytest.raises(ValueError, match="no pytest summary"):
        readme_demo.suite_line(1.0, "FAILED x\n--- KERAS_BACKEND=jax\n2 passed in 3.00s\n",
                               datetime.date(2026, 12, 1))


def test_the_cpu_is_named_from_cpuinfo():
    info = "processor\t: 0\nmodel name\t: Intel(R)  Xeon(R) Processor\nflags\t: fpu\n"
    assert readme_demo.cpu_name(info) == "Intel(R) Xeon(R) Processor"
    assert readme_demo.cpu_name("processor\t: 0\n") == "unknown CPU"
