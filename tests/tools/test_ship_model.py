"""tools/ship_model.py: a run becomes a Segmenter + LiteRT files + a card; nothing is replaced
without --overwrite."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import requires_tf

import ship_model  # tools/ship_model.py (pytest's pythonpath has tools/)

pytestmark = requires_tf  # training and the LiteRT export


@pytest.fixture(scope="module")
def run_and_data(tmp_path_factory):
    from deconvnet_tf.data.synthetic import write_synthetic_dataset
    from deconvnet_tf.training.config import TrainConfig
    from deconvnet_tf.training.train import train

    base = tmp_path_factory.mktemp("ship")
    data = write_synthetic_dataset(base / "data", num_train=6, num_val=2, height=48, width=64)
    common = dict(preset="deconvnet_tiny", data=str(data), epochs=1, batch_size=2,
                  crop_size=[48, 64], steps_per_epoch=1)
    train(TrainConfig(output=str(base / "run"), **common), verbose=0)
    train(TrainConfig(output=str(base / "dev"), train_split="train[-0/3]",
                      val_split="train[0/3]", color_norm=True, **common), verbose=0)
    return base / "run", data, base / "dev"


@pytest.mark.slow
def test_ship_writes_a_segmenter_litert_files_and_a_card_with_the_dev_score(run_and_data, tmp_path,
                                                                           monkeypatch):
    import deconvnet_tf
    from deconvnet_tf.models.registry import REGISTRY

    # the registry entry of a re-shipped name does not set the ship's test-time scales
    monkeypatch.setitem(REGISTRY, "toy", {"metadata": {"test_time_scales": [1.0, 1.5]}})

    run, data, dev = run_and_data
    out = tmp_path / "shipped"
    result = ship_model.main(["--run", str(run), "--data", str(data), "--name", "toy",
                              "--output", str(out), "--input-size", "48x64", "--dev-run",
                              str(dev), "--default-crf", "--test-time-flip"])
    assert result == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in ship_model.shipped_files(out, "toy"))
    segmenter = deconvnet_tf.Segmenter.from_preset(str(out / "toy.keras"))
    from deconvnet_tf.data.folder import read_meta

    names = list(read_meta(data).class_names)
    assert segmenter.image_size == (48, 64) and segmenter.class_names == names
    assert segmenter.default_crf is True  # --default-crf
    assert segmenter.test_time_flip is True  # --test-time-flip, in every runtime's files
    assert segmenter.test_time_scales == (1.0,)  # no --scales: the working size alone
    from deconvnet_tf.lite import read_metadata

    assert read_metadata(out / "toy.tflite").test_time_flip is True
    assert read_metadata(out / "toy_int8.tflite").test_time_flip is True
    card = (out / "toy.md").read_text()
    assert "Default post-processing in `deconvnet-predict`: the dense CRF" in card
    assert "Test-time flip: on" in card and "Test-time scales" not in card
    assert "at the working size" not in card  # no scales: one agreement column
    dev_log = (dev / "log.csv").read_text().strip().splitlines()[-1].split(",")
    assert f"{100 * float(dev_log[-1]):.1f} mean IoU" in card
    assert "trained on `train[-0/3]`, scored on `train[0/3]`" in card
    assert "Working resolution: 48x64" in card and "min wall" in card


@pytest.mark.slow
def test_ship_never_replaces_files_without_overwrite(run_and_data, tmp_path, capsys):
    run, data, _ = run_and_data
    out = tmp_path / "shipped"
    out.mkdir()
    mine = out / "toy.md"
    mine.write_text("my notes")
    with pytest.raises(SystemExit) as caught:
        ship_model.main(["--run", str(run), "--data", str(data), "--name", "toy", "--output",
                         str(out)])
    assert caught.value.code == 2
    assert "toy.md exist(s); pass --overwrite" in capsys.readouterr().err
    assert mine.read_text() == "my notes" and sorted(p.name for p in out.iterdir()) == ["toy.md"]


@pytest.mark.slow
def test_update_settings_changes_the_flip_of_a_shipped_model_without_retraining(
        run_and_data, tmp_path, capsys):
    """--update-settings: same weights, test_time_flip in the .keras file and both sidecars, a
    dated card section with the measured metrics; refused without a reason or a change."""
    import deconvnet_tf
    from deconvnet_tf.lite import read_metadata

    run, data, _ = run_and_data
    out = tmp_path / "shipped"
    assert ship_model.main(["--run", str(run), "--data", str(data), "--name", "toy",
                            "--output", str(out), "--input-size", "48x64"]) == 0
    before = deconvnet_tf.Segmenter.from_preset(str(out / "toy.keras"))
    tflite_bytes = (out / "toy_int8.tflite").read_bytes()
    card_before = (out / "toy.md").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit):  # nothing changed after shipping: nothing to refresh
        ship_model.main(["--refresh-card", "--name", "toy", "--output", str(out)])
    assert "the one written at shipping" in capsys.readouterr().err
    assert (out / "toy.md").read_text() == card_before
    common = ["--update-settings", "--name", "toy", "--output", str(out), "--data", str(data)]
    with pytest.raises(SystemExit):  # no reason: nothing written
        ship_model.main([*common, "--test-time-flip"])
    assert "a reason" in capsys.readouterr().err
    assert ship_model.main([*common, "--test-time-flip", "--reason", "dev split: +1.8"]) == 0
    printed = capsys.readouterr().out
    after = deconvnet_tf.Segmenter.from_preset(str(out / "toy.keras"))
    assert after.test_time_flip is True and before.test_time_flip is False
    assert after.image_size == (48, 64) and after.class_names == before.class_names
    for a, b in zip(before.get_weights(), after.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert read_metadata(out / "toy.tflite").test_time_flip is True
    assert read_metadata(out / "toy_int8.tflite").test_time_flip is True
    assert (out / "toy_int8.tflite").read_bytes() == tflite_bytes  # the graphs are untouched
    card = (out / "toy.md").read_text()
    # the head is the shipped card's but for its settings paragraph, which now states the
    # current settings (a reader of the first lines is not told the old ones)
    head = card_before.rstrip("\n").split("\n")
    settings_at = next(i for i, line in enumerate(head) if line.startswith(
        "Default post-processing in `deconvnet-predict`:"))
    now = card.split("\n")[settings_at]
    assert now.startswith("Current settings (since ") and "Test-time flip: on" in now
    assert card.split("\n")[:len(head)] == head[:settings_at] + [now] + head[settings_at + 1:]
    assert "Settings changed after training" in card and "`test_time_flip` on. dev split: +1.8" in card
    assert card.count("| LiteRT int8 |") == 2 and "sha256 of toy.keras" in printed
    with pytest.raises(SystemExit):  # already on
        ship_model.main([*common, "--test-time-flip", "--reason", "again"])
    assert "already has test_time_flip=True" in capsys.readouterr().err
    name = before.class_names[1]  # the largest-region post-processing: classes, then off
    assert ship_model.main([*common, "--largest-component", name, "--reason", "folds"]) == 0
    assert deconvnet_tf.Segmenter.from_preset(str(out / "toy.keras")).largest_component == (
        name,)
    assert f"`largest_component` {name}. folds" in (out / "toy.md").read_text()
    with pytest.raises(SystemExit):
        ship_model.main([*common, "--largest-component", "zebra", "--reason", "x"])
    assert "largest_component must name distinct classes" in capsys.readouterr().err
    assert ship_model.main([*common, "--largest-component", "off", "--reason", "undo"]) == 0
    assert deconvnet_tf.Segmenter.from_preset(str(out / "toy.keras")).largest_component == ()
    # test-time multi-scale (the Keras runtime's setting): checked like the CLIs' --scales
    assert ship_model.main([*common, "--scales", "1", "1.5", "--reason", "fold E"]) == 0
    scaled = deconvnet_tf.Segmenter.from_preset(str(out / "toy.keras"))
    assert scaled.test_time_scales == (1.0, 1.5)
    for a, b in zip(before.get_weights(), scaled.get_weights()):
        np.testing.assert_array_equal(a, b)
    card = (out / "toy.md").read_text()
    assert "`test_time_scales` 1, 1.5. fold E" in card
    # the LiteRT files run the working size: the new section also shows their agreement with
    # Keras there, the conversion's own effect (fp32: as good as exact)
    section = card.split("## Settings changed after training")[-1]
    assert "labels equal to Keras at the working size |" in section
    fp32_row = next(line for line in section.splitlines() if line.startswith("| LiteRT fp32 |"))
    assert float(fp32_row.rstrip(" |").rsplit("|", 1)[-1].strip(" %")) >= 99.9, fp32_row
    assert card.count("Current settings (since ") == 1 and "Test-time scales: 1, 1.5" in card
    assert "Default post-processing in `deconvnet-predict`:" not in card
    # --refresh-card: the paragraph from the .keras file alone; an up-to-date card is kept
    (out / "toy.md").write_text(card.replace("Test-time scales: 1, 1.5", "Test-time scales: 9"))
    keras_bytes = (out / "toy.keras").read_bytes()
    assert ship_model.main(["--refresh-card", "--name", "toy", "--output", str(out)]) == 0
    assert (out / "toy.md").read_text() == card and (out / "toy.keras").read_bytes() == keras_bytes
    with pytest.raises(SystemExit):
        ship_model.main(["--refresh-card", "--name", "nothere", "--output", str(out)])
    assert "not shipped" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a setting with --refresh-card: refused, nothing written
        ship_model.main(["--refresh-card", "--name", "toy", "--output", str(out), "--scales",
                         "1", "2"])
    assert "not --scales" in capsys.readouterr().err and (out / "toy.md").read_text() == card
    with pytest.raises(SystemExit):  # the other modes still need the data
        ship_model.main(["--update-settings", "--name", "toy", "--output", str(out),
                         "--no-test-time-flip", "--reason", "x"])
    assert "--data is required" in capsys.readouterr().err
    capsys.readouterr()
    for bad in (["0"], ["1", "1"], ["nan"]):
        with pytest.raises(SystemExit) as exit_info:
            ship_model.main([*common, "--scales", *bad, "--reason", "x"])
        assert exit_info.value.code == 2 and "--scales" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a ship's scales are checked before anything is written
        ship_model.main(["--run", str(run), "--data", str(data), "--name", "toy2",
                         "--output", str(out), "--scales", "1", "0"])
    assert "--scales must be one or more finite numbers > 0" in capsys.readouterr().err
    assert not (out / "toy2.keras").exists()


@pytest.mark.slow
def test_the_card_says_when_its_split_is_training_data(run_and_data, tmp_path, capsys):
    """--split takes selectors and unions; images the model trained on are named as such on the
    card (a train+val model's `val` numbers are no evidence); a bad split is a clear error."""
    run, data, dev = run_and_data
    out = tmp_path / "shipped"
    assert ship_model.main(["--run", str(run), "--data", str(data), "--name", "toy",
                            "--output", str(out), "--split", "train[0/3]+val"]) == 0
    card = (out / "toy.md").read_text()
    assert "## Metrics on the `train[0/3]+val` split (4 images, native resolution)" in card
    assert "**2 of these 4 images are in the model's training data** (`train`)" in card
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert ship_model.main(["--run", str(run), "--data", str(data), "--name", "toy",
                            "--output", str(out), "--overwrite"]) == 0  # a re-ship
    card = (out / "toy.md").read_text()
    assert "training data" not in card and card != before["toy.md"].decode()
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    assert ship_model.main(["--run", str(dev), "--data", str(data), "--name", "dev",
                            "--output", str(out), "--split", "train[0/3]"]) == 0
    card = (out / "dev.md").read_text()
    assert "training data" not in card and "(2 images, native resolution)" in card
    # the dev run trained with color_norm: the shipped model normalises to its statistics
    import deconvnet_tf
    from deconvnet_tf.inference.segmenter import run_color_target
    from deconvnet_tf.lite import read_metadata

    target = run_color_target(dev)
    assert target is not None
    assert deconvnet_tf.Segmenter.from_preset(str(out / "dev.keras")).color_target == target
    assert read_metadata(out / "dev_int8.tflite").color_target == target
    assert f"colour normalisation of every image to the training split's statistics (mean " \
           f"{target['mean']}" in card
    assert "colour normalisation" not in (out / "toy.md").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as caught:
        ship_model.main(["--run", str(run), "--data", str(data), "--name", "bad",
                         "--output", str(out), "--split", "train[9/3]"])
    assert caught.value.code == 2 and "needs 0 <= K < N" in capsys.readouterr().err
    assert not list(out.glob("bad*"))


@pytest.mark.slow
def test_ship_int8_only_with_a_colour_target_and_no_stale_variant(run_and_data, tmp_path,
                                                                   capsys):
    """--litert int8 writes no fp32 file and the card names the command that writes it;
    --color-target SPLIT at ship time goes into the .keras file, the sidecar and the card's
    metrics; a variant left out whose file exists from an earlier ship is refused (not
    deleted, not left next to a new model)."""
    import deconvnet_tf
    from deconvnet_tf.data.sources import open_source
    from deconvnet_tf.data.stats import color_statistics
    from deconvnet_tf.lite import read_metadata

    run, data, _ = run_and_data
    out = tmp_path / "shipped"
    argv = ["--run", str(run), "--data", str(data), "--name", "toy", "--output", str(out),
            "--input-size", "48x64", "--litert", "int8", "--color-target", "train"]
    assert ship_model.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in ship_model.shipped_files(out, "toy", ["int8"])) == [
        "toy.keras", "toy.md", "toy_int8.json", "toy_int8.tflite"]
    target = color_statistics(open_source(data), "train")
    assert deconvnet_tf.Segmenter.from_preset(str(out / "toy.keras")).color_target == target
    assert read_metadata(out / "toy_int8.tflite").color_target == target
    card = (out / "toy.md").read_text()
    assert "Test-time colour normalisation: each image's channels are brought to mean" in card
    assert "The fp32 LiteRT file is not shipped" in card
    assert "    deconvnet-export --model saved_models/toy.keras --output toy.tflite" in card
    assert "| LiteRT int8 |" in card and "| LiteRT fp32 |" not in card
    assert "deconvnet-lite-predict --model saved_models/toy_int8.tflite" in card
    assert ship_model.shipped_litert(out, "toy") == ["int8"]
    # --update-settings works on the int8-only ship
    assert ship_model.main(["--update-settings", "--name", "toy", "--output", str(out),
                            "--data", str(data), "--test-time-flip", "--reason", "r"]) == 0
    assert read_metadata(out / "toy_int8.tflite").test_time_flip is True
    # an fp32 file of an earlier ship next to an int8-only re-ship: refused, nothing written
    (out / "toy.tflite").write_bytes(b"an earlier ship's fp32 file")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    with pytest.raises(SystemExit) as caught:
        ship_model.main([*argv, "--overwrite"])
    assert caught.value.code == 2
    assert "toy.tflite exist(s) and --litert leaves that variant out" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.slow
