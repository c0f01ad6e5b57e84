"""The ``deconvnet_efficientnet`` family: the EfficientNet-Lite0 encoder against a NumPy
reference, its bundled ImageNet weights (read without PyTorch), the model's shapes, freezing
and errors, and a training run that uses it."""

from __future__ import annotations

import pickle
import struct

import keras
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.layers import VGGPreprocessing
from deconvnet_tf.models import (
    EfficientDeconvNet,
    EfficientFCN,
    count_flops,
    get_architecture,
    load_encoder_weights,
)
from deconvnet_tf.models.efficientnet import efficientnet_lite0_arrays, efficientnet_lite0_path
from deconvnet_tf.models.torch_state import read_state_dict
from deconvnet_tf.training.config import TrainConfig
from tests.conftest import requires_tf

PRESET = "deconvnet_efficientnet_lite0"


# --- a legacy torch.save file written without PyTorch, opcode by opcode ----------------------
def _frag(value) -> bytes:
    """The pickle opcodes of a plain value (no PROTO header, no STOP)."""
    return pickle.dumps(value, protocol=2)[2:-1]


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _tensor(storage: str, storage_type: str, numel: int, offset: int, size, stride) -> bytes:
    pid = (b"(" + _frag("storage") + _global("torch", storage_type) + _frag(storage)
           + _frag("cpu") + _frag(numel) + b"tQ")  # MARK ... TUPLE, BINPERSID
    return (_global("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + _frag(offset)
            + _frag(tuple(size)) + _frag(tuple(stride)) + _frag(False)
            + _global("collections", "OrderedDict") + b")R" + b"tR")


def _write_legacy(path, entries: dict, storages: dict) -> None:
    """``entries``: name -> (storage key, offset, size, stride); ``storages``: key -> array."""
    types = {np.dtype("float32"): "FloatStorage", np.dtype("int64"): "LongStorage"}
    body = b"\x80\x02" + _global("collections", "OrderedDict") + b")R("
    for name, (key, offset, size, stride) in entries.items():
        data = storages[key]
        body += _frag(name) + _tensor(key, types[data.dtype], data.size, offset, size, stride)
    body += b"u."  # SETITEMS, STOP
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(body)
        pickle.dump(list(storages), f, protocol=2)
        for key, data in storages.items():
            f.write(struct.pack("<q", data.size) + data.tobytes())


def test_state_dict_reader_rebuilds_strided_tensors(tmp_path):
    kernel_hwio = np.arange(2 * 3 * 4 * 5, dtype="float32").reshape(2, 3, 4, 5)
    shared = np.arange(10, dtype="float32")
    storages = {"0": kernel_hwio.ravel(), "1": shared, "2": np.array([7], "int64")}
    # an OIHW view of HWIO memory (as the bundled file stores its kernels), two views into
    # one storage at different offsets, and an int64 scalar
    entries = {"conv.weight": ("0", 0, (5, 4, 2, 3), (1, 5, 60, 20)),
               "a": ("1", 0, (4,), (1,)), "b": ("1", 6, (2, 2), (2, 1)),
               "bn.num_batches_tracked": ("2", 0, (), ())}
    path = tmp_path / "tiny.pth"
    _write_legacy(path, entries, storages)
    state = read_state_dict(path)
    assert list(state) == list(entries)
    np.testing.assert_array_equal(state["conv.weight"], kernel_hwio.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(state["a"], shared[:4])
    np.testing.assert_array_equal(state["b"], shared[6:].reshape(2, 2))
    count = state["bn.num_batches_tracked"]
    assert count.dtype == np.int64 and count == 7


def test_state_dict_reader_refuses_code_and_bad_files(tmp_path):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({}, f, protocol=2)
        f.write(b"\x80\x02" + _global("os", "system") + b"(" + _frag("echo hacked") + b"tR.")
    with pytest.raises(ValueError, match=r"evil\.pth.*holds no os\.system"):
        read_state_dict(evil)
    good = tmp_path / "good.pth"
    _write_legacy(good, {"w": ("0", 0, (6,), (1,))}, {"0": np.ones(6, "float32")})
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:-8])
    with pytest.raises(ValueError, match=r"truncated\.pth.*truncated"):
        read_state_dict(truncated)
    with pytest.raises(ValueError, match="no magic number"):
        read_state_dict(_pickle_file(tmp_path / "plain.pth", {"w": 1}))
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        read_state_dict(tmp_path / "missing.pth")
    import zipfile

    with zipfile.ZipFile(tmp_path / "new.pth", "w") as z:
        z.writestr("archive/data.pkl", b"")
    with pytest.raises(ValueError, match="zip-format"):
        read_state_dict(tmp_path / "new.pth")


def _pickle_file(path, value):
    with open(path, "wb") as f:
        pickle.dump(value, f, protocol=2)
    return path


# --- the encoder against NumPy ----------------------------------------------------------------
def _same_pad(x, k, stride):
    """TensorFlow's 'same' padding of an NHWC array (the extra pixel at the bottom/right)."""
    pads = []
    for size in x.shape[1:3]:
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))


