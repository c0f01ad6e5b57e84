"""The README's preset table is what ``deconvnet-presets`` computes today (every number)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deconvnet_tf.models.presets import list_presets
from deconvnet_tf.models.summary import format_table, preset_summaries

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_table() -> str:
    text = README.read_text()
    start = text.index("| preset | family | params | GFLOP (224x224) |")
    lines = []
    for line in text[start:].splitlines():
        if not line.startswith("|"):
            break
        lines.append(line)
    return "\n".join(lines)


def test_readme_lists_every_preset():
    names = re.findall(r"^\| `(\w+)` \|", readme_table(), flags=re.M)
    assert sorted(names) == sorted(list_presets())


@pytest.mark.slow
def test_readme_preset_table_matches_the_computed_one():
    """Builds every preset at 224x224 with 21 classes (the paper network included)."""
    computed = format_table(preset_summaries(None, (224, 224), 21))
    assert readme_table() == computed
