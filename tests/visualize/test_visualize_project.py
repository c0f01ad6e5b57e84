"""Deconvnet projection: exactness against autodiff and a NumPy reference, ReLU rules, switches,
receptive fields, branches, this project's DeconvNet, and clear errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.layers import SwitchMaxPooling2D
from deconvnet_tf.visualize import (
    Box,
    NotInvertibleError,
    Projector,
    UnknownLayerError,
    VisualizationError,
    invertible_layer_names,
    project,
    receptive_field,
)
from tests.conftest import BACKEND, gradient


def _randomize(model, rng):
    """Random weights everywhere, and BatchNorm statistics far from the identity."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2.0, c), rng.normal(0, 0.3, c),
                               rng.normal(0, 0.3, c), rng.uniform(0.3, 3.0, c)])
        elif layer.weights:
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in layer.weights])
    return model


def _unit_gradient(model, layer, x, channel, positions):
    """Autodiff gradient of the sum of the chosen activations (one per image) w.r.t. the input."""
    sub = keras.Model(model.inputs[0], model.get_layer(layer).output)
    mask = np.zeros(keras.ops.convert_to_numpy(sub(x)).shape, "float32")
    for b, pos in enumerate(positions):
        mask[(b, *pos, channel)] = 1
    return gradient(lambda v: sub(v) * mask, x)


def _linear_net(pool_layer):
    """Conv (stride 2, same, odd size) + BN + max pool + valid conv: no ReLU anywhere."""
    inputs = keras.Input((15, 15, 2))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = pool_layer(x)
    if isinstance(x, (list, tuple)):
        x = x[0]
    x = keras.layers.Conv2D(3, 3, padding="valid", name="conv2")(x)
    return keras.Model(inputs, x)


@pytest.mark.jax
@pytest.mark.parametrize("pool", ["keras", "switch"])
def test_without_relu_deconvnet_equals_gradient_exactly(rng, pool):
    make = (lambda x: keras.layers.MaxPooling2D(2, name="pool")(x)) if pool == "keras" else (
        lambda x: SwitchMaxPooling2D(2, padding="same", name="pool")(x))
    model = _randomize(_linear_net(make), rng)
    x = rng.normal(0, 1, (2, 15, 15, 2)).astype("float32")
    projector = Projector(model, "conv2")
    dec, positions, values = projector.project(x, 1, signal="unit", return_details=True)
    grad = _unit_gradient(model, "conv2", x, 1, positions)
    assert np.abs(grad).max() > 0
    np.testing.assert_array_equal(dec, grad)  # exact: same ops, switches held fixed
    for mode in ("gradient", "guided"):
        np.testing.assert_array_equal(projector.project(x, 1, mode=mode, signal="unit"), grad)
    # The paper's signal keeps the activation value: a positive multiple of the gradient.
    scaled = projector.project(x, 1, signal="activation")
    np.testing.assert_allclose(scaled, values[:, None, None, None] * grad, rtol=1e-5, atol=1e-6)


def test_gradient_mode_equals_autodiff_through_relus_and_batchnorm(rng):
    model = _randomize(deconvnet_tf.build_model("deconvnet_tiny", num_classes=3, unpooling="switch"), rng)
    x = rng.uniform(0, 255, (2, 24, 24, 3)).astype("float32")
    layer = "block3_conv2_relu"
    proj, positions, _ = Projector(model, layer).project(
        x, 4, mode="gradient", signal="unit", return_details=True)
    np.testing.assert_array_equal(proj, _unit_gradient(model, layer, x, 4, positions))


