"""Backend helpers: which Keras backend is active, and lazy TensorFlow access.

TensorFlow is imported only by the modules that need it (argmax layers, tf.data, export), and only
when they are used, so that the models run under ``KERAS_BACKEND=jax`` without TensorFlow.
"""

from __future__ import annotations

import keras

__all__ = ["backend_name", "require_tensorflow"]


def backend_name() -> str:
    """Returns the name of the active Keras backend (``"tensorflow"``, ``"jax"``, ...)."""
    return keras.backend.backend()


def require_tensorflow(feature: str, alternative: str | None = None):
    """Imports and returns TensorFlow for ``feature`` or raises a clear error.

    Args:
        feature: What needs TensorFlow, used in the error message.
        alternative: The portable alternative to suggest when the backend is not TensorFlow.

    Returns:
        The ``tensorflow`` module.

    Raises:
        RuntimeError: If the active Keras backend is not TensorFlow.
        ImportError: If TensorFlow is not installed.
    """
    name = backend_name()
    if name != "tensorflow":
        hint = f" Use {alternative} instead: it runs on every backend." if alternative else ""
        raise RuntimeError(
            f"{feature} needs the TensorFlow backend, but the active Keras backend is "
            f"'{name}' (KERAS_BACKEND).{hint}"
        )
    try:
        import tensorflow as tf
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{feature} needs TensorFlow, which is not installed: pip install tensorflow"
        ) from err
    return tf
