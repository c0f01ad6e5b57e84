"""Palette, colourised labels, overlays and atomic PNG writing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deconvnet_tf.render import colorize, make_palette, overlay, save_png, side_by_side


def test_voc_palette_first_colours():
    palette = make_palette(21)
    assert palette.shape == (21, 3) and palette.dtype == np.uint8
    np.testing.assert_array_equal(palette[:4], [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]])
    assert len({tuple(c) for c in make_palette(256)}) == 256


def test_colorize_overlay_and_png_round_trip(tmp_path):
    label = np.array([[0, 1], [2, 3]], np.uint8)
    rgb = colorize(label)
    np.testing.assert_array_equal(rgb[1, 1], [128, 128, 0])
    image = np.full((2, 2, 3), 200, np.uint8)
    mixed = overlay(image, label, alpha=0.5)
    np.testing.assert_array_equal(mixed[0, 0], [200, 200, 200])  # background stays clear
    np.testing.assert_array_equal(mixed[0, 1], [164, 100, 100])
    path = save_png(tmp_path / "sub" / "x.png", side_by_side(image, rgb))
    back = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back[:, :2], image)
    np.testing.assert_array_equal(back[:, -2:], rgb)
    assert not list((tmp_path / "sub").glob(".*tmp"))
    gray = save_png(tmp_path / "label.png", label)
    np.testing.assert_array_equal(cv2.imread(str(gray), cv2.IMREAD_UNCHANGED), label)


def test_render_errors():
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        colorize(np.zeros((2, 2, 1)))
    with pytest.raises(ValueError, match="differ"):
        overlay(np.zeros((2, 3, 3), np.uint8), np.zeros((2, 2), np.uint8))
