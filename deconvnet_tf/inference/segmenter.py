"""``Segmenter``: a segmentation network plus everything needed to use it, in one ``.keras`` file.

In the manner of a KerasHub task, a :class:`Segmenter` is a Keras model that wraps the network
(a :class:`~deconvnet_tf.models.DeconvNet`, an :class:`~deconvnet_tf.models.FCN` or any
``(N, H, W, 3) -> (N, H, W, C)`` Keras model) and carries, in its ``get_config``:

* the **image converter**: the working resolution ``image_size`` (``(H, W)``: every image is
  resized to it and the scores resized back; ``None``: native, each image at its own size
  within ``max_pixels``), the padding rule (bottom/right up to the network's minimum side,
  with the mean colour), the mean;
* ``class_names``, ``void_label`` (label value outside the classes, or ``None``) and the
  ``palette`` (class name -> RGB);
* ``default_crf``: whether ``deconvnet-predict`` refines this model's output with the dense CRF
  when the command line does not say (``--crf`` / ``--no-crf``): the post-processing the model
  ships with, chosen on held-out data (``horse_compact``: on);
* ``test_time_flip``: whether predictions average each image's scores with those of its
  mirror image (test-time augmentation, twice the cost), in ``predict`` / ``predict_proba``,
  ``deconvnet-predict`` and ``deconvnet-evaluate`` (``--no-flip`` there skips it) and in the
  SavedModel / LiteRT runtimes of its exports (chosen on held-out data: ``camvid_compact``: on);
* ``test_time_scales``: test-time multi-scale, multiples of the working size the network also
  runs at, the probabilities averaged (``(1.0,)``: off), in ``predict`` / ``predict_proba``,
  ``deconvnet-predict`` and ``deconvnet-evaluate`` (``--scales 1`` there skips it); the
  SavedModel / LiteRT exports run the working size only;
* ``color_target``: test-time colour normalisation, the per-channel mean and standard
  deviation every image is brought to before the network
  (:func:`deconvnet_tf.io.normalize_colors`; ``None``: off), in the same places (chosen on
  held-out data: ``camvid_compact``: the statistics of its training frames);
* ``largest_component``: class names whose pixels ``deconvnet-predict`` reduces to their
  largest connected region after the CRF, when the command line does not say
  (``--no-largest-component``): a scene prior, one object of the class per image (no shipped
  model sets it: on the Horse dev folds it gained +0.0 to +1.1, docs/results.md).

So ``Segmenter.from_preset("camvid_compact")`` / ``keras.saving.load_model("x.keras")`` give a
model that knows its classes, colours and input size. Prediction follows the one size rule of
:mod:`deconvnet_tf.io` (:func:`~deconvnet_tf.io.plan_size`), shared with the SavedModel and
LiteRT runtimes: :meth:`Segmenter.predict` returns label maps at each input's own size.

A bare network ``.keras`` file (saved before Segmenters existed) still loads:
:func:`load_segmenter` takes the metadata from the arguments, the ``.json`` sidecar next to
the file, the dataset ``meta.json`` of its run folder, or the registry entry of a shipped model.

The Segmenter lives in :mod:`deconvnet_tf.inference` (it predicts through
:class:`~deconvnet_tf.inference.predict.Predictor`); :mod:`deconvnet_tf.models` re-exports it
and registers it for ``.keras`` loading, and ``deconvnet_tf.Segmenter`` is the public name.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

import deconvnet_tf.models  # noqa: F401  (registers the layers and networks for .keras loading)
from deconvnet_tf.inference.predict import KerasForward, Predictor, check_scales, predict_images
from deconvnet_tf.io import (
    DEFAULT_MAX_PIXELS,
    RUN_COLOR_TARGET,
    check_color_target,
    check_pixels,
    find_class_names,
    make_temp_file,
)
from deconvnet_tf.lite.metadata import CAMVID_PALETTE, default_palette
from deconvnet_tf.models.io import WEIGHTS_STORAGE, load_model, store_weights
from deconvnet_tf.models.registry import resolve

__all__ = ["CAMVID_PALETTE", "Segmenter", "default_palette", "load_model", "load_segmenter",
           "run_color_target"]

_DEFAULT_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)
_INTERPOLATIONS = ("bilinear",)


def _check_size(value, what: str = "image_size") -> tuple[int, int] | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "native"):
        return None
    given = value
    if isinstance(value, str):  # "HxW"
        parts = value.lower().split("x")
        value = parts if len(parts) == 2 else [value]
    try:
        height, width = (int(v) for v in value)
    except (TypeError, ValueError):  # also a wrong number of values
        raise ValueError(f"{what} must be (height, width), 'HxW', 'native' or None, got "
                         f"{given!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"{what} must be positive, got {height}x{width}")
    return height, width


def _check_palette(palette, names: list[str]) -> dict[str, tuple[int, int, int]]:
    if palette is None:
        return default_palette(names)
    if isinstance(palette, Mapping):
        missing = [n for n in names if n not in palette]
        if missing:
            raise ValueError(f"palette: no colour for class(es) {missing}")
        extra = [n for n in palette if n not in names]
        if extra:
            raise ValueError(f"palette: colour(s) for unknown class(es) {extra}")
        items = [(n, palette[n]) for n in names]
    else:
        colours = list(palette)
        if len(colours) != len(names):
            raise ValueError(f"palette: {len(colours)} colours for {len(names)} classes")
        items = list(zip(names, colours))
    out = {}
    for name, colour in items:
        try:
            rgb = tuple(int(v) for v in colour)
        except (TypeError, ValueError):
            rgb = ()
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise ValueError(f"palette: colour of {name!r} must be three ints 0..255, got "
                             f"{colour!r}")
        out[name] = rgb
    return out


def _check_component_names(value, names: list[str]) -> tuple[str, ...]:
    """``largest_component`` as a tuple of distinct class names of the model."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"Segmenter: largest_component must be a list of class names, got "
                         f"{value!r}")
    out = tuple(value)
    unknown = [v for v in out if not isinstance(v, str) or v not in names]
    if unknown or len(set(out)) != len(out):
        raise ValueError(f"Segmenter: largest_component must name distinct classes of "
                         f"{names}, got {list(out)}")
    return out


