"""Argument types shared by the tools' command lines (argparse ``type=`` callables)."""

from __future__ import annotations

import argparse
import math

__all__ = ["unit_interval", "finite"]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def finite(text: str) -> float:
    """A finite number; NaN, infinities and non-numbers are argparse's one-line error
    ``expected a finite number, got '...'``."""
    value = _number(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def unit_interval(text: str) -> float:
    """A number in [0, 1] (an alpha, a probability); anything else is argparse's one-line
    error ``expected a number in [0, 1], got '...'``."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value
