"""Deprecated module aliases: an old import path that warns once and forwards every name to the
module that replaced it (PEP 562), without importing it statically (so an alias in a lower
layer adds no upward import)."""

from __future__ import annotations

import importlib
import sys
import warnings

__all__ = ["alias_module"]


def _importer_level(start: int) -> int:
    """``stacklevel`` of the line that imports the alias, seen from the frame ``start`` levels
    up: ``warnings`` skips the frozen import frames itself; ``importlib.import_module`` adds
    one more."""
    frame, level = sys._getframe(start), start
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen importlib")
                                 or frame.f_code.co_filename == importlib.__file__):
        level += frame.f_code.co_filename == importlib.__file__
        frame = frame.f_back
    return level


def alias_module(namespace: dict, new: str) -> None:
    """Makes the module whose globals are ``namespace`` a deprecated alias of ``new``.

    Call it from the alias module's body: ``alias_module(globals(), "deconvnet_tf.x.y")``. It
    warns (``DeprecationWarning``, attributed to the importing line) and installs the
    module's ``__getattr__``/``__dir__``, which look names up in ``new`` on use.
    """
    old = namespace["__name__"]
    # frames: _importer_level, alias_module, the alias module's body, then its importer
    warnings.warn(f"{old} is deprecated and will be removed in the next release; import from "
                  f"{new} instead", DeprecationWarning, stacklevel=_importer_level(3))

    def __getattr__(name: str):
        return getattr(importlib.import_module(new), name)

    def __dir__():
        return sorted(set(namespace) | set(dir(importlib.import_module(new))))

    namespace["__getattr__"] = __getattr__
    namespace["__dir__"] = __dir__