def test_ship_an_ensemble_of_two_runs_with_float16_weights(run_and_data, tmp_path, capsys,
                                                           monkeypatch):
    """--member RUN: the shipped network averages both runs' probabilities (EDeconvNet);
    --weights-storage float16 halves the .keras weights and the card's metrics are those of
    the file as written; a --member without model.keras is refused before anything is
    written. A ship's test-time scales are its --scales, never the registry entry's."""
    import deconvnet_tf
    from deconvnet_tf.models import EnsembleNetwork
    from deconvnet_tf.models.registry import REGISTRY

    # a registered name whose entry has other settings: a re-ship states its own
    monkeypatch.setitem(REGISTRY, "toy", {"metadata": {"test_time_scales": [1.0, 1.25],
                                                       "default_crf": False}})

    run, data, dev = run_and_data
    out = tmp_path / "shipped"
    argv = ["--run", str(run), "--member", str(dev), "--data", str(data), "--name", "toy",
            "--output", str(out), "--input-size", "48x64", "--litert", "int8",
            "--weights-storage", "float16", "--default-crf", "--command", "train one",
            "--command", "train two", "--scales", "1", "1.5"]
    with pytest.raises(SystemExit) as caught:
        ship_model.main([*argv[:2], "--member", str(tmp_path), *argv[2:]])
    assert caught.value.code == 2 and "has no model.keras" in capsys.readouterr().err
    assert not out.exists()
    assert ship_model.main(argv) == 0
    seg = deconvnet_tf.Segmenter.from_preset(str(out / "toy.keras"))
    assert isinstance(seg.network, EnsembleNetwork) and len(seg.network.member_names) == 2
    assert seg.weights_storage == "float16" and seg.default_crf is True
    assert seg.test_time_scales == (1.0, 1.5)
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(out / "toy.keras") as archive:
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
    kinds = set()
    weights.visititems(lambda _, obj: kinds.add(str(obj.dtype)) if isinstance(
        obj, h5py.Dataset) and obj.dtype.kind == "f" else None)
    assert kinds == {"float16"}
    card = (out / "toy.md").read_text()
    assert "EDeconvNet" in card and "    train one\n    train two\n" in card
    assert "min wall in all (2 runs, one after the other)" in card
    assert "| LiteRT int8 |" in card
    assert "Test-time scales: 1, 1.5 of the working size" in card


