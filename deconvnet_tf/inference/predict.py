"""Whole-image prediction: model loading, one code path from any image size to class
probabilities at that size.

Everything that turns "a model" into class probabilities goes through :class:`Predictor`:

* a Keras model of this package (``.keras`` file or in memory): logits are turned into
  probabilities with a softmax;
* a :class:`~deconvnet_tf.Segmenter` (its working resolution, mean and converter
  settings), a shipped model's registry name (``"camvid_compact"``);
* an exported SavedModel folder (``deconvnet_tf.export.saved_model.load_saved_model``: uint8
  images in, probabilities out);
* any callable ``f(batch (N, H, W, 3)) -> scores (N, H, W, C)`` wrapped in a :class:`Predictor`
  (tests, other runtimes).

Every predictor brings an image to the model with the size rule of
:func:`deconvnet_tf.io.plan_size` (shared with the SavedModel and LiteRT runtimes): a model
with a fixed input size or a working resolution (a :class:`~deconvnet_tf.Segmenter`'s
``image_size``) gets the image resized to it and the probabilities resized back (bilinear); an
image above
``Predictor.max_pixels`` (default ``None``: no limit) is scaled down and its scores scaled back;
a side shorter than the model's minimum is padded at the bottom/right with the mean colour (zero
after the model's preprocessing) and the scores cropped back.

NumPy/OpenCV code; Keras is imported only when a Keras model is loaded or wrapped.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deconvnet_tf.io import (
    IMAGE_SUFFIXES,
    average_with_mirror,
    check_color_target,
    check_pixels,
    list_images,
    normalize_colors,
    plan_size,
    read_image,
    resize_channels,
)
from deconvnet_tf.io import fit_image as _fit_image
from deconvnet_tf.io import restore_scores as _restore_scores

__all__ = [
    "IMAGE_SUFFIXES",
    "KerasForward",
    "Predictor",
    "as_predictor",
    "check_image",
    "list_images",
    "load_predictor",
    "predict_image",
    "predict_images",
    "read_image",
    "softmax",
]

def softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float32."""
    scores = np.asarray(scores, np.float32)
    shifted = scores - scores.max(axis=axis, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=axis, keepdims=True)
    return shifted


def _normalise(probabilities: np.ndarray) -> np.ndarray:
    probabilities = np.clip(np.asarray(probabilities, np.float32), 0.0, None)
    total = probabilities.sum(-1, keepdims=True)
    return probabilities / np.maximum(total, 1e-12)


