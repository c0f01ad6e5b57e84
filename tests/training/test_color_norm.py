"""Train-time colour normalisation (``TrainConfig.color_norm``): both input pipelines feed
exactly :func:`deconvnet_tf.io.normalize_colors` of each image, the run records the training
split's statistics (``color_target.json``, ``finished.json``), and every tool that opens the
run's bare ``model.keras`` (or a checkpoint) normalises to them."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from deconvnet_tf.data.pipeline import make_pipeline
from deconvnet_tf.data.pydataset import FolderPyDataset
from deconvnet_tf.data.sources import open_source
from deconvnet_tf.data.stats import color_statistics
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from deconvnet_tf.evaluation.evaluate import evaluate, predict_native
from deconvnet_tf.inference.segmenter import load_segmenter, run_color_target
from deconvnet_tf.io import RUN_COLOR_TARGET, normalize_colors
from deconvnet_tf.training.config import ConfigError, TrainConfig
from deconvnet_tf.training.runfolder import ARTIFACTS
from deconvnet_tf.training.train import train
from tests.conftest import requires_tf

TARGET = {"mean": [120.0, 100.0, 90.0], "std": [40.0, 50.0, 60.0]}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("color_norm") / "data"
    write_synthetic_dataset(root, num_train=4, num_val=2, height=48, width=64, seed=3)
    return root


def _examples(root, split):
    return list(open_source(root).numpy_examples(split))


@requires_tf
def test_tf_data_pipeline_feeds_the_normalised_images(dataset):
    import tensorflow as tf

    source = open_source(dataset)
    expected = _examples(dataset, "train")
    ds = make_pipeline(source.dataset("train"), mode="whole", training=False, batch_size=8,
                       crop_size=(48, 64), color_target=TARGET)
    images, labels = next(iter(ds))
    assert isinstance(images, tf.Tensor) and images.dtype == tf.uint8
    for got, label, (image, want_label) in zip(images.numpy(), labels.numpy(), expected):
        np.testing.assert_array_equal(got, normalize_colors(image, TARGET))
        np.testing.assert_array_equal(label, want_label)
    plain = next(iter(make_pipeline(source.dataset("train"), mode="whole", training=False,
                                    batch_size=8, crop_size=(48, 64))))[0].numpy()
    np.testing.assert_array_equal(plain[0], expected[0][0])  # None: images as they are


def test_pydataset_feeds_the_normalised_images(dataset):
    expected = _examples(dataset, "train")
    for cache in (True, False):
        ds = FolderPyDataset(dataset, "train", mode="whole", training=False, batch_size=8,
                             crop_size=(48, 64), color_target=TARGET, cache=cache)
        images, _ = ds[0]
        images_again, _ = ds[0]  # the cached copy is the normalised one
        for got, again, (image, _) in zip(images, images_again, expected):
            np.testing.assert_array_equal(got, normalize_colors(image, TARGET))
            np.testing.assert_array_equal(again, got)


@requires_tf
def test_training_batches_are_augmented_from_the_normalised_images(dataset):
    """Training mode, with the augmentation reduced to the identity (a crop of the whole
    image, no scale, flip or jitter): both pipelines yield the normalised images."""
    source = open_source(dataset)
    normalised = [normalize_colors(image, TARGET) for image, _ in _examples(dataset, "train")]
    args = dict(batch_size=4, crop_size=(48, 64), seed=5, color_target=TARGET, scale=None,
                flip=False, jitter=False)
    tf_images = next(iter(make_pipeline(source.dataset("train"), shuffle_buffer=1,
                                        deterministic=True, **args)))[0].numpy()
    py_images = FolderPyDataset(dataset, "train", **args)[0][0]
    for images in (tf_images, py_images):
        assert len(images) == 4
        for image in images:
            assert any(np.array_equal(image, want) for want in normalised)


BAD_TARGETS = [{"mean": [1, 2]}, {"mean": [0] * 3, "std": [0] * 3}, "dark"]


@pytest.mark.parametrize("bad", BAD_TARGETS)
def test_bad_color_target_is_a_clear_error(dataset, bad):
    with pytest.raises(ValueError, match="FolderPyDataset: color_target"):
        FolderPyDataset(dataset, "train", color_target=bad)


@requires_tf
@pytest.mark.parametrize("bad", BAD_TARGETS)
def test_bad_color_target_is_a_clear_error_tf_data(dataset, bad):
    with pytest.raises(ValueError, match="make_pipeline: color_target"):
        make_pipeline(open_source(dataset).dataset("train"), color_target=bad)


def test_config_field_and_window_modes(tmp_path):
    assert TrainConfig(output=str(tmp_path)).color_norm is False
    assert TrainConfig(output=str(tmp_path), color_norm=True).color_norm is True
    for mode in ("object_crops", "proposal_windows"):
        with pytest.raises(ConfigError, match="'color_norm'.*crop or whole"):
            TrainConfig(output=str(tmp_path), input_mode=mode, color_norm=True)
    with pytest.raises(ConfigError, match="color_norm"):
        TrainConfig(output=str(tmp_path), color_norm="yes")
    assert RUN_COLOR_TARGET in ARTIFACTS  # --overwrite removes it with the rest of the run


def test_run_color_target_reads_the_run_folder(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    assert run_color_target(run / "model.keras") is None  # no record: not normalised
    (run / RUN_COLOR_TARGET).write_text(json.dumps(TARGET))
    for path in (run, run / "model.keras", run / "checkpoints" / "last.keras"):
        assert run_color_target(path) == TARGET
    (run / RUN_COLOR_TARGET).write_text("{not json")
    with pytest.raises(ValueError, match=f"{RUN_COLOR_TARGET}.*not a readable"):
        run_color_target(run / "model.keras")
    (run / RUN_COLOR_TARGET).write_text(json.dumps({"mean": [1, 2, 3]}))
    with pytest.raises(ValueError, match=RUN_COLOR_TARGET):
        run_color_target(run / "model.keras")


def _config(output, dataset, **changes) -> TrainConfig:
    base = dict(preset="deconvnet_tiny", output=str(output), data=str(dataset), epochs=1,
                batch_size=2, crop_size=[48, 64], optimizer="adam", learning_rate=3e-3,
                steps_per_epoch=2, deterministic=True, mixed_precision=False, color_norm=True)
    return TrainConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def color_run(tmp_path_factory, dataset):
    config = _config(tmp_path_factory.mktemp("color_run") / "run", dataset)
    return config, train(config, verbose=0)


@requires_tf
def test_a_color_norm_run_records_its_statistics(color_run, dataset):
    config, result = color_run
    out = Path(config.output)
    want = color_statistics(open_source(dataset), "train")
    assert result.color_target == want
    assert json.loads((out / RUN_COLOR_TARGET).read_text()) == want
    assert json.loads((out / "finished.json").read_text())["color_target"] == want
    for path in (result.model_path, out / "checkpoints" / "last.keras"):
        assert run_color_target(path) == want
    assert load_segmenter(result.model_path).color_target == want
    # re-running the finished command trains nothing and still reports them
    assert train(config, verbose=0).color_target == want


@requires_tf
def test_the_runs_models_are_fed_the_normalised_colours(color_run, dataset):
    """color_target= is the image normalised by hand, then scored as it is; the run's
    model.keras opened by path (load_segmenter) normalises to the run's statistics itself."""
    _, result = color_run
    want = result.color_target
    image, _ = _examples(dataset, "val")[0]
    by_hand = predict_native(result.model_path, normalize_colors(image, want), color_norm=False)
    network = keras.saving.load_model(result.model_path)
    np.testing.assert_allclose(predict_native(network, image, color_target=want), by_hand,
                               atol=1e-5)
    np.testing.assert_allclose(predict_native(result.model_path, image), by_hand, atol=1e-5)
    assert not np.allclose(predict_native(network, image), by_hand, atol=1e-5)
    with pytest.raises(ValueError, match="color_target"):
        evaluate(result.model_path, dataset, "val", progress=False, color_target={"mean": 1})


