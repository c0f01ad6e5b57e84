"""Fully connected CRF post-processing (Krähenbühl & Koltun 2011) with ``pydensecrf``.

Unary energy ``-log p`` of the network's class probabilities; pairwise terms: a Gaussian
(smoothness) kernel on positions and a bilateral (appearance) kernel on positions and RGB.

Presets (all values overridable per call):

======== ============ ============== ============== =============== ================ ==========
preset   gaussian_sxy gaussian_compat bilateral_sxy  bilateral_srgb  bilateral_compat iterations
======== ============ ============== ============== =============== ================ ==========
deconvnet 3           3              20             3               5                10
deeplab   3           3              121            5               4                10
======== ============ ============== ============== =============== ================ ==========

``deconvnet``: the settings DeconvNet's CRF post-processing uses. ``deeplab``: DeepLab-LargeFOV's
(Chen et al. 2015) PASCAL VOC settings (``pos_w 3, pos_xy_std 3, bi_w 4, bi_xy_std 121,
bi_rgb_std 5``).

Install: ``pip install pydensecrf2`` (import name ``pydensecrf``). The original ``pydensecrf``
1.0rc3 on PyPI does not build on Python 3.11.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from deconvnet_tf.io import ImageReadError, list_images, output_folder, read_image
from deconvnet_tf.render import colorize, plan_predictions, save_prediction, side_by_side

__all__ = [
    "CRF_PRESETS",
    "CRFSettings",
    "crf_comparison",
    "crf_settings",
    "dense_crf",
    "refine_files",
]

_INSTALL_HINT = ("pip install pydensecrf2  (or: pip install 'deconvnet-tf[crf]'); the original "
                 "pydensecrf 1.0rc3 on PyPI does not build on Python >= 3.11")


@dataclass(frozen=True)
class CRFSettings:
    """Dense-CRF parameters.

    Attributes:
        gaussian_sxy: Spatial standard deviation of the smoothness kernel (pixels).
        gaussian_compat: Weight of the smoothness kernel (Potts compatibility).
        bilateral_sxy: Spatial standard deviation of the appearance kernel (pixels).
        bilateral_srgb: Colour standard deviation of the appearance kernel (0..255 units).
        bilateral_compat: Weight of the appearance kernel.
        iterations: Mean-field iterations.
    """

    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 20.0
    bilateral_srgb: float = 3.0
    bilateral_compat: float = 5.0
    iterations: int = 10


CRF_PRESETS: dict[str, CRFSettings] = {
    "deconvnet": CRFSettings(),
    "deeplab": CRFSettings(gaussian_sxy=3, gaussian_compat=3, bilateral_sxy=121,
                           bilateral_srgb=5, bilateral_compat=4, iterations=10),
}


def crf_settings(preset: str = "deconvnet", **overrides) -> CRFSettings:
    """Settings of a preset with some values replaced.

    Raises:
        ValueError: Unknown preset, unknown setting name, or a value out of range.
    """
    if preset not in CRF_PRESETS:
        raise ValueError(f"Unknown CRF preset {preset!r}; available: {', '.join(CRF_PRESETS)}")
    known = set(asdict(CRF_PRESETS[preset]))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"Unknown CRF setting(s) {unknown}; known: {sorted(known)}")
    settings = replace(CRF_PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})
    for name, value in asdict(settings).items():
        if name == "iterations":
            if int(value) != value or value < 1:
                raise ValueError(f"CRF iterations must be an integer >= 1, got {value}")
        elif (not value > 0 and not (name.endswith("compat") and value == 0)) or not (
                value < float("inf")):
            raise ValueError(f"CRF setting {name} must be > 0 and finite (compat >= 0), "
                             f"got {value}")
    return settings


def _import_densecrf():
    try:
        import pydensecrf.densecrf as densecrf
    except ImportError as err:
        raise ImportError(f"Dense-CRF post-processing needs pydensecrf: {_INSTALL_HINT} "
                          f"({err})") from err
    return densecrf


def _check_inputs(image, probabilities, what: str):
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{what}: the image must be RGB (H, W, 3), got shape {image.shape}")
    probs = np.asarray(probabilities)
    if probs.ndim != 3:
        raise ValueError(f"{what}: probabilities must be (H, W, C), got shape {probs.shape}")
    height, width = image.shape[:2]
    if probs.shape[:2] != (height, width):
        if probs.shape[1:] == (height, width):
            raise ValueError(f"{what}: probabilities {probs.shape} have the class axis first; "
                             f"expected (H, W, C) = ({height}, {width}, C) with classes last "
                             "(np.moveaxis(p, 0, -1))")
        raise ValueError(f"{what}: probabilities of size {probs.shape[0]}x{probs.shape[1]} do "
                         f"not match the image's {height}x{width}")
    if probs.shape[-1] < 2:
        raise ValueError(f"{what}: need at least 2 classes, got probabilities {probs.shape}")
    probs = probs.astype(np.float32)
    if not np.all(np.isfinite(probs)):
        raise ValueError(f"{what}: probabilities contain NaN or infinite values")
    if probs.min() < -1e-4 or probs.max() > 1 + 1e-3:
        raise ValueError(f"{what}: probabilities must lie in [0, 1] (got values in "
                         f"[{probs.min():.3g}, {probs.max():.3g}]); pass softmax outputs, "
                         "not logits")
    sums = probs.sum(-1)
    worst = float(np.abs(sums - 1).max())
    if worst > 1e-2:
        raise ValueError(f"{what}: probabilities must sum to 1 over the class axis (last axis), "
                         f"but sums deviate by up to {worst:.3g}; is the class axis last?")
    if image.dtype != np.uint8:
        if image.min() < 0 or image.max() > 255:
            raise ValueError(f"{what}: image values must be in 0..255")
        image = np.round(image).astype(np.uint8)
    return np.ascontiguousarray(image), probs


def dense_crf(
    image: np.ndarray,
    probabilities: np.ndarray,
    *,
    preset: str = "deconvnet",
    **overrides,
) -> np.ndarray:
    """Refines class probabilities with a fully connected CRF.

    Args:
        image: RGB image ``(H, W, 3)`` uint8 the probabilities belong to.
        probabilities: ``(H, W, C)`` class probabilities (sum to 1 over the last axis).
        preset: ``"deconvnet"`` (default) or ``"deeplab"`` (see the module docstring).
        **overrides: Any :class:`CRFSettings` field, e.g. ``iterations=5``.

    Returns:
        ``(H, W, C)`` float32 refined probabilities (the CRF's marginals).

    Raises:
        ValueError: Mismatched sizes, class axis not last, values not probabilities, bad settings.
        ImportError: ``pydensecrf`` is not installed (the message says how to install it).

    Example:
        >>> refined = dense_crf(image, probs)                      # doctest: +SKIP
        >>> label = refined.argmax(-1)                             # doctest: +SKIP
    """
    settings = crf_settings(preset, **overrides)
    image, probs = _check_inputs(image, probabilities, "dense_crf")
    densecrf = _import_densecrf()
    height, width, classes = probs.shape
    unary = -np.log(np.clip(probs, 1e-8, 1.0))
    unary = np.ascontiguousarray(unary.reshape(-1, classes).T, np.float32)
    crf = densecrf.DenseCRF2D(width, height, classes)
    crf.setUnaryEnergy(unary)
    crf.addPairwiseGaussian(sxy=settings.gaussian_sxy, compat=settings.gaussian_compat)
    crf.addPairwiseBilateral(sxy=settings.bilateral_sxy, srgb=settings.bilateral_srgb,
                             rgbim=image, compat=settings.bilateral_compat)
    q = np.asarray(crf.inference(int(settings.iterations)), np.float32)
    return np.ascontiguousarray(q.reshape(classes, height, width).transpose(1, 2, 0))


def crf_comparison(
    image: np.ndarray,
    probabilities: np.ndarray,
    *,
    label: np.ndarray | None = None,
    preset: str = "deconvnet",
    palette: np.ndarray | None = None,
    **overrides,
) -> tuple[np.ndarray, np.ndarray]:
    """Runs :func:`dense_crf` and draws a before/after picture.

    Args:
        image: RGB image ``(H, W, 3)`` uint8.
        probabilities: ``(H, W, C)`` network probabilities.
        label: Optional ground truth ``(H, W)``, drawn after the image.
        preset, **overrides: CRF settings.
        palette: Class colours (default: the VOC palette).

    Returns:
        ``(refined probabilities, picture)``: the picture is image | [ground truth |] network |
        network + CRF, side by side (uint8 RGB).
    """
    refined = dense_crf(image, probabilities, preset=preset, **overrides)
    parts = [np.asarray(image, np.uint8)]
    if label is not None:
        parts.append(colorize(np.asarray(label), palette))
    parts += [colorize(np.asarray(probabilities).argmax(-1), palette),
              colorize(refined.argmax(-1), palette)]
    return refined, side_by_side(*parts)

# ------------------------------------------------------------------ the file loop (predict, crf)
_INFERENCE_DIR = os.path.dirname(os.path.abspath(__file__))


def _warn_outside(message: str) -> None:
    """``warnings.warn(message)`` attributed to the first caller outside ``deconvnet_tf.inference``
    (the code that called :func:`refine_files` or ``predict_files``), however deep in the file
    loop the warning is raised."""
    import sys
    import warnings

    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.dirname(
            os.path.abspath(frame.f_code.co_filename)) == _INFERENCE_DIR:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, stacklevel=level)


class _Progress:
    """Counts the images done (written or skipped), on a Keras progress bar when ``show``."""

    def __init__(self, total: int, show: bool):
        self.done = 0
        self.bar = None
        if show:
            import keras

            self.bar = keras.utils.Progbar(total, unit_name="image")

    def tick(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.done)


def _each_file(items, work, finish, errors, *, skip_errors: bool,
               skip: Callable[[Path, str], None], counter: _Progress,
               before_raise: Callable[[], None] | None = None) -> None:
    """The file loop of ``deconvnet-predict`` and ``deconvnet-crf``: ``finish(item, work(item))``
    for each ``(path, ...)`` item. An error of a type in ``errors`` raised by ``work`` is
    re-raised (after ``before_raise()``), or with ``skip_errors`` reported as
    ``skip(path, message)`` and counted as done; ``finish`` counts the others."""
    for item in items:
        try:
            result = work(item)
        except errors as err:
            if not skip_errors:
                if before_raise is not None:
                    before_raise()
                raise
            skip(item[0], str(err))
            counter.tick()
        else:
            finish(item, result)


# ------------------------------------------------------------------------------- refine_files
def _probability_file(probs: Path, stem: str) -> Path | None:
    for name in (f"{stem}_probs.npy", f"{stem}.npy"):
        if (probs / name).is_file():
            return probs / name
    return None


def _pair_inputs(image: Path, probs: Path, *, skip_errors: bool):
    """``(images, [(image, probability file or None)], {image: message})``: the images and the
    probability file of each; with ``skip_errors`` an image without one is kept with its error
    message instead of raising."""
    if not probs.exists():
        raise FileNotFoundError(f"Probabilities not found: {str(probs)!r}")
    images = list_images(image)
    missing: dict[Path, str] = {}
    if probs.is_dir():
        pairs = []
        for path in images:
            found = _probability_file(probs, path.stem)
            if found is None:
                message = (f"No probabilities for image {str(path)!r}: expected "
                           f"{str(probs / (path.stem + '_probs.npy'))!r} or "
                           f"{str(probs / (path.stem + '.npy'))!r}")
                if not skip_errors:
                    raise FileNotFoundError(message)
                missing[path] = message
            pairs.append((path, found))
    else:
        if len(images) != 1:
            raise ValueError(f"--probs {str(probs)!r} is one file but --image {str(image)!r} "
                             f"holds {len(images)} images; pass a folder of .npy files")
        pairs = [(images[0], probs)]
    return images, pairs, missing


def _load_probabilities(path: Path) -> np.ndarray:
    """A saved ``.npy`` array; ValueError naming the file when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            if handle.read(6) != b"\x93NUMPY":
                raise ValueError("not a NumPy .npy file")
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        detail = next((line.strip() for line in str(err).splitlines() if line.strip()),
                      type(err).__name__)
        raise ValueError(f"Cannot read probabilities {str(path)!r}: {detail}") from err


def _refine_one(image_path: Path, probs_path: Path | None, missing: str | None, *, preset: str,
                settings: CRFSettings) -> tuple[np.ndarray, np.ndarray]:
    """``(image, refined probabilities)`` of one image (``missing``: why it has no probability
    file); errors name the files."""
    if missing is not None:
        raise FileNotFoundError(missing)
    p = _load_probabilities(probs_path)
    photo = read_image(image_path)
    what = f"{probs_path.name} for {image_path.name}"
    try:
        refined = dense_crf(photo, p, preset=preset, **asdict(settings))
    except ValueError as err:
        raise ValueError(str(err).replace("dense_crf", what, 1)) from err
    return photo, refined


def refine_files(
    image: str | os.PathLike,
    probs: str | os.PathLike,
    output: str | os.PathLike,
    *,
    preset: str = "deconvnet",
    save_probs: bool = False,
    progress: bool = False,
    overwrite: bool = False,
    skip_errors: bool = False,
    on_skip: Callable[[Path, str], None] | None = None,
    **overrides,
) -> list[dict[str, Path]]:
    """Applies :func:`dense_crf` to saved probabilities (the library behind ``deconvnet-crf``).

    Everything that can be checked without doing the work is checked first: the settings, the
    inputs, the probability file of every image, and the outputs (an output that would replace
    an input image or probability file is an error; one that exists needs ``overwrite``).

    Args:
        image: An image file or a folder of images (folders skip this project's outputs).
        probs: A ``.npy`` file ``(H, W, C)`` (with an image file), or a folder holding
            ``<stem>_probs.npy`` (what ``deconvnet-predict --save-probs`` writes) or
            ``<stem>.npy`` for every image of the image folder.
        output: Output folder: ``<stem>_labels.png``, ``<stem>_color.png``,
            ``<stem>_overlay.png`` (and ``<stem>_probs.npy`` with ``save_probs``), via
            :func:`deconvnet_tf.render.save_prediction`, each image's as soon as it is done.
        preset, **overrides: CRF settings.
        save_probs: Also write the refined probabilities (float16).
        progress: Show a progress bar.
        overwrite: Replace the outputs of an earlier run.
        skip_errors: Report an image whose image or probability file is missing, unreadable
            or mismatched (``on_skip``) and go on instead of raising.
        on_skip: ``on_skip(path, message)`` per skipped image (default: a warning).

    Returns:
        The paths written, one dict per image that was not skipped.

    Raises:
        FileNotFoundError: Missing inputs. ValueError: mismatched or bad inputs (naming the
        files). deconvnet_tf.io.OutputError: outputs exist or cannot be written.
    """
    skip = on_skip or (lambda path, message: _warn_outside(f"skipped {str(path)!r}: {message}"))
    settings = crf_settings(preset, **overrides)  # fail on bad settings before any work
    _import_densecrf()
    images, pairs, missing = _pair_inputs(Path(image), Path(probs), skip_errors=skip_errors)
    plan_predictions(images, output, probabilities=save_probs, overwrite=overwrite,
                     other_inputs=[found for _, found in pairs if found is not None])
    with output_folder(output):  # removed again if nothing is written
        counter = _Progress(len(pairs), progress)
        written = []

        def refine(pair):
            return _refine_one(*pair, missing.get(pair[0]), preset=preset, settings=settings)

        def write(pair, result):
            photo, refined = result
            written.append(save_prediction(output, pair[0].stem, photo, refined.argmax(-1),
                                           refined if save_probs else None, overwrite=overwrite))
            counter.tick()

        _each_file(pairs, refine, write, (FileNotFoundError, ImageReadError, ValueError),
                   skip_errors=skip_errors, skip=skip, counter=counter)
        return written