def test_the_metrics_table_has_a_working_size_column_only_when_measured():
    """A model with test-time scales gets a second agreement column (the LiteRT files run the
    working size alone); the Keras row has none of either."""
    from types import SimpleNamespace

    report = SimpleNamespace(mean_iou=0.5, pixel_accuracy=0.9, mean_class_accuracy=0.6)
    reports = {"Keras (.keras)": report, "LiteRT int8": report}
    plain = ship_model._metrics_table(reports, {"LiteRT int8": 0.97391})
    assert plain[0].count("labels equal") == 1 and plain[1].count("---:") == 4
    assert plain[2].endswith("| - |") and plain[3].endswith("| 97.39% |")
    both = ship_model._metrics_table(reports, {
        "LiteRT int8": 0.97391, f"LiteRT int8 {ship_model.AT_WORKING_SIZE}": 0.99254})
    assert both[0].endswith("| labels equal to Keras at the working size |")
    assert both[1].count("---:") == 5
    assert both[2].endswith("| - | - |") and both[3].endswith("| 97.39% | 99.25% |")


def test_the_resolved_config_names_augmentation_that_is_off_by_default_only_when_set():
    config = {"encoder_weights": "hed", "frozen_blocks": 2, "epochs": 40, "batch_size": 8,
              "crop_size": [224, 224], "grayscale_prob": 0.0, "gamma_jitter": 0.0}
    plain = ship_model._resolved_config(config, None, 61.3)
    assert "colour jitter 0.2. Training took 61.3 min wall" in plain and "greyscale" not in plain
    grey = ship_model._resolved_config({**config, "grayscale_prob": 0.2}, None, 61.3)
    assert "colour jitter 0.2, greyscale crops p 0.2. Training took" in grey
    assert "tone-curve" not in grey