@requires_tf
def test_deconvnet_evaluate_uses_the_runs_statistics(color_run, dataset, tmp_path, capsys):
    from deconvnet_tf.cli.evaluate import main as evaluate_main

    config, result = color_run
    assert evaluate_main(["--model", config.output, "--data", str(dataset), "--split", "val",
                          "--output", str(tmp_path / "eval")]) == 0
    assert "Colour normalisation: to the statistics the run trained on" in capsys.readouterr().out
    normalised = json.loads((tmp_path / "eval" / "metrics.json").read_text())["mean_iou"]
    report = evaluate(keras.saving.load_model(result.model_path), dataset, "val",
                      progress=False, color_target=result.color_target)
    assert normalised == pytest.approx(report.mean_iou)
    assert evaluate_main(["--model", config.output, "--data", str(dataset), "--split", "val",
                          "--no-color-norm", "--output", str(tmp_path / "eval_off")]) == 0
    assert "Colour normalisation" not in capsys.readouterr().out
    off = json.loads((tmp_path / "eval_off" / "metrics.json").read_text())["mean_iou"]
    plain = evaluate(result.model_path, dataset, "val", progress=False, color_norm=False)
    assert off == pytest.approx(plain.mean_iou)


@requires_tf
def test_multiscale_table_uses_the_runs_statistics(color_run, dataset, tmp_path):
    """tools/multiscale_table.py, by default each model's own setting: a color_norm run's bare
    model.keras is scored on images normalised to the run's statistics (its one-size row is
    what evaluate gives with them); --color-target off scores the images as they are."""
    import multiscale_table  # tools/ (pytest's pythonpath)

    config, result = color_run
    rows = {}
    for name, extra in (("own", []), ("off", ["--color-target", "off"])):
        out = tmp_path / f"{name}.json"
        assert multiscale_table.main(["--model", config.output, "--data", str(dataset),
                                      "--split", "val", "--sizes", "48x64", "--quiet",
                                      "--output", str(out), *extra]) == 0
        rows[name] = json.loads(out.read_text())["rows"]["48x64"]["mean_iou"]
    network = keras.saving.load_model(result.model_path)
    normalised = evaluate(network, dataset, "val", progress=False, input_size=(48, 64),
                          flip=False, color_target=result.color_target)
    plain = evaluate(network, dataset, "val", progress=False, input_size=(48, 64), flip=False)
    assert rows["own"] == pytest.approx(normalised.mean_iou)
    assert rows["off"] == pytest.approx(plain.mean_iou)


