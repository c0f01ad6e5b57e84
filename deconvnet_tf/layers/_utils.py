"""Small shared helpers for the pooling layers."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["normalize_pair", "normalize_padding", "pooled_length"]


def normalize_pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """Returns ``value`` as a pair of positive ints, or raises a clear ``ValueError``."""
    if isinstance(value, int):
        value = (value, value)
    try:
        pair = tuple(int(v) for v in value)
    except TypeError as err:
        raise ValueError(f"`{name}` must be an int or a pair of ints, got {value!r}") from err
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"`{name}` must be an int or a pair of positive ints, got {value!r}")
    return pair  # type: ignore[return-value]


def normalize_padding(padding: str) -> str:
    """Returns ``"valid"`` or ``"same"`` (case-insensitive), or raises ``ValueError``."""
    value = str(padding).lower()
    if value not in ("valid", "same"):
        raise ValueError(f"`padding` must be 'valid' or 'same', got {padding!r}")
    return value


def pooled_length(length: int | None, pool: int, stride: int, padding: str) -> int | None:
    """Output length of a pooling along one axis (None stays None)."""
    if length is None:
        return None
    if padding == "same":
        return math.ceil(length / stride)
    return (length - pool) // stride + 1
