"""Deprecated alias of :mod:`deconvnet_tf.inference.segmenter` (the Segmenter task moved to the
inference package); removed in the next release.

Importing it warns (``DeprecationWarning``, naming the new module); every name is looked up in
:mod:`deconvnet_tf.inference.segmenter` on use (PEP 562), so this module imports nothing of it
(models sits below inference: a static import would point up).
"""

from __future__ import annotations

from deconvnet_tf._deprecated import alias_module

__all__ = ["CAMVID_PALETTE", "Segmenter", "default_palette", "load_model", "load_segmenter",
           "run_color_target"]

alias_module(globals(), "deconvnet_tf.inference.segmenter")