@requires_tf
def test_an_export_of_the_run_carries_its_statistics(color_run, tmp_path, monkeypatch):
    from deconvnet_tf.export import export_saved_model, load_saved_model
    from deconvnet_tf.inference import segmenter
    from deconvnet_tf.lite import read_metadata

    _, result = color_run
    loads = []
    original = segmenter.load_model
    monkeypatch.setattr(segmenter, "load_model", lambda *a, **k: loads.append(a) or original(
        *a, **k))
    saved = export_saved_model(result.model_path, tmp_path / "sm")
    assert loads == []  # the run's model.keras is loaded once (as the bare network), not again
    assert read_metadata(saved).color_target == result.color_target
    assert load_saved_model(saved).color_target == result.color_target


@requires_tf
def test_overwrite_without_color_norm_removes_the_record(color_run, tmp_path, dataset):
    import shutil

    config, _ = color_run
    out = tmp_path / "run"
    shutil.copytree(config.output, out)
    train(_config(out, dataset, color_norm=False), verbose=0, overwrite=True)
    assert not (out / RUN_COLOR_TARGET).exists()
    assert "color_target" not in json.loads((out / "finished.json").read_text())
    assert load_segmenter(out / "model.keras").color_target is None


@requires_tf
def test_a_damaged_record_is_a_one_line_error_and_nothing_is_written(color_run, tmp_path,
                                                                      dataset, capsys):
    import shutil

    from deconvnet_tf.cli.evaluate import main as evaluate_main
    from deconvnet_tf.cli.predict import main as predict_main

    config, result = color_run
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(result.model_path, run / "model.keras")
    (run / RUN_COLOR_TARGET).write_text("{not json")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    image = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(_examples(dataset, "val")[0][0]).save(image)
    assert evaluate_main(["--model", str(run), "--data", str(dataset), "--split", "val",
                          "--output", str(tmp_path / "eval")]) == 2
    assert predict_main(["--model", str(run / "model.keras"), "--input", str(image),
                         "--output", str(tmp_path / "pred")]) == 2
    err = capsys.readouterr().err
    assert err.count(f"{RUN_COLOR_TARGET}' is not a readable colour target") == 2
    assert "Traceback" not in err
    assert not (tmp_path / "eval").exists() and not (tmp_path / "pred").exists()
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    # without the normalisation the record is not needed, so a damaged one is not an error
    assert evaluate_main(["--model", str(run), "--data", str(dataset), "--split", "val",
                          "--no-color-norm", "--output", str(tmp_path / "eval_off")]) == 0
    assert load_segmenter(run / "model.keras", color_target=None).color_target is None
    assert predict_main(["--model", str(run / "model.keras"), "--input", str(image),
                         "--no-color-norm", "--output", str(tmp_path / "pred_off"),
                         "--quiet"]) == 0
    assert "colour normalisation on" not in capsys.readouterr().err
    assert (tmp_path / "pred_off").is_dir()
    from deconvnet_tf.inference.predict import load_predictor

    assert load_predictor(run / "model.keras", color_target=None).color_target is None
    target = {"mean": [90.0, 100.0, 110.0], "std": [50.0, 50.0, 50.0]}  # instead of the record
    got = load_predictor(run / "model.keras", color_target=target).color_target
    assert got["mean"] == target["mean"] and got["std"] == target["std"]
    with pytest.raises(ValueError, match="load_predictor: color_target"):
        load_predictor(run / "model.keras", color_target={"mean": [1, 2]})
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # the run is untouched
