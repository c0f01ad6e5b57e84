"""Every flag of every console script says what it does, in plain text."""

from __future__ import annotations

import argparse
import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


class _Parsed(Exception):
    def __init__(self, parser):
        super().__init__(parser.prog)
        self.parser = parser


def parser_of(target: str, monkeypatch) -> argparse.ArgumentParser:
    """The parser a console script builds: its ``main`` runs until it parses its arguments."""

    def stop(self, *args, **kwargs):
        raise _Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", stop)
    module, _, function = target.partition(":")
    with pytest.raises(_Parsed) as caught:
        getattr(importlib.import_module(module), function)([])
    return caught.value.parser


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_flag_has_help_text_without_rst_markup(script, monkeypatch):
    parser = parser_of(SCRIPTS[script], monkeypatch)
    flags = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert flags, f"{script}: no arguments found"
    missing = [a.option_strings[0] if a.option_strings else a.dest for a in flags if not a.help]
    assert not missing, f"{script}: flags without help text: {missing}"
    text = parser.format_help()
    assert "``" not in text and not re.search(r":(func|class|mod):`", text), text
