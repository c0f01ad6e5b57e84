"""Helpers shared by the SavedModel and TFLite exporters (model resolution, class names,
input sizes, the serving function, atomic writes).

:func:`find_class_names` lives in :mod:`deconvnet_tf.io` (the Segmenter uses it too) and is
re-exported here."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from deconvnet_tf.io import classes_from_meta as _classes_from_meta
from deconvnet_tf.io import check_creatable, find_class_names

__all__ = [
    "ExportError",
    "TEMP_DIR_PREFIX",
    "atomic_replace_dir",
    "check_output",
    "export_name",
    "find_class_names",
    "make_parents",
    "model_family",
    "parse_input_size",
    "remove_empty",
    "require_tensorflow_backend",
    "resolve_class_names",
    "resolve_model",
    "segmenter_info",
    "serving_function",
    "sweep_orphans",
    "temp_sibling",
]

# Temporary names carry the writer's process id, so that leftovers of a killed export (no
# ``finally`` runs on SIGKILL or an out-of-memory kill) can be told apart from the files of
# an export still running, and removed by the next export (:func:`sweep_orphans`).
TEMP_DIR_PREFIX = "deconvnet_export_"
_SIBLING = re.compile(r"^\..+\.(tmp|old)-(\d+)-[0-9a-f]{8}$")
_TEMP_DIR = re.compile(rf"^{TEMP_DIR_PREFIX}(\d+)_")


class ExportError(ValueError):
    """Export cannot proceed; the message names the argument/file and what was expected."""


def require_tensorflow_backend() -> None:
    """Raises :class:`ExportError` unless Keras runs on the TensorFlow backend."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ExportError(
            f"Export needs the TensorFlow backend (KERAS_BACKEND=tensorflow); Keras runs on "
            f"{keras.backend.backend()!r}. A .keras file saved under JAX loads under TensorFlow."
        )


def resolve_model(model: Any) -> tuple[Any, Path | None]:
    """Returns ``(keras model, path or None)`` for a model or a ``.keras`` path / run folder.

    Raises:
        ExportError: No model file at the path, a folder without ``model.keras``, or a file
            that does not load as a ``.keras`` segmentation model.
    """
    if isinstance(model, (str, os.PathLike)):
        # Keras: evaluation.evaluate imports Keras; importing deconvnet_tf.export stays cheap
        from deconvnet_tf.evaluation.evaluate import ModelFileError, load_model_file
        from deconvnet_tf.inference.segmenter import load_segmenter, run_color_target  # ditto

        try:
            loaded, path = load_model_file(model, "--model")
            if not hasattr(loaded, "color_target") and run_color_target(path) is not None:
                # a run trained with color_norm: as a Segmenter, its colour statistics go
                # into the sidecars (extra.color_target) for every runtime to apply
                loaded = load_segmenter(path, network=loaded)  # not loaded a second time
        except (ModelFileError, ValueError) as err:
            raise ExportError(str(err)) from err
        return loaded, path
    import keras

    if not isinstance(model, keras.Model):
        raise ExportError(f"model must be a keras.Model or a path, got {type(model).__name__}")
    return model, None


def segmenter_info(model, names: list[str] | None = None) -> tuple[Any, dict[str, Any]]:
    """``(network, info)`` of a :class:`~deconvnet_tf.Segmenter` (``info``: its
    ``palette`` array, ``image_size``, ``void_label``, ``class_names``, ``max_pixels``,
    ``test_time_flip``, ``color_target``), or ``(model, {})`` for
    a bare network. The palette is left out when ``names`` (the export's class names) differ
    from the Segmenter's."""
    network = getattr(model, "network", None)
    if network is None or not hasattr(model, "image_converter"):
        return model, {}
    info: dict[str, Any] = {
        "class_names": list(model.class_names),
        "image_size": None if model.image_size is None else [int(v) for v in model.image_size],
        "void_label": model.void_label,
        "max_pixels": model.max_pixels,
        "test_time_flip": bool(getattr(model, "test_time_flip", False)),
        "color_target": getattr(model, "color_target", None),
    }
    if names is None or list(names) == list(model.class_names):
        info["palette"] = model.palette_array()
    return network, info