def test_hand_built_relu_rules():
    """x = [2, -1, 3, -2] -> ReLU -> weights [1, 1, -1, -1]: the rules differ at positions 1 and 2."""
    inputs = keras.Input((1, 4, 1))
    h = keras.layers.ReLU(name="relu")(inputs)
    out = keras.layers.Conv2D(1, (1, 4), use_bias=False, name="unit")(h)
    model = keras.Model(inputs, out)
    model.get_layer("unit").set_weights([np.array([1, 1, -1, -1], "float32").reshape(1, 4, 1, 1)])
    x = np.array([2, -1, 3, -2], "float32").reshape(1, 1, 4, 1)
    p = Projector(model, "unit")
    got = {m: p.project(x, 0, mode=m, signal="unit")[0, 0, :, 0] for m in ("deconvnet", "gradient", "guided")}
    np.testing.assert_array_equal(got["gradient"], [1, 0, -1, 0])   # g * (x > 0)
    np.testing.assert_array_equal(got["deconvnet"], [1, 1, 0, 0])   # relu(g)
    np.testing.assert_array_equal(got["guided"], [1, 0, 0, 0])      # relu(g) * (x > 0)
    np.testing.assert_array_equal(got["gradient"], gradient(lambda v: model(v), x)[0, 0, :, 0])


@pytest.mark.jax
def test_rectification_differs_exactly_where_the_relu_rule_differs(rng):
    """2-D: identity 1x1 conv -> ReLU -> random 3x3 conv. At the input, deconvnet = relu(g) and
    gradient = g * (x > 0): they differ exactly where (g > 0) != (x > 0) and g != 0."""
    inputs = keras.Input((6, 6, 2))
    h = keras.layers.Conv2D(2, 1, use_bias=False, name="identity")(inputs)
    h = keras.layers.ReLU()(h)
    out = keras.layers.Conv2D(1, 3, padding="same", name="top")(h)
    model = keras.Model(inputs, out)
    model.get_layer("identity").set_weights([np.eye(2, dtype="float32").reshape(1, 1, 2, 2)])
    model.get_layer("top").set_weights([rng.normal(0, 1, (3, 3, 2, 1)).astype("float32"), np.zeros(1, "float32")])
    x = rng.normal(0, 1, (1, 6, 6, 2)).astype("float32")
    p = Projector(model, "top")
    dec = p.project(x, 0, select=(2, 3), signal="unit")
    grad = p.project(x, 0, mode="gradient", select=(2, 3), signal="unit")
    # g: the signal arriving at the ReLU = the flipped kernel placed around (2, 3).
    g = np.zeros_like(x)
    w = model.get_layer("top").get_weights()[0][..., 0]
    for a in range(3):
        for b in range(3):
            g[0, 2 + a - 1, 3 + b - 1] = w[a, b]
    np.testing.assert_allclose(dec, np.maximum(g, 0), atol=1e-7)
    np.testing.assert_allclose(grad, g * (x > 0), atol=1e-7)
    differs = ((g > 0) != (x > 0)) & (g != 0)
    assert differs.any() and (~differs & (g != 0)).any()
    np.testing.assert_array_equal(dec != grad, differs)


# --------------------------------------------------------------------------- NumPy reference
def _np_conv_valid(x, w, b):
    k = w.shape[0]
    h, wd = x.shape[0] - k + 1, x.shape[1] - k + 1
    y = np.zeros((h, wd, w.shape[-1]), np.float64)
    for a in range(k):
        for c in range(k):
            y += np.einsum("hwi,io->hwo", x[a:a + h, c:c + wd], w[a, c])
    return y + b


def _np_conv_transpose_valid(g, w, in_hw):
    """The transposed filter: the same kernel, used backwards (tied weights)."""
    k = w.shape[0]
    out = np.zeros((*in_hw, w.shape[2]), np.float64)
    for a in range(k):
        for c in range(k):
            out[a:a + g.shape[0], c:c + g.shape[1]] += np.einsum("hwo,io->hwi", g, w[a, c])
    return out


def _np_pool_switches(x):
    h, w, ch = x.shape[0] // 2, x.shape[1] // 2, x.shape[2]
    pooled, switch = np.zeros((h, w, ch)), np.zeros(x.shape, bool)
    for i in range(h):
        for j in range(w):
            for c in range(ch):
                win = x[2 * i:2 * i + 2, 2 * j:2 * j + 2, c]
                a, b = np.unravel_index(np.argmax(win), (2, 2))  # first max, row-major
                pooled[i, j, c] = win[a, b]
                switch[2 * i + a, 2 * j + b, c] = True
    return pooled, switch


