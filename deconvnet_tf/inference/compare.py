"""Deprecated alias of :mod:`deconvnet_tf.evaluation.compare` (moved to the evaluation package);
removed in the next release.

Importing it warns (``DeprecationWarning``, naming the new module); every name is looked up in
:mod:`deconvnet_tf.evaluation.compare` on use (PEP 562), so this module imports nothing of it
(inference sits below evaluation: a static import would point up).
"""

from __future__ import annotations

import importlib
import sys
import warnings

__all__ = ["METHODS", "MethodComparison", "compare_methods"]

_NEW = "deconvnet_tf.evaluation.compare"


def _importer_level() -> int:
    """``stacklevel`` of the importing line: ``warnings`` skips the frozen import frames
    itself; ``importlib.import_module`` adds one more."""
    frame, level = sys._getframe(2), 2
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen importlib")
                                 or frame.f_code.co_filename == importlib.__file__):
        level += frame.f_code.co_filename == importlib.__file__
        frame = frame.f_back
    return level


warnings.warn(f"{__name__} is deprecated and will be removed in the next release; import "
              f"from {_NEW} instead", DeprecationWarning, stacklevel=_importer_level())


def __getattr__(name: str):
    return getattr(importlib.import_module(_NEW), name)


def __dir__():
    return sorted(set(globals()) | set(dir(importlib.import_module(_NEW))))