@dataclass
class Predictor:
    """A model seen as ``batch of RGB images -> class scores``, plus what is needed to feed it.

    Args:
        fn: ``fn(batch) -> scores``: ``batch`` is ``(N, H, W, 3)`` RGB (dtype ``input_dtype``,
            values 0..255), ``scores`` is ``(N, H, W, C)`` at the batch's size.
        outputs: ``"logits"`` (a softmax gives probabilities) or ``"probabilities"``.
        min_input_size: Smallest height/width ``fn`` accepts; smaller images are padded.
        input_size: ``(height, width)`` when ``fn`` only takes one size (images are resized to
            it and the scores resized back), else ``None``.
        pad_rgb: Colour used for padding (the model's mean colour: zero after preprocessing).
        input_dtype: ``"float32"`` or ``"uint8"``.
        name: Shown in messages.
        flip: Test-time augmentation: average the class probabilities of each image and of its
            horizontal mirror (mirrored back), at twice the cost, as the SavedModel and LiteRT
            runtimes do (a ``"logits"`` ``fn`` then gives the log of the mean probabilities,
            which a softmax maps back to them).
        max_pixels: Pixel budget: larger images are scaled down (aspect kept) for the model and
            the scores scaled back (:func:`deconvnet_tf.io.plan_size`); ``None``: no limit.
            Batches of :func:`predict_images` are also kept within it.
        class_names: Class names, when known (a Segmenter's, a SavedModel's metadata).
        palette: ``(C, 3)`` uint8 colours for the outputs, when known (``None``: the default
            palette of :func:`deconvnet_tf.render.make_palette`).
        default_crf: The model's default post-processing is the dense CRF (a Segmenter's
            ``default_crf``): ``deconvnet-predict`` applies it unless ``--no-crf``.
        color_target: Test-time colour normalisation: each image's channels are first
            brought to this ``{"mean": [r, g, b], "std": [r, g, b]}``
            (:func:`deconvnet_tf.io.normalize_colors`, at the image's own size, before
            resizing); ``None``: images as they are.
        scales: Test-time multi-scale: the network also runs on each image resized to these
            multiples of its working size (the size :meth:`plan` gives it), and the class
            probabilities of every scale, each resized back to the image, are averaged
            (:func:`predict_images`); ``(1.0,)`` (default): the working size only. Needs a
            network that takes any size (a Keras model, not a fixed-size export).
        largest_component: Class indices that ``deconvnet-predict`` reduces to their largest
            connected region after the CRF by default (a Segmenter's ``largest_component``;
            :func:`deconvnet_tf.inference.postprocess.keep_largest_component`); the
            probabilities of :meth:`scores` never include it.

    Example:
        >>> fake = Predictor(lambda b: np.zeros(b.shape[:3] + (2,)), outputs="logits")
        >>> predict_image(fake, np.zeros((5, 7, 3), np.uint8)).shape
        (5, 7, 2)
    """

    fn: Callable[[np.ndarray], Any]
    outputs: str = "logits"
    min_input_size: int = 1
    input_size: tuple[int, int] | None = None
    pad_rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)
    input_dtype: str = "float32"
    name: str = "model"
    flip: bool = False
    max_pixels: int | None = None
    class_names: tuple[str, ...] | None = None
    palette: Any = None
    default_crf: bool = False
    color_target: dict | None = None
    largest_component: tuple = ()
    scales: tuple = (1.0,)

    def __post_init__(self):
        self.color_target = check_color_target(self.color_target, "Predictor.color_target")
        self.scales = check_scales(self.scales, "Predictor.scales")
        # cycle-free: postprocess imports NumPy only
        from deconvnet_tf.inference.postprocess import check_component_classes

        self.largest_component = check_component_classes(
            self.largest_component, what="Predictor.largest_component")
        if self.outputs not in ("logits", "probabilities"):
            raise ValueError(f"Predictor.outputs must be 'logits' or 'probabilities', got "
                             f"{self.outputs!r}")
        if self.input_dtype not in ("float32", "uint8"):
            raise ValueError(f"Predictor.input_dtype must be 'float32' or 'uint8', got "
                             f"{self.input_dtype!r}")
        if self.max_pixels is not None and int(self.max_pixels) < 1:
            raise ValueError(f"Predictor.max_pixels must be >= 1 or None, got {self.max_pixels}")

    def scores(self, batch: np.ndarray) -> np.ndarray:
        """Raw outputs ``(N, H, W, C)`` float32 of ``fn`` on a batch of the size it accepts."""
        batch = np.asarray(batch)
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(f"{self.name}: expected a (N, H, W, 3) batch, got {batch.shape}")
        if self.input_dtype == "uint8":
            batch = np.clip(np.round(batch), 0, 255).astype(np.uint8)
        else:
            batch = batch.astype(np.float32)
        if not self.flip:
            return self._call(batch)
        if self.outputs == "probabilities":
            return average_with_mirror(self._call, batch)
        mean = average_with_mirror(lambda b: softmax(self._call(b)), batch)
        return np.log(np.maximum(mean, np.finfo(np.float32).tiny))

    def _call(self, batch: np.ndarray) -> np.ndarray:
        out = np.asarray(self.fn(batch), np.float32)
        if out.ndim != 4 or out.shape[:3] != batch.shape[:3]:
            raise ValueError(f"{self.name}: scores of shape {out.shape} do not match the input "
                             f"batch {batch.shape[:3]} (expected (N, H, W, C))")
        return out

    @property
    def jit_compile(self) -> bool | None:
        """Whether ``fn`` runs XLA-compiled: ``True``/``False`` for a Keras network
        (:class:`KerasForward`) when chosen; ``None`` when not chosen (runs uncompiled) or for
        predictors that cannot tell (SavedModel, LiteRT, any other callable)."""
        return getattr(self.fn, "jit_compile", None)

    @property
    def supports_jit(self) -> bool:
        """Whether :meth:`with_jit_compile` ``(True)`` can compile ``fn`` with XLA."""
        return bool(getattr(self.fn, "supports_jit", False))

    def with_jit_compile(self, jit_compile: bool | None) -> "Predictor":
        """This predictor with its Keras network run XLA-compiled (``True``), through
        ``predict_on_batch`` (``False``) or left to the caller's default (``None``); other
        predictors are returned unchanged.

        Raises:
            ValueError: ``True`` for a network XLA cannot compile (argmax pooling:
                ``MaxPoolWithArgmax`` has no XLA kernel).
        """
        if not hasattr(self.fn, "with_jit_compile"):
            return self
        return dataclasses.replace(self, fn=self.fn.with_jit_compile(jit_compile))

    def to_probabilities(self, scores: np.ndarray) -> np.ndarray:
        """Softmax of logits, or renormalised probabilities, along the last axis."""
        return softmax(scores) if self.outputs == "logits" else _normalise(scores)

    def plan(self, height: int, width: int):
        """The :class:`~deconvnet_tf.io.SizePlan` of an image of this size for this model."""
        return plan_size(height, width, input_size=self.input_size,
                         min_size=self.min_input_size, max_pixels=self.max_pixels)

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        """Brings one image to a size the model takes; returns it and the inverse for scores.

        Returns:
            ``(model_image (h, w, 3) float32, back)`` where ``back(scores (h, w, C))`` gives the
            scores at the image's own ``(H, W)``.
        """
        image = check_image(image)
        if self.color_target is not None:
            with warnings.catch_warnings():  # check_image above has warned of 0..1 floats once
                warnings.simplefilter("ignore", UserWarning)
                image = normalize_colors(image, self.color_target)
        plan = self.plan(*image.shape[:2])
        if self.input_dtype == "uint8":  # resize and pad in uint8, as the LiteRT runtime does
            pixels = image if image.dtype == np.uint8 else np.clip(
                np.round(image.astype(np.float32)), 0, 255).astype(np.uint8)
            model_image = _fit_image(pixels, plan, np.round(self.pad_rgb)).astype(np.float32)
        else:
            model_image = _fit_image(image.astype(np.float32), plan, self.pad_rgb)
        if plan.identity:
            return model_image, lambda scores: scores
        return model_image, lambda scores: _restore_scores(scores, plan)