def _np_conv(x, kernel_oihw, stride=1, depthwise=False):
    k = kernel_oihw.shape[-1]
    x = _same_pad(x, k, stride)
    h = (x.shape[1] - k) // stride + 1
    w = (x.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], h, w, kernel_oihw.shape[0]), "float64")
    for i in range(k):
        for j in range(k):
            patch = x[:, i:i + stride * h:stride, j:j + stride * w:stride, :]
            tap = kernel_oihw[:, :, i, j]  # (out, in) or (channels, 1)
            out += patch * tap[:, 0] if depthwise else patch @ tap.T
    return out


def _np_bn(x, state, key, eps=1e-3):
    g, b, m, v = (state[f"{key}.{n}"] for n in ("weight", "bias", "running_mean", "running_var"))
    return (x - m) / np.sqrt(v + eps) * g + b


@pytest.mark.jax
def test_pretrained_stem_and_first_block_match_a_numpy_reference(rng):
    """Kernels transposed the right way, TF 'same' padding at odd sizes, BN epsilon, ReLU6."""
    state = read_state_dict(efficientnet_lite0_path())
    model = deconvnet_tf.build_model(PRESET, num_classes=3, encoder_weights="efficientnet_lite0")
    sub = keras.Model(model.inputs[0], model.get_layer("block1a_project_bn").output)
    image = rng.integers(0, 256, size=(1, 17, 23, 3)).astype("uint8")
    x = (image.astype("float64") - 127.0) / 128.0
    x = np.clip(_np_bn(_np_conv(x, state["_conv_stem.weight"], 2), state, "_bn0"), 0, 6)
    x = _np_conv(x, state["_blocks.0._depthwise_conv.weight"], 1, depthwise=True)
    x = np.clip(_np_bn(x, state, "_blocks.0._bn1"), 0, 6)
    x = _np_bn(_np_conv(x, state["_blocks.0._project_conv.weight"]), state, "_blocks.0._bn2")
    ours = np.asarray(sub(image, training=False))
    assert ours.shape == x.shape == (1, 9, 12, 16)
    np.testing.assert_allclose(ours, x, rtol=1e-4, atol=1e-4)


@pytest.mark.jax
def test_bundled_weights_fill_every_encoder_layer():
    arrays = efficientnet_lite0_arrays()
    # stem + top (conv and BN each), 16 blocks: 3 convs + 3 BNs, block1a without the expansion
    assert len(arrays) == 4 + 16 * 6 - 2
    model = deconvnet_tf.build_model(PRESET, num_classes=3, encoder_weights="efficientnet_lite0")
    for name, weights in arrays.items():
        for ours, expected in zip(model.get_layer(name).get_weights(), weights):
            np.testing.assert_array_equal(ours, expected, err_msg=name)
    dw = model.get_layer("block6d_dwconv").kernel
    assert tuple(dw.shape) == (5, 5, 1152, 1)
    assert float(np.abs(np.asarray(model.get_layer("stem_conv").kernel)).mean()) > 0.1


# --- the model ----------------------------------------------------------------------------------
@pytest.mark.jax
@pytest.mark.parametrize("preset, cls", [(PRESET, EfficientDeconvNet),
                                         ("fcn8s_efficientnet_lite0", EfficientFCN)])
def test_any_size_from_32_comes_back_at_its_size(rng, preset, cls):
    model = deconvnet_tf.build_model(preset, num_classes=4)
    assert isinstance(model, cls) and model.min_input_size == 32
    for h, w in [(32, 32), (33, 47), (70, 97)]:
        out = np.asarray(model(rng.integers(0, 256, size=(1, h, w, 3)).astype("uint8")))
        assert out.shape == (1, h, w, 4) and np.all(np.isfinite(out))
    with pytest.raises(ValueError, match=r"downsamples 32x; the minimum input size is 32x32"):
        deconvnet_tf.build_model(preset, input_shape=(31, 64, 3))


@pytest.mark.jax
def test_frozen_blocks_freeze_the_stem_and_leading_stages():
    model = deconvnet_tf.build_model(PRESET, num_classes=3, frozen_blocks=2)
    for name in ("stem_conv", "stem_bn", "block1a_dwconv", "block2b_project_bn"):
        assert not model.get_layer(name).trainable, name
    for name in ("block3a_expand_conv", "top_conv", "fc6", "up1_deconv"):
        assert model.get_layer(name).trainable, name
    assert all(layer.trainable for layer in deconvnet_tf.build_model(PRESET).layers)
    with pytest.raises(ValueError, match=r"frozen_blocks must be in \[0, 7\]"):
        deconvnet_tf.build_model(PRESET, frozen_blocks=8)


