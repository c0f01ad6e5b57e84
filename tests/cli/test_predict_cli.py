"""deconvnet-predict in-process: whole and instance modes, ensemble, CRF, outputs and errors."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.cli import predict as predict_cli
from deconvnet_tf.data.synthetic import make_scene
from deconvnet_tf.inference.crf import dense_crf
from deconvnet_tf.inference.ensemble import combine_probabilities
from deconvnet_tf.inference.instance import predict_instances
from deconvnet_tf.inference.predict import predict_image, softmax
from deconvnet_tf.render import make_palette, overlay, save_png
from tests.cli.corpus import assert_one_line_error, run_main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("predict_cli")
    deconvnet = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    fcn = deconvnet_tf.build_model("fcn8s_tiny", num_classes=5)
    deconvnet.save(tmp / "dn.keras")
    fcn.save(tmp / "fcn.keras")
    for i, size in enumerate([(48, 64), (40, 56), (48, 64)]):
        save_png(tmp / "images" / f"img{i}.png", make_scene(i, *size)[0])
    return tmp, deconvnet, fcn


def _read_rgb(path):
    return cv2.imread(str(path))[..., ::-1]


def test_whole_mode_on_a_folder_writes_every_output(files, capsys):
    tmp, deconvnet, _ = files
    out = tmp / "out_whole"
    code = predict_cli.main(["--model", str(tmp / "dn.keras"), "--input", str(tmp / "images"),
                             "--output", str(out), "--save-probs", "--batch-size", "2", "--quiet"])
    assert code == 0 and "3 image(s)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"img{i}{s}" for i in range(3)
        for s in ("_labels.png", "_color.png", "_overlay.png", "_probs.npy"))
    image = _read_rgb(tmp / "images" / "img1.png")
    probs = np.load(out / "img1_probs.npy")
    assert probs.dtype == np.float16 and probs.shape == (40, 56, 5)
    expected = predict_image(deconvnet, image)
    np.testing.assert_allclose(probs.astype(np.float32), expected, atol=2e-3)
    label = cv2.imread(str(out / "img1_labels.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(label, expected.argmax(-1))
    # --flip: the mean of the probabilities of the image and of its mirror.
    assert predict_cli.main(["--model", str(tmp / "dn.keras"), "--input", str(tmp / "images"),
                             "--output", str(tmp / "out_flip"), "--save-probs", "--flip",
                             "--quiet"]) == 0
    logits = [np.asarray(deconvnet.predict_on_batch(im[None].astype(np.float32)))[0]
              for im in (image, image[:, ::-1])]
    flipped = (softmax(logits[0]) + softmax(logits[1][:, ::-1])) / 2
    probs = np.load(tmp / "out_flip" / "img1_probs.npy").astype(np.float32)
    np.testing.assert_allclose(probs, flipped, atol=2e-3)


def test_instance_mode_with_ensemble_and_crf(files, capsys):
    """The files equal what the library functions give step by step: instance-wise DeconvNet
    on the same proposals, the FCN on the whole image, their product, then the dense CRF."""
    tmp, deconvnet, fcn = files
    out, cache = tmp / "out_full", tmp / "cache"
    code = predict_cli.main(["--model", str(tmp / "dn.keras"), "--input",
                             str(tmp / "images" / "img0.png"), str(tmp / "images" / "img1.png"),
                             "--output", str(out), "--mode", "instance", "--ensemble",
                             str(tmp / "fcn.keras"), "--ensemble-method", "product", "--crf",
                             "--edge", "gradient", "--top-k", "4", "--input-size", "32",
                             "--proposal-cache", str(cache), "--quiet", "--save-probs"])
    assert code == 0
    # The cost is announced before the work, and the time of the rest after the first image.
    err = capsys.readouterr().err
    assert "instance-wise mode runs the network on up to 4 proposal crops of 32x32" in err
    assert re.search(r"took [0-9.]+ s for the first image; about [0-9.]+ min for the 1 left",
                     err), err
    assert sorted(p.name for p in out.glob("*.png")) == sorted(
        f"img{i}{s}" for i in (0, 1) for s in ("_labels.png", "_color.png", "_overlay.png"))
    assert len(list(cache.glob("*.npy"))) == 2
    proposals = dict(method="edgeboxes", edge="gradient", top_k=4, min_size=16, enlarge=1.2,
                     cache_dir=str(cache))
    for i in (0, 1):
        image = _read_rgb(tmp / "images" / f"img{i}.png")
        instance = predict_instances(deconvnet, image, input_size=32, batch_size=8,
                                     aggregate="max", proposals=proposals)
        ensemble = combine_probabilities([instance, predict_image(fcn, image)], "product")
        refined = dense_crf(image, ensemble)
        probs = np.load(out / f"img{i}_probs.npy").astype(np.float32)
        np.testing.assert_allclose(probs, refined, atol=2e-3)
        label = cv2.imread(str(out / f"img{i}_labels.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(label, refined.argmax(-1))
        palette = make_palette()
        np.testing.assert_array_equal(_read_rgb(out / f"img{i}_color.png"), palette[label])
        np.testing.assert_array_equal(_read_rgb(out / f"img{i}_overlay.png"),
                                      overlay(image, label))


def test_the_models_default_crf_applies_unless_no_crf(files, capsys):
    """A Segmenter saved with default_crf=True is refined by the dense CRF without --crf (and
    says so); --no-crf gives the network's output; a model without the default needs --crf."""
    from deconvnet_tf import Segmenter

    tmp, deconvnet, _ = files
    seg = Segmenter(deconvnet, image_size=None, default_crf=True)
    seg.save(tmp / "seg_crf.keras")
    image_path = tmp / "images" / "img1.png"
    image = _read_rgb(image_path)
    network = seg.predict_proba(image)
    refined = dense_crf(image, network)
    assert not np.array_equal(refined.argmax(-1), network.argmax(-1))  # the CRF shows
    runs = {"default": [], "no_crf": ["--no-crf"], "crf": ["--crf"]}
    probs = {}
    for name, flags in runs.items():
        out = tmp / f"out_default_crf_{name}"
        assert predict_cli.main(["--model", str(tmp / "seg_crf.keras"), "--input",
                                 str(image_path), "--output", str(out), "--save-probs",
                                 "--quiet", *flags]) == 0
        err = capsys.readouterr().err
        assert ("dense CRF on (the model's default post-processing)" in err) == (name == "default")
        probs[name] = np.load(out / "img1_probs.npy").astype(np.float32)
    np.testing.assert_allclose(probs["default"], refined, atol=2e-3)
    np.testing.assert_allclose(probs["crf"], refined, atol=2e-3)
    np.testing.assert_allclose(probs["no_crf"], network, atol=2e-3)
    # A model without the default: no CRF unless --crf.
    plain = tmp / "out_plain_default"
    assert predict_cli.main(["--model", str(tmp / "dn.keras"), "--input", str(image_path),
                             "--output", str(plain), "--save-probs", "--quiet"]) == 0
    np.testing.assert_allclose(np.load(plain / "img1_probs.npy").astype(np.float32),
                               predict_image(deconvnet, image), atol=2e-3)


