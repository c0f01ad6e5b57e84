"""Helpers shared by the console scripts."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

__all__ = ["select_backend"]

# Set in the environment of a re-executed console script, so that it never loops.
_REEXEC_FLAG = "DECONVNET_TF_BACKEND_REEXEC"


def select_backend(name: str | None, argv: Sequence[str] | None = None) -> None:
    """Makes Keras run on backend ``name`` (``--backend`` of the console scripts).

    The Keras backend is fixed when Keras is first imported, and importing ``deconvnet_tf`` (which
    every console script does, to register its layers) imports Keras. So when Keras is already
    loaded with another backend, a console script re-executes itself (same arguments) with
    ``KERAS_BACKEND=name``; called from Python (e.g. ``main([...])`` in a test) it stops with a
    message saying to set ``KERAS_BACKEND`` instead.

    Args:
        name: ``"tensorflow"``, ``"jax"`` or ``None`` (keep the active backend).
        argv: The script's arguments, for the re-execution (default ``sys.argv[1:]``).

    Raises:
        SystemExit: Keras is loaded with another backend and this is not a console script.
    """
    if name is None:
        return
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = name
        return
    import keras

    active = keras.backend.backend()
    if active == name:
        return
    script = os.path.basename(sys.argv[0] or "")
    if script.startswith("deconvnet-") and not os.environ.get(_REEXEC_FLAG):
        env = dict(os.environ, KERAS_BACKEND=name, **{_REEXEC_FLAG: "1"})
        args = list(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.argv[0], [sys.argv[0], *args], env)
    raise SystemExit(
        f"--backend {name}: Keras is already loaded with the '{active}' backend in this process; "
        f"set KERAS_BACKEND={name} in the environment instead"
    )
