"""Backend helpers: which Keras backend is active, a clear error when it cannot load, and lazy
TensorFlow access.

TensorFlow is imported only by the modules that need it (argmax layers, tf.data, export), and only
when they are used, so that the models run under ``KERAS_BACKEND=jax`` without TensorFlow.
"""

from __future__ import annotations

import os

__all__ = ["BackendUnavailableError", "backend_name", "check_keras", "require_tensorflow"]

# What to install for each backend (the package's extras).
_INSTALL_HINTS = {
    "jax": "pip install 'deconvnet-tf[jax]' (or jax[cpu])",
    "tensorflow": "pip install tensorflow",
    "torch": "pip install torch",
}


class BackendUnavailableError(ImportError):
    """Keras or its configured backend cannot be imported; the message is one line."""


def check_keras():
    """Imports Keras and returns it, or raises a one-line error naming the missing backend.

    Keras imports its backend (``KERAS_BACKEND``, else ``~/.keras/keras.json``, else
    TensorFlow) when it is first imported; a backend that is not installed makes that import
    fail deep inside Keras. The console scripts call this first so that the user reads which
    backend is missing and how to install it instead of a traceback.

    Raises:
        BackendUnavailableError: Keras or its backend is not installed.
    """
    try:
        import keras
    except ImportError as err:
        backend = os.environ.get("KERAS_BACKEND")
        missing = getattr(err, "name", None) or str(err).splitlines()[0]
        if missing == "keras" or missing.startswith("keras."):
            raise BackendUnavailableError(
                f"Keras is not installed ({err}): pip install deconvnet-tf installs it"
            ) from err
        root = missing.split(".")[0]
        where = f"KERAS_BACKEND={backend}" if backend else "the Keras backend"
        hint = _INSTALL_HINTS.get(backend or root, f"pip install {root}")
        raise BackendUnavailableError(
            f"{where} needs {root!r}, which is not installed or does not import: {hint}, "
            f"or choose an installed backend (e.g. KERAS_BACKEND=tensorflow)"
        ) from err
    return keras


def backend_name() -> str:
    """Returns the name of the active Keras backend (``"tensorflow"``, ``"jax"``, ...)."""
    import keras

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