def test_the_models_test_time_flip_applies_unless_no_flip(files):
    """A Segmenter saved with test_time_flip=True averages with the mirror image without
    --flip; --no-flip gives the plain prediction; a model without it flips only with --flip."""
    from deconvnet_tf import Segmenter

    tmp, deconvnet, _ = files
    seg = Segmenter(deconvnet, image_size=None, test_time_flip=True)
    seg.save(tmp / "seg_flip.keras")
    image_path = tmp / "images" / "img1.png"
    image = _read_rgb(image_path)
    plain = predict_image(deconvnet, image)
    flipped = (plain + predict_image(deconvnet, np.ascontiguousarray(image[:, ::-1]))[:, ::-1]) / 2
    assert not np.allclose(plain, flipped, atol=2e-3)  # the flip shows
    cases = {("seg_flip.keras", ()): flipped, ("seg_flip.keras", ("--no-flip",)): plain,
             ("seg_flip.keras", ("--flip",)): flipped, ("dn.keras", ()): plain}
    for i, ((model, flags), expected) in enumerate(cases.items()):
        out = tmp / f"out_tta_{i}"
        assert predict_cli.main(["--model", str(tmp / model), "--input", str(image_path),
                                 "--output", str(out), "--save-probs", "--quiet", *flags]) == 0
        np.testing.assert_allclose(np.load(out / "img1_probs.npy").astype(np.float32), expected,
                                   atol=2e-3, err_msg=f"{model} {flags}")


def test_errors_exit_2_with_a_message(files):
    tmp, _, _ = files
    outcome = run_main(predict_cli.main, ["--model", str(tmp / "nope.keras"), "--input",
                                          str(tmp / "images"), "--output", str(tmp / "o")])
    assert outcome.code == 2
    assert_one_line_error(outcome, "deconvnet-predict: error: Model not found", "nope.keras")
    outcome = run_main(predict_cli.main, ["--model", str(tmp / "dn.keras"), "--input",
                                          str(tmp / "none.png"), "--output", str(tmp / "o"),
                                          "--quiet"])
    assert outcome.code == 2
    assert_one_line_error(outcome, "Input not found", "none.png")
    with pytest.raises(SystemExit) as exit_:
        predict_cli.main(["--model", "m", "--input", "x", "--output", "o", "--batch-size", "0"])
    assert exit_.value.code == 2
    outcome = run_main(predict_cli.main, ["--model", "m", "--input", "x", "--output", "o",
                                          "--batch-size", "0"])
    assert_one_line_error(outcome, "argument --batch-size: expected an integer >= 1, got 0")
    outcome = run_main(predict_cli.main, ["--model", "m", "--input", "x", "--output", "o",
                                          "--mode", "tiles"])
    assert_one_line_error(outcome, "argument --mode: invalid choice: 'tiles'")


