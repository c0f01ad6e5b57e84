"""An EnsembleNetwork (EDeconvNet as one network) in a Segmenter exports like one network:
SavedModel and LiteRT fp32 equal Keras, the int8 file is builtins-only and agrees with Keras,
and DeconvNet members with argmax unpooling are rebuilt with the switch pair (same outputs)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import requires_tf
from tests.export.artifacts import CLASSES, HEIGHT, WIDTH, get_artifacts, held_out_scenes

pytestmark = requires_tf


@pytest.fixture(scope="module")
def ensemble_segmenter(tmp_path_factory):
    import deconvnet_tf
    from deconvnet_tf.models import DeconvNet, EnsembleNetwork

    art = get_artifacts(tmp_path_factory)
    network = getattr(art.model, "network", art.model)
    twin = DeconvNet.from_config(network.get_config())  # a second member: other weights
    twin.set_weights([w * 0.9 if w.ndim == 4 else w for w in network.get_weights()])
    ensemble = EnsembleNetwork([network, twin], weights=[2.0, 1.0])
    return art, deconvnet_tf.Segmenter(ensemble, image_size=(HEIGHT, WIDTH), class_names=CLASSES)


def test_argmax_members_are_rebuilt_with_the_switch_pair(ensemble_segmenter, rng):
    from deconvnet_tf.models import with_unpooling

    _, seg = ensemble_segmenter
    network = seg.network
    assert network.unpooling == "argmax"
    switch = with_unpooling(network, "switch")
    assert switch.unpooling == "switch" and switch.mixing_weights == [2.0, 1.0]
    image = rng.integers(0, 256, (2, HEIGHT, WIDTH, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(switch(image)), np.asarray(network(image)), atol=1e-6)


@pytest.mark.slow  # a SavedModel and two LiteRT conversions of two networks (~30 s on 2 cores)
def test_savedmodel_litert_and_int8_of_an_ensemble(ensemble_segmenter, tmp_path):
    import tensorflow as tf

    from deconvnet_tf.export import (
        export_saved_model,
        export_tflite_variants,
        non_builtin_ops,
        read_metadata,
    )
    from deconvnet_tf.lite import LiteSegmenter

    art, seg = ensemble_segmenter
    saved = export_saved_model(seg, tmp_path / "sm")
    lite = export_tflite_variants(
        seg, {"none": tmp_path / "e.tflite", "int8": tmp_path / "e_int8.tflite"},
        representative_data=art.data_dir)
    for path in lite.values():
        assert non_builtin_ops(path) == set()
        assert read_metadata(path).class_names == CLASSES
    serve = tf.saved_model.load(str(saved)).signatures["serving_default"]
    fp32, int8 = (LiteSegmenter(lite[q], threads=2) for q in ("none", "int8"))
    equal = total = 0
    for image in held_out_scenes(6):
        probs = seg.predict_proba(image)
        sm = serve(images=tf.constant(image[None]))["probabilities"].numpy()[0]
        assert np.abs(sm - probs).max() <= 1e-4
        labels, lite_probs = fp32.predict(image)
        assert np.abs(lite_probs - probs).max() <= 1e-4
        int8_labels, _ = int8.predict(image)
        equal += int((int8_labels == probs.argmax(-1)).sum())
        total += int8_labels.size
    assert equal / total >= 0.97  # full-integer int8 of two networks: the single net's bar, less 1
