"""The shared export fixture refuses a trained net that is dead on a probe image."""

import keras
import numpy as np

from tests.export.artifacts import _is_dead_somewhere, _probe_images


def _net(fn):
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Lambda(fn)(inputs))


def test_a_constant_output_counts_as_dead():
    # Same logits at every pixel, whatever the image: what a net whose ReLUs all died gives.
    assert _is_dead_somewhere(_net(lambda x: 0.0 * x + 1.5))


def test_an_output_that_follows_the_image_is_alive():
    assert not _is_dead_somewhere(_net(lambda x: x / 255.0))


def test_probes_cover_the_sizes_and_noise_the_export_tests_use():
    shapes = {image.shape[:2] for image in _probe_images()}
    assert {(48, 64), (37, 53), (50, 70), (32, 40)} <= shapes
    assert all(image.dtype == np.uint8 for image in _probe_images())