def _np_unpool(g, switch):
    up = np.repeat(np.repeat(g, 2, 0), 2, 1)
    return up * switch


@pytest.mark.jax
@pytest.mark.parametrize("pool", ["keras", "switch"])
def test_deconvnet_matches_a_literal_numpy_deconvnet(rng, pool):
    """Unpool with the switches, rectify, filter with the transposed kernels, as in the paper."""
    inputs = keras.Input((12, 12, 2))
    x = keras.layers.Conv2D(4, 3, name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2)(x) if pool == "keras" else SwitchMaxPooling2D(2)(x)[0]
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(3, 3, activation="relu", name="conv2")(x)
    model = _randomize(keras.Model(inputs, x), rng)
    images = rng.normal(0, 1, (2, 12, 12, 2)).astype("float32")
    proj, positions, values = Projector(model, "conv2").project(images, 2, return_details=True)
    w1, b1 = model.get_layer("conv1").get_weights()
    w2, b2 = model.get_layer("conv2").get_weights()
    for n in range(2):
        z1 = _np_conv_valid(images[n].astype(np.float64), w1, b1)
        pooled, switch = _np_pool_switches(z1)
        h = np.maximum(pooled, 0)
        z2 = _np_conv_valid(h, w2, b2)
        a = np.maximum(z2, 0)
        pos = np.unravel_index(np.argmax(a[..., 2]), a.shape[:2])
        assert tuple(positions[n]) == tuple(int(p) for p in pos)
        seed = np.zeros_like(a)
        seed[(*pos, 2)] = a[(*pos, 2)]
        assert values[n] == pytest.approx(a[(*pos, 2)], rel=1e-5)
        s = np.maximum(seed, 0)                      # rectify (conv2's fused ReLU)
        s = _np_conv_transpose_valid(s, w2, h.shape[:2])
        s = np.maximum(s, 0)                         # rectify (the ReLU layer)
        s = _np_unpool(s, switch)                    # unpool through the switches
        s = _np_conv_transpose_valid(s, w1, images.shape[1:3])
        assert np.abs(s).max() > 0
        np.testing.assert_allclose(proj[n], s, rtol=1e-4, atol=1e-5)