@pytest.mark.jax
def test_errors_name_what_does_not_fit():
    with pytest.raises(ValueError, match="takes 'efficientnet_lite0'"):
        deconvnet_tf.build_model(PRESET, encoder_weights="hed")
    with pytest.raises(ValueError, match="needs a model of the families"):
        deconvnet_tf.build_model("deconvnet_tiny", encoder_weights="efficientnet_lite0")
    with pytest.raises(ValueError, match="does not apply"):
        deconvnet_tf.build_model(PRESET, unpooling="switch")
    with pytest.raises(ValueError, match="encoder_width must be 1.0"):
        get_architecture(PRESET, encoder_width=0.5)
    with pytest.raises(ValueError, match="must list the 7 stages"):
        get_architecture(PRESET, blocks=((16, 1),))
    narrow = deconvnet_tf.build_model(PRESET, blocks=((8, 1),) * 7)
    stem = np.array(narrow.get_layer("stem_conv").kernel)
    with pytest.raises(ValueError, match=r"Cannot load 'efficientnet_lite0' into top_conv: "
                                         r"shapes \[\(1, 1, 8, 1280\)\]"):
        load_encoder_weights(narrow, "efficientnet_lite0")
    # checked before anything is set: the stem (whose shape fits) was not loaded either
    np.testing.assert_array_equal(np.asarray(narrow.get_layer("stem_conv").kernel), stem)


@pytest.mark.jax
def test_round_trip_and_softmax(tmp_path, rng):
    model = deconvnet_tf.build_model(PRESET, num_classes=3, output_activation="softmax",
                                     fc_dropout=0.25, decoder_width=0.5)
    x = rng.integers(0, 256, size=(2, 40, 56, 3)).astype("uint8")
    p = np.asarray(model(x))
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)
    model.save(tmp_path / "eff.keras")
    loaded = deconvnet_tf.load_model(tmp_path / "eff.keras")
    assert type(loaded) is EfficientDeconvNet and loaded.architecture == model.architecture
    np.testing.assert_allclose(np.asarray(loaded(x)), p, atol=1e-6)


def test_count_flops_counts_depthwise_convolutions():
    inputs = keras.Input((10, 12, 8))
    outputs = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(inputs)
    assert count_flops(keras.Model(inputs, outputs)) == 2 * 5 * 6 * 3 * 3 * 16
    model = deconvnet_tf.build_model(PRESET, num_classes=11)
    assert 1.0e9 < count_flops(model, (224, 224)) < 3.0e9


@pytest.mark.jax
def test_preprocessing_scale():
    layer = VGGPreprocessing((127.0, 127.0, 127.0), bgr=False, scale=1 / 128)
    out = np.asarray(layer(np.array([[[[255, 127, 0]]]], "uint8")))
    np.testing.assert_allclose(out[0, 0, 0], [1.0, 0.0, -127 / 128])
    assert VGGPreprocessing.from_config(layer.get_config()).scale == 1 / 128
    assert "scale" not in VGGPreprocessing().get_config()  # VGG models' configs unchanged
    for bad in (0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="`scale` must be a finite number > 0"):
            VGGPreprocessing(scale=bad)


@requires_tf  # tf.data input pipelines
def test_training_run_with_the_pretrained_encoder(tmp_path):
    from deconvnet_tf.training.train import train

    config = TrainConfig(preset=PRESET, encoder_weights="efficientnet_lite0", frozen_blocks=2,
                         decoder_width=0.5,
                         output=str(tmp_path / "run"), epochs=1, batch_size=2,
                         crop_size=[48, 64], optimizer="adam", learning_rate=1e-3,
                         bn_momentum=0.9, synthetic_train=4, synthetic_val=2,
                         synthetic_size=[48, 64], steps_per_epoch=2, deterministic=True,
                         mixed_precision=False)
    result = train(config, verbose=0)
    assert np.all(np.isfinite(result.history["loss"]))
    model = deconvnet_tf.load_model(result.model_path)
    assert isinstance(model, EfficientDeconvNet) and model.frozen_blocks == 2
    assert model.architecture.decoder_width == 0.5
    assert model.get_layer("up4_deconv").filters == 112  # 2 x 112 channels at 1/16, halved
    # the frozen stem kept the ImageNet weights through training
    np.testing.assert_array_equal(np.asarray(model.get_layer("stem_conv").kernel),
                                  efficientnet_lite0_arrays()["stem_conv"][0])


@pytest.mark.parametrize("bad", [0, -0.5, float("inf"), float("nan"), "wide", True])
def test_decoder_width_setting_is_checked(bad):
    from deconvnet_tf.training.config import ConfigError

    with pytest.raises(ConfigError, match=r"config field .decoder_width.: (must be a|expected a)"):
        TrainConfig(decoder_width=bad)


@pytest.mark.parametrize("preset, crop", [(PRESET, [16, 64]), ("deconvnet_tiny", [16, 16])])
def test_crops_below_the_presets_minimum_fail_before_the_run_starts(tmp_path, preset, crop):
    from deconvnet_tf.training.config import ConfigError
    from deconvnet_tf.training.train import train

    config = TrainConfig(preset=preset, output=str(tmp_path / "run"), epochs=1, crop_size=crop)
    with pytest.raises(ConfigError, match=r"config field 'crop_size': \[16, \d+\] is smaller "
                                          rf"than {preset}'s minimum input size"):
        train(config, verbose=0)
    assert not (tmp_path / "run").exists()  # nothing written
