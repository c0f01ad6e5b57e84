"""The ``fcn8s_efficientnet`` family: FCN-8s's head on the EfficientNet-Lite0 encoder of
``camvid_compact`` (the paper's comparison on that encoder): the bundled weights, the
FCN-8s fusion of the 1/32, 1/16 and 1/8 scores, sizes, freezing, errors and a training run."""

from __future__ import annotations

import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.models import EfficientDeconvNet, EfficientFCN, get_architecture
from deconvnet_tf.models.efficientnet import efficientnet_lite0_arrays
from deconvnet_tf.training.config import TrainConfig
from tests.conftest import requires_tf

PRESET = "fcn8s_efficientnet_lite0"


@pytest.mark.jax
def test_same_encoder_and_weights_as_the_deconvnet_model():
    fcn = deconvnet_tf.build_model(PRESET, num_classes=3, encoder_weights="efficientnet_lite0")
    dn = deconvnet_tf.build_model("deconvnet_efficientnet_lite0", num_classes=3)
    assert isinstance(fcn, EfficientFCN)
    shared = [layer.name for layer in dn.layers if layer.name.startswith(
        ("stem_", "block", "top_", "fc6", "fc7"))]
    assert len(shared) > 100
    for name in shared:  # same layer names, kinds and shapes up to fc7
        ours, theirs = fcn.get_layer(name), dn.get_layer(name)
        assert type(ours) is type(theirs), name
        assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights], name
    for name, weights in efficientnet_lite0_arrays().items():
        for ours, expected in zip(fcn.get_layer(name).get_weights(), weights):
            np.testing.assert_array_equal(ours, expected, err_msg=name)
    assert fcn.count_params() < dn.count_params()  # FCN's head: class scores only


def _set_constant_scores(model, fr: np.ndarray, skip16: np.ndarray, skip8: np.ndarray):
    """Every class score a constant per scale: zero kernels, biases ``fr``/``skip16``/``skip8``."""
    for name, bias in (("score_fr", fr), ("score_skip16", skip16), ("score_skip8", skip8)):
        layer = model.get_layer(name)
        layer.set_weights([np.zeros(layer.kernel.shape, "float32"), bias.astype("float32")])


@pytest.mark.jax
def test_fcn8s_adds_the_scores_of_the_three_scales(rng):
    """With constant scores per scale, the bilinear-initialised upsamplings keep constants
    constant away from the border, so the output there is their sum: each scale is wired in
    once (a skip left out, added twice or cropped wrong would change the sum)."""
    model = deconvnet_tf.build_model(PRESET, num_classes=3, input_shape=(128, 160, 3))
    fr, s16, s8 = np.array([1.0, -2.0, 0.5]), np.array([0.25, 1.0, 0.0]), np.array([0.0, 3, -1])
    image = rng.integers(0, 256, size=(1, 128, 160, 3)).astype("uint8")
    _set_constant_scores(model, fr, np.zeros(3), np.zeros(3))
    inner = (slice(None), slice(32, -32), slice(32, -32))
    np.testing.assert_allclose(np.asarray(model(image))[inner], np.broadcast_to(fr, (1, 64, 96, 3)),
                               atol=1e-5)
    _set_constant_scores(model, fr, s16, s8)
    np.testing.assert_allclose(np.asarray(model(image))[inner],
                               np.broadcast_to(fr + s16 + s8, (1, 64, 96, 3)), atol=1e-5)


@pytest.mark.jax
def test_skip_scores_start_at_zero():
    """As in FCN-8s: a fresh model is FCN-32s's upsampled scores (sizes: test_efficientnet)."""
    model = deconvnet_tf.build_model(PRESET, num_classes=4)
    for name in ("score_skip16", "score_skip8"):
        assert not np.any(np.asarray(model.get_layer(name).kernel)), name
    assert np.any(np.asarray(model.get_layer("score_fr").kernel))


@pytest.mark.jax
def test_frozen_blocks_and_errors():
    model = deconvnet_tf.build_model(PRESET, num_classes=3, frozen_blocks=2)
    for name in ("stem_conv", "block1a_dwconv", "block2b_project_bn"):
        assert not model.get_layer(name).trainable, name
    for name in ("block3a_expand_conv", "top_conv", "fc6", "score_fr", "upscore8"):
        assert model.get_layer(name).trainable, name
    with pytest.raises(ValueError, match="a fcn8s_efficientnet model takes 'efficientnet_lite0'"):
        deconvnet_tf.build_model(PRESET, encoder_weights="hed")
    with pytest.raises(ValueError, match="does not apply to the fcn8s_efficientnet family"):
        deconvnet_tf.build_model(PRESET, unpooling="switch")
    with pytest.raises(ValueError, match="blocks of fcn8s_efficientnet must list the 7 stages"):
        get_architecture(PRESET, blocks=((16, 1),))
    with pytest.raises(ValueError, match="EfficientFCN needs family 'fcn8s_efficientnet'"):
        EfficientFCN(get_architecture("deconvnet_efficientnet_lite0"))
    with pytest.raises(ValueError, match="EfficientDeconvNet needs family"):
        EfficientDeconvNet(get_architecture(PRESET))
    with pytest.raises(ValueError, match="FCN needs family fcn32s, fcn16s or fcn8s"):
        deconvnet_tf.models.FCN(get_architecture(PRESET))


@requires_tf  # tf.data input pipelines
def test_training_run_and_round_trip(tmp_path, rng):
    from deconvnet_tf.training.train import train

    config = TrainConfig(preset=PRESET, encoder_weights="efficientnet_lite0", frozen_blocks=2,
                         output=str(tmp_path / "run"), epochs=1, batch_size=2,
                         crop_size=[48, 64], optimizer="adam", learning_rate=1e-3,
                         bn_momentum=0.9, synthetic_train=4, synthetic_val=2,
                         synthetic_size=[48, 64], steps_per_epoch=2, deterministic=True,
                         mixed_precision=False)
    result = train(config, verbose=0)
    assert np.all(np.isfinite(result.history["loss"]))
    model = deconvnet_tf.load_model(result.model_path)
    assert isinstance(model, EfficientFCN) and model.frozen_blocks == 2
    assert model.architecture == get_architecture(PRESET, num_classes=model.architecture.num_classes,
                                                  bn_momentum=0.9)
    # trained: the zero-initialised skip scores moved, the frozen stem did not
    assert np.any(np.asarray(model.get_layer("score_skip8").kernel))
    np.testing.assert_array_equal(np.asarray(model.get_layer("stem_conv").kernel),
                                  efficientnet_lite0_arrays()["stem_conv"][0])
    x = rng.integers(0, 256, size=(1, 40, 56, 3)).astype("uint8")
    model.save(tmp_path / "fcn.keras")
    again = deconvnet_tf.load_model(tmp_path / "fcn.keras")
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-6)
