"""Wall time per stage of inference, for the instance-wise split of ``tools/bench_instance.py``.

The functions that take ``timings`` (``propose_boxes``, ``predict_instances``, ``infer``) add
the seconds of each stage they run to that dict; ``None`` (the default) measures nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["STAGES", "stage"]

# The stages, in pipeline order: edge map, proposal boxes (EdgeBoxes / selective search / the
# cache), warping the crops, the network on the crops, pasting the crop scores back (max/mean)
# and the softmax, the whole-image pass for pixels no box covers, the FCN of an ensemble, CRF,
# the largest-region post-processing.
STAGES = ("edges", "proposals", "crops", "network", "paste", "whole", "ensemble", "crf",
          "largest_component")


@contextmanager
def stage(timings: dict | None, name: str) -> Iterator[None]:
    """Adds the wall time of the ``with`` block to ``timings[name]`` (nothing when ``None``)."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; expected one of {STAGES}")
    if timings is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
