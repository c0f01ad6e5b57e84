"""One prediction rule on every runtime: Keras (Predictor / Segmenter), SavedModel
(SavedModelPredictor) and LiteRT (LiteSegmenter) bring images of any size to the model with
deconvnet_tf.io's rule (resize to the working resolution when the model has one, else native
within the pixel budget, pad sides below the minimum) and map labels back to the input size.

The size corpus: tiny (below the network's minimum), odd, 360x480 (CamVid) and 1500x2000
(above the 2 MP budget, so native models scale it down). Slow tier: two exports and a
1500x2000 image through three runtimes (~2.5 CPU-min)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import requires_tf

pytestmark = [requires_tf, pytest.mark.slow]

SIZES = [(9, 13), (16, 40), (31, 45), (101, 77), (360, 480), (1500, 2000)]
FP32_BAR = 0.999
INT8_BAR = 0.98


def _corpus() -> list[np.ndarray]:
    import cv2

    from deconvnet_tf.data.synthetic import make_scene

    images = []
    for i, (height, width) in enumerate(SIZES):
        scene = make_scene(70_000 + i, max(height, 32), max(width, 32))[0]
        images.append(np.ascontiguousarray(scene[:height, :width]))
    # a photo-like texture on the large one (smooth gradients, not flat shapes only)
    large = images[-1].astype(np.float32)
    ramp = cv2.resize(np.random.default_rng(1).integers(0, 256, (15, 20, 3)).astype(np.float32),
                      (large.shape[1], large.shape[0]), interpolation=cv2.INTER_CUBIC)
    images[-1] = np.clip(0.7 * large + 0.3 * ramp, 0, 255).astype(np.uint8)
    return images


@pytest.fixture(scope="module")
def corpus():
    return _corpus()


@pytest.fixture(scope="module")
def random_segmenters(tmp_path_factory):
    """A random-init deconvnet_tiny as a native Segmenter (2 MP budget) and as one with a
    working resolution, each exported to a SavedModel and an fp32 .tflite (defaults)."""
    import keras

    import deconvnet_tf
    from deconvnet_tf import Segmenter
    from deconvnet_tf.export import export_saved_model, export_tflite

    root = tmp_path_factory.mktemp("size_rule")
    keras.utils.set_random_seed(11)
    net = deconvnet_tf.build_model("deconvnet_tiny", num_classes=4)
    out = {}
    for kind, size in (("native", None), ("working", (72, 96))):
        seg = Segmenter(net, image_size=size, class_names=["a", "b", "c", "d"])
        saved = export_saved_model(seg, root / f"{kind}_sm")
        lite = export_tflite(seg, root / f"{kind}.tflite")
        out[kind] = (seg, saved, lite)
    return out


def _agreement(reference: list[np.ndarray], labels: list[np.ndarray]) -> tuple[float, float]:
    equal = sum(int(np.sum(a == b)) for a, b in zip(reference, labels))
    total = sum(a.size for a in reference)
    worst = min(float(np.mean(a == b)) for a, b in zip(reference, labels))
    return equal / total, worst


def _report(title: str, rows: dict[str, tuple[float, float]]) -> None:
    print(f"\n{title}")
    for name, (overall, worst) in rows.items():
        print(f"  {name:<28} pixels equal {100 * overall:7.3f}%   worst image {100 * worst:7.3f}%")


@pytest.mark.parametrize("kind", ["native", "working"])
def test_fp32_labels_agree_across_runtimes(random_segmenters, corpus, kind):
    from deconvnet_tf.export.saved_model import load_saved_model
    from deconvnet_tf.inference.predict import load_predictor, predict_images
    from deconvnet_tf.lite import LiteSegmenter

    seg, saved, lite_path = random_segmenters[kind]
    keras_labels = seg.predict(corpus)
    assert [lab.shape for lab in keras_labels] == [im.shape[:2] for im in corpus]

    sm = load_saved_model(saved)
    assert sm.working_size == seg.image_size and sm.max_pixels == seg.max_pixels
    sm_labels = [sm(im).argmax(-1) for im in corpus]
    loaded = load_predictor(saved)  # the Predictor of a SavedModel folder: same rule
    assert loaded.class_names == tuple(seg.class_names)
    np.testing.assert_array_equal(loaded.palette, seg.palette_array())
    sm_predictor_labels = [p.argmax(-1) for p in predict_images(loaded, corpus)]

    lite = LiteSegmenter(lite_path, threads=1,
                         max_pixels=None if seg.image_size else seg.max_pixels)
    assert lite.fixed_size == seg.image_size  # the working resolution became the input
    assert lite.class_names == seg.class_names
    lite_labels = [lite.predict(im)[0] for im in corpus]
    for labels in (sm_labels, sm_predictor_labels, lite_labels):
        assert [lab.shape for lab in labels] == [im.shape[:2] for im in corpus]

    rows = {"SavedModelPredictor": _agreement(keras_labels, sm_labels),
            "load_predictor(SavedModel)": _agreement(keras_labels, sm_predictor_labels),
            "LiteRT fp32": _agreement(keras_labels, lite_labels)}
    _report(f"fp32, {kind} ({seg.image_size or 'native, 2 MP budget'}), vs Keras", rows)
    for name, (overall, worst) in rows.items():
        assert overall >= FP32_BAR, (name, rows)
        assert worst >= 0.99, (name, rows)


def test_native_rule_pads_small_and_scales_large_images(random_segmenters, corpus):
    """The rule itself: a 9x13 image is padded (not stretched) to the minimum, a 3 MP one is
    scaled to the 2 MP budget; every runtime gives the same plan."""
    from deconvnet_tf.io import DEFAULT_MAX_PIXELS, plan_size

    seg = random_segmenters["native"][0]
    predictor = seg.predictor()
    small = predictor.plan(9, 13)
    assert small.scaled == (9, 13) and small.padded == (17, 17)
    large = predictor.plan(1500, 2000)
    assert large.downscaled and large.scaled[0] * large.scaled[1] <= DEFAULT_MAX_PIXELS
    assert large == plan_size(1500, 2000, min_size=17, max_pixels=DEFAULT_MAX_PIXELS)
    working = random_segmenters["working"][0].predictor()
    assert working.plan(1500, 2000).scaled == (72, 96)
    assert working.plan(9, 13).padded == (72, 96)


def test_calibration_images_follow_the_rule():
    """tflite._fit (int8 calibration) feeds images as the predictors do: padded with the
    mean colour below the minimum (not stretched), resized to a fixed size, budget-limited."""
    from deconvnet_tf.export.tflite import _fit, representative_images
    from deconvnet_tf.io import DEFAULT_MAX_PIXELS, fit_image, plan_size

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (9, 30, 3), dtype=np.uint8)
    fitted = _fit(small, None, 17, pad_rgb=(123, 117, 104))
    assert fitted.shape == (17, 30, 3)
    np.testing.assert_array_equal(fitted[:9], small)
    assert (fitted[9:] == [123, 117, 104]).all()
    big = rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    plan = plan_size(1500, 2000, min_size=17, max_pixels=DEFAULT_MAX_PIXELS)
    np.testing.assert_array_equal(_fit(big, None, 17), fit_image(big, plan))
    assert _fit(big, (48, 64), 17).shape == (48, 64, 3)
    images = representative_images([small, big], count=2, min_size=17, pad_rgb=(1, 2, 3))
    assert [im.shape for im in images] == [(17, 30, 3), plan.padded + (3,)]
    assert (images[0][9:] == [1, 2, 3]).all()


def test_int8_labels_agree_with_keras_across_sizes(tmp_path_factory, corpus):
    """A briefly trained tiny model (tests/export/artifacts.py) as a Segmenter at its 48x64
    working resolution, against its full-integer int8 LiteRT export (fixed 48x64)."""
    from deconvnet_tf import Segmenter
    from deconvnet_tf.lite import LiteSegmenter
    from tests.export.artifacts import CLASSES, HEIGHT, WIDTH, get_artifacts, held_out_scenes

    artifacts = get_artifacts(tmp_path_factory)
    seg = Segmenter.from_preset(artifacts.model_path, image_size=(HEIGHT, WIDTH))
    assert seg.class_names == CLASSES  # from the run folder's meta.json
    images = corpus + held_out_scenes(4)
    keras_labels = seg.predict(images)
    lite = LiteSegmenter(artifacts.tflite["int8"], threads=1)
    assert lite.fixed_size == (HEIGHT, WIDTH)
    int8_labels = [lite.predict(im)[0] for im in images]
    fp32 = LiteSegmenter(artifacts.tflite["none"], threads=1)
    fp32.fixed_size = (HEIGHT, WIDTH)  # the dynamic fp32 export run at the working size
    fp32_labels = [fp32.predict(im)[0] for im in images]
    rows = {"LiteRT fp32 (dynamic @48x64)": _agreement(keras_labels, fp32_labels),
            "LiteRT int8 (fixed 48x64)": _agreement(keras_labels, int8_labels)}
    _report("trained deconvnet_tiny at 48x64, vs Keras", rows)
    assert rows["LiteRT fp32 (dynamic @48x64)"][0] >= FP32_BAR, rows
    assert rows["LiteRT int8 (fixed 48x64)"][0] >= INT8_BAR, rows
