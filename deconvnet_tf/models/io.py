"""Loading models saved by this package."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras
import numpy as np

import deconvnet_tf.layers  # noqa: F401  (registers the custom layers)
from deconvnet_tf.io import write_bytes
from deconvnet_tf.models.builder import with_unpooling
from deconvnet_tf.models.deconvnet import DeconvNet
from deconvnet_tf.models.fcn import FCN

__all__ = ["WEIGHTS_STORAGE", "load_model", "store_weights"]

#: The dtypes a ``.keras`` file can hold its float weights in (:func:`store_weights`).
WEIGHTS_STORAGE = ("float32", "float16")
#: The largest finite float16.
_FLOAT16_MAX = 65504.0


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
        TypeError: ``path`` is not a string or a path.
        ValueError: ``path`` is empty or not a ``.keras`` archive, or holds a ``Segmenter``
            while the Segmenter task (one layer up, :mod:`deconvnet_tf.inference.segmenter`)
            is not imported: ``deconvnet_tf.load_model`` loads those.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"load_model: path must be a .keras file path, got {type(path).__name__}")
    if not os.fspath(path):
        raise ValueError("load_model: path is empty; expected a .keras file path")
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


def store_weights(path: str | os.PathLike, dtype: str = "float16") -> dict[str, float]:
    """Rewrites the float32 weights of a ``.keras`` file in ``dtype``, in place.

    ``"float16"`` halves the file; every backend loads it into the model's float32 variables
    (the weights rounded to float16's 11 significant bits, a relative change <= 2**-11).
    Integer arrays (counters, seeds) stay as they are. The file is replaced atomically (a
    crash leaves the old file or the new one); the float32 weights are not kept: copy the file
    first to keep them. ``Segmenter.save`` calls this on its temporary file when its
    ``weights_storage`` is ``"float16"``.

    Args:
        path: A ``.keras`` archive written by ``model.save``.
        dtype: ``"float16"`` or ``"float32"`` (no change).

    Returns:
        ``{"arrays": number converted, "max_relative_error": of the largest weights}``.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: Not a ``.keras`` archive, an unknown ``dtype``, or a weight beyond
            float16's range (+-65504; the error names it).
    """
    import io

    import h5py

    if dtype not in WEIGHTS_STORAGE:
        raise ValueError(f"store_weights: dtype must be one of {WEIGHTS_STORAGE}, got {dtype!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Model file not found: {str(path)!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{str(path)!r} is not a .keras model file (a zip archive)")
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info.filename)) for info in archive.infolist()]
    names = [info.filename for info, _ in entries]
    if "model.weights.h5" not in names:
        raise ValueError(f"{str(path)!r} has no model.weights.h5 (not a .keras model file)")
    stats = {"arrays": 0, "max_relative_error": 0.0}
    if dtype == "float32":
        return stats
    weights = dict(zip(names, (data for _, data in entries)))["model.weights.h5"]
    out = io.BytesIO()
    with h5py.File(io.BytesIO(weights), "r") as src, h5py.File(out, "w") as dst:
        _copy_attrs(src, dst)

        def copy(name, obj):
            if isinstance(obj, h5py.Group):
                _copy_attrs(obj, dst.require_group(name))
                return
            data = obj[()]
            if isinstance(data, np.ndarray) and data.dtype == np.float32:
                finite = data[np.isfinite(data)]
                if finite.size and np.abs(finite).max() > _FLOAT16_MAX:
                    raise ValueError(f"{str(path)!r}: weight {name!r} holds "
                                     f"{np.abs(finite).max():.4g}, beyond float16's range")
                half = data.astype(np.float16)
                big = np.abs(data) >= 1e-3
                if big.any():
                    error = np.abs(half[big].astype(np.float32) - data[big]) / np.abs(data[big])
                    stats["max_relative_error"] = max(stats["max_relative_error"],
                                                      float(error.max()))
                stats["arrays"] += 1
                data = half
            dst.create_dataset(name, data=data)
            _copy_attrs(obj, dst[name])

        src.visititems(copy)
    archive_bytes = io.BytesIO()
    with zipfile.ZipFile(archive_bytes, "w") as archive:
        for info, data in entries:
            archive.writestr(info, out.getvalue() if info.filename == "model.weights.h5"
                             else data)
    write_bytes(path, archive_bytes.getvalue())  # atomic: the old file or the new one
    return stats


def _copy_attrs(src, dst) -> None:
    for key, value in src.attrs.items():
        dst.attrs[key] = value