#: The largest test-time scale: 4 times the side is 16 times the pixels (and the memory).
MAX_SCALE = 4.0


def check_scales(scales, what: str = "scales") -> tuple[float, ...]:
    """``scales`` as a tuple of floats, each finite, > 0 and <= :data:`MAX_SCALE`, at least
    one, no repeats.

    Raises:
        ValueError: Naming ``what`` and the value.
    """
    try:
        values = tuple(float(v) for v in ([scales] if np.isscalar(scales) else scales))
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers such as (1.0, 1.5), got {scales!r}") from None
    if not values or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{what} must be one or more finite numbers > 0, got {scales!r}")
    if max(values) > MAX_SCALE:
        raise ValueError(f"{what} must be at most {MAX_SCALE:g} each (a scale s runs the "
                         f"network on s^2 times the pixels), got {scales!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{what} repeats a scale: {scales!r}")
    return values


def check_multiscale(predictor: "Predictor") -> None:
    """Raises ``ValueError`` when ``predictor`` has test-time ``scales`` but its network
    cannot take other sizes (an export, a network with a fixed input)."""
    if predictor.scales == (1.0,):
        return
    network = getattr(predictor.fn, "network", None)
    shape = tuple(getattr(network, "input_shape", None) or (None, 1, 1))[1:3]
    if not isinstance(predictor.fn, KerasForward) or any(d is not None for d in shape):
        raise ValueError(f"{predictor.name}: test-time scales {predictor.scales} need a Keras "
                         "network that takes any size (not an export, not a fixed input)")


