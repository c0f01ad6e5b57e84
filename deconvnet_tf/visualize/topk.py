"""Top-k: scan a dataset for a unit's strongest activations, project each, draw the grid.

Zeiler & Fergus (Figure 2) show, for a feature map, its 9 strongest activations over the
validation set, each projected to pixel space beside the image patch under the unit's
receptive field. :func:`top_k` does the scan (a batched forward pass to the chosen layer,
keeping the k best ``(image, position)`` per channel, one per image when there are at least k
images) and then projects only the winners; :func:`visualize` adds the grid and the PNG.
"""

from __future__ import annotations

import heapq
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deconvnet_tf.io import (
    IMAGE_SUFFIXES,
    ImageReadError,
    check_color_target,
    is_project_output,
    normalize_colors,
    read_image,
)
from deconvnet_tf.render import save_png
from deconvnet_tf.visualize.graph import VisualizationError
from deconvnet_tf.visualize.grid import top_k_grid
from deconvnet_tf.visualize.project import Box, Projector

__all__ = [
    "ChannelTopK",
    "ImageSource",
    "TopKItem",
    "VisualizationResult",
    "image_files",
    "top_k",
    "visualize",
]


def image_files(source: str | os.PathLike) -> list[Path]:
    """The image files of a file or folder, as :class:`ImageSource` scans them.

    A folder contributes the images directly in it or, when it has none, every image below it
    (sorted by path); PNGs written by this project (:func:`deconvnet_tf.io.is_project_output`,
    e.g. an earlier grid) are left out.

    Raises:
        VisualizationError: A missing path, or a folder without images.
    """
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise VisualizationError(f"--input {str(path)!r}: no such file or folder")

    def keep(p: Path) -> bool:
        return (p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                and not (p.suffix.lower() == ".png" and is_project_output(p)))

    files = sorted(p for p in path.iterdir() if keep(p))
    if not files:
        files = sorted(p for p in path.rglob("*") if keep(p))
    if not files:
        raise VisualizationError(
            f"--input {str(path)!r}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder"
        )
    return files


@dataclass
class TopKItem:
    """One of a channel's strongest activations.

    Attributes:
        channel: Feature map.
        value: The activation.
        image_index: Index of the image in the scanned source.
        source: File name of the image (or ``"#<index>"`` for arrays and tf.data).
        position: ``(row, col)`` of the unit in the feature map (``()`` for a layer without
            spatial axes).
        box: The unit's receptive field in the image.
        projection: The projection cropped to ``box``, float32 ``(h, w, C)``.
        patch: The image cropped to ``box``, uint8 ``(h, w, C)``.
    """

    channel: int
    value: float
    image_index: int
    source: str
    position: tuple[int, ...]
    box: Box
    projection: np.ndarray
    patch: np.ndarray


@dataclass
class ChannelTopK:
    """The top-k items of one channel (strongest first), its mean activation, images scanned."""

    layer: str
    channel: int
    mean_activation: float
    num_images: int = 0
    items: list[TopKItem] = field(default_factory=list)


@dataclass
class VisualizationResult:
    """What :func:`visualize` did: the grid, the per-channel results, the PNG path."""

    grid: np.ndarray
    channels: list[ChannelTopK]
    path: Path | None
    num_images: int


