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
