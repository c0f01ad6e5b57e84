"""Loading models saved by this package."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras

import deconvnet_tf.layers  # noqa: F401  (registers the custom layers)
from deconvnet_tf.models.builder import with_unpooling
from deconvnet_tf.models.deconvnet import DeconvNet
from deconvnet_tf.models.fcn import FCN

__all__ = ["load_model"]


def load_model(
    path: str | os.PathLike, *, unpooling: str | None = None, compile: bool = False
) -> keras.Model:
    """Loads a ``.keras`` model saved by this package, on any backend.

    Importing ``deconvnet_tf`` registers its layers and models, so no ``custom_objects`` are
    needed. A model saved with ``unpooling="argmax"`` loads on a non-TensorFlow backend with
    the switch pair (identical outputs).

    Args:
        path: Path of a ``.keras`` file.
        unpooling: Convert a DeconvNet to ``"argmax"`` or ``"switch"`` after loading.
        compile: Restore the training configuration saved with the model.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a ``.keras`` archive, or holds a ``Segmenter`` while the
            Segmenter task (one layer up, :mod:`deconvnet_tf.inference.segmenter`) is not
            imported: ``deconvnet_tf.load_model`` loads those.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Model file not found: {str(path)!r}")
    if path.is_dir() or path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ValueError(
            f"{str(path)!r} is not a .keras model file (a zip archive written by model.save)"
        )
    if (_saved_class(path) == "Segmenter"
            and keras.saving.get_registered_object("deconvnet_tf>Segmenter") is None):
        raise ValueError(f"{str(path)!r} holds a deconvnet_tf.Segmenter: load it with "
                         "deconvnet_tf.load_model or deconvnet_tf.Segmenter.from_preset")
    model = keras.saving.load_model(
        path, compile=compile, custom_objects={"DeconvNet": DeconvNet, "FCN": FCN}
    )
    if unpooling is not None:
        model = with_unpooling(model, unpooling)
    return model


def _saved_class(path: Path) -> str | None:
    """The top-level ``class_name`` of a ``.keras`` archive (``None`` if unreadable)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json")).get("class_name")
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return None
