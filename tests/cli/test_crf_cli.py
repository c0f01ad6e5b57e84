"""deconvnet-crf in-process: file and folder inputs, presets/overrides, and each bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deconvnet_tf.cli import crf as crf_cli
from deconvnet_tf.data.synthetic import make_scene
from deconvnet_tf.inference.crf import dense_crf
from deconvnet_tf.inference.predict import softmax
from deconvnet_tf.render import save_png
from tests.cli.corpus import assert_one_line_error, run_main


def noisy(label, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.6, label.shape + (classes,))
    logits[np.arange(label.shape[0])[:, None], np.arange(label.shape[1]), label] += 1.5
    return softmax(logits)


@pytest.fixture
def inputs(tmp_path):
    for i in range(2):
        image, label, _ = make_scene(i, 40, 56)
        save_png(tmp_path / "images" / f"s{i}.png", image)
        (tmp_path / "probs").mkdir(exist_ok=True)
        np.save(tmp_path / "probs" / f"s{i}_probs.npy", noisy(label).astype(np.float16))
    return tmp_path


def test_folder_of_images_and_probabilities(inputs, capsys):
    out = inputs / "out"
    assert crf_cli.main(["--image", str(inputs / "images"), "--probs", str(inputs / "probs"),
                         "--output", str(out), "--save-probs", "--quiet"]) == 0
    assert "2 image(s)" in capsys.readouterr().out
    image = cv2.imread(str(inputs / "images" / "s1.png"))[..., ::-1]
    probs = np.load(inputs / "probs" / "s1_probs.npy")
    expected = dense_crf(image, probs.astype(np.float32)).argmax(-1)
    np.testing.assert_array_equal(cv2.imread(str(out / "s1_labels.png"), cv2.IMREAD_UNCHANGED),
                                  expected)
    assert (out / "s0_color.png").is_file() and (out / "s0_overlay.png").is_file()
    assert np.load(out / "s0_probs.npy").shape == (40, 56, 5)


def test_single_file_with_preset_and_overrides(inputs):
    out = inputs / "one"
    assert crf_cli.main(["--image", str(inputs / "images" / "s0.png"), "--probs",
                         str(inputs / "probs" / "s0_probs.npy"), "--output", str(out),
                         "--preset", "deeplab", "--iterations", "2", "--bilateral-srgb", "10",
                         "--quiet"]) == 0
    image = cv2.imread(str(inputs / "images" / "s0.png"))[..., ::-1]
    probs = np.load(inputs / "probs" / "s0_probs.npy").astype(np.float32)
    expected = dense_crf(image, probs, preset="deeplab", iterations=2, bilateral_srgb=10)
    np.testing.assert_array_equal(cv2.imread(str(out / "s0_labels.png"), cv2.IMREAD_UNCHANGED),
                                  expected.argmax(-1))


@pytest.mark.parametrize("case, message", [
    ("size", "do not match the image's 40x56"),
    ("sum", "must sum to 1"),
    ("axis", "class axis first"),
    ("missing", "No probabilities for image"),
    ("corrupt", "Cannot read probabilities"),
])
def test_bad_inputs_exit_2(inputs, capsys, case, message):
    probs = np.load(inputs / "probs" / "s0_probs.npy").astype(np.float32)
    target = inputs / "probs" / "s0_probs.npy"
    if case == "size":
        np.save(target, probs[:20])
    elif case == "sum":
        np.save(target, probs * 0.5)
    elif case == "axis":
        np.save(target, np.moveaxis(probs, -1, 0))
    elif case == "missing":
        target.unlink()
    else:
        target.write_bytes(b"garbage")
    code = crf_cli.main(["--image", str(inputs / "images"), "--probs", str(inputs / "probs"),
                         "--output", str(inputs / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("deconvnet-crf: error:") and message in err
    if case in ("size", "sum", "axis"):
        assert "s0_probs.npy for s0.png" in err  # names the files


def test_missing_pydensecrf_and_bad_settings(inputs, capsys, monkeypatch):
    with pytest.raises(SystemExit) as exit_:
        crf_cli.main(["--image", str(inputs / "images"), "--probs", str(inputs / "probs"),
                      "--output", str(inputs / "o"), "--iterations", "0"])
    assert exit_.value.code == 2
    assert "argument --iterations: expected an integer >= 1, got 0" in capsys.readouterr().err
    assert crf_cli.main(["--image", str(inputs / "images"), "--probs", str(inputs / "probs"),
                         "--output", str(inputs / "o"), "--gaussian-sxy", "0"]) == 2
    assert "CRF setting gaussian_sxy must be > 0" in capsys.readouterr().err
    one_file = str(inputs / "probs" / "s0_probs.npy")
    assert crf_cli.main(["--image", str(inputs / "images"), "--probs", one_file,
                         "--output", str(inputs / "o")]) == 2
    assert "holds 2 images" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "pydensecrf.densecrf", None)
    monkeypatch.setitem(__import__("sys").modules, "pydensecrf", None)
    assert crf_cli.main(["--image", str(inputs / "images"), "--probs", str(inputs / "probs"),
                         "--output", str(inputs / "o"), "--quiet"]) == 2
    assert "pip install pydensecrf2" in capsys.readouterr().err
    assert not (inputs / "o").exists()  # checked before any work


def test_outputs_need_overwrite_and_never_replace_the_probabilities(inputs):
    argv = ["--image", str(inputs / "images"), "--probs", str(inputs / "probs"), "--quiet"]
    assert crf_cli.main(argv + ["--output", str(inputs / "out")]) == 0
    before = (inputs / "out" / "s0_labels.png").stat().st_mtime_ns
    again = run_main(crf_cli.main, argv + ["--output", str(inputs / "out")])
    assert_one_line_error(again, "s0_labels.png' already exists (and 5 more)", "--overwrite")
    assert (inputs / "out" / "s0_labels.png").stat().st_mtime_ns == before
    assert run_main(crf_cli.main, argv + ["--output", str(inputs / "out"),
                                          "--overwrite"]).code == 0
    # --save-probs into the probabilities folder would replace deconvnet-predict's files.
    kept = (inputs / "probs" / "s0_probs.npy").read_bytes()
    clash = run_main(crf_cli.main, argv + ["--output", str(inputs / "probs"), "--save-probs",
                                           "--overwrite"])
    assert_one_line_error(clash, "s0_probs.npy' would replace the input")
    assert (inputs / "probs" / "s0_probs.npy").read_bytes() == kept


def test_skipping_reports_bad_pairs_and_refines_the_rest(inputs):
    ok, data = cv2.imencode(".png", cv2.imread(str(inputs / "images" / "s0.png")))
    (inputs / "images" / "s0.png").write_bytes(data.tobytes()[:-20])  # cut into the IEND chunk
    argv = ["--image", str(inputs / "images"), "--probs", str(inputs / "probs"), "--quiet",
            "--output", str(inputs / "out")]
    stopped = run_main(crf_cli.main, argv)
    assert_one_line_error(stopped, "s0.png", "truncated PNG")
    assert not (inputs / "out").exists() or not list((inputs / "out").iterdir())
    skipped = run_main(crf_cli.main, argv + ["--skip-errors"])
    assert skipped.code == 1 and "1 image(s)" in skipped.stdout
    assert_one_line_error(skipped, "1 of 2 image(s) skipped", "s0.png")
    image = cv2.imread(str(inputs / "images" / "s1.png"))[..., ::-1]
    expected = dense_crf(image, np.load(inputs / "probs" / "s1_probs.npy").astype(np.float32))
    np.testing.assert_array_equal(
        cv2.imread(str(inputs / "out" / "s1_labels.png"), cv2.IMREAD_UNCHANGED),
        expected.argmax(-1))
    assert not list((inputs / "out").glob("s0_*"))
