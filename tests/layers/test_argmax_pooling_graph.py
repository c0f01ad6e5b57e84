"""The argmax pair inside a traced graph: Grappler (TensorFlow's graph optimizer) must be able to
optimize a network that pools a ReLU's output with ``MaxPoolingWithArgmax2D``.

Its arithmetic optimizer rewrites ``maxpool(relu(x))`` as ``relu(maxpool(x))`` when the ReLU
feeds only the pooling, and rewires *every* consumer of the pooling, the int64 switches
included, to the float ReLU. The rewritten graph does not type-check, so TensorFlow drops all
of its optimizations for that function and logs "Ignoring multi-device function optimization
failure". The layer puts a no-op ``EnsureShape`` between its input and the pooling."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.conftest import requires_tf

pytestmark = requires_tf

SCRIPT = textwrap.dedent("""
    import numpy as np
    import keras
    from deconvnet_tf.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D

    image = keras.Input((12, 10, 3))
    # conv -> batch norm -> ReLU, as in every encoder block (a ReLU right after a bias add
    # is left to the remapper's fusion instead, and the rewrite does not happen)
    conv = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(image)
    features = keras.layers.ReLU()(keras.layers.BatchNormalization()(conv))
    pooled, switches = MaxPoolingWithArgmax2D()(features)
    restored = MaxUnpooling2D()([keras.layers.ReLU()(pooled), switches, features])
    model = keras.Model(image, restored)
    x = np.random.default_rng(0).normal(size=(2, 12, 10, 3)).astype("float32")
    got = np.asarray(model.predict_on_batch(x))
    want = np.asarray(model(x))  # eager: no Grappler
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    print("ok", got.shape)
""")


def test_a_relu_before_the_pooling_leaves_the_graph_optimizable():
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="0")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ok (2, 12, 10, 4)" in proc.stdout
    assert "function optimization failure" not in proc.stderr, proc.stderr[-3000:]
