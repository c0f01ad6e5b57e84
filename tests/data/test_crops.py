"""Stage-1/stage-2 object crops: boxes, IoU, warping with padding, labels, the pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from deconvnet_tf.data.crops import (
    box_iou,
    enlarge_box,
    jitter_boxes,
    make_window_pipeline,
    object_boxes,
    stage1_windows,
    stage2_windows,
    warp_window,
    window_example,
)
from deconvnet_tf.data.sources import open_source
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from tests.conftest import requires_tf

pytestmark = requires_tf


def two_objects():
    label = np.zeros((20, 30), np.uint8)
    label[2:6, 3:9] = 1      # object A (class 1)
    label[10:18, 12:20] = 2  # object B (class 2)
    label[12:14, 22:26] = 1  # object C (class 1, a second component)
    label[0, :] = 255        # void row
    return label


def test_object_boxes_from_components_and_instances():
    label = two_objects()
    objs = object_boxes(label, None, min_pixels=4)
    assert [(o.class_id, o.box) for o in objs] == [
        (1, (3.0, 2.0, 9.0, 6.0)), (1, (22.0, 12.0, 26.0, 14.0)), (2, (12.0, 10.0, 20.0, 18.0))]
    assert len(object_boxes(label, None, min_pixels=10)) == 2  # C has 8 pixels
    inst = np.zeros_like(label, np.int32)
    inst[2:6, 3:9] = 5
    inst[10:18, 12:20] = 7
    objs = object_boxes(label, inst, min_pixels=4)
    assert [(o.class_id, o.object_id, o.kind) for o in objs] == [(1, 5, 0), (2, 7, 0)]


def test_box_geometry():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0]])
    assert enlarge_box((10, 10, 20, 30), 1.2) == pytest.approx((9, 8, 21, 32))
    jit = jitter_boxes(a, np.random.default_rng(0), per_box=50, shift=0.1, scale=(0.9, 1.1))
    assert jit.shape == (50, 4) and box_iou(jit, a).min() > 0.5


def test_warp_pads_image_with_zero_and_label_with_ignore():
    rng = np.random.default_rng(0)
    image = rng.integers(1, 255, size=(8, 8, 3), dtype=np.uint8)
    label = rng.integers(0, 3, size=(8, 8), dtype=np.uint8)
    same_image, same_label = warp_window(image, label, (0, 0, 8, 8), 8, 255)
    np.testing.assert_array_equal(same_image, image)  # identity warp
    np.testing.assert_array_equal(same_label, label)
    # A box twice the image, centred: the image fills the middle, the border is padding.
    out_image, out_label = warp_window(image, label, (-4, -4, 12, 12), 16, 255)
    np.testing.assert_array_equal(out_label[4:12, 4:12], label)
    np.testing.assert_array_equal(out_image[4:12, 4:12], image)
    assert (out_label[:4] == 255).all() and (out_image[:4] == 0).all()
    assert (out_label[:, 12:] == 255).all()
    # Labels are resampled nearest-neighbour: no new values when upscaling.
    _, big = warp_window(image, label, (1, 1, 6, 7), 50, 255)
    assert set(np.unique(big)) <= set(np.unique(label))


@pytest.fixture
def shapes(tmp_path):
    return write_synthetic_dataset(tmp_path / "ds", num_train=4, num_val=1, height=48, width=64)


def test_stage1_labels_only_the_centred_object(shapes):
    records = open_source(shapes).records("train")
    windows = stage1_windows(records, ignore_label=255, box_scale=1.2)
    assert len(windows) >= 4 and (windows.kind == 0).all()  # instance masks of the folder
    for i in range(len(windows)):
        image, label = window_example(records, windows, i, stage="stage1", size=40, ignore_label=255)
        assert image.shape == (40, 40, 3) and label.shape == (40, 40)
        assert set(np.unique(label)) <= {0, int(windows.class_id[i]), 255}
        # The object's box fills the window but for a 1/12 margin on each side (1.2x box).
        ys, xs = np.nonzero(label == windows.class_id[i])
        assert ys.min() >= 2 and xs.min() >= 2 and ys.max() <= 37 and xs.max() <= 37
        assert ys.max() - ys.min() >= 28 and xs.max() - xs.min() >= 28


def test_stage2_windows_overlap_ground_truth(shapes):
    records = open_source(shapes).records("train")
    windows = stage2_windows(records, ignore_label=255, box_scale=1.0, per_object=6, seed=1)
    again = stage2_windows(records, ignore_label=255, box_scale=1.0, per_object=6, seed=1)
    np.testing.assert_array_equal(windows.boxes, again.boxes)  # deterministic
    from deconvnet_tf.data.sources import load_record

    for i in range(len(windows)):
        _, label, inst = load_record(records[windows.index[i]], instances=True)
        gt = np.array([o.box for o in object_boxes(label, inst)])
        assert box_iou(windows.boxes[i][None], gt).max() >= 0.5
    # Proposals from a function: boxes below IoU 0.5 are dropped, none left -> GT boxes.
    seen = []

    def boxes_fn(image):
        seen.append(image.shape)
        return np.array([[0, 0, 2, 2], [0, 0, 64, 48]], np.float32)

    w2 = stage2_windows(records, boxes_fn=boxes_fn, box_scale=1.0)
    assert seen == [(48, 64, 3)] * 4 and len(w2) >= 4
    assert not any(np.array_equal(b, [0, 0, 2, 2]) for b in w2.boxes)
    _, label = window_example(records, w2, 0, stage="stage2", size=32, ignore_label=255)
    assert label.shape == (32, 32)


def test_window_pipeline_shapes_and_determinism(shapes):
    records = open_source(shapes).records("train")
    windows = stage1_windows(records, ignore_label=255)

    def first_batches(seed):
        ds = make_window_pipeline(records, windows, stage="stage1", batch_size=3, crop_size=(32, 32),
                                  window_size=40, ignore_label=255, deterministic=True, seed=seed)
        it = iter(ds)
        return [next(it) for _ in range(2)]

    a, b = first_batches(0), first_batches(0)
    assert a[0][0].shape == (3, 32, 32, 3) and a[0][1].dtype.name == "int32"
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x[0].numpy(), y[0].numpy())
    val = list(make_window_pipeline(records, windows, stage="stage2", batch_size=2, crop_size=(32, 32),
                                    window_size=40, training=False, ignore_label=255))
    assert sum(int(x[0].shape[0]) for x in val) == len(windows)
    with pytest.raises(ValueError, match="larger than window_size"):
        make_window_pipeline(records, windows, stage="stage1", crop_size=(64, 64), window_size=40)
    with pytest.raises(ValueError, match="stage must be one of"):
        make_window_pipeline(records, windows, stage="stage3")