def _scaled_size(size: tuple[int, int], scale: float, minimum: int) -> tuple[int, int]:
    return tuple(max(int(minimum), int(round(v * scale))) for v in size)  # type: ignore


def _predict_multiscale(predictor: "Predictor", images, batch_size: int) -> list[np.ndarray]:
    """:func:`predict_images` of a predictor with ``scales``: the mean of the probabilities
    at every scale of each image's working size (each at the image's own size)."""
    check_multiscale(predictor)
    single = dataclasses.replace(predictor, scales=(1.0,))
    sums: list[np.ndarray | None] = [None] * len(images)
    for scale in predictor.scales:
        if single.input_size is not None:  # every image at one working size: batched
            groups = [(list(range(len(images))), single.input_size)]
        else:  # each image's own planned size
            groups = [([i], single.plan(*np.shape(image)[:2]).scaled)
                      for i, image in enumerate(images)]
        for indices, size in groups:
            at_scale = dataclasses.replace(
                single, input_size=_scaled_size(size, scale, single.min_input_size),
                max_pixels=None)
            probs = predict_images(at_scale, [images[i] for i in indices],
                                   batch_size=batch_size)
            for i, p in zip(indices, probs):
                sums[i] = p if sums[i] is None else sums[i] + p
    count = np.float32(len(predictor.scales))
    return [np.asarray(total / count, np.float32) for total in sums]  # type: ignore


def _resize_scores(scores: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a ``(h, w, C)`` score map (any C) to ``(height, width, C)``."""
    return resize_channels(np.asarray(scores, np.float32), height, width)


def check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Checks an RGB image ``(H, W, 3)`` with values 0..255 and returns it as an array
    (:func:`deconvnet_tf.io.check_pixels`)."""
    return check_pixels(image, what)


#: Compiled forward functions per network (one XLA compile per input shape and process).
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class KerasForward:
    """The ``fn`` of a :class:`Predictor` over a Keras network: ``batch -> scores`` (NumPy).

    ``jit_compile=False`` calls ``network.predict_on_batch``; so does ``None`` (default: not
    chosen; :func:`~deconvnet_tf.inference.instance.predict_instances` then compiles, the
    whole-image paths do not). ``True`` runs the
    network's forward pass XLA-compiled (TensorFlow backend: one ``tf.function(jit_compile=
    True)`` per network, compiled once per batch shape and shared by every predictor of that
    network; JAX: ``predict_on_batch`` is compiled already). On the development CPU the
    compiled forward of ``camvid_compact`` is ~1.2x faster per call after a 1-3 s compile per
    shape, so it pays when one shape is run many times (instance-wise inference: 50 crops of
    one size per image); Keras' own ``jit_compile="auto"`` never compiles on a CPU-only
    machine. Labels agree with the uncompiled forward except at near-ties (float rounding).

    Args:
        network: A Keras model taking ``(N, H, W, 3)`` float32 batches.
        jit_compile: ``True``, ``False`` or ``None``, see above.

    Raises:
        ValueError: ``jit_compile=True`` for a network holding a layer XLA cannot compile
            (``supports_jit = False``, e.g. argmax pooling).
    """

    def __init__(self, network, jit_compile: bool | None = None):
        self.network = network
        self.jit_compile = None if jit_compile is None else bool(jit_compile)
        if self.jit_compile and not self.supports_jit:
            raise ValueError(f"{getattr(network, 'name', 'model')}: cannot XLA-compile this "
                             "network (argmax pooling has no XLA kernel); rebuild it with "
                             "unpooling='switch' or turn jit_compile off")

    @property
    def supports_jit(self) -> bool:
        """Whether every layer of the network can be XLA-compiled."""
        return all(getattr(layer, "supports_jit", True)
                   for layer in self.network._flatten_layers())

    def with_jit_compile(self, jit_compile: bool | None) -> "KerasForward":
        value = None if jit_compile is None else bool(jit_compile)
        return self if value is self.jit_compile else KerasForward(self.network, value)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, np.float32)
        if not self.jit_compile:
            return self.network.predict_on_batch(batch)
        import keras

        if keras.config.backend() != "tensorflow":
            return self.network.predict_on_batch(batch)
        fn = _COMPILED.get(self.network)
        if fn is None:
            import tensorflow as tf

            # A weak reference: the cache entry must not keep its own key (the network) alive.
            network = weakref.ref(self.network)
            fn = tf.function(lambda x: network()(x, training=False), jit_compile=True)
            _COMPILED[self.network] = fn
        return keras.ops.convert_to_numpy(fn(batch))


