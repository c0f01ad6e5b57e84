"""Every preset builds, runs forward and backward, and round-trips through .keras (both
backends); the paper's network has the paper's size."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.models import (
    PRESETS,
    DeconvNet,
    count_flops,
    get_architecture,
    with_unpooling,
)
from tests.conftest import BACKEND, requires_tf

# A small input each preset accepts (>= its minimum size), used to keep the suite fast.
TEST_SIZES = {
    "deconvnet_vgg16": (224, 224),
    "deconvnet_efficientnet_lite0": (32, 48),
    "fcn8s_efficientnet_lite0": (32, 48),
    "deconvnet_vgg16_slim": (72, 80),
    "deconvnet_small": (72, 80),
    "deconvnet_vgg16_compact": (40, 48),
    "deconvnet_vgg16_compact_k7": (56, 64),
    "deconvnet_vgg16_b4_compact": (40, 48),
    "deconvnet_vgg16_b5_compact": (72, 80),
    "fcn8s_vgg16_compact": (40, 48),
    "deconvnet_mobile": (40, 48),
    "deconvnet_tiny": (24, 40),
    "fcn32s_vgg16": (40, 48),
    "fcn8s_vgg16": (40, 48),
    "fcn8s_small": (40, 48),
    "fcn8s_tiny": (24, 40),
}


def test_every_preset_has_a_test_size():
    assert set(TEST_SIZES) == set(PRESETS) == set(deconvnet_tf.list_presets())


def _forward(model, x) -> np.ndarray:
    """Inference outputs, the cheaper way per backend: a direct (eager) call on TensorFlow (no
    function tracing per model), one compiled ``predict_on_batch`` on JAX (its eager calls
    compile every op); ``predict`` itself is exercised by the inference tests."""
    if BACKEND == "tensorflow":
        return np.asarray(model(x, training=False))
    return np.asarray(model.predict_on_batch(x))


def _train_step_changes_weights(model, x, y):
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    before = [np.array(w) for w in model.trainable_weights]
    loss = float(model.train_on_batch(x, y))
    after = [np.array(w) for w in model.trainable_weights]
    assert np.isfinite(loss)
    changed = sum(not np.array_equal(a, b) for a, b in zip(before, after))
    assert changed == len(before), f"{len(before) - changed} trainable weights did not move"


# Presets of >= 10M parameters round-trip narrowed (same layers and code path, encoder/fc width
# overridden): at full size their .keras files (40 MB to 0.5 GB) would repeat what the paper
# network's 1 GB round trip below checks; their exact sizes are built and checked against the
# README table (tests/models/test_readme_presets.py).
LARGE = {"fcn32s_vgg16", "fcn8s_vgg16", "deconvnet_vgg16_slim", "deconvnet_small",
         "deconvnet_vgg16_b4_compact", "deconvnet_vgg16_b5_compact"}
NARROW = {"encoder_width": 0.125, "fc_filters": 64}
# Narrowed, these presets are the same layer graph as another one's (names, kinds, depths;
# only channel counts differ), so their round trip would repeat it: deconvnet_vgg16_slim is
# deconvnet_small's five-block graph with a half-width decoder (decoder_width: also in
# deconvnet_vgg16_compact), and so is deconvnet_vgg16_b5_compact; deconvnet_vgg16_b4_compact
# is deconvnet_mobile's four-block graph; fcn8s_small is fcn8s_vgg16's.
# test_same_graph_as_the_kept_twin checks the claim.
SAME_GRAPH = {"deconvnet_vgg16_slim": "deconvnet_small", "fcn8s_small": "fcn8s_vgg16",
              "deconvnet_vgg16_b5_compact": "deconvnet_small",
              "deconvnet_vgg16_b4_compact": "deconvnet_mobile"}
# Every preset is the same layer code with other widths and depths. TensorFlow round-trips every
# distinct layer graph (all presets but SAME_GRAPH); JAX one per family and size class: the test preset of each family, the shipped
# models' presets (DeconvNet and its FCN-8s ensemble partner) and FCN-32s narrowed.
DEFAULT_SUITE_ROUND_TRIPS = {"deconvnet_tiny", "fcn8s_tiny"}
JAX_ROUND_TRIPS = {"deconvnet_tiny", "deconvnet_vgg16_compact", "fcn8s_tiny",
                   "fcn8s_vgg16_compact", "fcn32s_vgg16"}


def _round_trip_cases():
    for preset in sorted(p for p in PRESETS if p != "deconvnet_vgg16"):
        if preset in SAME_GRAPH:
            continue
        if BACKEND != "tensorflow" and preset not in JAX_ROUND_TRIPS:
            continue
        # The test presets round-trip in the default suite, the others in the slow tier.
        marks = [] if preset in DEFAULT_SUITE_ROUND_TRIPS else [pytest.mark.slow]
        if preset in LARGE:
            yield pytest.param(preset, NARROW, id=f"{preset}-narrow", marks=marks)
        else:
            yield pytest.param(preset, {}, id=preset, marks=marks)


@pytest.mark.jax
@pytest.mark.parametrize("preset, overrides", _round_trip_cases())
def test_preset_forward_backward_save_load(tmp_path, rng, preset, overrides):
    h, w = TEST_SIZES[preset]
    kwargs = {"unpooling": "switch"} if PRESETS[preset].get("family", "deconvnet") == "deconvnet" and BACKEND != "tensorflow" else {}
    model = deconvnet_tf.build_model(preset, num_classes=5, **kwargs, **overrides)
    x = rng.integers(0, 256, size=(2, h, w, 3)).astype("uint8")
    y = rng.integers(0, 5, size=(2, h, w)).astype("int32")
    out = _forward(model, x)
    assert out.shape == (2, h, w, 5) and out.dtype == np.float32 and np.all(np.isfinite(out))
    _train_step_changes_weights(model, x, y)
    path = tmp_path / f"{preset}.keras"
    model.save(path)
    loaded = deconvnet_tf.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.architecture == model.architecture
    np.testing.assert_allclose(
        _forward(loaded, x), _forward(model, x), atol=1e-5
    )


def _graph(model) -> list[tuple[str, str]]:
    return [(layer.name, type(layer).__name__) for layer in model.layers]


@pytest.mark.parametrize("preset, twin", sorted(SAME_GRAPH.items()))
def test_same_graph_as_the_kept_twin(preset, twin):
    """A preset left out of the round trips builds, narrowed, the layer graph of its twin."""
    h, w = TEST_SIZES[preset]
    assert TEST_SIZES[twin] == (h, w)
    a = deconvnet_tf.build_model(preset, num_classes=5, input_shape=(h, w, 3), **NARROW)
    b = deconvnet_tf.build_model(twin, num_classes=5, input_shape=(h, w, 3), **NARROW)
    assert _graph(a) == _graph(b)
    assert a.count_params() != b.count_params()  # not the same preset: widths differ


@pytest.fixture(scope="module")
def paper_network():
    """The full paper network, built once per backend for the tests below."""
    kwargs = {} if BACKEND == "tensorflow" else {"unpooling": "switch"}
    return deconvnet_tf.build_model("deconvnet_vgg16", input_shape=(224, 224, 3), **kwargs)


@pytest.mark.jax
@pytest.mark.slow
def test_paper_network_size_and_forward(rng, paper_network):
    model = paper_network
    assert model.count_params() == 251_839_061  # paper: 251.8M
    assert round(count_flops(model) / 1e9, 1) == 65.5  # paper: 65.5 GFLOP per 224x224 image
    names = [layer.name for layer in model.layers]
    for expected in ("fc6", "fc7", "fc6_deconv", "block5_unpool", "block1_deconv2", "score"):
        assert expected in names
    assert model.get_layer("fc6").kernel.shape == (7, 7, 512, 4096)
    assert model.get_layer("fc6_deconv").kernel.shape == (7, 7, 512, 4096)
    decoder = [model.get_layer(f"block{b}_deconv{i}").filters
               for b in range(5, 0, -1) for i in range(1, 4) if f"block{b}_deconv{i}" in names]
    assert decoder == [512, 512, 512, 512, 512, 256, 256, 256, 128, 128, 64, 64, 64]


@pytest.mark.jax
@pytest.mark.slow
def test_paper_network_trains_and_round_trips(tmp_path, rng, paper_network):
    """The full network: forward at 224x224, then on TensorFlow one SGD step and a round trip
    through its 1 GB file. Under JAX the forward pass only: the JAX train step is the same
    keras.ops graph the narrower presets train above (compiling it for 252M parameters costs
    ~25 s), and the .keras format is backend-independent (tests/test_backends.py loads across
    backends)."""
    model = paper_network
    # Batch 2: at 224x224 fc6's output is 1x1, and BatchNorm over a batch of one value per
    # channel outputs zeros, so fc6 would get no gradient at batch 1 (the paper uses 64).
    x = rng.integers(0, 256, size=(2, 224, 224, 3)).astype("uint8")
    y = rng.integers(0, 21, size=(2, 224, 224)).astype("int32")
    out = np.asarray(model(x))
    assert out.shape == (2, 224, 224, 21) and np.all(np.isfinite(out))
    if BACKEND != "tensorflow":
        return
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    fc6_before = np.array(model.get_layer("fc6").kernel)
    assert np.isfinite(float(model.train_on_batch(x, y)))
    assert not np.array_equal(fc6_before, np.array(model.get_layer("fc6").kernel))
    del fc6_before
    path = tmp_path / "paper.keras"
    model.save(path)
    loaded = deconvnet_tf.load_model(path)
    np.testing.assert_array_equal(
        np.asarray(loaded.get_layer("fc6_deconv").kernel), np.asarray(model.get_layer("fc6_deconv").kernel)
    )
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-4)


def test_compact_k7_differs_from_compact_only_in_fc6_kernel():
    """The dev-fold lever changes one thing: fc6 (and its mirror) is 7x7 as in the paper."""
    k7 = get_architecture("deconvnet_vgg16_compact_k7")
    compact = get_architecture("deconvnet_vgg16_compact")
    assert (k7.fc_kernel, compact.fc_kernel) == (7, 3)
    assert k7 == compact.replace(fc_kernel=7, description=k7.description)
    model = deconvnet_tf.build_model(k7, num_classes=5, input_shape=(56, 64, 3))
    assert model.get_layer("fc6").kernel.shape == (7, 7, 256, 128)
    assert model.get_layer("fc6_deconv").kernel.shape == (7, 7, 256, 128)


def test_paper_decoder_widths_from_architecture():
    arch = get_architecture("deconvnet_vgg16")
    assert [arch.decoder_filters(b) for b in range(5, 0, -1)] == [
        [512, 512, 512], [512, 512, 256], [256, 256, 128], [128, 64], [64, 64]
    ]


@requires_tf
@pytest.mark.parametrize("preset", ["deconvnet_tiny", "deconvnet_mobile"])
def test_unpooling_variants_give_identical_outputs(rng, preset):
    h, w = TEST_SIZES[preset]
    argmax_model = deconvnet_tf.build_model(preset, unpooling="argmax")
    switch_model = with_unpooling(argmax_model, "switch")
    assert switch_model.unpooling == "switch"
    for shape in [(2, h, w, 3), (1, h + 3, w + 5, 3)]:  # odd sizes too
        x = rng.integers(0, 256, size=shape).astype("uint8")
        np.testing.assert_array_equal(
            np.asarray(argmax_model(x)), np.asarray(switch_model(x))
        )
    back = with_unpooling(switch_model, "argmax")
    np.testing.assert_array_equal(np.asarray(back(x)), np.asarray(argmax_model(x)))


@requires_tf
@pytest.mark.slow
def test_switch_model_trains_with_jit_compile(rng):
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3, unpooling="switch")
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    x = rng.integers(0, 256, size=(2, 24, 32, 3)).astype("uint8")
    y = rng.integers(0, 3, size=(2, 24, 32))
    assert np.isfinite(model.train_on_batch(x, y))


@pytest.mark.jax
@pytest.mark.slow
def test_mixed_precision_model(rng, mixed_policy):
    mixed_policy("mixed_bfloat16")
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3, unpooling="switch")
    assert model.get_layer("block1_conv1").compute_dtype == "bfloat16"
    x = rng.integers(0, 256, size=(2, 24, 32, 3)).astype("uint8")
    y = rng.integers(0, 3, size=(2, 24, 32))
    out = _forward(model, x)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"  # logits stay float32
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert np.isfinite(model.train_on_batch(x, y))


@pytest.mark.jax
def test_input_too_small_names_the_minimum():
    with pytest.raises(ValueError, match=r"minimum input size is 193x193"):
        deconvnet_tf.build_model("deconvnet_vgg16", input_shape=(160, 224, 3))
    arch = get_architecture("deconvnet_vgg16", pool_padding="valid")
    assert arch.min_input_size() == 224
    with pytest.raises(ValueError, match="17x17"):
        deconvnet_tf.build_model("deconvnet_tiny", input_shape=(16, 64, 3))


@pytest.mark.jax
def test_builder_argument_errors():
    with pytest.raises(ValueError, match="Unknown preset 'nope'.*deconvnet_vgg16"):
        deconvnet_tf.build_model("nope")
    with pytest.raises(TypeError, match="unknown argument.*num_clases"):
        deconvnet_tf.build_model("deconvnet_tiny", num_clases=3)
    with pytest.raises(ValueError, match="unpooling must be one of"):
        deconvnet_tf.build_model("deconvnet_tiny", unpooling="nearest")
    with pytest.raises(ValueError, match="does not apply"):
        deconvnet_tf.build_model("fcn8s_tiny", unpooling="switch")
    with pytest.raises(ValueError, match="num_classes"):
        deconvnet_tf.build_model("deconvnet_tiny", num_classes=0)
    with pytest.raises(ValueError, match="input_shape"):
        deconvnet_tf.build_model("deconvnet_tiny", input_shape=(32, 32, 4))
    with pytest.raises(ValueError, match="bn_momentum"):
        deconvnet_tf.build_model("deconvnet_tiny", bn_momentum=1.5)
    model = deconvnet_tf.build_model("deconvnet_tiny", bn_momentum=0.9, unpooling="switch")
    assert model.get_layer("fc6_bn").momentum == 0.9


@pytest.mark.jax
def test_layer_names_follow_keras_applications_vgg16():
    vgg = keras.applications.VGG16(include_top=False, weights=None)
    model = deconvnet_tf.build_model("deconvnet_vgg16_slim", unpooling="switch")
    vgg_convs = [l for l in vgg.layers if isinstance(l, keras.layers.Conv2D)]
    for layer in vgg_convs:
        ours = model.get_layer(layer.name)
        assert ours.kernel.shape == layer.kernel.shape
    for i in range(1, 6):
        model.get_layer(f"block{i}_pool")


@pytest.mark.jax
def test_frozen_blocks():
    model = deconvnet_tf.build_model("deconvnet_tiny", frozen_blocks=2, unpooling="switch")
    assert not model.get_layer("block1_conv1").trainable
    assert not model.get_layer("block2_conv1_bn").trainable
    assert model.get_layer("block3_conv1").trainable
    with pytest.raises(ValueError, match="frozen_blocks"):
        deconvnet_tf.build_model("deconvnet_tiny", frozen_blocks=4)


@pytest.mark.jax
def test_softmax_head_and_fcn_family(rng):
    model = deconvnet_tf.build_model("fcn8s_tiny", num_classes=4, output_activation="softmax")
    x = rng.integers(0, 256, size=(1, 29, 37, 3)).astype("uint8")  # odd sizes are cropped back
    p = np.asarray(model(x))
    assert p.shape == (1, 29, 37, 4)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)
    assert isinstance(deconvnet_tf.build_model("deconvnet_tiny", unpooling="switch"), DeconvNet)


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        deconvnet_tf.load_model(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_text("not a zip")
    with pytest.raises(ValueError, match="not a .keras model file"):
        deconvnet_tf.load_model(bad)
