"""tools/ship_model.py: a run becomes a Segmenter + LiteRT files + a card; nothing is replaced
without --overwrite."""

from __future__ import annotations

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
                      val_split="train[0/3]", **common), verbose=0)
    return base / "run", data, base / "dev"


@pytest.mark.slow
def test_ship_writes_a_segmenter_litert_files_and_a_card_with_the_dev_score(run_and_data, tmp_path):
    import deconvnet_tf

    run, data, dev = run_and_data
    out = tmp_path / "shipped"
    result = ship_model.main(["--run", str(run), "--data", str(data), "--name", "toy",
                              "--output", str(out), "--input-size", "48x64", "--dev-run",
                              str(dev), "--default-crf"])
    assert result == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in ship_model.shipped_files(out, "toy"))
    segmenter = deconvnet_tf.Segmenter.from_preset(str(out / "toy.keras"))
    from deconvnet_tf.data.folder import read_meta

    names = list(read_meta(data).class_names)
    assert segmenter.image_size == (48, 64) and segmenter.class_names == names
    assert segmenter.default_crf is True  # --default-crf
    card = (out / "toy.md").read_text()
    assert "Default post-processing in `deconvnet-predict`: the dense CRF" in card
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