@pytest.mark.jax
@pytest.mark.parametrize("mode", ["deconvnet", "guided"])
def test_sequential_model_projects_like_its_functional_twin(rng, mode):
    """README: any CNN, Sequential or with branches. A Sequential model gives exactly the
    projections of the same layers (same weights) built functionally, which the literal NumPy
    deconvnet above checks."""
    def layers():
        return [keras.layers.Conv2D(4, 3, name="conv1"), keras.layers.MaxPooling2D(2),
                keras.layers.ReLU(), keras.layers.Conv2D(3, 3, activation="relu", name="conv2")]

    sequential = _randomize(keras.Sequential([keras.Input((12, 12, 2)), *layers()]), rng)
    inputs = keras.Input((12, 12, 2))
    x = inputs
    for layer in layers():
        x = layer(x)
    functional = keras.Model(inputs, x)
    for source, target in zip(sequential.layers, functional.layers[1:]):
        target.set_weights(source.get_weights())
    images = rng.normal(0, 1, (2, 12, 12, 2)).astype("float32")
    seq_proj, seq_pos, _ = Projector(sequential, "conv2").project(
        images, 1, mode=mode, return_details=True)
    fun_proj, fun_pos, _ = Projector(functional, "conv2").project(
        images, 1, mode=mode, return_details=True)
    assert np.abs(seq_proj).max() > 0
    np.testing.assert_array_equal(np.asarray(seq_pos), np.asarray(fun_pos))
    np.testing.assert_allclose(seq_proj, fun_proj, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- receptive field
def test_receptive_field_box_by_hand():
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(1, 3, padding="same", name="c1")(inputs)
    x = keras.layers.Conv2D(1, 3, padding="same", name="c2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(1, 3, padding="same", name="c3")(x)
    x = keras.layers.Conv2D(1, 3, strides=2, padding="same", name="c4")(x)
    model = keras.Model(inputs, x)
    # c3 rows 4..6 -> pool 8..13 -> c2 7..14 -> c1 6..15
    assert receptive_field(model, "c3", (5, 5), (32, 32)) == Box(6, 16, 6, 16)
    assert receptive_field(model, "c3", (0, 15), (32, 32)) == Box(0, 6, 26, 32)
    # c4 on a 15x15 input: c3 is 7x7, c4 is 4x4 with 'same' padding 1 before:
    # c4 row 1 -> c3 rows 1..3 -> 0..4 -> pool 0..9 -> c2 0..10 -> c1 0..11
    assert receptive_field(model, "c4", (1, 1), (15, 15)) == Box(0, 12, 0, 12)
    assert receptive_field(model, "pool", (2, 3), (9, 9)) == Box(2, 8, 4, 9)


@pytest.mark.parametrize("mode", ["deconvnet", "gradient", "guided"])
def test_projection_is_zero_outside_the_receptive_field(rng, mode):
    model = _randomize(deconvnet_tf.build_model("deconvnet_tiny", num_classes=3, unpooling="switch"), rng)
    x = rng.uniform(0, 255, (1, 40, 40, 3)).astype("float32")
    p = Projector(model, "block2_conv1_relu")
    nonzero = 0
    for pos in [(0, 0), (4, 7), (9, 9)]:
        for ch in (0, 3, 5):
            proj = p.project(x, ch, mode=mode, select=pos, signal="unit")[0]
            box = p.receptive_field(pos, x.shape[1:])
            inside = np.zeros(proj.shape[:2], bool)
            inside[box.slices()] = True
            assert np.abs(proj[~inside]).max(initial=0) == 0
            nonzero += bool(np.abs(proj[inside]).max() > 0)  # a dead unit projects to zero
    assert nonzero >= 3


@pytest.mark.jax
def test_receptive_field_is_tight_without_relu(rng):
    model = _randomize(_linear_net(lambda x: keras.layers.MaxPooling2D(2, name="pool")(x)), rng)
    x = rng.normal(0, 1, (1, 15, 15, 2)).astype("float32")
    p = Projector(model, "conv2")
    for pos in [(0, 0), (1, 0), (1, 1)]:
        proj = p.project(x, 0, mode="gradient", select=pos, signal="unit")[0]
        rows, cols = np.nonzero(np.abs(proj).sum(-1))
        box = p.receptive_field(pos, (15, 15))
        # Max pooling keeps one input per window, so the support is a subset; the corners of
        # the box are reached through the first conv's window.
        assert box.top <= rows.min() and rows.max() < box.bottom
        assert box.left <= cols.min() and cols.max() < box.right
        assert rows.max() - rows.min() >= box.height - 2 and cols.max() - cols.min() >= box.width - 2


# --------------------------------------------------------------------------- branches
def _branchy(rng):
    inputs = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="a")(inputs)
    b = keras.layers.Conv2D(4, 1, name="b")(inputs)
    b = keras.layers.BatchNormalization(name="b_bn")(b)
    s = keras.layers.Add(name="add")([a, b])
    s = keras.layers.ReLU(name="add_relu")(s)
    c = keras.layers.Conv2D(2, 5, padding="same", name="c")(inputs)
    m = keras.layers.Concatenate(name="cat")([s, c])
    m = keras.layers.MaxPooling2D(2, name="pool")(m)
    out = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="top")(m)
    head = keras.layers.Conv2D(2, 1, activation="softmax", name="probs")(out)
    return _randomize(keras.Model(inputs, head), rng)


