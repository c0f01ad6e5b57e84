"""TrainConfig: validation names the field, overrides parse by type, JSON round trip."""

from __future__ import annotations

import json

import pytest

from deconvnet_tf.training.config import ConfigError, TrainConfig


def test_defaults_follow_the_paper():
    c = TrainConfig()
    assert (c.optimizer, c.learning_rate, c.momentum, c.weight_decay) == ("sgd", 0.01, 0.9, 5e-4)


def test_overrides_parse_by_field_type():
    c = TrainConfig().with_overrides([
        "epochs=3", "crop_size=[128,160]", "mixed_precision=true", "learning_rate=1e-3",
        "data=/x", "num_classes=null", "encoder_weights=hed", "bn_momentum=0.9",
    ])
    assert (c.epochs, c.crop_size, c.mixed_precision, c.learning_rate) == (3, [128, 160], True, 1e-3)
    assert (c.data, c.num_classes, c.encoder_weights, c.bn_momentum) == ("/x", None, "hed", 0.9)


@pytest.mark.parametrize(
    "assignment,message",
    [
        ("epochs=0", "'epochs'"),
        ("stage=stage9", "'stage'"),
        ("preset=nope", "'preset'"),
        ("crop_size=[8,8]", "'crop_size'"),
        ("epochs=two", "--set epochs"),
        ("nonsense=1", "unknown field 'nonsense'"),
        ("epochs", "key=value"),
        ("jit_compile=true", None),
        ("lr_schedule=linear", "'lr_schedule'"),
        ("validation_freq=0", "'validation_freq'"),
    ],
)
def test_bad_values_name_the_field(assignment, message):
    if message is None:  # jit_compile alone is fine; with argmax unpooling it is not
        TrainConfig().with_overrides([assignment])
        with pytest.raises(ConfigError, match="no XLA kernel"):
            TrainConfig().with_overrides([assignment, "unpooling=argmax"])
        return
    with pytest.raises(ConfigError, match=message):
        TrainConfig().with_overrides([assignment])


def test_save_and_load_round_trip(tmp_path):
    c = TrainConfig(preset="deconvnet_tiny", epochs=2, crop_size=[64, 64])
    path = c.save(tmp_path / "run" / "config.json")
    assert TrainConfig.load(path) == c
    (tmp_path / "bad.json").write_text(json.dumps({"epochz": 1}))
    with pytest.raises(ConfigError, match=r"bad.json.*unknown field"):
        TrainConfig.load(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.load(tmp_path / "broken.json")
    with pytest.raises(ConfigError, match="not found"):
        TrainConfig.load(tmp_path / "missing.json")
