"""The PyTorch peer of the GPU and CPU benchmarks is the package's network, layer for layer.

PyTorch is not a dependency of the package (the peer is benchmark-only), so this module is
skipped where torch is not installed (CI); it runs on the GPU device image, which has both.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch (benchmark peer only) is not installed")

import deconvnet_tf  # noqa: E402
from deconvnet_tf.models import get_architecture  # noqa: E402

from peers.deconvnet_torch import (  # noqa: E402  (tools/peers/; pytest's pythonpath has tools/)
    DeconvNetTorch, keras_param_count, load_keras_weights)


def test_paper_network_has_the_same_parameter_count():
    peer = DeconvNetTorch(**get_architecture("deconvnet_vgg16").to_dict())
    assert keras_param_count(peer) == 251_839_061  # = build_model("deconvnet_vgg16").count_params()


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["deconvnet_vgg16", "deconvnet_vgg16_compact"])
def test_benchmarked_presets_have_the_keras_parameter_count(preset):
    """The CPU benchmark's peer rows (tools/bench_peers.py) compare these two presets: the peer
    has exactly the Keras model's parameters (BatchNorm statistics counted as Keras does), and
    the same layers in the same order."""
    import keras

    model = deconvnet_tf.build_model(preset, num_classes=21, input_shape=(224, 224, 3))
    peer = DeconvNetTorch(**get_architecture(preset, num_classes=21).to_dict())
    assert keras_param_count(peer) == model.count_params()
    keras_layers = [layer.name for layer in model.layers if layer.weights]
    assert list(peer.layers) == keras_layers
    del model
    keras.backend.clear_session()


def test_same_weights_same_logits_at_an_odd_size():
    """Keras weights copied into the peer give the Keras model's logits (ceil-mode pooling,
    unpooling to odd sizes, transposed-conv kernel layout, BatchNorm statistics)."""
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5, input_shape=(45, 50, 3))
    rng = np.random.default_rng(0)
    weights = {}
    for layer in model.layers:
        for variable in layer.weights:
            key = f"{layer.name}/{variable.path.split('/')[-1]}"
            if key.endswith(("gamma", "moving_variance")):
                variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype("float32"))
            elif key.endswith(("beta", "moving_mean")):
                variable.assign(rng.normal(0, 0.3, variable.shape).astype("float32"))
            weights[key] = np.asarray(variable.value)
    peer = DeconvNetTorch(**get_architecture("deconvnet_tiny", num_classes=5).to_dict()).eval()
    assert keras_param_count(peer) == model.count_params()
    load_keras_weights(peer, weights)
    x = rng.integers(0, 256, (2, 45, 50, 3)).astype(np.uint8)
    expected = np.asarray(model.predict_on_batch(x))
    with torch.no_grad():
        got = peer(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