# ---------------------------------------------------------------------------------- sources
class ImageSource:
    """Images to scan: a file, a folder, an array/list of images, or a ``tf.data.Dataset``.

    A folder contributes the images directly in it, or (when it has none) every image below
    it, sorted by path (so a dataset root in the folder layout works). A dataset yields images
    ``(H, W, C)``, batches ``(B, H, W, C)`` or tuples whose first element is one of those
    (``(image, label)``). Images are RGB in the model's input range (uint8 0..255 here).

    Args:
        source: The images.
        size: ``(H, W)`` to resize every image to (a model with a fixed input size), or ``None``.
        channels: Channels the model expects (1 converts to grey, 3 keeps RGB).
        color_target: ``{"mean": [r, g, b], "std": [r, g, b]}``: each RGB image is first
            brought to these channel statistics at its own size
            (:func:`deconvnet_tf.io.normalize_colors`, what a Segmenter with this
            ``color_target`` feeds its network), or ``None``.

    Raises:
        VisualizationError: A missing path, a folder without images, an unreadable image.
    """

    def __init__(self, source, size: tuple[int, int] | None = None, channels: int = 3,
                 color_target: dict | None = None):
        self.size = size
        self.channels = channels
        try:
            self.color_target = check_color_target(color_target, "color_target")
        except ValueError as err:
            raise VisualizationError(str(err)) from None
        self.paths: list[Path] | None = None
        self.array = None
        self.dataset = None
        if isinstance(source, (str, os.PathLike)):
            self.paths = image_files(source)
        elif isinstance(source, (list, tuple)) and source and all(
                isinstance(s, (str, os.PathLike)) for s in source):
            missing = [str(s) for s in source if not Path(s).is_file()]
            if missing:
                raise VisualizationError(f"image file {missing[0]!r} does not exist")
            self.paths = [Path(s) for s in source]
        elif isinstance(source, np.ndarray) or (
            isinstance(source, (list, tuple)) and all(np.ndim(s) >= 2 for s in source)
        ):
            array = source if isinstance(source, np.ndarray) else list(source)
            if isinstance(array, np.ndarray) and array.ndim == 3:
                array = array[None]
            if len(array) == 0:
                raise VisualizationError("no images given (empty array)")
            self.array = array
        elif hasattr(source, "as_numpy_iterator"):
            self.dataset = source
        else:
            raise VisualizationError(
                "images must be a file or folder path, an array (N, H, W, C), a list of "
                f"(H, W, C) arrays or a tf.data.Dataset; got {type(source).__name__}"
            )

    def __len__(self) -> int:
        if self.paths is not None:
            return len(self.paths)
        if self.array is not None:
            return len(self.array)
        card = int(self.dataset.cardinality()) if hasattr(self.dataset, "cardinality") else -1
        return card if card >= 0 else sum(1 for _ in self._raw())

    def name(self, index: int) -> str:
        return self.paths[index].name if self.paths is not None else f"#{index}"

    def _load(self, path: Path) -> np.ndarray:
        try:
            return read_image(path)
        except ImageReadError as err:
            raise VisualizationError(str(err)) from None

    def _fit(self, image) -> np.ndarray:
        import cv2

        image = np.asarray(image)
        if image.ndim == 2:
            image = image[..., None]
        if image.ndim != 3:
            raise VisualizationError(f"expected an image (H, W, C), got shape {image.shape}")
        if self.color_target is not None and image.shape[-1] == 3:
            try:
                image = normalize_colors(image, self.color_target)
            except ValueError as err:
                raise VisualizationError(str(err)) from None
        if self.channels == 1 and image.shape[-1] == 3:
            image = cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2GRAY)[..., None]
        elif self.channels == 3 and image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)
        if self.size is not None and tuple(image.shape[:2]) != tuple(self.size):
            h, w = self.size
            interp = cv2.INTER_AREA if image.shape[0] > h else cv2.INTER_LINEAR
            resized = cv2.resize(image, (w, h), interpolation=interp)
            image = resized.reshape(h, w, image.shape[-1])
        return np.ascontiguousarray(image)

    def _raw(self) -> Iterator[np.ndarray]:
        if self.paths is not None:
            for p in self.paths:
                yield self._load(p)
        elif self.array is not None:
            yield from self.array
        else:
            for element in self.dataset.as_numpy_iterator():
                if isinstance(element, (tuple, list)):
                    element = element[0]
                elif isinstance(element, dict):
                    element = element.get("image", next(iter(element.values())))
                element = np.asarray(element)
                if element.ndim == 4:
                    yield from element
                else:
                    yield element

    def images(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yields ``(index, image)`` with images fitted to the model (size, channels)."""
        for i, image in enumerate(self._raw()):
            yield i, self._fit(image)

    def batches(self, batch_size: int) -> Iterator[tuple[list[int], np.ndarray]]:
        """Yields ``(indices, batch)`` of consecutive images of equal shape."""
        indices, group = [], []
        for i, image in self.images():
            if group and (len(group) == batch_size or image.shape != group[0].shape):
                yield indices, np.stack(group)
                indices, group = [], []
            indices.append(i)
            group.append(image)
        if group:
            yield indices, np.stack(group)

    def get(self, wanted: Sequence[int]) -> dict[int, np.ndarray]:
        """The fitted images at the given indices."""
        wanted = set(int(w) for w in wanted)
        if self.paths is not None:
            return {i: self._fit(self._load(self.paths[i])) for i in wanted}
        if self.array is not None:
            return {i: self._fit(self.array[i]) for i in wanted}
        out = {}
        for i, image in self.images():
            if i in wanted:
                out[i] = image
            if len(out) == len(wanted):
                break
        return out


# ---------------------------------------------------------------------------------- scanning
def _top_positions(fmap: np.ndarray, m: int) -> list[tuple[float, tuple[int, ...]]]:
    """Up to ``m`` strongest positions of a 2-D map, at least 2 cells apart (greedy)."""
    if m == 1 or fmap.ndim == 0:
        flat = int(np.argmax(fmap))
        pos = tuple(int(p) for p in np.unravel_index(flat, fmap.shape))
        return [(float(fmap[pos]), pos)]
    order = np.argsort(fmap, axis=None)[::-1]
    chosen: list[tuple[float, tuple[int, ...]]] = []
    for flat in order:
        pos = tuple(int(p) for p in np.unravel_index(int(flat), fmap.shape))
        if all(max(abs(a - b) for a, b in zip(pos, q)) >= 2 for _, q in chosen):
            chosen.append((float(fmap[pos]), pos))
            if len(chosen) == m:
                break
    return chosen


def _model_input_size(model) -> tuple[tuple[int, int] | None, int]:
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4:
        raise VisualizationError(f"the model input must be images (batch, H, W, C), got {shape}")
    size = (int(shape[1]), int(shape[2])) if shape[1] is not None and shape[2] is not None else None
    return size, int(shape[3] or 3)


def _channels_to_scan(projector: Projector, layer: str, channel, top_channels) -> list[int]:
    """The channels to keep top-k heaps for: the given one(s), or all for ``top_channels``."""
    if top_channels is not None:
        if not isinstance(top_channels, int) or not 1 <= top_channels <= projector.num_channels:
            raise VisualizationError(
                f"top_channels must be in 1..{projector.num_channels} (the channels of layer "
                f"{layer!r}), got {top_channels!r}"
            )
        return list(range(projector.num_channels))
    channels = [channel] if np.ndim(channel) == 0 else list(channel)
    return [projector.check_channel(c) for c in channels]


def _scan(projector: Projector, source: ImageSource, channels: list[int], *, k: int,
          per_image: int, batch_size: int) -> tuple[dict[int, list], np.ndarray]:
    """The forward pass over the source: ``({channel: heap of its k strongest
    (value, -image index, tie, position)}, mean activation per channel)``."""
    heaps: dict[int, list] = {c: [] for c in channels}
    sums = np.zeros(projector.num_channels, np.float64)
    count = 0
    tie = 0
    for indices, batch in source.batches(batch_size):
        act = projector.activations(batch).astype(np.float32)
        spatial_axes = tuple(range(1, act.ndim - 1))
        sums += act.sum(axis=spatial_axes).sum(axis=0) if spatial_axes else act.sum(axis=0)
        count += act.shape[0] * (int(np.prod(act.shape[1:-1])) if spatial_axes else 1)
        if per_image == 1:
            flat = act.reshape(act.shape[0], -1, act.shape[-1])
            arg = flat.argmax(axis=1)
            best = np.take_along_axis(flat, arg[:, None, :], axis=1)[:, 0, :]
        for b, index in enumerate(indices):
            for c in channels:
                if per_image == 1:
                    pos = tuple(int(p) for p in np.unravel_index(int(arg[b, c]), act.shape[1:-1]))
                    cands = [(float(best[b, c]), pos)]
                else:
                    cands = _top_positions(act[b, ..., c], per_image)
                heap = heaps[c]
                for value, pos in cands:
                    tie += 1
                    entry = (value, -index, tie, pos)
                    if len(heap) < k:
                        heapq.heappush(heap, entry)
                    elif entry > heap[0]:
                        heapq.heapreplace(heap, entry)
    return heaps, sums / max(count, 1)


def _project_winners(projector: Projector, source: ImageSource, results: list[ChannelTopK],
                     heaps: dict[int, list], *, mode: str, ties: str, batch_size: int) -> None:
    """Projects each result's heap entries (batching items of equal image shape) and appends
    them to its ``items``, strongest first."""
    jobs = []
    for r in results:
        for value, neg_index, _, pos in sorted(heaps[r.channel], reverse=True):
            jobs.append((r, value, -neg_index, pos))
    wanted = source.get([j[2] for j in jobs])
    groups: dict[tuple, list] = {}
    for job in jobs:
        groups.setdefault(wanted[job[2]].shape, []).append(job)
    made: dict[int, TopKItem] = {}
    for shape, group in groups.items():
        for start in range(0, len(group), batch_size):
            chunk = group[start:start + batch_size]
            batch = np.stack([wanted[j[2]] for j in chunk])
            proj = projector.project(
                batch, [j[0].channel for j in chunk], mode=mode, ties=ties,
                select=[j[3] for j in chunk] if chunk[0][3] else "max",
            )
            for j, p, image in zip(chunk, proj, batch):
                r, value, index, pos = j
                box = projector.receptive_field(pos, image.shape)
                rows, cols = box.slices()
                made[id(j)] = TopKItem(r.channel, value, index, source.name(index), tuple(pos),
                                       box, p[rows, cols].copy(), image[rows, cols].copy())
    for job in jobs:
        job[0].items.append(made[id(job)])


def top_k(
    model,
    layer: str,
    images,
    *,
    channel: int | Sequence[int] | None = None,
    top_channels: int | None = None,
    k: int = 9,
    mode: str = "deconvnet",
    batch_size: int = 8,
    per_image: int | None = None,
    ties: str = "exact",
    color_target="model",
) -> list[ChannelTopK]:
    """Finds the k strongest activations of units of ``layer`` over ``images`` and projects them.

    Args:
        model: A functional Keras model (see :class:`~deconvnet_tf.visualize.Projector`).
        layer: Layer name.
        images: A file, a folder, an array ``(N, H, W, C)``, a list of images or a
            ``tf.data.Dataset`` (see :class:`ImageSource`). Images are resized when the model
            has a fixed input size.
        channel: One channel or a list of channels.
        top_channels: Instead of ``channel``: the N channels with the strongest mean activation
            over the images (strongest first).
        k: Activations per channel (the paper shows 9).
        mode: ``"deconvnet"``, ``"gradient"`` or ``"guided"``.
        batch_size: Images per forward pass.
        ties: ``"exact"`` (the paper's rule) or ``"skip"`` (a display choice: nothing is
            unpooled into all-zero pooling windows; see docs/visualize.md).
        per_image: At most this many activations from one image (distinct positions at least two
            cells apart). Default: 1 when there are at least k images (the paper), otherwise
            enough to fill k.
        color_target: Colour normalisation of the images, as the model predicts: ``"model"``
            (default) the model's own (a Segmenter's ``color_target``, e.g.
            ``camvid_compact``'s), ``None`` off, or ``{"mean": [r, g, b], "std": [r, g, b]}``.
            The grid's image patches show the normalised images: what the network saw.

    Returns:
        One :class:`ChannelTopK` per channel, items strongest first.

    Raises:
        VisualizationError: Unknown layer, non-invertible layer, channel out of range, neither
            or both of ``channel``/``top_channels``, bad k, no images.
    """
    if (channel is None) == (top_channels is None):
        raise VisualizationError("give exactly one of channel or top_channels")
    if not isinstance(k, int) or k < 1:
        raise VisualizationError(f"k (--top-k) must be a positive integer, got {k!r}")
    if batch_size < 1:
        raise VisualizationError(f"batch_size must be >= 1, got {batch_size}")
    projector = Projector(model, layer)
    size, in_channels = _model_input_size(model)
    if isinstance(color_target, str) and color_target == "model":
        color_target = getattr(model, "color_target", None)
    source = ImageSource(images, size=size, channels=in_channels, color_target=color_target)
    num_images = len(source)
    if num_images == 0:
        raise VisualizationError("no images to scan")
    channels = _channels_to_scan(projector, layer, channel, top_channels)
    if per_image is None:
        per_image = 1 if num_images >= k else math.ceil(k / num_images)
    heaps, means = _scan(projector, source, channels, k=k, per_image=per_image,
                         batch_size=batch_size)
    if top_channels is not None:
        channels = [int(c) for c in np.argsort(-means, kind="stable")[:top_channels]]
    results = [ChannelTopK(layer, c, float(means[c]), num_images) for c in channels]
    _project_winners(projector, source, results, heaps, mode=mode, ties=ties,
                     batch_size=batch_size)
    return results


def visualize(
    model,
    layer: str,
    images,
    output: str | os.PathLike | None = None,
    *,
    channel: int | Sequence[int] | None = None,
    top_channels: int | None = None,
    k: int = 9,
    mode: str = "deconvnet",
    batch_size: int = 8,
    tile: int | None = None,
    overwrite: bool = True,
    ties: str = "exact",
    color_target="model",
) -> VisualizationResult:
    """Top-k scan, projections and the Figure-2-style grid; writes the PNG when ``output`` is set.

    Args:
        model: A functional Keras model.
        layer: Layer name.
        images: File, folder, list of image files, array, list of images or ``tf.data.Dataset``.
        output: PNG path (written atomically, tagged as an output of this project so that
            folder inputs skip it), or ``None``.
        channel: Channel(s) to show (one block each).
        top_channels: Or: the N channels with the strongest mean activation (one row each).
        k: Activations per channel.
        mode: ``"deconvnet"``, ``"gradient"`` or ``"guided"``.
        batch_size: Images per forward pass.
        tile: Tile side in pixels (default from the receptive field size).
        overwrite: Replace an existing ``output``; ``False`` raises
            :class:`~deconvnet_tf.io.OutputError` instead.
        ties: ``"exact"`` or ``"skip"`` (see :func:`top_k`).
        color_target: ``"model"`` (default), ``None`` or a target (see :func:`top_k`).

    Returns:
        A :class:`VisualizationResult`.

    Example:

    >>> model = deconvnet_tf.load_model("run/model.keras")
    >>> result = visualize(model, "block3_conv2_relu", "data/val/images", "grid.png", channel=3)
    >>> result.grid.shape[-1]
    3
    """
    results = top_k(model, layer, images, channel=channel, top_channels=top_channels, k=k,
                    mode=mode, batch_size=batch_size, ties=ties, color_target=color_target)
    grid = top_k_grid(results, tile=tile)
    path = (save_png(output, grid, overwrite=overwrite, mark=True)
            if output is not None else None)
    return VisualizationResult(grid, results, path, results[0].num_images)
