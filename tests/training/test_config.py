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


def test_augmentation_fields_parse_as_floats_and_default_to_the_old_augmentation():
    assert (TrainConfig().scale_range, TrainConfig().color_jitter) == ([0.75, 1.25], 0.2)
    c = TrainConfig().with_overrides(["scale_range=[0.5,2]", "color_jitter=0"])
    assert c.scale_range == [0.5, 2.0] and all(type(v) is float for v in c.scale_range)
    assert c.color_jitter == 0.0


@pytest.mark.parametrize(
    "assignment,message",
    [
        ("epochs=0", "'epochs'"),
        ("stage=stage9", "'stage'"),
        ("input_mode=stage1", "'input_mode'"),
        ("two_stage=true", "'two_stage'"),
        ("preset=nope", "'preset'"),
        ("crop_size=[8,8]", "'crop_size'"),
        ("epochs=two", "--set epochs"),
        ("nonsense=1", "unknown field 'nonsense'"),
        ("epochs", "key=value"),
        ("jit_compile=true", None),
        ("lr_schedule=linear", "'lr_schedule'"),
        ("validation_freq=0", "'validation_freq'"),
        ("scale_range=[0,2]", "'scale_range'"),
        ("scale_range=[2,1]", "'scale_range'"),
        ("scale_range=[0.5]", "'scale_range'"),
        ('scale_range=["a",2]', "'scale_range'"),
        ("color_jitter=1", "'color_jitter'"),
        ("color_jitter=-0.1", "'color_jitter'"),
        ("gamma_jitter=-0.5", "'gamma_jitter'"),
        ("gamma_jitter=3.5", "'gamma_jitter'"),
        ("gamma_jitter=true", "gamma_jitter"),
        ('gamma_jitter="0.5"', "gamma_jitter"),
        ("gamma_jitter=NaN", "'gamma_jitter'"),
        ("grayscale_prob=-0.1", r"'grayscale_prob'.*probability in \[0, 1\]"),
        ("grayscale_prob=1.5", r"'grayscale_prob'.*probability in \[0, 1\]"),
        ("grayscale_prob=true", "grayscale_prob"),
        ('grayscale_prob="0.2"', "grayscale_prob"),
        ("grayscale_prob=NaN", "'grayscale_prob'.*finite number"),
        ("grayscale_prob=Infinity", "'grayscale_prob'.*finite number"),
        ("class_uniform_crops=-0.1", "'class_uniform_crops'"),
        ("class_uniform_crops=1.5", "'class_uniform_crops'"),
        ("class_uniform_crops=true", "class_uniform_crops"),
        ('class_uniform_crops="0.5"', "class_uniform_crops"),
        ("class_uniform_crops=NaN", "'class_uniform_crops'"),
        ("class_paste=-0.1", "'class_paste'"),
        ("class_paste=1.5", "'class_paste'"),
        ("class_paste=true", "class_paste"),
        ("class_paste=NaN", "'class_paste'"),
        ("class_paste_classes=[]", "'class_paste_classes'.*non-empty list"),
        ("class_paste_classes=[2,300]", "'class_paste_classes'"),
        ("class_paste_classes=[-1]", "'class_paste_classes'"),
        ("class_paste_classes=[1.5]", "class_paste_classes"),
        ('class_paste_classes="2"', "class_paste_classes"),
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


@pytest.mark.parametrize("field, value, message", [
    ("epochs", "x", "'epochs': expected an integer"),
    ("epochs", 2.5, "'epochs': expected an integer"),
    ("epochs", True, "'epochs': expected an integer"),
    ("crop_size", 5, "'crop_size': expected a list of integers"),
    ("crop_size", ["a", "b"], "'crop_size': expected a list of integers"),
    ("learning_rate", "fast", "'learning_rate': expected a number"),
    ("learning_rate", float("inf"), "'learning_rate': must be a finite number"),
    ("weight_decay", float("nan"), "'weight_decay': must be a finite number"),
    ("mixed_precision", "yes", "'mixed_precision': expected true or false"),
    ("preset", 3, "'preset': expected a string"),
    ("frozen_blocks", -1, "'frozen_blocks': must be >= 0"),
    ("bn_momentum", 1.5, r"'bn_momentum': must be in \[0, 1\)"),
])
def test_wrong_types_from_a_config_file_name_the_field(tmp_path, field, value, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({field: value}))
    with pytest.raises(ConfigError, match=message):
        TrainConfig.load(path)


def test_numbers_of_other_types_are_converted():
    import numpy as np

    c = TrainConfig(epochs=np.int64(3), learning_rate=1, crop_size=(64, np.int32(80)))
    assert (c.epochs, c.learning_rate, c.crop_size) == (3, 1.0, [64, 80])
    assert type(c.epochs) is int and type(c.learning_rate) is float
    assert json.loads(json.dumps(c.to_dict()))["crop_size"] == [64, 80]


# ---- the field 'stage' of older versions: split into input_mode and two_stage ------------------
@pytest.mark.parametrize("stage,mode,two", [
    ("crop", "crop", False), ("whole", "whole", False), ("stage1", "object_crops", False),
    ("stage2", "proposal_windows", False), ("two_stage", "proposal_windows", True)])
def test_a_config_file_with_the_old_stage_field_still_loads(tmp_path, stage, mode, two):
    data = TrainConfig().to_dict()
    del data["input_mode"], data["two_stage"]
    data["stage"] = stage
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.warns(FutureWarning, match=f"stage={stage} as input_mode={mode}"):
        c = TrainConfig.load(path)
    assert (c.input_mode, c.two_stage) == (mode, two)
    assert "stage" not in c.to_dict()  # saved again under the new names only
    with pytest.warns(FutureWarning, match="'stage' is deprecated"):
        assert (TrainConfig(stage=stage).input_mode, TrainConfig(stage=stage).two_stage) == (mode, two)
    with pytest.warns(FutureWarning, match="--set stage"):
        c = TrainConfig().with_overrides([f"stage={stage}"])
    assert (c.input_mode, c.two_stage) == (mode, two)


def test_old_stage_values_that_conflict_or_are_unknown_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="conflicts with input_mode='whole'"):
        TrainConfig(input_mode="whole", stage="stage1")
    with pytest.raises(ConfigError, match=r"'stage'.*got \[1\]"):
        TrainConfig.from_dict({"stage": [1]}, source="old.json")
    with pytest.raises(ConfigError, match="'stage'.*got 'stage9'"):
        TrainConfig.from_dict({"stage": "stage9"}, source="old.json")
    with pytest.raises(ConfigError, match="old.json"):
        TrainConfig.from_dict({"stage": "crop", "input_mode": "whole"}, source="old.json")
    # the defaults updated by an old dict (what --recipe does): 'stage' sets both fields
    with pytest.warns(FutureWarning):
        c = TrainConfig.from_dict({**TrainConfig().to_dict(), "stage": "two_stage"})
    assert (c.input_mode, c.two_stage) == ("proposal_windows", True)


def test_two_stage_needs_proposal_windows_and_window_modes_need_files():
    with pytest.raises(ConfigError, match="'two_stage'.*input_mode=proposal_windows"):
        TrainConfig(two_stage=True)
    assert TrainConfig(two_stage=True, input_mode="proposal_windows").two_stage
    with pytest.raises(ConfigError, match="'input_mode'.*file-based"):
        TrainConfig(input_mode="object_crops", tfds="oxford_iiit_pet")


def test_a_run_folder_of_an_older_version_resumes_under_the_new_names(tmp_path):
    from deconvnet_tf.training.runfolder import check_settings, inspect_run

    new = TrainConfig(output=str(tmp_path), data="d", input_mode="proposal_windows",
                      two_stage=True)
    data = new.to_dict()
    del data["input_mode"], data["two_stage"]
    (tmp_path / "config.json").write_text(json.dumps({**data, "stage": "two_stage"}))
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "training_metadata.json").write_text("{}")
    with pytest.warns(FutureWarning):
        state = inspect_run(tmp_path)
    check_settings(state, new)  # the same settings: resumable
    with pytest.raises(ConfigError, match="input_mode"):
        check_settings(state, TrainConfig(output=str(tmp_path), data="d"))


