"""tools/visualize_rules_figure.py: one row per (unit, image), five titled columns."""

from __future__ import annotations

import numpy as np

import deconvnet_tf
from deconvnet_tf.render import TITLE_HEIGHT

import visualize_rules_figure  # tools/visualize_rules_figure.py (pytest's pythonpath)


def test_rules_figure_rows_and_columns():
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3, unpooling="switch")
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    picture = visualize_rules_figure.rules_figure(model, "block2_conv1_relu", images,
                                                  channels=2, tile=40)
    # 2 channels x 2 images = 4 rows of 40 px (+ 3 gaps) under the titles; 5 columns.
    assert picture.shape == (TITLE_HEIGHT + 4 * 40 + 3 * 4, 5 * 40 + 4 * 4, 3)
    assert picture[:TITLE_HEIGHT].min() < 100  # titled
    assert visualize_rules_figure.docs_photos().shape == (2, 180, 240, 3)