def test_output_folder_can_be_the_input_folder(files, tmp_path):
    """Outputs never replace an input, a rerun does not read the outputs back, and existing
    outputs need --overwrite (checked before any work)."""
    tmp, deconvnet, _ = files
    folder = tmp_path / "photos"
    folder.mkdir()
    image = make_scene(7, 40, 56)[0]
    save_png(folder / "big_camvid.png", image)
    original = (folder / "big_camvid.png").read_bytes()
    argv = ["--model", str(tmp / "dn.keras"), "--input", str(folder), "--output", str(folder),
            "--quiet"]
    first = run_main(predict_cli.main, argv)
    assert first.code == 0 and "1 image(s)" in first.stdout
    assert (folder / "big_camvid.png").read_bytes() == original
    assert sorted(p.name for p in folder.iterdir()) == [
        "big_camvid.png", "big_camvid_color.png", "big_camvid_labels.png",
        "big_camvid_overlay.png"]
    label = cv2.imread(str(folder / "big_camvid_labels.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(label, predict_image(deconvnet, image).argmax(-1))
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again = run_main(predict_cli.main, argv)
    assert_one_line_error(again, "big_camvid_labels.png' already exists (and 2 more)",
                          "--overwrite")
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    forced = run_main(predict_cli.main, argv + ["--overwrite"])
    assert forced.code == 0 and "1 image(s)" in forced.stdout  # its own outputs were not read
    assert (folder / "big_camvid.png").read_bytes() == original
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left


def test_an_input_named_like_an_output_is_never_replaced(files, tmp_path):
    tmp, _, _ = files
    for name in ("a.png", "a_labels.png"):
        save_png(tmp_path / name, make_scene(1, 24, 24)[0])
    kept = (tmp_path / "a_labels.png").read_bytes()
    outcome = run_main(predict_cli.main, ["--model", str(tmp / "dn.keras"), "--input",
                                          str(tmp_path), "--output", str(tmp_path), "--quiet",
                                          "--overwrite"])
    assert_one_line_error(outcome, "a_labels.png' would replace the input")
    assert (tmp_path / "a_labels.png").read_bytes() == kept


def test_large_images_are_predicted_within_max_pixels(files, tmp_path):
    tmp, deconvnet, _ = files
    image = make_scene(3, 60, 80)[0]
    save_png(tmp_path / "in" / "wide.png", image)
    outcome = run_main(predict_cli.main, [
        "--model", str(tmp / "dn.keras"), "--input", str(tmp_path / "in"), "--output",
        str(tmp_path / "out"), "--max-pixels", "1200", "--save-probs", "--quiet"])
    assert outcome.code == 0, outcome.stderr
    assert ("deconvnet-predict: warning: " in outcome.stderr
            and "wide.png' is 60x80 (4,800 pixels), above --max-pixels 1200: predicting at 30x40" in outcome.stderr)
    small = cv2.resize(image, (40, 30), interpolation=cv2.INTER_AREA)
    expected = cv2.resize(predict_image(deconvnet, small), (80, 60),
                          interpolation=cv2.INTER_LINEAR)
    label = cv2.imread(str(tmp_path / "out" / "wide_labels.png"), cv2.IMREAD_UNCHANGED)
    assert label.shape == (60, 80)
    np.testing.assert_array_equal(label, expected.argmax(-1))
    probs = np.load(tmp_path / "out" / "wide_probs.npy").astype(np.float32)
    np.testing.assert_allclose(probs, expected, atol=2e-3)
    # 'none' lifts the limit: the image is predicted at its own size.
    assert predict_cli.main(["--model", str(tmp / "dn.keras"), "--input", str(tmp_path / "in"),
                             "--output", str(tmp_path / "full"), "--max-pixels", "none",
                             "--quiet"]) == 0
    label = cv2.imread(str(tmp_path / "full" / "wide_labels.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(label, predict_image(deconvnet, image).argmax(-1))


def test_truncated_jpeg_is_named_and_skip_errors_goes_on(files, tmp_path):
    tmp, deconvnet, _ = files
    folder = tmp_path / "in"
    for name, seed in (("a.png", 0), ("c.png", 2)):
        save_png(folder / name, make_scene(seed, 32, 40)[0])
    ok, data = cv2.imencode(".jpg", make_scene(1, 32, 40)[0])
    (folder / "b.jpg").write_bytes(data.tobytes()[: len(data) // 2])
    argv = ["--model", str(tmp / "dn.keras"), "--input", str(folder), "--quiet"]
    stopped = run_main(predict_cli.main, argv + ["--output", str(tmp_path / "stop")])
    assert stopped.code == 2
    assert_one_line_error(stopped, "b.jpg", "truncated JPEG")
    # The image before the bad one was written as soon as it was done.
    assert sorted(p.name for p in (tmp_path / "stop").iterdir()) == [
        "a_color.png", "a_labels.png", "a_overlay.png"]
    skipped = run_main(predict_cli.main, argv + ["--output", str(tmp_path / "skip"),
                                                 "--skip-errors"])
    assert skipped.code == 1 and "2 image(s)" in skipped.stdout
    assert "deconvnet-predict: skipped: Cannot read image" in skipped.stderr
    assert_one_line_error(skipped, "1 of 3 image(s) skipped", "b.jpg")
    for stem, seed in (("a", 0), ("c", 2)):
        label = cv2.imread(str(tmp_path / "skip" / f"{stem}_labels.png"), cv2.IMREAD_UNCHANGED)
        expected = predict_image(deconvnet, make_scene(seed, 32, 40)[0]).argmax(-1)
        np.testing.assert_array_equal(label, expected)
    assert not list((tmp_path / "skip").glob("b_*"))


def test_colour_outputs_use_the_models_palette(tmp_path):
    """A CamVid Segmenter's colour PNG is in CamVid's colours (sky grey), not VOC's."""
    from deconvnet_tf.lite.metadata import CAMVID_PALETTE

    photo = tmp_path / "photo.png"
    save_png(photo, make_scene(3, 60, 80)[0])
    assert predict_cli.main(["--model", "camvid_compact", "--input", str(photo), "--output",
                             str(tmp_path / "out"), "--quiet"]) == 0
    labels = cv2.imread(str(tmp_path / "out" / "photo_labels.png"), cv2.IMREAD_UNCHANGED)
    colour = cv2.imread(str(tmp_path / "out" / "photo_color.png"))[..., ::-1]
    palette = np.array(list(CAMVID_PALETTE.values()) if isinstance(CAMVID_PALETTE, dict)
                       else CAMVID_PALETTE, np.uint8)
    np.testing.assert_array_equal(colour, palette[labels])


def test_xla_setting_is_stated_and_flags_override_it(files, tmp_path, capsys):
    """Instance mode compiles a switch-pooled network by default, whole mode does not; the log
    says which and why; the labels do not depend on it; --jit-compile on a network XLA cannot
    compile is a one-line error."""
    tmp, _, _ = files
    switch = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5, unpooling="switch")
    switch.save(tmp_path / "switch.keras")
    args = ["--model", str(tmp_path / "switch.keras"), "--input",
            str(tmp / "images" / "img0.png"), "--mode", "instance", "--edge", "gradient",
            "--top-k", "4", "--input-size", "32", "--quiet"]
    assert predict_cli.main(args + ["--output", str(tmp_path / "a")]) == 0
    assert ("deconvnet-predict: XLA on (default for --mode instance); --no-jit-compile to "
            "change it") in capsys.readouterr().err
    assert predict_cli.main(args + ["--output", str(tmp_path / "b"), "--no-jit-compile"]) == 0
    assert "XLA off (set by --no-jit-compile); --jit-compile to change it" in (
        capsys.readouterr().err)
    np.testing.assert_array_equal(
        cv2.imread(str(tmp_path / "a" / "img0_labels.png"), cv2.IMREAD_UNCHANGED),
        cv2.imread(str(tmp_path / "b" / "img0_labels.png"), cv2.IMREAD_UNCHANGED))
    assert predict_cli.main(["--model", str(tmp_path / "switch.keras"), "--input",
                             str(tmp / "images" / "img0.png"), "--output", str(tmp_path / "c"),
                             "--quiet"]) == 0
    assert "XLA off (default for --mode whole); --jit-compile to change it" in (
        capsys.readouterr().err)
    outcome = run_main(predict_cli.main, ["--model", str(tmp / "dn.keras"), "--input",
                                          str(tmp / "images" / "img0.png"), "--output",
                                          str(tmp_path / "d"), "--jit-compile", "--quiet"])
    assert outcome.code == 2
    assert_one_line_error(outcome, "deconvnet-predict: error:", "cannot XLA-compile")
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())