def _check_network(network) -> int:
    """The class count of a network a Segmenter can wrap (a ValueError otherwise)."""
    if not isinstance(network, keras.Model):
        raise ValueError(f"Segmenter: network must be a keras.Model, got "
                         f"{type(network).__name__}")
    if isinstance(network, Segmenter):
        raise ValueError("Segmenter: the network is already a Segmenter")
    out_shape = tuple(network.output_shape) if hasattr(network, "output_shape") else ()
    if len(out_shape) != 4 or out_shape[-1] is None:
        raise ValueError(f"Segmenter: the network must output (batch, height, width, "
                         f"classes), got {out_shape}")
    return int(out_shape[-1])


def _check_flags(*, default_crf, test_time_flip, weights_storage) -> None:
    """The Segmenter's on/off settings are booleans; ``weights_storage`` a known dtype."""
    for flag, value in (("default_crf", default_crf), ("test_time_flip", test_time_flip)):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"Segmenter: {flag} must be true or false, got {value!r}")
    if weights_storage not in WEIGHTS_STORAGE:
        raise ValueError(f"Segmenter: weights_storage must be one of {WEIGHTS_STORAGE}, "
                         f"got {weights_storage!r}")


def _check_integer(value, what: str) -> int:
    """``value`` as an int: an integer or an integral float (a JSON ``11.0``), not a bool,
    text, a fraction or a non-finite number (a ``ValueError`` naming ``what``)."""
    if (isinstance(value, (bool, np.bool_))
            or not isinstance(value, (int, float, np.integer, np.floating))
            or not float(value).is_integer()):
        raise ValueError(f"Segmenter: {what} must be an integer, got {value!r}")
    return int(value)


