"""Argument types shared by the tools' command lines (argparse ``type=`` callables)."""

from __future__ import annotations

import argparse
import math

__all__ = ["unit_interval"]


def unit_interval(text: str) -> float:
    """A number in [0, 1] (an alpha, a probability); anything else is argparse's one-line
    error ``expected a number in [0, 1], got '...'``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value