def _keras_predictor(model, image_size: Any = "model",
                     jit_compile: bool | None = None) -> Predictor:
    if hasattr(model, "predictor") and hasattr(model, "image_converter"):  # a Segmenter
        # A bare network file wrapped on loading is fed as before (float pixels); a Segmenter
        # file in uint8 pixels, exactly as its SavedModel / LiteRT exports are.
        bare = getattr(model, "from_bare_network", False)
        if image_size != "model":
            model = model.with_options(image_size=image_size)
        return model.predictor(uint8=not bare, jit_compile=jit_compile)
    shape = tuple(model.input_shape)[1:3] if getattr(model, "input_shape", None) else (None, None)
    fixed = tuple(int(d) for d in shape) if all(d is not None for d in shape) else None
    if image_size not in ("model", None) and fixed is None:
        fixed = _size_pair(image_size)
    mean_bgr = tuple(getattr(model, "mean", (0.0, 0.0, 0.0)))
    softmax_output = getattr(model, "output_activation", None) == "softmax"
    outputs = "probabilities" if softmax_output else "logits"
    return Predictor(
        fn=KerasForward(model, jit_compile),
        outputs=outputs,
        min_input_size=int(getattr(model, "min_input_size", 1) or 1),
        input_size=fixed,
        pad_rgb=tuple(float(v) for v in mean_bgr[::-1]),
        name=getattr(model, "name", "model"),
    )


def _size_pair(value) -> tuple[int, int] | None:
    """``None`` / ``"native"`` -> ``None``; ``(H, W)`` / ``"HxW"`` -> ints, checked."""
    if value is None or (isinstance(value, str) and value.lower() == "native"):
        return None
    if isinstance(value, str):
        value = value.lower().split("x")
    try:
        height, width = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be 'native', None, (height, width) or 'HxW', got "
                         f"{value!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, got {height}x{width}")
    return height, width


def _looks_like_path(text: str) -> bool:
    return (os.sep in text or "/" in text or Path(text).suffix != ""
            or text.startswith(".") or "://" in text)


def load_predictor(path: Any, *, image_size: Any = "model",
                   color_target: Any = "model") -> Predictor:
    """Loads a trained model as a :class:`Predictor`.

    Args:
        path: A :class:`~deconvnet_tf.Segmenter` (or any Keras model of this package),
            a ``.keras`` file (a Segmenter file, or a bare network whose metadata comes from
            its sidecar / dataset ``meta.json``), a shipped model's registry name (e.g.
            ``"camvid_compact"``, see :mod:`deconvnet_tf.models.registry`), a URL, or an
            exported SavedModel folder (``deconvnet_tf.export.saved_model.load_saved_model``).
        image_size: The working resolution: ``"model"`` (default: the model's own, e.g. 180x240
            for ``camvid_compact``; native for a model without one), ``"native"`` / ``None``
            (each image at its own size within the pixel budget), or ``(H, W)`` / ``"HxW"``.
            A model or export with a fixed input size keeps it.
        color_target: Test-time colour normalisation: ``"model"`` (default) the model's own
            (a Segmenter's ``color_target``, the ``color_target.json`` of a bare network's
            training run, an export's metadata), ``None`` off (the run's ``color_target.json``
            is then not read), or ``{"mean": [r, g, b], "std": [r, g, b]}`` instead.

    Returns:
        The predictor.

    Raises:
        FileNotFoundError: ``path`` does not exist and is no registered name.
        ValueError: ``path`` is neither a ``.keras`` file nor a SavedModel folder, or a bad
            ``image_size`` or ``color_target``.
        ImportError: A SavedModel folder, but this installation cannot load SavedModels.

    Example:
        >>> predictor = load_predictor("camvid_compact")               # doctest: +SKIP
        >>> predictor = load_predictor("runs/camvid/model.keras", image_size="native")  # +SKIP
    """
    if image_size != "model":
        image_size = _size_pair(image_size)
    own = isinstance(color_target, str) and color_target == "model"
    if not own:
        color_target = check_color_target(color_target, "load_predictor: color_target")
    predictor = _load(path, image_size, own, color_target)
    return predictor if own else dataclasses.replace(predictor, color_target=color_target)


