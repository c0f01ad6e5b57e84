"""deconvnet_tf.Segmenter: one self-describing .keras file (network + image converter + class
names + void label + palette), prediction at each input's own size, bare-network files."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf import Segmenter
from deconvnet_tf.lite.metadata import ModelMetadata
from deconvnet_tf.inference.segmenter import CAMVID_PALETTE, default_palette, load_segmenter

NAMES = ["background", "disc", "ring"]


@pytest.fixture(scope="module")
def network():
    keras.utils.set_random_seed(3)
    return deconvnet_tf.build_model("deconvnet_tiny", num_classes=3)


def _images(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size, dtype=np.uint8)
            for size in [(48, 64, 3), (9, 30, 3), (101, 77, 3)]]


@pytest.mark.jax
def test_metadata_round_trips_through_one_keras_file(network, tmp_path):
    seg = Segmenter(network, image_size=(48, 64), class_names=NAMES, void_label=255,
                    palette={"background": (1, 2, 3), "disc": (4, 5, 6), "ring": (7, 8, 9)},
                    max_pixels=5000, default_crf=True)
    config = seg.get_config()
    for key in ("network", "image_size", "class_names", "void_label", "palette",
                "image_converter", "mean", "default_crf"):
        assert key in config
    assert config["image_converter"]["image_size"] == [48, 64]
    assert config["image_converter"]["padding"] == "bottom_right"
    json.dumps(config)  # the whole config is JSON
    path = tmp_path / "seg.keras"
    seg.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.keras"]  # no temporary left
    for loaded in (Segmenter.from_preset(path), keras.saving.load_model(path),
                   deconvnet_tf.load_model(path)):
        assert isinstance(loaded, Segmenter)
        assert loaded.image_size == (48, 64)
        assert loaded.class_names == NAMES
        assert loaded.void_label == 255
        assert loaded.palette == {"background": (1, 2, 3), "disc": (4, 5, 6), "ring": (7, 8, 9)}
        assert loaded.max_pixels == 5000
        assert loaded.default_crf is True and loaded.predictor().default_crf is True
        assert loaded.mean == pytest.approx(network.mean)
        np.testing.assert_array_equal(loaded.palette_array(), [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
        # same weights, same labels
        for a, b in zip(seg.predict(_images()), loaded.predict(_images())):
            np.testing.assert_array_equal(a, b)
    assert loaded.with_options(default_crf=False).default_crf is False
    assert Segmenter(network).default_crf is False  # the network's output unless chosen
    with pytest.raises(ValueError, match="default_crf must be true or false"):
        Segmenter(network, default_crf="yes")
    # the network's layers stay reachable (visualisation, fine-tuning)
    assert loaded.get_layer("block1_conv1").name == "block1_conv1"


@pytest.mark.jax
def test_predict_returns_labels_at_each_input_size(network):
    seg = Segmenter(network, image_size=(48, 64), class_names=NAMES)
    images = _images()
    labels = seg.predict(images)
    assert isinstance(labels, list)
    assert [lab.shape for lab in labels] == [im.shape[:2] for im in images]
    assert all(lab.dtype == np.uint8 and lab.max() < 3 for lab in labels)
    probs = seg.predict_proba(images)
    for lab, p, im in zip(labels, probs, images):
        assert p.shape == im.shape[:2] + (3,) and p.dtype == np.float32
        np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-4)
        np.testing.assert_array_equal(p.argmax(-1), lab)
    one = seg.predict(images[2])  # one image in, one label map out
    np.testing.assert_array_equal(one, labels[2])
    batch = seg.predict(np.stack([images[0], images[0]]))  # an array in, an array out
    assert batch.shape == (2, 48, 64)
    # The working resolution is the size rule of deconvnet_tf.io: resize, predict, resize back.
    from deconvnet_tf.inference.predict import predict_image

    predictor = seg.predictor()
    assert predictor.input_size == (48, 64) and predictor.class_names == tuple(NAMES)
    np.testing.assert_array_equal(predictor.palette, seg.palette_array())
    expected = predict_image(predictor, images[2]).argmax(-1)
    np.testing.assert_array_equal(labels[2], expected)
    # native: each image at its own size (the small one padded to the minimum)
    native = seg.with_options(image_size=None)
    assert native.network is network and native.image_size is None
    assert seg.with_options(image_size="native").image_size is None
    assert seg.with_options(image_size="24x32").image_size == (24, 32)
    logits = np.asarray(network(images[0][None].astype("float32")))[0]
    np.testing.assert_array_equal(native.predict(images[0]), logits.argmax(-1))
    assert native.predict(images[1]).shape == (9, 30)


@pytest.mark.jax
def test_test_time_flip_averages_with_the_mirror_image_and_round_trips(network, tmp_path):
    """test_time_flip: predict_proba is the mean of the image's and its mirror's scores
    (mirrored back), at the working resolution; stored in the file; off unless chosen."""
    plain = Segmenter(network, image_size=(48, 64), class_names=NAMES)
    flipped = plain.with_options(test_time_flip=True)
    assert plain.test_time_flip is False and flipped.test_time_flip is True
    image = _images()[0]  # 48x64: at the working resolution, no resize in between
    mirrored = np.ascontiguousarray(image[:, ::-1])
    expected = 0.5 * (plain.predict_proba(image) + plain.predict_proba(mirrored)[:, ::-1])
    got = flipped.predict_proba(image)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert flipped.predict_proba(_images()[2]).shape == (101, 77, 3)  # resized and back
    np.testing.assert_array_equal(flipped.predict(image), got.argmax(-1))
    assert flipped.predictor().flip is True and flipped.predictor(flip=False).flip is False
    np.testing.assert_allclose(
        predict_proba_without_flip := flipped.with_options(test_time_flip=False).predict_proba(image),
        plain.predict_proba(image))
    assert not np.allclose(predict_proba_without_flip, got)
    path = tmp_path / "flip.keras"
    flipped.save(path)
    assert Segmenter.from_preset(path).test_time_flip is True
    assert load_segmenter(path, test_time_flip=False).test_time_flip is False
    with pytest.raises(ValueError, match="test_time_flip must be true or false"):
        Segmenter(network, test_time_flip="on")


def test_working_resolution_differs_from_native(network):
    seg = Segmenter(network, image_size=(24, 32))
    image = _images(5)[2]
    a = seg.predict_proba(image)
    b = seg.with_options(image_size=None).predict_proba(image)
    assert a.shape == b.shape and not np.allclose(a, b)


def test_defaults_and_palettes(network):
    seg = Segmenter(network)
    assert seg.class_names == ["class_0", "class_1", "class_2"]
    assert seg.image_size is None and seg.void_label is None
    assert seg.palette["class_0"] == (0, 0, 0) and seg.palette["class_1"] == (128, 0, 0)
    camvid = list(CAMVID_PALETTE)
    assert default_palette(camvid)["Road"] == (128, 64, 128)
    assert default_palette(camvid)["Pavement"] == (60, 40, 222)
    assert default_palette(["background", "horse"]) == {"background": (0, 0, 0),
                                                       "horse": (128, 0, 0)}
    # exported metadata picks the same defaults
    meta = ModelMetadata.create("m", "deconvnet", camvid, input_shape=[1, None, None, 3])
    assert meta.palette_dict() == CAMVID_PALETTE
    fixed = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3, input_shape=(32, 48, 3))
    assert Segmenter(fixed).image_size == (32, 48)  # a fixed network fixes the size


@pytest.mark.parametrize("kwargs, message", [
    (dict(class_names=["a", "b"]), "2 class names for a network with 3 classes"),
    (dict(class_names=["a", "a", "b"]), "unique"),
    (dict(void_label=1), "void_label 1 is one of the 3 classes"),
    (dict(image_size=(8, 8)), "below the network's minimum input size 17x17"),
    (dict(image_size=(0, 8)), "must be positive"),
    (dict(image_size="big"), r"image_size must be \(height, width\), 'HxW', 'native' .*'big'"),
    (dict(palette=[(0, 0, 0)]), "1 colours for 3 classes"),
    (dict(palette=[(0, 0, 0), (1, 1, 1), (300, 0, 0)]), "three ints 0..255"),
    (dict(class_names=NAMES, palette={"background": (0, 0, 0)}), "no colour for class"),
    (dict(max_pixels=0), "max_pixels must be >= 1"),
    (dict(interpolation="cubic"), "interpolation"),
])
def test_bad_arguments_raise_clear_errors(network, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Segmenter(network, **kwargs)


@pytest.mark.jax
def test_pixel_values_that_are_not_pixels_raise_clear_errors(network):
    """NaN/inf, non-numbers and integers outside 0..255 are errors naming the problem (they
    used to be clipped into some label map); uint8, in-range integers and floats predict."""
    seg = Segmenter(network)
    good = np.random.default_rng(0).integers(0, 256, (12, 14, 3))
    want = seg.predict(good.astype(np.uint8))
    for dtype in ("int64", "uint16", "float32", "float64"):
        np.testing.assert_array_equal(seg.predict(good.astype(dtype)), want)
    nan = good.astype(np.float32)
    nan[3, 4, 1] = np.nan
    nan[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 NaN or infinite value\(s\); expected pixel"):
        seg.predict(nan)
    with pytest.raises(ValueError, match="got dtype bool"):
        seg.predict(np.zeros((8, 8, 3), bool))
    with pytest.raises(ValueError, match="got dtype complex64"):
        seg.predict([np.zeros((8, 8, 3), np.complex64)])
    with pytest.raises(ValueError, match=r"values 0..65535 \(uint16\).*16-bit image"):
        seg.predict(good.astype(np.uint16) * 257)
    with pytest.raises(ValueError, match=r"values -1..255 \(int32\); expected pixel values "
                       r"0..255$"):
        seg.predict(np.where(good == 0, -1, good).astype(np.int32))
    with pytest.warns(UserWarning, match="float values in 0..1 are read as pixel values"):
        seg.predict(good.astype(np.float32) / 255)
    with pytest.raises(ValueError, match="got the path 'photo.png'; read it with "
                       "deconvnet_tf.io.read_image"):
        seg.predict("photo.png")


def test_bad_inputs_and_paths(network, tmp_path):
    seg = Segmenter(network)
    with pytest.raises(ValueError, match="expected an \\(H, W, 3\\) image"):
        seg.predict(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="empty list"):
        seg.predict([])
    with pytest.raises(ValueError, match="RGB image"):
        seg.predict([np.zeros((10, 10, 4), np.uint8)])
    with pytest.raises(ValueError, match="must end in .keras"):
        seg.save(tmp_path / "x.h5")
    (tmp_path / "taken.keras").write_bytes(b"user data")
    with pytest.raises(ValueError, match="exists"):
        seg.save(tmp_path / "taken.keras", overwrite=False)
    assert (tmp_path / "taken.keras").read_bytes() == b"user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.keras"]
    with pytest.raises(ValueError, match="not a .keras model file"):
        Segmenter.from_preset(tmp_path / "taken.keras")
    with pytest.raises(FileNotFoundError, match="no_such.keras"):
        Segmenter.from_preset(tmp_path / "no_such.keras")
    with pytest.raises(ValueError, match="unknown Segmenter option"):
        load_segmenter(tmp_path / "taken.keras", colour="red")
    with pytest.raises(ValueError, match="unknown option"):
        seg.with_options(colour="red")


def test_bare_network_files_get_metadata_from_sidecar_dataset_or_arguments(network, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    path = run / "model.keras"
    network.save(path)
    # 1. nothing known: defaults
    seg = Segmenter.from_preset(path)
    assert isinstance(seg, Segmenter) and seg.class_names == ["class_0", "class_1", "class_2"]
    # 2. the dataset meta.json next to the model (as in a run folder)
    (run / "meta.json").write_text(json.dumps({"classes": NAMES, "void_label": 255}))
    seg = Segmenter.from_preset(path)
    assert seg.class_names == NAMES and seg.void_label == 255
    # 3. the sidecar <stem>.json next to the file wins over the dataset
    (run / "model.json").write_text(json.dumps({
        "class_names": ["x", "y", "z"], "palette": [[1, 1, 1], [2, 2, 2], [3, 3, 3]],
        "input_shape": [1, 48, 64, 3]}))
    seg = Segmenter.from_preset(path)
    assert seg.class_names == ["x", "y", "z"] and seg.image_size == (48, 64)
    assert seg.palette["z"] == (3, 3, 3)
    # 4. arguments win over both
    seg = Segmenter.from_preset(path, class_names=["p", "q", "r"], image_size=None)
    assert seg.class_names == ["p", "q", "r"] and seg.image_size is None
    assert seg.palette["p"] == (0, 0, 0)  # the sidecar palette belonged to other names
    (run / "model.json").write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        Segmenter.from_preset(path)
    # a bare network file still loads as the bare network through load_model
    (run / "model.json").unlink()
    assert not isinstance(deconvnet_tf.load_model(path), Segmenter)
    # Predictors: a bare file is fed float pixels as before, a Segmenter file uint8 pixels
    # (exactly like its SavedModel / LiteRT exports); both know the classes and palette
    from deconvnet_tf.inference.predict import load_predictor

    bare = load_predictor(path)
    assert bare.input_dtype == "float32" and bare.class_names == tuple(NAMES)
    Segmenter.from_preset(path).save(tmp_path / "seg.keras")
    full = load_predictor(tmp_path / "seg.keras", image_size="40x50")
    assert full.input_dtype == "uint8" and full.input_size == (40, 50)
    np.testing.assert_array_equal(full.palette, bare.palette)


def test_segmenter_is_lazy_in_the_package():
    code = ("import sys, deconvnet_tf; assert 'keras' not in sys.modules; "
            "assert 'Segmenter' in dir(deconvnet_tf); "
            "print(deconvnet_tf.Segmenter.__name__, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["Segmenter", "True"]


def test_saved_file_is_as_readable_as_a_plain_file(network, tmp_path):
    """Segmenter.save writes through mkstemp (0o600) but publishes with open()'s mode."""
    import os

    from deconvnet_tf.io import new_file_mode

    old = os.umask(0o022)
    try:
        Segmenter(network).save(tmp_path / "m.keras")
    finally:
        os.umask(old)
    assert (tmp_path / "m.keras").stat().st_mode & 0o777 == 0o644 == new_file_mode() & 0o644
