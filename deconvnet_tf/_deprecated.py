"""Deprecated import paths: a module alias that warns once and forwards every name to the
module that replaced it (:func:`alias_module`), and single names that moved out of a module
that stays (:func:`moved_names`). Both look names up on use (PEP 562), without importing the
new module statically (so an alias in a lower layer adds no upward import)."""

from __future__ import annotations

import importlib
import sys
import warnings

__all__ = ["alias_module", "moved_names"]


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


def moved_names(namespace: dict, moved: dict[str, str]) -> None:
    """Keeps names that moved out of a module importable from it, with a warning.

    Call it from the module's body: ``moved_names(globals(), {"name": "new.module", ...})``.
    Every use of an old name warns (``DeprecationWarning`` naming the new module, attributed to
    the caller) and returns the new module's object; other unknown names raise
    ``AttributeError``. The names are not bound, so ``import *`` does not warn.
    """
    old = namespace["__name__"]

    def __getattr__(name: str):
        if name not in moved:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(f"{old}.{name} is deprecated and will be removed in the next release; "
                      f"import it from {moved[name]}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(moved[name]), name)

    def __dir__():
        return sorted(set(namespace) | set(moved))

    namespace["__getattr__"] = __getattr__
    namespace["__dir__"] = __dir__
