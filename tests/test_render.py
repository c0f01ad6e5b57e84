"""Palette, colourised labels, overlays and atomic PNG writing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deconvnet_tf.io import OutputError, is_project_output, list_images
from deconvnet_tf.render import (
    check_outputs,
    colorize,
    make_palette,
    overlay,
    plan_predictions,
    save_png,
    save_prediction,
    side_by_side,
)


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


def test_save_prediction_names_cannot_collide_with_the_input(tmp_path):
    image = np.full((3, 4, 3), 90, np.uint8)
    save_png(tmp_path / "photo.png", image)
    label = np.array([[0, 1, 2, 3]] * 3, np.uint8)
    probs = np.eye(4, dtype=np.float32)[label]
    paths = save_prediction(tmp_path, "photo", image, label, probs, overwrite=False)
    assert {k: p.name for k, p in paths.items()} == {
        "label": "photo_labels.png", "color": "photo_color.png",
        "overlay": "photo_overlay.png", "probs": "photo_probs.npy"}
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "photo.png"))[..., ::-1], image)
    np.testing.assert_array_equal(cv2.imread(str(paths["label"]), cv2.IMREAD_UNCHANGED), label)
    assert np.load(paths["probs"]).dtype == np.float16
    assert all(is_project_output(paths[k]) for k in ("label", "color", "overlay"))
    assert list_images(tmp_path) == [tmp_path / "photo.png"]  # outputs are not inputs
    with pytest.raises(OutputError, match="photo_labels.png' already exists"):
        save_prediction(tmp_path, "photo", image, label, overwrite=False)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_plan_predictions_checks_outputs_before_any_work(tmp_path):
    for name in ("a.png", "b.png"):
        save_png(tmp_path / "in" / name, np.zeros((2, 2, 3), np.uint8))
    planned = plan_predictions(tmp_path / "in", tmp_path / "out", probabilities=True)
    assert [(p.name, sorted(n.name for n in names.values())) for p, names in planned] == [
        ("a.png", ["a_color.png", "a_labels.png", "a_overlay.png", "a_probs.npy"]),
        ("b.png", ["b_color.png", "b_labels.png", "b_overlay.png", "b_probs.npy"])]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b_overlay.png").write_bytes(b"user file")
    with pytest.raises(OutputError, match="b_overlay.png' already exists; pass --overwrite"):
        plan_predictions(tmp_path / "in", tmp_path / "out")
    plan_predictions(tmp_path / "in", tmp_path / "out", overwrite=True)
    (tmp_path / "out" / "a_color.png").mkdir()
    with pytest.raises(OutputError, match="a_color.png' is a folder"):
        plan_predictions(tmp_path / "in", tmp_path / "out", overwrite=True)
    save_png(tmp_path / "in2" / "x.png", np.zeros((2, 2, 3), np.uint8))
    save_png(tmp_path / "in2" / "x_overlay.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(OutputError, match="x_overlay.png' would replace the input"):
        plan_predictions(tmp_path / "in2", tmp_path / "in2", overwrite=True)
    with pytest.raises(OutputError, match="would replace the input"):
        check_outputs([tmp_path / "in" / "." / "a.png"], inputs=[tmp_path / "in" / "a.png"],
                      overwrite=True)
    save_png(tmp_path / "in3" / "a.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="Two inputs share the stem 'a'"):
        plan_predictions([tmp_path / "in", tmp_path / "in3"], tmp_path / "o")


def test_figure_grid_titles_and_legend():
    from deconvnet_tf.render import TITLE_HEIGHT, figure_grid, legend, text_strip, title_row

    palette = make_palette(5)
    a = np.full((10, 30, 3), 50, np.uint8)
    b = colorize(np.arange(5).repeat(6)[None].repeat(10, 0), palette)  # (10, 30)
    plain = figure_grid([[a, b], [a, b[:, :20]]], gap=4)
    assert plain.shape == (2 * 10 + 4, 2 * 30 + 4, 3)
    np.testing.assert_array_equal(plain[:10], side_by_side(a, b))
    np.testing.assert_array_equal(plain[14:, 54:], 255)  # narrower image padded with white
    names = ["background", "sky", "road", "car", "a very long class name"]
    full = figure_grid([[a, b], [a, b]], ["image", "prediction"], class_names=names,
                       palette=palette, extra_legend=[("void", (255, 255, 255))])
    np.testing.assert_array_equal(full[TITLE_HEIGHT:TITLE_HEIGHT + 24],
                                  figure_grid([[a, b], [a, b]]))
    assert full[:TITLE_HEIGHT, :30].min() < 100 and full[:TITLE_HEIGHT, 34:].min() < 100
    key = full[TITLE_HEIGHT + 24:]
    assert key.shape[1] == 64 and key.shape[0] > 18  # wrapped onto several lines
    colours = {tuple(c) for c in key.reshape(-1, 3)}
    assert all(tuple(c) in colours for c in palette)
    wide = legend(names, palette, 800)
    assert wide.shape == (22, 800, 3)  # one line
    assert text_strip("", 10).min() == 255 and text_strip("x" * 50, 20).shape == (TITLE_HEIGHT, 20, 3)
    assert title_row(["a", "b"], [10, 12], gap=3).shape == (TITLE_HEIGHT, 25, 3)
    with pytest.raises(ValueError, match="2 titles for 1 columns"):
        title_row(["a", "b"], [10])
    with pytest.raises(ValueError, match="same number of columns"):
        figure_grid([[a, b], [a]])
    with pytest.raises(ValueError, match="only 5 colours"):
        legend(names + ["x"], palette)