@pytest.mark.parametrize("field, value", [("gamma_jitter", 0.5), ("grayscale_prob", 0.2),
                                          ("class_uniform_crops", 1.0), ("class_paste", 0.5)])
def test_crop_augmentation_fields_are_off_by_default_and_only_for_crop_training(field, value):
    assert getattr(TrainConfig(), field) == 0.0
    assert getattr(TrainConfig().with_overrides([f"{field}={value:g}"]), field) == value
    for mode in ("object_crops", "proposal_windows"):
        extra = ["two_stage=false"] if mode == "proposal_windows" else []
        with pytest.raises(ConfigError, match=f"'{field}'.*applies to input_mode crop"):
            TrainConfig(data="d").with_overrides([f"input_mode={mode}", *extra,
                                                  f"{field}={value:g}"])


@pytest.mark.parametrize("bad, message", [
    (-0.1, r"probability in \[0, 1\], got -0.1"), (1.5, r"probability in \[0, 1\], got 1.5"),
    (float("nan"), "finite number, got nan"), (float("inf"), "finite number, got inf"),
    (True, "expected a number, got True"), ("0.2", "expected a number, got '0.2'")])
def test_grayscale_prob_is_a_probability(bad, message):
    """A number in [0, 1] (an integral one becomes a float); anything else names the field."""
    assert TrainConfig(grayscale_prob=1).grayscale_prob == 1.0
    assert isinstance(TrainConfig(grayscale_prob=1).grayscale_prob, float)
    with pytest.raises(ConfigError, match=f"config field 'grayscale_prob': .*{message}"):
        TrainConfig(grayscale_prob=bad)


def test_class_paste_classes_default_to_the_rare_ones_and_take_a_list():
    assert TrainConfig().class_paste_classes is None
    config = TrainConfig().with_overrides(["class_paste=0.5", "class_paste_classes=[9,2]"])
    assert config.class_paste == 0.5 and config.class_paste_classes == [9, 2]
    assert TrainConfig().with_overrides(["class_paste_classes=null"]).class_paste_classes is None