def _check_mean(mean, network) -> tuple[float, float, float]:
    """The preprocessing mean (BGR): ``mean``, else the network's, as three finite floats."""
    given = mean if mean is not None else getattr(network, "mean", _DEFAULT_MEAN_BGR)
    try:
        if isinstance(given, (str, bytes)):
            raise TypeError
        mean_bgr = tuple(float(v) for v in given)
    except (TypeError, ValueError):
        mean_bgr = ()
    if len(mean_bgr) != 3 or not all(np.isfinite(mean_bgr)):
        raise ValueError(f"Segmenter: mean must be 3 finite numbers (BGR), got {given!r}")
    return mean_bgr  # type: ignore[return-value]


def _check_names(class_names, void_label, num_classes: int) -> tuple[list[str], int | None]:
    """The class names (``class_0``... when ``None``) and the void label, validated against the
    network's number of classes."""
    if isinstance(class_names, (str, bytes)):
        raise ValueError(f"Segmenter: class_names must be a list of names, got {class_names!r}")
    names = ([f"class_{i}" for i in range(num_classes)] if class_names is None
             else [str(n) for n in class_names])
    if len(names) != num_classes:
        raise ValueError(f"Segmenter: {len(names)} class names for a network with "
                         f"{num_classes} classes ({names})")
    if len(set(names)) != len(names):
        raise ValueError(f"Segmenter: class names must be unique, got {names}")
    if void_label is not None:
        void_label = _check_integer(void_label, "void_label")
        if 0 <= void_label < num_classes:
            raise ValueError(f"Segmenter: void_label {void_label} is one of the "
                             f"{num_classes} classes; it must lie outside 0..{num_classes - 1}")
    return names, void_label


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class Segmenter(keras.Model):
    """A segmentation network with its image converter, class names, void label and palette.

    Args:
        network: The Keras network: RGB ``(N, H, W, 3)`` (0..255) in, ``(N, H, W, C)`` logits
            (or softmax) out.
        image_size: Working resolution ``(H, W)`` (or ``"HxW"``): images are resized to it
            (bilinear) and the scores back to each image's size. ``None`` / ``"native"``:
            native resolution (images bigger than
            ``max_pixels`` are scaled down, aspect kept). A network built with a fixed input
            size defaults to that size.
        max_pixels: Pixel budget at native resolution (``None``: no limit).
        class_names: One name per output class (default ``class_<i>``).
        void_label: Label value of unlabelled pixels in the training data (e.g. 11 for CamVid,
            255 for VOC), or ``None``.
        palette: ``{class name: (r, g, b)}`` or a list of colours in class order (default:
            :func:`default_palette`).
        mean: The network's preprocessing mean (BGR; read from the network when it has one):
            padding uses this colour, so padded pixels are zero after preprocessing.
        default_crf: Dense-CRF post-processing by default in ``deconvnet-predict`` (and in the
            :class:`~deconvnet_tf.inference.predict.Predictor` it gives); the network's own
            outputs (``predict``, ``predict_proba``) never include it.
        test_time_flip: Average each image's scores with those of its horizontal mirror
            (mirrored back) in every prediction of this model (``predict``,
            ``predict_proba``, :meth:`predictor`, ``deconvnet-predict``,
            ``deconvnet-evaluate``, and its SavedModel / LiteRT exports' runtimes), at twice the
            cost. A setting of the model, like its working resolution: ``--no-flip`` (or
            ``predictor(flip=False)``) skips it for one call.
        test_time_scales: Test-time multi-scale: the network also runs on each image resized
            to these multiples of the working size, and the class probabilities of every
            scale (each resized back to the image, with the flip if on) are averaged, in
            ``predict``, ``predict_proba``, :meth:`predictor`, ``deconvnet-predict`` and
            ``deconvnet-evaluate`` (``--scales 1`` skips it for one call); ``(1.0,)``
            (default): the working size only. The SavedModel / LiteRT exports run the
            working size only.
        color_target: Test-time colour normalisation: ``{"mean": [r, g, b], "std": [r, g,
            b]}``; each channel of every image is first shifted and scaled to this mean and
            standard deviation (:func:`deconvnet_tf.io.normalize_colors`), in every
            prediction of this model and its SavedModel / LiteRT exports' runtimes; ``None``
            (default): images as they are. The usual value is the statistics of the training
            images (:func:`deconvnet_tf.data.stats.color_statistics`). ``--no-color-norm``
            (or ``predictor(color_target=None)``) skips it for one call.
        largest_component: Class names whose pixels keep only their largest 8-connected
            region in ``deconvnet-predict``'s post-processing (after the CRF; the other
            regions take their next most probable class,
            :func:`deconvnet_tf.inference.postprocess.keep_largest_component`): for scenes with
            one object of the class per image. ``()`` (default): none. The network's own
            outputs (``predict``, ``predict_proba``) never include it;
            ``--no-largest-component`` skips it.
        weights_storage: The dtype of the weights in the ``.keras`` file :meth:`save` writes:
            ``"float32"`` (default) or ``"float16"`` (half the file; loads into float32
            variables, each weight rounded to float16, :func:`deconvnet_tf.models.store_weights`).

    Example:

    >>> net = deconvnet_tf.build_model("deconvnet_tiny", num_classes=2)
    >>> seg = Segmenter(net, image_size=(48, 64), class_names=["bg", "fg"])
    >>> seg.predict([np.zeros((100, 70, 3), "uint8")])[0].shape
    (100, 70)
    >>> seg.save("seg.keras"); Segmenter.from_preset("seg.keras").class_names
    ['bg', 'fg']
    """

    def __init__(
        self,
        network: keras.Model,
        *,
        image_size: Sequence[int] | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        class_names: Sequence[str] | None = None,
        void_label: int | None = None,
        palette=None,
        mean: Sequence[float] | None = None,
        interpolation: str = "bilinear",
        default_crf: bool = False,
        test_time_flip: bool = False,
        test_time_scales: Sequence[float] = (1.0,),
        color_target: Mapping[str, Sequence[float]] | None = None,
        largest_component: Sequence[str] = (),
        weights_storage: str = "float32",
        name: str | None = None,
        **kwargs,
    ):
        num_classes = _check_network(network)
        in_shape = tuple(network.input_shape)[1:]
        fixed = (tuple(int(d) for d in in_shape[:2])
                 if len(in_shape) == 3 and None not in in_shape[:2] else None)
        size = _check_size(image_size)
        if size is None and fixed is not None:
            size = fixed
        if fixed is not None and size != fixed:
            raise ValueError(f"Segmenter: image_size {size[0]}x{size[1]} differs from the "
                             f"network's fixed input {fixed[0]}x{fixed[1]}")
        minimum = int(getattr(network, "min_input_size", 1) or 1)
        if size is not None and min(size) < minimum:
            raise ValueError(f"Segmenter: image_size {size[0]}x{size[1]} is below the "
                             f"network's minimum input size {minimum}x{minimum}")
        if max_pixels is not None and _check_integer(max_pixels, "max_pixels") < 1:
            raise ValueError(f"Segmenter: max_pixels must be >= 1 or None, got {max_pixels}")
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"Segmenter: interpolation must be one of {_INTERPOLATIONS}, got "
                             f"{interpolation!r}")
        names, void_label = _check_names(class_names, void_label, num_classes)
        _check_flags(default_crf=default_crf, test_time_flip=test_time_flip,
                     weights_storage=weights_storage)
        color_target = check_color_target(color_target, "Segmenter: color_target")
        scales = check_scales(test_time_scales, "Segmenter: test_time_scales")
        largest_component = _check_component_names(largest_component, names)
        colours = _check_palette(palette, names)
        mean_bgr = _check_mean(mean, network)

        # The Segmenter is the network's own graph (same layers, same weights): layer access
        # (``get_layer("block3_conv3")``), visualisation and training work on it unchanged.
        super().__init__(inputs=network.input, outputs=network.output,
                         name=name or network.name, **kwargs)
        self.network = network
        for attribute in ("architecture", "unpooling", "image_shape", "frozen_blocks"):
            if hasattr(network, attribute):
                setattr(self, attribute, getattr(network, attribute))
        self.image_size = size
        self.max_pixels = None if max_pixels is None else int(max_pixels)
        self.class_names = names
        self.void_label = void_label
        self.palette = colours
        self.mean = mean_bgr
        self.interpolation = interpolation
        self.default_crf = bool(default_crf)
        self.test_time_flip = bool(test_time_flip)
        self.test_time_scales = scales
        self.color_target = color_target
        self.largest_component = largest_component
        self.weights_storage = weights_storage
        self.min_input_size = minimum
        self.output_activation = getattr(network, "output_activation", None)

    # ---------------------------------------------------------------------- configuration
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_converter(self) -> dict[str, Any]:
        """How images reach the network (the rule of :func:`deconvnet_tf.io.plan_size`)."""
        return {
            "image_size": None if self.image_size is None else list(self.image_size),
            "max_pixels": self.max_pixels,
            "interpolation": self.interpolation,
            "downscale_interpolation": "area",
            "padding": "bottom_right",
            "pad_value": "mean",
            "min_size": self.min_input_size,
            "mean_bgr": list(self.mean),
            "color_target": self.color_target,
        }

    def palette_array(self) -> np.ndarray:
        """``(num_classes, 3)`` uint8 colours in class order."""
        return np.asarray([self.palette[n] for n in self.class_names], np.uint8).reshape(-1, 3)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "network": keras.saving.serialize_keras_object(self.network),
            "image_size": None if self.image_size is None else list(self.image_size),
            "max_pixels": self.max_pixels,
            "class_names": list(self.class_names),
            "void_label": self.void_label,
            "palette": {n: list(c) for n, c in self.palette.items()},
            "mean": list(self.mean),
            "interpolation": self.interpolation,
            "default_crf": self.default_crf,
            "test_time_flip": self.test_time_flip,
            "test_time_scales": list(self.test_time_scales),
            "color_target": self.color_target,
            "largest_component": list(self.largest_component),
            "weights_storage": self.weights_storage,
            "image_converter": self.image_converter,  # descriptive; rebuilt from the above
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Segmenter":
        config = dict(config)
        config.pop("image_converter", None)
        network = config.pop("network")
        if isinstance(network, dict):
            network = keras.saving.deserialize_keras_object(network)
        return cls(network, **config)

    def with_options(self, **changes) -> "Segmenter":
        """A Segmenter sharing this network (same weights) with other settings, e.g.
        ``seg.with_options(image_size=None)`` to predict at native resolution."""
        config = self.get_config()
        config.pop("network")
        config.pop("image_converter")
        config.pop("trainable", None)
        unknown = set(changes) - set(config)
        if unknown:
            raise ValueError(f"with_options: unknown option(s) {sorted(unknown)}; expected "
                             f"{sorted(config)}")
        config.update(changes)
        return Segmenter(self.network, **config)

    # ---------------------------------------------------------------------- loading, saving
    @classmethod
    def from_preset(cls, preset: str | os.PathLike, **overrides) -> "Segmenter":
        """Loads a Segmenter by registry name, path or URL.

        Args:
            preset: A shipped model's name (``deconvnet_tf.models.registry.list_models()``,
                e.g. ``"camvid_compact"``), a ``.keras`` path (a Segmenter or a bare network),
                or a URL (``https://...`` / ``file://...``; add ``#sha256=<hex>`` to check it).
            **overrides: Segmenter settings to use instead of the stored ones
                (``image_size``, ``class_names``, ``palette``, ``void_label``, ``max_pixels``).

        Raises:
            FileNotFoundError: No such name or path.
            ValueError: Not a loadable model, a hash mismatch, or bad metadata.
        """
        path, entry = resolve(preset)
        return load_segmenter(path, registry_entry=entry, **overrides)

    def save(self, filepath, overwrite: bool = True, **kwargs) -> None:
        """Saves the ``.keras`` file atomically (a temporary file next to it, then a rename),
        its weights in ``weights_storage``'s dtype.

        Raises:
            ValueError: ``filepath`` does not end in ``.keras``, or exists and ``overwrite``
                is false.
        """
        path = Path(filepath)
        if path.suffix != ".keras":
            raise ValueError(f"Segmenter.save: {str(path)!r} must end in .keras")
        if path.is_dir():
            raise ValueError(f"Segmenter.save: {str(path)!r} is a folder")
        if path.exists() and not overwrite:
            raise ValueError(f"Segmenter.save: {str(path)!r} exists; pass overwrite=True to "
                             "replace it")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = make_temp_file(path, suffix=".keras")  # Keras checks the suffix
        os.close(fd)
        try:
            super().save(tmp, overwrite=True, **kwargs)
            store_weights(tmp, self.weights_storage)
            if overwrite:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)  # fails when another process created the name
                except FileExistsError:
                    raise ValueError(f"Segmenter.save: {str(path)!r} exists; pass "
                                     "overwrite=True to replace it") from None
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)

    # ---------------------------------------------------------------------- prediction
    def predictor(self, *, flip: bool | None = None, scales: Sequence[float] | None = None,
                  uint8: bool = True,
                  jit_compile: bool | None = None, color_target: Any = "model"):
        """This model as a :class:`deconvnet_tf.inference.predict.Predictor` (the rule of
        :func:`deconvnet_tf.io.plan_size` with this Segmenter's converter settings; ``flip``:
        mirrored-image averaging, default this Segmenter's ``test_time_flip``; ``scales``:
        test-time multi-scale, default its ``test_time_scales``; images are
        handled as uint8 pixels, values rounded to 0..255; ``uint8=False`` resizes and pads
        them as float32, the way a bare Keras network is fed; ``jit_compile=True`` runs the
        network XLA-compiled, see :class:`~deconvnet_tf.inference.predict.KerasForward`;
        ``color_target``: ``"model"`` (default) this Segmenter's, ``None`` off, or another
        target, see :func:`deconvnet_tf.io.normalize_colors`).

        Raises:
            ValueError: ``flip`` is neither ``None`` nor a bool, ``uint8`` not a bool, or a
                bad ``scales`` / ``color_target``.
        """
        for option, value in (("flip", True if flip is None else flip), ("uint8", uint8)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"predictor: {option} must be true or false, got {value!r}")
        fn = KerasForward(self.network, jit_compile)

        # input_dtype "uint8": images are resized and padded as uint8 pixels (the mean colour
        # rounded), exactly as the SavedModel and LiteRT runtimes do, so all three give the
        # same labels.
        return Predictor(
            fn=fn,
            input_dtype="uint8" if uint8 else "float32",
            outputs="probabilities" if self.output_activation == "softmax" else "logits",
            min_input_size=self.min_input_size,
            input_size=self.image_size,
            pad_rgb=tuple(self.mean[::-1]),
            name=self.name,
            flip=self.test_time_flip if flip is None else bool(flip),
            scales=self.test_time_scales if scales is None else scales,
            max_pixels=None if self.image_size is not None else self.max_pixels,
            class_names=tuple(self.class_names),
            palette=self.palette_array(),
            default_crf=self.default_crf,
            largest_component=tuple(self.class_names.index(n) for n in self.largest_component),
            color_target=(self.color_target if isinstance(color_target, str)
                             and color_target == "model" else color_target),
        )

    def predict_proba(self, images, batch_size: int | None = 1) -> list[np.ndarray] | np.ndarray:
        """Class probabilities of RGB images at each image's own size.

        Args:
            images: One ``(H, W, 3)`` image, an ``(N, H, W, 3)`` array, or a list of images of
                any sizes (uint8, or numbers 0..255; NumPy arrays, tensors or PIL images).
            batch_size: Images per network call (same-size images only; ``None``: 1).

        Returns:
            ``(H, W, C)`` float32 for one image, ``(N, H, W, C)`` for an array, a list for a
            list.

        Raises:
            ValueError: No images, or an image that is not ``(H, W, 3)`` pixel values 0..255
                (:func:`deconvnet_tf.io.check_pixels`; the message names it, e.g.
                ``images[2]``), or ``batch_size`` below 1.
            TypeError: ``batch_size`` is not an integer.
        """
        items, kind = _as_images(images)
        probs = predict_images(self.predictor(), items,
                               batch_size=1 if batch_size is None else batch_size)
        return _shape_like(probs, kind)

    def predict(self, images, batch_size: int | None = 1, verbose: Any = None,
                steps: Any = None, callbacks: Any = None) -> list[np.ndarray] | np.ndarray:
        """Label maps (class ids) at each input's own size.

        Args:
            images: As :meth:`predict_proba`.
            batch_size: Images per network call (``None``: 1).
            verbose, steps, callbacks: Accepted for ``keras.Model.predict`` callers and
                ignored (``steps`` and ``callbacks`` only as ``None``).

        Returns:
            ``(H, W)`` (uint8, int32 above 256 classes) for one image, ``(N, H, W)`` for an
            array, a list of label maps for a list.

        Raises:
            As :meth:`predict_proba`; ``TypeError`` for ``steps`` / ``callbacks`` other than
            ``None`` (this predict takes every image it is given and runs no callbacks).
        """
        for option, value in (("steps", steps), ("callbacks", callbacks)):
            if value is not None:
                raise TypeError(f"Segmenter.predict: {option} is not supported (got "
                                f"{value!r}); pass the images to predict")
        items, kind = _as_images(images)
        dtype = np.uint8 if self.num_classes <= 256 else np.int32
        labels = [p.argmax(-1).astype(dtype)
                  for p in predict_images(self.predictor(), items,
                                          batch_size=1 if batch_size is None else batch_size)]
        return _shape_like(labels, kind)


