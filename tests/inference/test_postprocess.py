"""The largest-region post-processing (``keep_largest_component``; a Segmenter's
``largest_component``; ``deconvnet-predict --no-largest-component``; ``paper_table
--largest-component``) against a pure-Python reference."""

from __future__ import annotations

import json
from collections import deque

import keras
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf import Segmenter
from deconvnet_tf.inference.pipeline import InferenceOptions, infer
from deconvnet_tf.inference.postprocess import check_component_classes, keep_largest_component
from tests.conftest import requires_tf


def _regions(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """8-connected regions of ``mask`` in row-major order of their first pixel (BFS)."""
    seen = np.zeros_like(mask, bool)
    regions = []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        seen[start] = True
        queue, region = deque([start]), []
        while queue:
            y, x = queue.popleft()
            region.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    v, u = y + dy, x + dx
                    if (0 <= v < mask.shape[0] and 0 <= u < mask.shape[1] and mask[v, u]
                            and not seen[v, u]):
                        seen[v, u] = True
                        queue.append((v, u))
        regions.append(region)
    return regions


def _reference(probs: np.ndarray, classes) -> np.ndarray:
    out = np.array(probs, np.float64)
    for cls in sorted(classes):
        regions = _regions(out.argmax(-1) == cls)
        if len(regions) < 2:
            continue
        largest = max(range(len(regions)), key=lambda i: (len(regions[i]), -i))
        for i, region in enumerate(regions):
            if i == largest:
                continue
            for y, x in region:
                out[y, x, cls] = 0.0
                total = out[y, x].sum()
                if total > 0:
                    out[y, x] /= total
                else:
                    out[y, x] = 1.0 / (out.shape[-1] - 1)
                    out[y, x, cls] = 0.0
    return out


def _blobby(seed: int, shape=(17, 23), classes: int = 3) -> np.ndarray:
    """Smooth random probabilities: several regions of every class."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(shape[0] // 3 + 2, shape[1] // 3 + 2, classes))
    logits = np.kron(logits, np.ones((3, 3, 1)))[: shape[0], : shape[1]]
    logits += 0.3 * rng.normal(size=logits.shape)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("classes", [[1], [0, 2], [0, 1, 2]])
def test_matches_the_reference(seed, classes):
    probs = _blobby(seed)
    before = probs.copy()
    got = keep_largest_component(probs, classes)
    np.testing.assert_array_equal(probs, before)  # the input is not changed
    want = _reference(probs, classes)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    labels = got.argmax(-1)
    for cls in classes[-1:]:  # the last class processed is left with at most one region
        assert len(_regions(labels == cls)) <= 1


def test_a_dropped_pixel_takes_its_next_class_and_nothing_left_is_uniform():
    probs = np.zeros((3, 5, 3), np.float32)
    probs[..., 0] = 1.0
    probs[0, 0:2] = [0.1, 0.6, 0.3]         # region of class 1, size 2 (kept)
    probs[2, 4] = [0.0, 1.0, 0.0]           # region of class 1, size 1: nothing else left
    probs[2, 0] = [0.2, 0.5, 0.3]           # region of class 1, size 1: next class is 2
    got = keep_largest_component(probs, [1])
    np.testing.assert_allclose(got[0, 0], [0.1, 0.6, 0.3])
    np.testing.assert_allclose(got[2, 4], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(got[2, 0], [0.4, 0.0, 0.6], atol=1e-6)
    assert got.argmax(-1)[2, 0] == 2


def test_equal_regions_keep_the_first_in_row_major_order():
    probs = np.zeros((3, 3, 2), np.float32)
    probs[..., 0] = 1.0
    probs[0, 2] = probs[2, 0] = [0.0, 1.0]
    assert keep_largest_component(probs, [1]).argmax(-1).tolist() == [[0, 0, 1], [0, 0, 0],
                                                                      [0, 0, 0]]


@pytest.mark.parametrize("shape", [(1, 1, 2), (1, 7, 2), (9, 1, 3)])
def test_one_region_no_region_and_thin_images_are_unchanged(shape):
    probs = np.zeros(shape, np.float32)
    probs[..., 0] = 1.0
    np.testing.assert_array_equal(keep_largest_component(probs, [1]), probs)
    probs[..., :] = 1.0 / shape[-1]
    np.testing.assert_array_equal(keep_largest_component(probs, [0]), probs)
    np.testing.assert_array_equal(keep_largest_component(probs, []), probs)


@pytest.mark.parametrize("probs, classes, match", [
    (np.zeros((4, 4)), [1], "expected \\(H, W, C\\)"),
    (np.zeros((0, 4, 2)), [1], "expected \\(H, W, C\\)"),
    (np.full((2, 2, 2), np.nan), [1], "finite"),
    (np.full((2, 2, 2), np.inf), [1], "finite"),
    (np.full((2, 2, 2), -0.5), [1], ">= 0"),
    (np.full((2, 2, 2), 0.5), [2], "class index 2 outside 0..1"),
    (np.full((2, 2, 2), 0.5), [-1], "class index -1"),
    (np.full((2, 2, 2), 0.5), [1, 1], "repeated"),
    (np.full((2, 2, 2), 0.5), [True], "integers"),
    (np.full((2, 2, 2), 0.5), "1", "list of class indices"),
])
def test_bad_input_is_a_clear_error(probs, classes, match):
    with pytest.raises(ValueError, match=match):
        keep_largest_component(probs, classes)


def test_check_component_classes_names_the_argument():
    assert check_component_classes([2, 0]) == (0, 2)
    assert check_component_classes(None) == ()
    with pytest.raises(ValueError, match="InferenceOptions.largest_component"):
        InferenceOptions(largest_component=[1.5]).validate()


@pytest.fixture(scope="module")
def segmenter():
    keras.utils.set_random_seed(3)
    network = deconvnet_tf.build_model("deconvnet_tiny", num_classes=2)
    return Segmenter(network, image_size=None, class_names=["background", "horse"],
                     largest_component=["horse"])


def test_the_segmenter_setting_round_trips_and_is_checked(segmenter, tmp_path):
    segmenter.save(tmp_path / "seg.keras")
    loaded = keras.saving.load_model(tmp_path / "seg.keras")
    assert loaded.largest_component == ("horse",)
    assert loaded.predictor().largest_component == (1,)
    assert loaded.with_options(largest_component=[]).predictor().largest_component == ()
    for bad in (["zebra"], "horse", ["horse", "horse"], [1]):
        with pytest.raises(ValueError, match="largest_component"):
            segmenter.with_options(largest_component=bad)
    assert segmenter.with_options(largest_component=None).largest_component == ()


def _image(seed=0, shape=(37, 45, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@requires_tf
def test_infer_applies_it_after_everything_else(segmenter):
    image = _image()
    plain = infer(segmenter.predictor(), image)
    got = infer(segmenter.predictor(), image, InferenceOptions(largest_component=(1,)))
    np.testing.assert_allclose(got, keep_largest_component(plain, [1]), atol=1e-6)
    timings: dict = {}
    infer(segmenter.predictor(), image, InferenceOptions(largest_component=(1,)),
          timings=timings)
    assert "largest_component" in timings


@requires_tf
def test_deconvnet_predict_applies_the_models_setting_unless_told_not_to(segmenter, tmp_path,
                                                                        capsys):
    from PIL import Image

    from deconvnet_tf.cli import predict as predict_cli

    segmenter.with_options(largest_component=["background"]).save(tmp_path / "seg.keras")
    image = _image(1)
    Image.fromarray(image).save(tmp_path / "photo.png")
    plain = infer(segmenter.predictor(), image)
    assert len(_regions(plain.argmax(-1) == 0)) > 1  # the random network leaves several
    for flags, want in (((), keep_largest_component(plain, [0])),
                        (("--no-largest-component",), plain)):
        out = tmp_path / f"out{len(flags)}"
        assert predict_cli.main(["--model", str(tmp_path / "seg.keras"), "--input",
                                 str(tmp_path / "photo.png"), "--output", str(out),
                                 "--quiet", *flags]) == 0
        labels = np.asarray(Image.open(out / "photo_labels.png"))
        np.testing.assert_array_equal(labels, want.argmax(-1))
        announced = "largest connected region only for background" in capsys.readouterr().err
        assert announced == (not flags)


@requires_tf
def test_paper_table_scores_the_post_processed_outputs(segmenter, tmp_path, capsys):
    import paper_table  # tools/ (pytest's pythonpath)

    from deconvnet_tf.data.sources import open_source
    from deconvnet_tf.data.synthetic import write_synthetic_dataset
    from deconvnet_tf.evaluation.metrics import report_from_confusion

    root = tmp_path / "data"
    write_synthetic_dataset(root, num_train=1, num_val=3, height=40, width=48, seed=2)
    source = open_source(root)
    names = list(source.info.class_names)
    keras.utils.set_random_seed(5)
    network = deconvnet_tf.build_model("deconvnet_tiny", num_classes=len(names))
    Segmenter(network, image_size=None, class_names=names).save(tmp_path / "m.keras")
    out = tmp_path / "table.json"
    assert paper_table.main(["--deconvnet", str(tmp_path / "m.keras"), "--data", str(root),
                             "--split", "val", "--methods", "deconvnet_whole", "--quiet",
                             "--largest-component", names[0], "--output", str(out)]) == 0
    row = json.loads(out.read_text())
    model = keras.saving.load_model(tmp_path / "m.keras")
    confusion = np.zeros((len(names), len(names)), np.int64)
    changed = 0
    for image, label in source.numpy_examples("val"):
        probs = model.predict_proba(image)
        pred = keep_largest_component(probs, [0]).argmax(-1)
        changed += int(np.sum(pred != probs.argmax(-1)))
        keep = label != source.info.ignore_label if source.info.ignore_label is not None else (
            np.ones_like(label, bool))
        confusion += np.bincount(label[keep].astype(int) * len(names) + pred[keep],
                                 minlength=len(names) ** 2).reshape(len(names), len(names))
    want = report_from_confusion(confusion, names)
    assert changed > 0  # the post-processing changed some labels
    assert row["settings"]["largest_component"] == [0]
    assert row["methods"]["deconvnet_whole"]["mean_iou"] == pytest.approx(want.mean_iou,
                                                                            abs=1e-6)
    assert paper_table.main(["--deconvnet", str(tmp_path / "m.keras"), "--data", str(root),
                             "--split", "val", "--methods", "deconvnet_whole", "--quiet",
                             "--largest-component", "zebra"]) == 2
    assert "--largest-component zebra: not a class of" in capsys.readouterr().err


@requires_tf
def test_paper_table_color_target_scores_with_that_splits_statistics(tmp_path):
    """--color-target SPLIT: every image is normalised to that split's statistics before the
    network (as a Segmenter with that color_target scores); 'off' is the plain network."""
    import paper_table  # tools/ (pytest's pythonpath)
    from PIL import Image

    from deconvnet_tf.data.sources import open_source
    from deconvnet_tf.data.stats import color_statistics
    from deconvnet_tf.data.synthetic import write_synthetic_dataset

    root = tmp_path / "data"
    write_synthetic_dataset(root, num_train=2, num_val=3, height=40, width=48, seed=4)
    for record in open_source(root).records("train"):  # dim training frames: a far target
        image = np.asarray(Image.open(record.image))
        Image.fromarray((image * 0.2).astype(np.uint8)).save(record.image)
    names = list(open_source(root).info.class_names)
    keras.utils.set_random_seed(6)
    network = deconvnet_tf.build_model("deconvnet_tiny", num_classes=len(names))
    plain = Segmenter(network, image_size=None, class_names=names)
    plain.save(tmp_path / "plain.keras")
    target = color_statistics(open_source(root), "train")
    plain.with_options(color_target=target).save(tmp_path / "normed.keras")

    outputs = iter(range(100))

    def score(model, *flags):
        out = tmp_path / f"table{next(outputs)}.json"
        assert paper_table.main(["--deconvnet", str(tmp_path / model), "--data", str(root),
                                 "--split", "val", "--methods", "deconvnet_whole", "--quiet",
                                 "--output", str(out), *flags]) == 0
        return json.loads(out.read_text())["methods"]["deconvnet_whole"]["per_class_iou"]

    assert score("plain.keras") != score("normed.keras")  # the normalisation matters here
    assert score("plain.keras", "--color-target", "train") == score("normed.keras")
    assert score("normed.keras", "--color-target", "off") == score("plain.keras")
    assert score("plain.keras", "--color-target", "train", "--flip") == score(
        "normed.keras", "--flip")