@pytest.mark.jax
def test_functional_model_with_branches(rng):
    model = _branchy(rng)
    x = rng.normal(0, 1, (2, 16, 16, 3)).astype("float32")
    p = Projector(model, "top")
    proj, positions, _ = p.project(x, 1, mode="gradient", signal="unit", return_details=True)
    # Equal up to the order in which the branches' contributions are summed.
    np.testing.assert_allclose(proj, _unit_gradient(model, "top", x, 1, positions),
                               rtol=1e-6, atol=1e-6)
    dec = p.project(x, 1, select=positions)
    assert np.abs(dec).max() > 0 and not np.array_equal(dec, proj)
    for n, pos in enumerate(positions):
        box = p.receptive_field(pos, (16, 16))   # union over the three branches (c's 5x5 wins)
        assert box.height == min(16, 2 * pos[0] + 6) - max(0, 2 * pos[0] - 4)
        inside = np.zeros((16, 16), bool)
        inside[box.slices()] = True
        assert np.abs(dec[n][~inside]).max(initial=0) == 0
    # The softmax head cannot be inverted; everything before it can.
    assert "top" in invertible_layer_names(model) and "probs" not in invertible_layer_names(model)
    with pytest.raises(NotInvertibleError, match="'probs'.*softmax"):
        Projector(model, "probs")


def test_deconvnet_encoder_argmax_and_switch_pooling_agree(rng):
    if BACKEND != "tensorflow":
        pytest.skip("the argmax pooling pair is TensorFlow-only")
    model = _randomize(deconvnet_tf.build_model("deconvnet_tiny", num_classes=3, unpooling="argmax"), rng)
    switch = deconvnet_tf.models.with_unpooling(model, "switch")
    x = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    for layer in ("block3_conv2", "block3_pool", "block2_deconv1_relu"):
        a = project(model, layer, x, 2)
        b = project(switch, layer, x, 2)
        assert np.abs(a).max() > 0
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(a).max())
    # The decoder is invertible too (unpooling through held switches): gradient == autodiff.
    proj, positions, _ = Projector(model, "score").project(x, 1, mode="gradient", signal="unit",
                                                           return_details=True)
    np.testing.assert_allclose(proj, _unit_gradient(model, "score", x, 1, positions),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.jax
def test_all_and_position_selection(rng):
    model = _randomize(_linear_net(lambda x: keras.layers.MaxPooling2D(2, name="pool")(x)), rng)
    x = rng.normal(0, 1, (1, 15, 15, 2)).astype("float32")
    p = Projector(model, "conv2")
    total = p.project(x, 0, select="all", signal="unit")
    acts = p.activations(x)
    parts = sum(p.project(x, 0, select=(i, j), signal="unit")
                for i in range(acts.shape[1]) for j in range(acts.shape[2]))
    np.testing.assert_allclose(total, parts, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- errors
def test_unknown_layer_lists_the_valid_ones():
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3, unpooling="switch")
    with pytest.raises(UnknownLayerError, match="no layer named 'block9_conv1'") as info:
        Projector(model, "block9_conv1")
    message = str(info.value)
    assert "block1_conv1" in message and "block3_conv2_relu" in message and "'image'" not in message


def test_a_layer_of_an_ensemble_member_names_the_member():
    from deconvnet_tf.models import EnsembleNetwork

    members = [deconvnet_tf.build_model(p, num_classes=3) for p in ("deconvnet_tiny", "fcn8s_tiny")]
    with pytest.raises(UnknownLayerError, match="'block1_conv1' is a layer of the nested "
                       "network 'member0_deconvnet_tiny'.*visualise that network on its own"):
        Projector(EnsembleNetwork(members), "block1_conv1")


def test_layers_it_cannot_invert_are_named():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.LayerNormalization(name="ln")(x)
    x = keras.layers.Conv2D(4, 1, name="after_ln")(x)
    y = keras.layers.Lambda(lambda t: t * t, name="square")(inputs)
    y = keras.layers.Conv2D(4, 1, name="after_square")(y)
    z = keras.layers.Conv2D(4, 1, activation="tanh", name="tanh_conv")(inputs)
    model = keras.Model(inputs, [x, y, z])
    with pytest.raises(NotInvertibleError, match="'ln' \\(LayerNormalization\\)"):
        Projector(model, "after_ln")
    with pytest.raises(NotInvertibleError, match="'square' \\(Lambda\\)"):
        Projector(model, "after_square")
    with pytest.raises(NotInvertibleError, match="'tanh_conv'.*'tanh'"):
        Projector(model, "tanh_conv")
    assert invertible_layer_names(model) == ["conv"]


def test_channel_position_mode_and_shape_errors():
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3, unpooling="switch")
    p = Projector(model, "block1_conv1_relu")
    x = np.zeros((1, 16, 16, 3), "float32")
    with pytest.raises(VisualizationError, match="channel 8 is out of range.*8 channels \\(0..7\\)"):
        p.project(x, 8)
    with pytest.raises(VisualizationError, match="channel -1 is out of range"):
        p.project(x, -1)
    with pytest.raises(VisualizationError, match="position \\(16, 0\\) is outside the 16x16"):
        p.project(x, 0, select=(16, 0))
    with pytest.raises(VisualizationError, match="mode must be one of"):
        p.project(x, 0, mode="occlusion")
    with pytest.raises(VisualizationError, match="do not fit the model input"):
        p.project(np.zeros((1, 16, 16, 4), "float32"), 0)



