"""deconvnet-presets prints the table; README documents every preset."""

from __future__ import annotations

from pathlib import Path

import pytest

from deconvnet_tf.cli import presets as presets_cli
from deconvnet_tf.models import list_presets

README = Path(__file__).resolve().parents[2] / "README.md"


def test_presets_cli_prints_rows(capsys):
    assert presets_cli.main(["deconvnet_tiny", "fcn8s_tiny", "--size", "64x64", "--num-classes", "5"]) == 0
    out = capsys.readouterr().out
    assert "GFLOP (64x64)" in out
    assert "| `deconvnet_tiny` | deconvnet |" in out and "| `fcn8s_tiny` | fcn8s |" in out


@pytest.mark.parametrize(
    "argv,message",
    [(["nope"], "unknown preset"), (["--size", "big"], "--size must look like 224x224")],
)
def test_presets_cli_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        presets_cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_readme_lists_every_preset():
    text = README.read_text()
    for name in list_presets():
        assert f"| `{name}` |" in text, f"README preset table lacks {name}"