def _as_images(images) -> tuple[list[np.ndarray], str]:
    if isinstance(images, (str, bytes, os.PathLike)):
        raise ValueError(f"predict: expected image arrays, got the path {images!r}; read it "
                         "with deconvnet_tf.io.read_image(path) (or run deconvnet-predict on "
                         "files)")
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("predict: no images (an empty list)")
        return _checked([np.asarray(im) for im in images], "images[{}]"), "list"
    array = np.asarray(images)
    if array.dtype == object or array.ndim == 0:  # None, a number, a dict, a generator...
        shape = f" of shape {array.shape}" if isinstance(images, np.ndarray) else ""
        raise ValueError(f"predict: expected an (H, W, 3) image, an (N, H, W, 3) array or a "
                         f"list of images, got {type(images).__name__}{shape}")
    if array.ndim == 3:
        return _checked([array], "image"), "single"
    if array.ndim == 4:
        if array.shape[0] == 0:
            raise ValueError("predict: no images (an empty batch)")
        return _checked(list(array), "images[{}]"), "batch"
    raise ValueError(f"predict: expected an (H, W, 3) image, an (N, H, W, 3) array or a list of "
                     f"images, got shape {array.shape}")


def _checked(images: list[np.ndarray], what: str) -> list[np.ndarray]:
    """``images`` after :func:`~deconvnet_tf.io.check_pixels`, so that an error names the
    image (``what`` formatted with its index); the prediction itself warns of 0..1 floats."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return [check_pixels(image, what.format(i)) for i, image in enumerate(images)]


def _shape_like(results: list[np.ndarray], kind: str):
    if kind == "single":
        return results[0]
    if kind == "batch":
        return np.stack(results)
    return results


# -------------------------------------------------------------------------- bare networks
def _sidecar_metadata(path: Path) -> dict[str, Any]:
    """Class names / palette / size from ``<stem>.json`` next to a bare ``.keras`` file."""
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return {}
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"metadata sidecar {str(sidecar)!r} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"metadata sidecar {str(sidecar)!r} must hold a JSON object")
    found: dict[str, Any] = {}
    names = data.get("class_names", data.get("classes"))
    if names is not None:
        found["class_names"] = names
    if data.get("palette") is not None:
        found["palette"] = data["palette"]
    void = data.get("void_label", data.get("ignore_label"))
    if void is not None:
        found["void_label"] = void
    if "image_size" in data:
        found["image_size"] = data["image_size"]
    else:
        shape = data.get("input_shape")
        if isinstance(shape, list) and len(shape) == 4 and shape[1] and shape[2]:
            found["image_size"] = (shape[1], shape[2])
    return found


def _dataset_metadata(path: Path) -> dict[str, Any]:
    """Class names and void label from the dataset ``meta.json`` of a run folder."""
    candidates = [path.parent / "meta.json"]
    names = find_class_names(path)
    if names is None:
        return {}
    found: dict[str, Any] = {"class_names": names}
    for meta in candidates:
        if meta.is_file():
            try:
                data = json.loads(meta.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            void = data.get("void_label", data.get("ignore_label")) if isinstance(data, dict) \
                else None
            if void is not None:
                found["void_label"] = void
    return found


def run_color_target(model_path: str | os.PathLike) -> dict | None:
    """The colour statistics a training run normalised its images to (``color_norm``): the
    ``color_target.json`` of the run folder that holds ``model_path`` (its ``model.keras``,
    or a checkpoint in its ``checkpoints/``); ``None`` for a model outside such a run.

    A run's ``model.keras`` is the bare network: :func:`load_segmenter` gives it these
    statistics as its ``color_target`` (so ``deconvnet-predict`` normalises), and
    ``deconvnet-evaluate`` and the evaluation after ``deconvnet-train`` use them.

    Raises:
        ValueError: The file is unreadable or holds a bad target (naming the file).
    """
    folder = Path(model_path)
    folder = folder if folder.is_dir() else folder.parent
    if folder.name == "checkpoints" and not (folder / RUN_COLOR_TARGET).is_file():
        folder = folder.parent
    record = folder / RUN_COLOR_TARGET
    if not record.is_file():
        return None
    try:
        target = json.loads(record.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{str(record)!r} is not a readable colour target "
                         f"({type(err).__name__})") from err
    return check_color_target(target, str(record))


_OVERRIDES = ("image_size", "max_pixels", "class_names", "void_label", "palette", "mean",
              "interpolation", "default_crf", "test_time_flip", "test_time_scales", "color_target",
              "largest_component", "weights_storage", "name")


def load_segmenter(path: str | os.PathLike, *, registry_entry: Mapping | None = None,
                   network: Any = None, **overrides) -> Segmenter:
    """Loads a ``.keras`` file as a :class:`Segmenter`.

    A Segmenter file comes back as saved (``overrides`` replace its settings). A bare network
    gets its metadata from, in this order: ``overrides``; the ``<stem>.json`` sidecar next to
    the file; the colour statistics of its run folder (:func:`run_color_target`); the dataset
    ``meta.json`` of its run folder; ``registry_entry["metadata"]``. ``network``: the model
    already loaded from ``path`` (e.g. by ``load_model_file``), so that it is not loaded again;
    ``path`` then only locates its metadata.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Not a ``.keras`` model file, unknown override, or metadata that does not
            fit the network.
    """
    unknown = set(overrides) - set(_OVERRIDES)
    if unknown:
        raise ValueError(f"unknown Segmenter option(s) {sorted(unknown)}; expected some of "
                         f"{list(_OVERRIDES)}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Model file not found: {str(path)!r}")
    if path.is_dir() or path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ValueError(f"{str(path)!r} is not a .keras model file (a zip archive written by "
                         "model.save)")
    try:
        model = load_model(path) if network is None else network
    except (FileNotFoundError, ValueError):
        raise
    except Exception as err:  # Keras raises many types for a damaged archive
        raise ValueError(f"Cannot load the model {str(path)!r}: {type(err).__name__}: "
                         f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}"
                         ) from err
    if isinstance(model, Segmenter):
        return model.with_options(**overrides) if overrides else model
    bare = model
    # a run trained with color_norm (not read when an override names the target)
    run_target = None if "color_target" in overrides else run_color_target(path)
    sources = [dict(registry_entry.get("metadata", {})) if registry_entry is not None else {},
               _dataset_metadata(path),
               {} if run_target is None else {"color_target": run_target},
               _sidecar_metadata(path), dict(overrides)]
    metadata: dict[str, Any] = {}
    for found in sources:  # later sources win; a palette goes with the class names it named
        if "class_names" in found and "palette" not in found:
            metadata.pop("palette", None)
        metadata.update(found)
    if "palette" in metadata and "class_names" in metadata and not isinstance(
            metadata["palette"], Mapping) and len(metadata["palette"]) != len(
            metadata["class_names"]):
        metadata.pop("palette")  # e.g. a sidecar of another dataset
    segmenter = Segmenter(bare, **metadata)
    #: The file held a bare network (metadata found around it), not a Segmenter.
    segmenter.from_bare_network = True
    return segmenter