def export_name(model_path: str | os.PathLike | None, model=None) -> str:
    """The base name of an export: the model file's, so that two models of one preset get
    different files.

    ``runs/camvid/model.keras`` (or the run folder ``runs/camvid``) gives ``camvid``,
    ``runs/camvid/checkpoints/best.keras`` gives ``camvid_best``, ``other/horse.keras`` gives
    ``horse``; without a path, the model's name.
    """
    if model_path is None:
        return str(getattr(model, "name", "model"))
    path = Path(model_path).absolute()
    if path.is_dir():
        return path.name
    parent = path.parent
    if path.stem == "model" and parent.name:
        return parent.name
    if parent.name == "checkpoints" and parent.parent.name:
        return f"{parent.parent.name}_{path.stem}"
    return path.stem


def temp_sibling(target: str | os.PathLike, tag: str = "tmp") -> Path:
    """A unique hidden name next to ``target``: ``.<name>.<tag>-<pid>-<random>``."""
    target = Path(target)
    return target.with_name(f".{target.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or a nonsense pid): leave it alone
    return True


def sweep_orphans(*folders: str | os.PathLike) -> list[Path]:
    """Removes leftovers of exports whose process is gone.

    Looks in ``folders`` for ``.<name>.tmp-<pid>-*`` / ``.<name>.old-<pid>-*`` entries and in
    the system temp folder for ``deconvnet_export_<pid>_*`` folders, and deletes those whose
    process no longer runs. Files of running exports (this one included) are kept.

    Returns:
        The removed paths.
    """
    candidates = []
    for folder in folders:
        folder = Path(folder)
        if folder.is_dir():
            candidates += [(p, _SIBLING.match(p.name)) for p in folder.iterdir()]
    temp = Path(tempfile.gettempdir())
    if temp.is_dir():
        candidates += [(p, _TEMP_DIR.match(p.name)) for p in temp.iterdir()]
    removed = []
    for path, match in candidates:
        if match is None or _pid_alive(int(match.groups()[-1])):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except OSError:
            pass  # not ours to fight over: another process may be removing it
    return removed


def _enclosing_saved_model(path: Path) -> Path | None:
    for parent in path.absolute().parents:
        if (parent / "saved_model.pb").is_file():
            return parent
    return None


def _is_sidecar(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and str(data.get("schema", "")).startswith("deconvnet_tf.")


def check_output(output: str | os.PathLike, kind: str, *, overwrite: bool,
                 what: str = "--output") -> Path:
    """Checks an export target before any work is done; never lets a user's file be replaced.

    ``kind="saved_model"``: ``output`` must be a new or empty folder, or (with ``overwrite``)
    an earlier SavedModel. ``kind="tflite"``: a ``.tflite`` path that is not a folder; an
    existing file (or its ``.json`` sidecar) needs ``overwrite``, and a ``.json`` next to it
    that is not a deconvnet sidecar is never replaced. Neither may lie inside an existing
    SavedModel, and the folder on the way must be writable.

    Raises:
        ExportError: One line naming ``what`` and what was expected.
    """
    output = Path(output)
    inside = _enclosing_saved_model(output)
    if inside is not None:
        raise ExportError(f"{what} {str(output)!r} is inside the existing SavedModel "
                          f"{str(inside)!r}; choose a path outside it")
    if kind == "saved_model":
        if output.suffix == ".tflite":
            raise ExportError(f"{what} {str(output)!r}: a SavedModel is a folder, not a .tflite "
                              "file (use --format tflite for .tflite)")
        if output.exists() and not output.is_dir():
            raise ExportError(f"{what} {str(output)!r} is a file; a SavedModel is written as a "
                              "folder: choose a new folder path")
        if output.is_dir() and any(output.iterdir()):
            if not (output / "saved_model.pb").is_file():
                raise ExportError(f"{what} {str(output)!r} is a folder that is not a SavedModel "
                                  "and not empty; choose a new or empty folder")
            if not overwrite:
                raise ExportError(f"{what} {str(output)!r} already holds a SavedModel: pass "
                                  "--overwrite to replace it, or choose another folder")
    elif kind == "tflite":
        if output.suffix != ".tflite":
            raise ExportError(f"{what} {str(output)!r}: a TFLite export must end in .tflite")
        if output.is_dir():
            raise ExportError(f"{what} {str(output)!r} is a folder; expected a .tflite file path")
        sidecar = output.with_suffix(".json")
        if sidecar.is_dir():
            raise ExportError(f"{what} {str(output)!r}: its metadata path {str(sidecar)!r} is a "
                              "folder")
        if sidecar.exists() and not _is_sidecar(sidecar):
            raise ExportError(f"{what} {str(output)!r}: {str(sidecar)!r} exists and is not a "
                              "deconvnet metadata sidecar; move it away or choose another name")
        taken = [p.name for p in (output, sidecar) if p.exists()]
        if taken and not overwrite:
            verb = "exists" if len(taken) == 1 else "exist"
            raise ExportError(f"{what} {str(output)!r}: {' and '.join(taken)} already {verb}: "
                              "pass --overwrite to replace, or choose another path")
    else:  # pragma: no cover - programming error
        raise ValueError(f"kind must be 'saved_model' or 'tflite', got {kind!r}")
    check_creatable(output, what, ExportError)
    return output


def make_parents(path: Path) -> list[Path]:
    """Creates the missing parents of ``path``; returns those created (outermost first)."""
    missing = []
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    missing.reverse()
    for folder in missing:
        folder.mkdir(exist_ok=True)
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Removes the folders created by :func:`make_parents` again, where still empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            break


def model_family(model) -> str:
    """``model.architecture.family`` or the class name."""
    arch = getattr(model, "architecture", None)
    return str(getattr(arch, "family", type(model).__name__.lower()))


def resolve_class_names(model, class_names=None, model_path=None) -> list[str]:
    """Class names for the export: given ones, found ones (:func:`find_class_names`) or
    ``class_<i>``; checked against the model's class count.

    Args:
        model: The Keras model (its last output dimension is the class count).
        class_names: A list of names, a path to a ``meta.json`` (``{"classes": [...]}``), or
            ``None``.
        model_path: Where the model was loaded from (for the lookup).

    Raises:
        ExportError: Wrong number of names, or an unreadable meta file.
    """
    num_classes = int(model.output_shape[-1])
    names: list[str] | None
    if class_names is None and getattr(model, "class_names", None) is not None:
        class_names = list(model.class_names)  # a Segmenter knows its classes
    if isinstance(class_names, (str, os.PathLike)):
        meta = Path(class_names)
        names = _classes_from_meta(meta) if meta.is_file() else None
        if names is None:
            raise ExportError(f"--meta {str(meta)!r}: expected a JSON file with a non-empty "
                              "'classes' list")
    elif class_names is not None:
        names = [str(c) for c in class_names]
    else:
        names = find_class_names(model_path)
        if names is not None and len(names) != num_classes:
            names = None  # a dataset that does not match this model: ignore it
    if names is None:
        return [f"class_{i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise ExportError(f"class names: got {len(names)} names for a model with {num_classes} "
                          f"classes ({names})")
    return names


def parse_input_size(value, model=None) -> tuple[int, int] | None:
    """Parses ``"HxW"`` / ``(H, W)`` / ``None`` and checks it against the model's minimum.

    Raises:
        ExportError: Malformed value or a size below ``model.min_input_size``.
    """
    if value is None or value == "" or (isinstance(value, str) and value.lower() == "dynamic"):
        size = None
    elif isinstance(value, str):
        parts = value.lower().replace(",", "x").split("x")
        try:
            size = tuple(int(p) for p in parts)
        except ValueError:
            size = ()
        if len(size) != 2:
            raise ExportError(f"--input-size {value!r}: expected HxW (e.g. 224x224) or 'dynamic'")
    else:
        size = tuple(int(v) for v in value)
        if len(size) != 2:
            raise ExportError(f"input_size must be (height, width), got {value!r}")
    if size is None:
        if model is not None:
            shape = tuple(getattr(model, "image_shape", (None, None, 3)))
            if shape[0] is not None and shape[1] is not None:
                return int(shape[0]), int(shape[1])
        return None
    if min(size) < 1:
        raise ExportError(f"--input-size {size[0]}x{size[1]}: height and width must be positive")
    minimum = int(getattr(model, "min_input_size", 1)) if model is not None else 1
    if min(size) < minimum:
        raise ExportError(f"--input-size {size[0]}x{size[1]} is below the model's minimum "
                          f"{minimum}x{minimum}")
    if model is not None:
        shape = tuple(getattr(model, "image_shape", (None, None, 3)))
        for axis, fixed, wanted in zip(("height", "width"), shape[:2], size):
            if fixed is not None and int(fixed) != wanted:
                raise ExportError(f"--input-size {size[0]}x{size[1]}: the model was built with a "
                                  f"fixed {axis} of {fixed}")
    return size


def _split_preprocessing(model):
    """``(VGGPreprocessing layer, model without it)`` or ``(None, model)``.

    The layer's channel flip lowers to TFLite ``REVERSE_V2``, whose full-integer kernel copies
    int8 values while the converter gives its output another scale (pixels come out ~1.5x
    off); the TFLite export computes the same preprocessing with slices + concatenation
    (which requantise correctly) and runs the rest of the network as a sub-model.
    """
    import keras

    from deconvnet_tf.layers import leading_preprocessing  # Keras: the layers import Keras

    pre = leading_preprocessing(model)
    if pre is None:
        return None, model
    return pre, keras.Model(pre.output, model.output, name=f"{model.name}_body")


def serving_function(model, *, split_preprocessing: bool = False,
                     int8_safe_pooling: bool = False):
    """``f(images uint8 [B, H, W, 3]) -> {"probabilities", "labels"}`` around ``model``.

    Probabilities are the softmax of the logits (or the model's own softmax output); labels
    are the argmax of the logits (int32), so quantised models get no ties from a saturated
    softmax.

    Args:
        model: The Keras model.
        split_preprocessing: Compute the model's RGB->BGR + mean preprocessing with slices
            and a concatenation instead of its layer (identical values; needed for correct
            full-integer TFLite, see :func:`_split_preprocessing`).
        int8_safe_pooling: Compute the switch poolings with ``ARG_MAX`` instead of an
            equality with the window maximum (identical values; LiteRT's int8 ``EQUAL`` is
            wrong for quantisation scales >= 1, see :mod:`deconvnet_tf.export._int8_pooling`).
    """
    import tensorflow as tf

    softmax_inside = getattr(model, "output_activation", None) == "softmax"
    pre, body = _split_preprocessing(model) if split_preprocessing else (None, model)
    if int8_safe_pooling:
        # TF-only: _int8_pooling imports Keras and builds TensorFlow ops
        from deconvnet_tf.export._int8_pooling import with_int8_safe_pooling

        body = with_int8_safe_pooling(body)

    def serve(images):
        x = tf.cast(images, tf.float32)
        if pre is not None:
            if pre.bgr:
                x = tf.concat([x[..., 2:3], x[..., 1:2], x[..., 0:1]], axis=-1)
            x = x - tf.constant(pre.mean, tf.float32)
            if getattr(pre, "scale", 1.0) != 1.0:
                x = x * tf.constant(pre.scale, tf.float32)
        outputs = body(x, training=False)
        outputs = tf.cast(outputs, tf.float32)
        probabilities = outputs if softmax_inside else tf.nn.softmax(outputs, axis=-1)
        labels = tf.argmax(outputs, axis=-1, output_type=tf.int32)
        return {"probabilities": probabilities, "labels": labels}

    return serve


def atomic_replace_dir(tmp: Path, target: Path) -> Path:
    """Moves the finished directory ``tmp`` to ``target``, replacing an old one.

    ``tmp`` must be on the same filesystem (a sibling). The old ``target`` is renamed aside
    first and removed only once the new one is in place.
    """
    target = Path(target)
    old = None
    if target.exists():
        old = temp_sibling(target, "old")
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target
