"""Stage-2 training on object proposals (README: ``stage2_proposals=selective_search`` /
``edgeboxes_gradient``): ``train()`` runs end to end, asks ``propose_boxes`` for the method the
setting names, and trains on windows made from exactly the proposals that overlap a
ground-truth object (IoU >= ``stage2_min_iou``), enlarged by ``box_scale``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deconvnet_tf.data import crops
from deconvnet_tf.data.sources import load_record, open_source
from deconvnet_tf.data.crops import object_boxes
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from deconvnet_tf.inference import proposals as proposals_module
from deconvnet_tf.training.config import TrainConfig
from deconvnet_tf.training.train import train
from tests.conftest import requires_tf

pytestmark = requires_tf  # the window pipeline is tf.data

# setting -> the propose_boxes arguments it stands for
METHODS = {"selective_search": dict(method="selective_search"),
           "edgeboxes_gradient": dict(method="edgeboxes", edge="gradient")}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("stage2") / "data", num_train=4,
                                   num_val=1, height=48, width=64, seed=0)


def stage2_config(output: Path, data: Path, proposals: str, **changes) -> TrainConfig:
    base = dict(preset="deconvnet_tiny", output=str(output), data=str(data), input_mode="proposal_windows",
                stage2_proposals=proposals, window_size=48, crop_size=[40, 40], epochs=1,
                steps_per_epoch=1, batch_size=2, optimizer="adam", learning_rate=1e-3,
                val_split="", deterministic=True, mixed_precision=False)
    base.update(changes)
    return TrainConfig(**base)


class Spies:
    """Records the ``propose_boxes`` calls (and what they returned), the windows handed to the
    training pipeline, and the boxes of the crops it warps."""

    def __init__(self, monkeypatch, fake_boxes=None):
        self.calls, self.returned, self.warped = [], [], []
        self.pipelines = []
        real_propose = proposals_module.propose_boxes
        real_pipeline = crops.make_window_pipeline
        real_warp = crops.warp_window

        def propose(image, **kwargs):
            self.calls.append(kwargs)
            boxes = real_propose(image, **kwargs) if fake_boxes is None else fake_boxes(image)
            self.returned.append((np.array(image), np.array(boxes, np.float32)))
            return boxes

        def pipeline(records, windows, **kwargs):
            self.pipelines.append((records, windows, kwargs))
            return real_pipeline(records, windows, **kwargs)

        def warp(image, label, box, size, ignore_label):
            self.warped.append(tuple(float(v) for v in box))
            return real_warp(image, label, box, size, ignore_label)

        # train() imports these at call time; the pipeline calls warp_window by module lookup.
        monkeypatch.setattr(proposals_module, "propose_boxes", propose)
        monkeypatch.setattr(crops, "make_window_pipeline", pipeline)
        monkeypatch.setattr(crops, "warp_window", warp)


def np_iou(box, gt) -> np.ndarray:
    """IoU of one ``(x0, y0, x1, y1)`` box with each row of ``gt`` (exclusive ends)."""
    x0, y0 = np.maximum(box[0], gt[:, 0]), np.maximum(box[1], gt[:, 1])
    x1, y1 = np.minimum(box[2], gt[:, 2]), np.minimum(box[3], gt[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    return inter / (area + (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]) - inter)


def enlarged(box, scale):
    box = [float(v) for v in box]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hw, hh = (box[2] - box[0]) * scale / 2, (box[3] - box[1]) * scale / 2
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def ground_truth(record) -> np.ndarray:
    _, label, inst = load_record(record, instances=True)
    return np.array([o.box for o in object_boxes(label, inst, ignore_label=255, background=0,
                                                  min_pixels=16)], np.float32)


def expected_windows(records, returned, *, min_iou=0.5, scale=1.2):
    """(example index, enlarged box) of every proposal that overlaps an object enough, in
    order; and how many proposals were rejected."""
    by_image = {image.tobytes(): boxes for image, boxes in returned}
    rows, rejected = [], 0
    for index, record in enumerate(records):
        image, _ = load_record(record)
        boxes, gt = by_image[image.tobytes()], ground_truth(record)
        keep = [b for b in boxes if np_iou(b, gt).max() >= min_iou]
        rejected += len(boxes) - len(keep)
        assert keep, f"image {index}: no proposal qualifies (the test needs some that do)"
        rows += [(index, enlarged(b, scale)) for b in keep]
    return rows, rejected


@pytest.mark.parametrize("proposals", list(METHODS))
def test_stage2_trains_on_windows_of_that_proposal_method(data, tmp_path, monkeypatch, proposals):
    spies = Spies(monkeypatch)
    config = stage2_config(tmp_path / "run", data, proposals)
    result = train(config, verbose=0)

    # It ran end to end.
    assert result.model_path == tmp_path / "run" / "model.keras" and result.model_path.is_file()
    assert len(result.history["loss"]) == 1 and np.isfinite(result.history["loss"][0])
    assert TrainConfig.load(tmp_path / "run" / "config.json").stage2_proposals == proposals

    # propose_boxes was asked, once per training image, for that method's top 50, not enlarged
    # (the windows are enlarged after the IoU test), cached in <output>/proposals.
    (records, windows, kwargs), = spies.pipelines
    assert kwargs["stage"] == "stage2" and kwargs["window_size"] == 48
    assert len(spies.calls) == len(records) == 4
    for call in spies.calls:
        assert {key: call.get(key) for key in METHODS[proposals]} == METHODS[proposals], call
        assert (call["top_k"], call["enlarge"]) == (50, 1.0), call
        assert call["cache_dir"] == str(tmp_path / "run" / "proposals"), call
    assert len(list((tmp_path / "run" / "proposals").glob("*.npy"))) == 4

    # The training windows are exactly the qualifying proposals, enlarged by box_scale ...
    rows, rejected = expected_windows(records, spies.returned)
    assert rejected > 0  # the IoU test had something to reject
    np.testing.assert_array_equal(windows.index, [i for i, _ in rows])
    np.testing.assert_allclose(windows.boxes, [b for _, b in rows], rtol=0, atol=1e-4)
    # ... and the crops the pipeline trained on were warped from those windows (all of them:
    # the shuffle buffer holds every window before the first batch).
    assert set(spies.warped) == {tuple(float(v) for v in b) for b in windows.boxes}


def test_stage2_windows_are_the_proposals_boxes(data, tmp_path, monkeypatch):
    """With proposals of known boxes: per image one that hugs the first object (IoU 0.8 with
    it: kept), one in a corner (rejected), and one that matches with IoU 0.6 (rejected at
    stage2_min_iou 0.7). The windows are the kept boxes enlarged by box_scale 1.5, and every
    warped crop is one of them: not a ground-truth box, not a jittered one."""
    designed = {}

    def fake_boxes(image):
        gt = designed[image.tobytes()]
        x0, y0, x1, y1 = gt[0]
        w = x1 - x0
        hug = (x0, y0, x0 + 0.8 * w, y1)      # IoU 0.8 with the object
        corner = (0.0, 0.0, 3.0, 3.0)         # objects have >= 16 pixels: IoU <= 9/16
        loose = (x0, y0, x0 + 0.6 * w, y1)    # IoU 0.6
        return np.array([hug, corner, loose], np.float32)

    records = open_source(data).records("train")
    for record in records:
        image, _ = load_record(record)
        designed[image.tobytes()] = ground_truth(record)
    spies = Spies(monkeypatch, fake_boxes)
    config = stage2_config(tmp_path / "run", data, "selective_search", stage2_min_iou=0.7,
                           box_scale=1.5)
    train(config, verbose=0)

    assert [c["method"] for c in spies.calls] == ["selective_search"] * 4
    (_, windows, _), = spies.pipelines
    expected = []
    for index, record in enumerate(records):
        x0, y0, x1, y1 = ground_truth(record)[0]
        expected.append((index, enlarged((x0, y0, x0 + 0.8 * (x1 - x0), y1), 1.5)))
    np.testing.assert_array_equal(windows.index, [i for i, _ in expected])
    np.testing.assert_allclose(windows.boxes, [b for _, b in expected], rtol=0, atol=1e-4)
    assert set(spies.warped) == {tuple(float(v) for v in b) for b in windows.boxes}
