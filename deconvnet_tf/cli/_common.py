"""Helpers shared by the console scripts."""

from __future__ import annotations

import os
import sys

__all__ = ["select_backend"]


def select_backend(name: str | None) -> None:
    """Sets ``KERAS_BACKEND`` before Keras is imported (it cannot change afterwards)."""
    if name is None:
        return
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != name:
            raise SystemExit(
                f"--backend {name}: Keras is already loaded with the "
                f"'{keras.backend.backend()}' backend; set KERAS_BACKEND={name} instead"
            )
        return
    os.environ["KERAS_BACKEND"] = name
