"""The metadata that travels with an exported model: a JSON sidecar.

A ``.tflite`` file ``model.tflite`` carries ``model.json`` next to it; a SavedModel directory
carries ``assets/deconvnet_metadata.json``. The sidecar holds what an app needs besides the
tensors: class names, the palette, the input tensor (dtype, shape, colour order), the output
tensors, the preprocessing already inside the model, the quantisation, and the op list.

Pure Python + NumPy (no TensorFlow/Keras): the LiteRT runtime and mobile apps read it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deconvnet_tf.io import check_color_target, write_bytes
from deconvnet_tf.render import make_palette

__all__ = [
    "CAMVID_PALETTE",
    "METADATA_FORMAT",
    "SAVED_MODEL_METADATA",
    "MetadataError",
    "ModelMetadata",
    "default_palette",
    "metadata_path",
    "read_metadata",
    "write_metadata",
]

METADATA_FORMAT = "deconvnet_tf.metadata/1"
SAVED_MODEL_METADATA = "assets/deconvnet_metadata.json"

PREPROCESSING_NOTE = (
    "Feed raw RGB pixels (uint8 0..255, NHWC). The model itself converts RGB to BGR and "
    "subtracts the mean (mean_bgr); do not normalise. Fixed-size models: resize the image "
    "to the input size (bilinear) and the probabilities back to the image size (bilinear), "
    "then take the argmax over classes."
)


#: The standard CamVid 11-class colours (SegNet's class order).
CAMVID_PALETTE = {
    "Sky": (128, 128, 128),
    "Building": (128, 0, 0),
    "Pole": (192, 192, 128),
    "Road": (128, 64, 128),
    "Pavement": (60, 40, 222),
    "Tree": (128, 128, 0),
    "SignSymbol": (192, 128, 128),
    "Fence": (64, 64, 128),
    "Car": (64, 0, 128),
    "Pedestrian": (64, 64, 0),
    "Bicyclist": (0, 128, 192),
}


def default_palette(class_names) -> dict[str, tuple[int, int, int]]:
    """``class name -> RGB``: CamVid's own colours when every class is a CamVid class, else
    the PASCAL VOC colour map in class order (class 0 black, then 128,0,0 ...: a two-class
    model such as Horse gets black and dark red)."""
    names = [str(n) for n in class_names]
    if names and all(n in CAMVID_PALETTE for n in names):
        return {n: CAMVID_PALETTE[n] for n in names}
    colours = make_palette(256)
    return {n: tuple(int(v) for v in colours[i % 256]) for i, n in enumerate(names)}


class MetadataError(ValueError):
    """A missing or malformed metadata sidecar; the message names the file."""


@dataclass
class ModelMetadata:
    """Everything besides the tensors that inference code needs.

    Attributes:
        model_name: Name of the exported Keras model (e.g. its preset).
        family: Architecture family (``"deconvnet"``, ``"fcn8s"``, ...).
        class_names: Class names in index order (``class_<i>`` when unknown).
        palette: ``(num_classes, 3)`` RGB colours as nested lists.
        input_name: Name of the input tensor (signature key).
        input_dtype: ``"uint8"``.
        input_shape: ``[batch, height, width, 3]``; ``None`` marks a dynamic dimension.
        min_input_size: Smallest height/width the network accepts.
        mean_bgr: Mean subtracted inside the model (BGR order).
        preprocessing: Human-readable preprocessing note.
        outputs: Output tensors: name -> ``{"dtype", "shape", "description"}``.
        format: ``"tflite"`` or ``"saved_model"``.
        quantize: ``"none"``, ``"fp16"``, ``"dynamic"`` or ``"int8"`` (TFLite only).
        builtins_only: Whether the model runs on the stock LiteRT interpreter (no Flex or
            custom ops).
        ops: Sorted op names of a ``.tflite`` model (empty for SavedModels).
        extra: Free-form additional information; exports of a Segmenter add ``image_size``
            (its working resolution ``[H, W]`` or ``None``), ``void_label``, ``max_pixels``
            (its pixel budget at native resolution), ``test_time_flip`` (the runtimes average
            each image's probabilities with those of its mirror image; the graph itself does
            not flip) and ``color_target`` (the runtimes first bring each image's channels
            to this ``{"mean": [r, g, b], "std": [r, g, b]}``,
            :func:`deconvnet_tf.io.normalize_colors`; ``None``: off).
        schema: Format tag of this JSON (``METADATA_FORMAT``).

    Example:

    >>> meta = ModelMetadata.create("deconvnet_tiny", "deconvnet", ["bg", "disc"],
    ...                             input_shape=[1, 48, 64, 3])
    >>> meta.num_classes
    2
    """

    model_name: str
    family: str
    class_names: list[str]
    palette: list[list[int]]
    input_shape: list[int | None]
    input_name: str = "images"
    input_dtype: str = "uint8"
    min_input_size: int = 1
    mean_bgr: list[float] = field(default_factory=lambda: [104.008, 116.669, 122.675])
    preprocessing: str = PREPROCESSING_NOTE
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    format: str = "tflite"
    quantize: str = "none"
    builtins_only: bool = True
    ops: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    schema: str = METADATA_FORMAT

    @classmethod
    def create(
        cls,
        model_name: str,
        family: str,
        class_names: list[str] | tuple[str, ...],
        *,
        input_shape: list[int | None],
        palette: np.ndarray | None = None,
        **kwargs: Any,
    ) -> "ModelMetadata":
        """Builds metadata with the default palette and the standard output description.

        Args:
            model_name: Model name.
            family: Architecture family.
            class_names: Class names, index order.
            input_shape: ``[batch, height, width, 3]`` (``None`` = dynamic).
            palette: ``(C, 3)`` uint8 colours (default: :func:`default_palette`: CamVid's
                colours for CamVid's classes, else the VOC palette).
            **kwargs: Other :class:`ModelMetadata` fields.
        """
        names = [str(n) for n in class_names]
        if palette is None:
            palette = list(default_palette(names).values()) or make_palette(1)
        batch, height, width = input_shape[0], input_shape[1], input_shape[2]
        outputs = kwargs.pop("outputs", None) or {
            "probabilities": {
                "dtype": "float32",
                "shape": [batch, height, width, len(names)],
                "description": "softmax class probabilities per pixel",
            },
            "labels": {
                "dtype": "int32",
                "shape": [batch, height, width],
                "description": "argmax class id per pixel (index into class_names)",
            },
        }
        return cls(
            model_name=str(model_name),
            family=str(family),
            class_names=names,
            palette=np.asarray(palette, np.uint8)[: len(names)].tolist(),
            input_shape=[None if d is None else int(d) for d in input_shape],
            outputs=outputs,
            **kwargs,
        )

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """``(height, width)`` of a fixed-size model, ``None`` when the size is dynamic."""
        height, width = self.input_shape[1], self.input_shape[2]
        if height is None or width is None:
            return None
        return int(height), int(width)

    @property
    def working_size(self) -> tuple[int, int] | None:
        """The size images are resized to: the fixed input size, else the working resolution
        of the exported :class:`~deconvnet_tf.Segmenter` (``extra["image_size"]``), else
        ``None`` (native resolution)."""
        if self.fixed_size is not None:
            return self.fixed_size
        size = (self.extra or {}).get("image_size")
        if isinstance(size, (list, tuple)) and len(size) == 2 and all(size):
            return int(size[0]), int(size[1])
        return None

    @property
    def test_time_flip(self) -> bool:
        """Whether the exported Segmenter averages with the mirrored image
        (``extra["test_time_flip"]``; ``False`` for exports without it)."""
        return bool((self.extra or {}).get("test_time_flip", False))

    @property
    def color_target(self) -> dict[str, list[float]] | None:
        """The per-channel mean / std the runtimes bring each image to first
        (``extra["color_target"]``; ``None`` for exports without it).

        Raises:
            ValueError: A value :func:`deconvnet_tf.io.check_color_target` rejects.
        """
        return check_color_target((self.extra or {}).get("color_target"),
                                     "sidecar extra.color_target")

    @property
    def void_label(self) -> int | None:
        """Label value of unlabelled pixels of the training data (``extra["void_label"]``)."""
        value = (self.extra or {}).get("void_label")
        return None if value is None else int(value)

    def palette_dict(self) -> dict[str, tuple[int, int, int]]:
        """``class name -> (r, g, b)``."""
        return {name: tuple(int(v) for v in colour)
                for name, colour in zip(self.class_names, self.palette_array().tolist())}

    def palette_array(self) -> np.ndarray:
        """The palette as a ``(num_classes, 3)`` uint8 array."""
        return np.asarray(self.palette, np.uint8).reshape(-1, 3)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> "ModelMetadata":
        """Parses a dict written by :meth:`to_dict`.

        Raises:
            MetadataError: Wrong schema tag, missing or unknown keys.
        """
        if not isinstance(data, dict):
            raise MetadataError(f"{source}: metadata must be a JSON object")
        if data.get("schema") != METADATA_FORMAT:
            raise MetadataError(f"{source}: expected schema {METADATA_FORMAT!r}, got "
                                f"{data.get('schema')!r}")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise MetadataError(f"{source}: unknown metadata keys {sorted(unknown)}")
        required = {"model_name", "family", "class_names", "palette", "input_shape"}
        missing = required - set(data)
        if missing:
            raise MetadataError(f"{source}: missing metadata keys {sorted(missing)}")
        return cls(**data)


def _dumps(data: dict[str, Any]) -> str:
    """Indented JSON with lists of numbers kept on one line (palette, shapes)."""
    text = json.dumps(data, indent=2)
    return re.sub(r"\[[\s\d.,\-a-z]*\]",
                  lambda m: "[" + ", ".join(p.strip() for p in m.group(0)[1:-1].split(",")
                                            if p.strip()) + "]", text)


def metadata_path(model_path: str | os.PathLike) -> Path:
    """Where the metadata of an exported model lives.

    ``x.tflite`` -> ``x.json``; a SavedModel directory -> ``<dir>/assets/deconvnet_metadata.json``.
    """
    path = Path(model_path)
    if path.is_dir() or path.suffix == "":
        return path / SAVED_MODEL_METADATA
    return path.with_suffix(".json")


def write_metadata(model_path: str | os.PathLike, metadata: ModelMetadata) -> Path:
    """Writes the sidecar of ``model_path`` atomically and returns its path."""
    path = metadata_path(model_path)
    return write_bytes(path, (_dumps(metadata.to_dict()) + "\n").encode())


def read_metadata(model_path: str | os.PathLike, *, required: bool = True) -> ModelMetadata | None:
    """Reads the sidecar of an exported model (``.tflite`` file or SavedModel directory).

    Args:
        model_path: The model (or the ``.json`` sidecar itself).
        required: Raise when the sidecar is missing (else return ``None``).

    Raises:
        MetadataError: Missing (when ``required``) or malformed sidecar.
    """
    path = Path(model_path)
    if path.suffix != ".json":
        path = metadata_path(path)
    if not path.is_file():
        if required:
            raise MetadataError(f"Metadata sidecar {str(path)!r} not found (written by "
                                "deconvnet-export next to the model)")
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise MetadataError(f"{str(path)!r} is not valid JSON: {err}") from err
    return ModelMetadata.from_dict(data, source=repr(str(path)))
