"""deconvnet-predict in-process: whole and instance modes, ensemble, CRF, outputs and errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.cli import predict as predict_cli
from deconvnet_tf.data.synthetic import make_scene
from deconvnet_tf.inference.predict import predict_image, softmax
from deconvnet_tf.render import save_png


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("predict_cli")
    deconvnet = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    fcn = deconvnet_tf.build_model("fcn8s_tiny", num_classes=5)
    deconvnet.save(tmp / "dn.keras")
    fcn.save(tmp / "fcn.keras")
    for i, size in enumerate([(48, 64), (40, 56), (48, 64)]):
        save_png(tmp / "images" / f"img{i}.png", make_scene(i, *size)[0])
    return tmp, deconvnet


def test_whole_mode_on_a_folder_writes_every_output(files, capsys):
    tmp, deconvnet = files
    out = tmp / "out_whole"
    code = predict_cli.main(["--model", str(tmp / "dn.keras"), "--input", str(tmp / "images"),
                             "--output", str(out), "--save-probs", "--batch-size", "2", "--quiet"])
    assert code == 0 and "3 image(s)" in capsys.readouterr().out
    for i in range(3):
        for suffix in (".png", "_color.png", "_overlay.png", "_probs.npy"):
            assert (out / f"img{i}{suffix}").is_file()
    image = cv2.imread(str(tmp / "images" / "img1.png"))[..., ::-1]
    probs = np.load(out / "img1_probs.npy")
    assert probs.dtype == np.float16 and probs.shape == (40, 56, 5)
    expected = predict_image(deconvnet, image)
    np.testing.assert_allclose(probs.astype(np.float32), expected, atol=2e-3)
    label = cv2.imread(str(out / "img1.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(label, expected.argmax(-1))
    # --flip: the mean of the logits of the image and of its mirror.
    assert predict_cli.main(["--model", str(tmp / "dn.keras"), "--input", str(tmp / "images"),
                             "--output", str(tmp / "out_flip"), "--save-probs", "--flip",
                             "--quiet"]) == 0
    logits = [np.asarray(deconvnet.predict_on_batch(im[None].astype(np.float32)))[0]
              for im in (image, image[:, ::-1])]
    flipped = softmax((logits[0] + logits[1][:, ::-1]) / 2)
    probs = np.load(tmp / "out_flip" / "img1_probs.npy").astype(np.float32)
    np.testing.assert_allclose(probs, flipped, atol=2e-3)


def test_instance_mode_with_ensemble_and_crf(files):
    tmp, _ = files
    out = tmp / "out_full"
    code = predict_cli.main(["--model", str(tmp / "dn.keras"), "--input",
                             str(tmp / "images" / "img0.png"), str(tmp / "images" / "img1.png"),
                             "--output", str(out), "--mode", "instance", "--ensemble",
                             str(tmp / "fcn.keras"), "--ensemble-method", "product", "--crf",
                             "--edge", "gradient", "--top-k", "4", "--input-size", "32",
                             "--proposal-cache", str(tmp / "cache"), "--quiet", "--save-probs"])
    assert code == 0
    assert sorted(p.name for p in out.glob("*.png")) == sorted(
        f"img{i}{s}" for i in (0, 1) for s in (".png", "_color.png", "_overlay.png"))
    assert len(list((tmp / "cache").glob("*.npy"))) == 2
    probs = np.load(out / "img0_probs.npy").astype(np.float32)
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-2)


def test_errors_exit_2_with_a_message(files, capsys):
    tmp, _ = files
    assert predict_cli.main(["--model", str(tmp / "nope.keras"), "--input", str(tmp / "images"),
                             "--output", str(tmp / "o")]) == 2
    assert "deconvnet-predict: error: Model not found" in capsys.readouterr().err
    assert predict_cli.main(["--model", str(tmp / "dn.keras"), "--input", str(tmp / "none.png"),
                             "--output", str(tmp / "o"), "--quiet"]) == 2
    assert "Input not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        predict_cli.main(["--model", "m", "--input", "x", "--output", "o", "--batch-size", "0"])
    assert "--batch-size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        predict_cli.main(["--model", "m", "--input", "x", "--output", "o", "--mode", "tiles"])
