"""Test-time multi-scale: ``Predictor.scales``, ``Segmenter(test_time_scales=...)``,
``predict_native`` / ``evaluate`` and ``--scales`` in deconvnet-predict / deconvnet-evaluate:
the mean of the probabilities at every scale of the working size, each back at the image's
own size; clear errors for bad scales and for networks that cannot take other sizes."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf import Segmenter
from deconvnet_tf.cli import evaluate as evaluate_cli
from deconvnet_tf.cli import predict as predict_cli
from deconvnet_tf.data.folder import list_examples, load_example
from deconvnet_tf.data.synthetic import make_scene, write_synthetic_dataset
from deconvnet_tf.evaluation.evaluate import predict_native
from deconvnet_tf.inference.predict import Predictor, check_scales, load_predictor
from deconvnet_tf.render import save_png
from tests.cli.corpus import assert_one_line_error, run_main
from tests.conftest import requires_tf

pytestmark = requires_tf

NAMES = ["a", "b", "c", "d", "e"]


@pytest.fixture(scope="module")
def net():
    return deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)


@pytest.fixture(scope="module")
def images():
    return [make_scene(i, 40, 52)[0] for i in range(2)]


def test_working_size_scales_average_the_probabilities_of_each_size(net, images):
    seg = Segmenter(net, image_size=(32, 48), class_names=NAMES)
    at_1 = seg.predict_proba(images)
    at_15 = seg.with_options(image_size=(48, 72)).predict_proba(images)
    multi = seg.with_options(test_time_scales=(1.0, 1.5))
    got = multi.predict_proba(images, batch_size=2)
    assert not np.allclose(at_1[0], at_15[0], atol=1e-3)  # the second scale shows
    for g, a, b in zip(got, at_1, at_15):
        assert g.shape == (40, 52, 5) and g.dtype == np.float32
        np.testing.assert_allclose(g, (a + b) / 2, atol=1e-6)
    np.testing.assert_array_equal(multi.predict(images[0]), got[0].argmax(-1))
    # with the flip: the flip at every scale
    flipped = [seg.with_options(test_time_flip=True, image_size=s).predict_proba(images[0])
               for s in ((32, 48), (48, 72))]
    np.testing.assert_allclose(multi.with_options(test_time_flip=True).predict_proba(images[0]),
                               (flipped[0] + flipped[1]) / 2, atol=1e-6)


def test_native_size_scales_use_each_images_own_size(net, images):
    seg = Segmenter(net, image_size=None, class_names=NAMES, test_time_scales=[1, 0.5])
    image = images[0]
    plain = seg.with_options(test_time_scales=[1]).predict_proba(image)
    half = seg.with_options(image_size=(20, 26), test_time_scales=[1]).predict_proba(image)
    np.testing.assert_allclose(seg.predict_proba(image), (plain + half) / 2, atol=1e-6)


def test_scales_round_trip_and_bad_values(net, tmp_path):
    seg = Segmenter(net, class_names=NAMES, test_time_scales=(1.0, 1.5))
    seg.save(tmp_path / "ms.keras")
    loaded = Segmenter.from_preset(tmp_path / "ms.keras")
    assert loaded.test_time_scales == (1.0, 1.5)
    assert loaded.predictor().scales == (1.0, 1.5)
    assert loaded.predictor(scales=[1]).scales == (1.0,)
    assert Segmenter(net, class_names=NAMES).test_time_scales == (1.0,)
    for bad, match in (((), "one or more"), ((0,), "one or more"), ((1, -2), "one or more"),
                       ((float("inf"),), "one or more"), (("x",), "numbers such as"),
                       ((1, 1.0), "repeats"), ((1, 4.5), "at most 4")):
        with pytest.raises(ValueError, match=f"test_time_scales (must be )?{match}"):
            Segmenter(net, test_time_scales=bad)
    assert check_scales(2) == (2.0,) and check_scales((1, 4)) == (1.0, 4.0)


def test_scales_need_a_network_that_takes_any_size(images):
    fixed = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5, input_shape=(32, 32, 3))
    predictor = dataclasses.replace(load_predictor(fixed), scales=(1.0, 1.5))
    with pytest.raises(ValueError, match="need a Keras network that takes any size"):
        deconvnet_tf.inference.predict.predict_images(predictor, images)
    lite_like = Predictor(lambda b: np.zeros(b.shape[:3] + (2,)), input_size=(8, 8),
                          scales=(1.0, 2.0), name="export")
    with pytest.raises(ValueError, match="export: test-time scales"):
        deconvnet_tf.inference.predict.predict_images(lite_like, images)


def test_predict_native_and_evaluate_take_scales(net, tmp_path):
    data = write_synthetic_dataset(tmp_path / "ds", num_train=1, num_val=2, height=32, width=40)
    seg = Segmenter(net, image_size=(32, 40), class_names=NAMES)
    path = tmp_path / "seg.keras"
    seg.save(path)
    multi = seg.with_options(test_time_scales=(1.0, 0.75))
    confusion = np.zeros((5, 5), np.int64)
    for image_path, label_path in list_examples(data, "val"):
        image, label = load_example(image_path, label_path)
        scores = predict_native(seg, image, scales=(1.0, 0.75))
        np.testing.assert_allclose(np.exp(scores), multi.predict_proba(image), atol=1e-5)
        valid = label != 255
        np.add.at(confusion, (label[valid], scores.argmax(-1)[valid]), 1)
    out = tmp_path / "eval"
    assert evaluate_cli.main(["--model", str(path), "--data", str(data), "--scales", "1",
                              "0.75", "--output", str(out)]) == 0
    got = np.array(json.loads((out / "metrics.json").read_text())["confusion"])
    np.testing.assert_array_equal(got, confusion)
    bad = run_main(evaluate_cli.main, ["--model", str(path), "--data", str(data),
                                       "--scales", "0", "--output", str(tmp_path / "x")])
    assert_one_line_error(bad, "--scales must be one or more finite numbers > 0")
    assert not (tmp_path / "x").exists()


def test_predict_cli_scales_flag_and_the_models_default(net, tmp_path, capsys):
    image = make_scene(3, 40, 52)[0]
    save_png(tmp_path / "img.png", image)
    seg = Segmenter(net, image_size=(32, 48), class_names=NAMES, test_time_scales=(1.0, 1.5))
    seg.save(tmp_path / "ms.keras")
    expected = {(): seg.predict_proba(image),
                ("--scales", "1"): seg.with_options(test_time_scales=[1]).predict_proba(image),
                ("--scales", "1", "0.5"):
                    seg.with_options(test_time_scales=[1, 0.5]).predict_proba(image)}
    for i, (flags, probs) in enumerate(expected.items()):
        out = tmp_path / f"out{i}"
        assert predict_cli.main(["--model", str(tmp_path / "ms.keras"), "--input",
                                 str(tmp_path / "img.png"), "--output", str(out),
                                 "--save-probs", "--quiet", *flags]) == 0
        err = capsys.readouterr().err
        assert ("test-time scales 1, 1.5 (the model's default)" in err) == (not flags)
        np.testing.assert_allclose(np.load(out / "img_probs.npy").astype(np.float32), probs,
                                   atol=2e-3, err_msg=str(flags))
    bad = run_main(predict_cli.main, ["--model", "m", "--input", "x", "--output", "o",
                                      "--scales", "1", "1"])
    assert_one_line_error(bad, "--scales repeats a scale")
    huge = run_main(predict_cli.main, ["--model", "m", "--input", "x", "--output", "o",
                                       "--scales", "1", "1000"])  # 10^6 times the pixels
    assert_one_line_error(huge, "--scales must be at most 4")


def test_export_says_the_scales_are_not_in_it(net, tmp_path, capsys):
    from deconvnet_tf.cli import export as export_cli

    seg = Segmenter(net, image_size=(32, 48), class_names=NAMES, test_time_scales=(1.0, 1.5))
    seg.save(tmp_path / "ms.keras")
    assert export_cli.main(["--model", str(tmp_path / "ms.keras"), "--format", "saved_model",
                            "--output", str(tmp_path / "sm")]) == 0
    out = capsys.readouterr().out
    assert "test-time scales 1, 1.5 are not part of the export" in out
    assert (tmp_path / "sm" / "saved_model.pb").is_file()


def test_paper_table_scales_score_like_a_model_saved_with_them(net, tmp_path, capsys):
    import paper_table  # tools/ (pytest's pythonpath)

    data = write_synthetic_dataset(tmp_path / "ds", num_train=1, num_val=2, height=32, width=40)
    seg = Segmenter(net, image_size=(32, 40), class_names=NAMES)
    seg.save(tmp_path / "plain.keras")
    seg.with_options(test_time_scales=(1.0, 0.75)).save(tmp_path / "multi.keras")

    outputs = iter(range(100))

    def score(model, *flags):
        out = tmp_path / f"table{next(outputs)}.json"
        assert paper_table.main(["--deconvnet", str(tmp_path / model), "--data", str(data),
                                 "--methods", "deconvnet_whole", "--quiet", "--output",
                                 str(out), *flags]) == 0
        return json.loads(out.read_text())["methods"]["deconvnet_whole"]["per_class_iou"]

    assert score("plain.keras") != score("multi.keras")  # the scale shows
    assert score("plain.keras", "--scales", "1", "0.75") == score("multi.keras")
    assert score("multi.keras", "--scales", "1") == score("plain.keras")
    with pytest.raises(SystemExit):
        paper_table.main(["--deconvnet", "m", "--data", str(data), "--scales", "-1"])
    assert "--scales must be one or more finite numbers > 0" in capsys.readouterr().err