def _load(path: Any, image_size: Any, own: bool, color_target: dict | None) -> Predictor:
    """:func:`load_predictor` before its ``color_target`` override (``own``: none)."""
    if not isinstance(path, (str, os.PathLike)):
        if hasattr(path, "predict_on_batch") and hasattr(path, "input_shape"):
            return _keras_predictor(path, image_size)
        raise TypeError(f"load_predictor: expected a path, a registry name or a Keras model, "
                        f"got {type(path).__name__}")
    text = os.fspath(path)
    path = Path(text)
    entry = None
    if not path.exists():
        if _looks_like_path(text) and "://" not in text:
            raise FileNotFoundError(f"Model not found: {text!r}")
        # Keras: deconvnet_tf.models imports Keras; this module stays NumPy-only on import
        from deconvnet_tf.models.registry import resolve

        path, entry = resolve(text)  # a registry name or a URL
    if path.is_dir():
        return _saved_model_predictor(path, image_size)
    overrides = {} if own else {"color_target": color_target}  # not read from the run folder
    return _keras_file_predictor(path, entry, image_size, **overrides)


def _saved_model_predictor(path: Path, image_size: Any) -> Predictor:
    """The :class:`Predictor` of an exported SavedModel folder (uint8 in, probabilities out)."""
    if not (path / "saved_model.pb").is_file():
        raise ValueError(f"{str(path)!r} is a folder but not a SavedModel (no saved_model.pb)"
                         "; pass a .keras file or an exported SavedModel folder")
    try:
        # upward (the exception listed in .importlinter); export.saved_model is TF-only
        from deconvnet_tf.export.saved_model import load_saved_model
    except ImportError as err:
        raise ImportError(
            f"Cannot load the SavedModel {str(path)!r}: this installation has no "
            f"deconvnet_tf.export.saved_model ({err}); use the .keras file instead"
        ) from err
    try:
        fn = load_saved_model(path)
    except Exception as err:  # TensorFlow raises many types for a broken SavedModel
        raise ValueError(f"Cannot load the SavedModel {str(path)!r}: "
                         f"{_first_line(err)}") from err
    metadata = getattr(fn, "metadata", None)
    mean_bgr = getattr(metadata, "mean_bgr", None) or (104.008, 116.669, 122.675)
    fixed = getattr(fn, "fixed_size", None)
    size = tuple(int(v) for v in fixed) if fixed else None
    if size is None:  # a dynamic export: the working size of its metadata, or the override
        size = (getattr(fn, "working_size", None) if image_size == "model"
                else image_size)
    return Predictor(
        fn=fn.run_probabilities if hasattr(fn, "run_probabilities") else fn,
        outputs="probabilities",
        min_input_size=int(getattr(fn, "min_input_size", 1) or 1),
        input_size=tuple(size) if size else None,
        pad_rgb=tuple(float(v) for v in list(mean_bgr)[::-1]),
        input_dtype="uint8",
        name=path.name,
        max_pixels=None if size else getattr(fn, "max_pixels", None),
        flip=bool(getattr(fn, "flip", False)),
        color_target=getattr(fn, "color_target", None),
        class_names=tuple(fn.class_names) if metadata is not None else None,
        palette=metadata.palette_array() if metadata is not None else None,
    )