def _relu_pool_conv(pool):
    """ReLU -> 2x2 max pooling -> 3x3 conv of ones (no bias): every pooled cell gets signal."""
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.ReLU(name="relu")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool")(x) if pool == "keras" else \
        SwitchMaxPooling2D(2, name="pool")(x)[0]
    x = keras.layers.Conv2D(1, 3, padding="same", use_bias=False, kernel_initializer="ones",
                            name="conv")(x)
    return keras.Model(inputs, x)


@pytest.mark.jax
@pytest.mark.parametrize("pool", ["keras", "switch"])
def test_ties_skip_differs_from_the_exact_rule_only_on_all_zero_windows(rng, pool):
    model = _relu_pool_conv(pool)
    x = rng.uniform(0.5, 2.0, (1, 6, 6, 1)).astype("float32")
    dead = [(0, 0), (1, 1), (2, 0)]  # pooling windows whose inputs are all negative -> ReLU 0
    for i, j in dead:
        x[0, 2 * i:2 * i + 2, 2 * j:2 * j + 2] = -1.0
    x[0, 4, 3] = 0.0  # a window with a zero but a positive maximum is not dead
    p = Projector(model, "conv")
    exact = p.project(x, 0, select=(1, 1))
    skip = p.project(x, 0, select=(1, 1), ties="skip")
    assert np.array_equal(exact, p.project(x, 0, select=(1, 1), ties="exact"))
    # The seed 3x3 ones-conv reaches all 9 pooled cells with the same positive value v.
    v = float(np.maximum(x, 0).reshape(3, 2, 3, 2).max(axis=(1, 3)).sum())
    expected_diff = np.zeros((6, 6), np.float32)
    for i, j in dead:
        expected_diff[2 * i, 2 * j] = v  # the exact rule's tie-broken top-left switch
    np.testing.assert_allclose(exact[0, ..., 0] - skip[0, ..., 0], expected_diff, rtol=1e-5)
    for i, j in dead:
        assert np.all(skip[0, 2 * i:2 * i + 2, 2 * j:2 * j + 2] == 0)
    # Every live window: the value at its switch, identical in both.
    live = np.ones((6, 6), bool)
    for i, j in dead:
        live[2 * i:2 * i + 2, 2 * j:2 * j + 2] = False
    np.testing.assert_array_equal(exact[0, ..., 0][live], skip[0, ..., 0][live])
    assert np.count_nonzero(skip) == 9 - len(dead)
    # Guided backprop's (x > 0) already blocks those pixels here: both rules agree.
    np.testing.assert_array_equal(p.project(x, 0, select=(1, 1), mode="guided"),
                                  p.project(x, 0, select=(1, 1), mode="guided", ties="skip"))
    with pytest.raises(VisualizationError, match="ties must be one of"):
        p.project(x, 0, ties="random")

