"""Deprecated alias of :mod:`deconvnet_tf.evaluation.compare` (moved to the evaluation package);
removed in the next release.

Importing it warns (``DeprecationWarning``, naming the new module); every name is looked up in
:mod:`deconvnet_tf.evaluation.compare` on use (PEP 562), so this module imports nothing of it
(inference sits below evaluation: a static import would point up).
"""

from __future__ import annotations

from deconvnet_tf._deprecated import alias_module

__all__ = ["METHODS", "MethodComparison", "compare_methods"]

alias_module(globals(), "deconvnet_tf.evaluation.compare")