def _keras_file_predictor(path: Path, entry: Any, image_size: Any, **overrides) -> Predictor:
    """The :class:`Predictor` of a ``.keras`` file (``entry``: its registry entry, if any;
    ``overrides``: Segmenter settings, see :func:`load_segmenter`)."""
    if path.suffix.lower() == ".tflite":
        raise ValueError(f"{str(path)!r} is a LiteRT model; run it with deconvnet-lite-predict "
                         "(deconvnet_tf.lite.LiteSegmenter), or pass the .keras file")
    # cycle: segmenter imports predict (listed in .importlinter); Keras as well
    from deconvnet_tf.inference.segmenter import load_segmenter

    try:
        model = load_segmenter(path, registry_entry=entry, **overrides)
    except Exception as err:  # Keras raises many types (and bare JSON errors) for a bad archive
        if str(path) in str(err):
            raise
        raise ValueError(f"Cannot load the model {str(path)!r}: {_first_line(err)}") from err
    return _keras_predictor(model, image_size)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def as_predictor(model: Any) -> Predictor:
    """A :class:`Predictor` from a predictor, a Keras model, or a model path.

    Raises:
        TypeError: ``model`` is none of those.
    """
    if isinstance(model, Predictor):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_predictor(model)
    if hasattr(model, "predict_on_batch") and hasattr(model, "input_shape"):  # Segmenter too
        return _keras_predictor(model)
    raise TypeError(f"Expected a Predictor, a Keras model or a model path, got "
                    f"{type(model).__name__}; wrap other callables in Predictor(fn, ...)")


def predict_images(
    model: Any, images: Sequence[np.ndarray], *, batch_size: int = 1
) -> list[np.ndarray]:
    """Class probabilities of several RGB images, each at its own size.

    Images that reach the model at the same size are batched together (``batch_size`` at a time).
    A predictor with ``scales`` runs every image at each of them and averages the probabilities.

    Args:
        model: A :class:`Predictor`, a Keras model or a model path.
        images: RGB images ``(H, W, 3)`` (uint8 or float 0..255), any sizes.
        batch_size: Images per model call (fewer when ``batch x height x width`` would exceed
            the predictor's ``max_pixels``).

    Returns:
        One ``(H, W, C)`` float32 probability map per image (sums to 1 along the class axis).

    Raises:
        TypeError: ``batch_size`` is not an integer.
        ValueError: ``batch_size`` is below 1, or an image is not ``(H, W, 3)`` pixel values.
    """
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    predictor = as_predictor(model)
    if predictor.scales != (1.0,):
        return _predict_multiscale(predictor, list(images), batch_size)
    prepared = [predictor.prepare(im) for im in images]
    results: list[np.ndarray | None] = [None] * len(prepared)
    groups: dict[tuple[int, int], list[int]] = {}
    for index, (array, _) in enumerate(prepared):
        groups.setdefault(array.shape[:2], []).append(index)
    for size, indices in groups.items():
        step = batch_size
        if predictor.max_pixels is not None:  # keep a batch within the pixel budget too
            step = max(1, min(batch_size, int(predictor.max_pixels) // max(1, size[0] * size[1])))
        for start in range(0, len(indices), step):
            chunk = indices[start:start + step]
            scores = predictor.scores(np.stack([prepared[i][0] for i in chunk]))
            for i, score in zip(chunk, scores):
                # probabilities first, then back to the image's size: the order of the
                # SavedModel and LiteRT runtimes (the same labels on every runtime)
                results[i] = prepared[i][1](predictor.to_probabilities(score))
    return results  # type: ignore[return-value]


def predict_image(model: Any, image: np.ndarray) -> np.ndarray:
    """Class probabilities ``(H, W, C)`` float32 of one RGB image at its own size.

    Args:
        model: A :class:`Predictor`, a Keras model or a model path.
        image: RGB image ``(H, W, 3)``, values 0..255.

    Returns:
        Probabilities at the image's size (softmax of the model's logits).

    Example:
        >>> model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)  # doctest: +SKIP
        >>> predict_image(model, np.zeros((10, 20, 3), np.uint8)).shape        # doctest: +SKIP
        (10, 20, 5)
    """
    return predict_images(model, [image])[0]
