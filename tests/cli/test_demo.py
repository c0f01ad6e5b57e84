"""deconvnet-demo runs end to end (shortened) and writes its picture and model."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.cli import demo


@pytest.mark.slow
def test_demo_end_to_end_short(tmp_path, capsys, monkeypatch):
    # The preset table of the demo builds every preset; a shortened table keeps the test fast.
    from deconvnet_tf.models import summary

    real = summary.preset_summaries
    monkeypatch.setattr(summary, "preset_summaries",
                        lambda num_classes=21: real(["deconvnet_tiny"], (64, 64), num_classes))
    result = demo.run_demo(tmp_path, epochs=2, num_train=8, size=(48, 64), verbose=0)
    assert (tmp_path / "run" / "config.json").is_file() and result["metrics"].is_file()
    out = capsys.readouterr().out
    assert "argmax and switch unpooling give identical outputs: True" in out
    assert "mean IoU" in out and str(result["picture"]) in out
    picture = cv2.imread(str(result["picture"]))
    # Titled columns, three rows of 48-pixel images and a class legend below them.
    assert picture.shape[0] > 3 * 48 and picture.shape[1] > 4 * 64
    assert 0.0 <= result["mean_iou"] <= 1.0
    model = deconvnet_tf.load_model(result["model"])
    assert model.output_shape[-1] == 5
    # CRF step: a picture with 4 panels per row and a scored CRF row.
    crf = cv2.imread(str(result["crf_picture"]))
    assert crf.shape[0] > 3 * 48 and crf.shape[1] > 4 * 64
    assert 0.0 <= result["crf_mean_iou"] <= 1.0 and "DeconvNet" in out and "CRF" in out
    # Export: SavedModel + builtins-only LiteRT fp32/int8, run on the validation images.
    exported = result["export"]
    assert (exported.saved_model / "saved_model.pb").is_file()
    assert set(exported.tflite) == {"none", "int8"}
    assert all(path.is_file() for path in exported.tflite.values())
    assert exported.agreement["none"] > 0.999  # fp32 LiteRT = Keras
    assert list((tmp_path / "lite" / "int8").glob("*_overlay.png"))
    # Zeiler-Fergus grid of the trained network.
    assert cv2.imread(str(result["visualization"])) is not None
    # summary.json: the numbers the README's set-up line quotes (tools/readme_demo.py)
    import json

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mean_iou"] == result["mean_iou"]
    assert summary["crf_mean_iou"] == result["crf_mean_iou"]
    assert summary["litert_agreement"] == exported.agreement and summary["epochs"] == 2
    # Another demo into the same folder with other settings: one line naming --overwrite,
    # before the finished run is touched.
    from tests.cli.corpus import assert_one_line_error, run_main

    model_bytes = result["model"].read_bytes()
    other = run_main(demo.main, ["--output", str(tmp_path), "--epochs", "3", "--num-train", "8",
                                 "--quiet"])
    assert_one_line_error(other, "deconvnet-demo: error:", "--overwrite")
    assert result["model"].read_bytes() == model_bytes


def test_demo_cli_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exit_:
        demo.main(["--preset", "nope"])
    assert exit_.value.code == 2
    assert "unknown --preset 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        demo.main(["--epochs", "0"])
    assert exit_.value.code == 2
    assert "argument --epochs: expected an integer >= 1, got 0" in capsys.readouterr().err
