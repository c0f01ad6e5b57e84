"""Recipes as data: each reproduces its shipped model's card command, and the CLI applies it
with the documented precedence; the time estimate printed before long training."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import keras
import numpy as np
import pytest

from deconvnet_tf.cli import train as train_cli
from deconvnet_tf.models.recipes import get_recipe, list_recipes
from deconvnet_tf.training.callbacks import TimeEstimate, format_duration
from deconvnet_tf.training.config import TrainConfig

pytestmark = pytest.mark.jax
ROOT = Path(__file__).resolve().parents[2]


def resolve(argv):
    parser = train_cli._parser()
    return train_cli.resolve_config(parser, parser.parse_args(argv))


def card_command(name: str) -> list[str]:
    card = (ROOT / "saved_models" / f"{name}.md").read_text()
    line = next(l for l in card.splitlines() if l.strip().startswith("deconvnet-train "))
    return shlex.split(line)[1:]


@pytest.mark.parametrize("name", ["camvid_compact", "horse_compact"])
def test_recipe_reproduces_the_shipped_models_card_command(name):
    assert name in list_recipes()
    from_card = resolve(card_command(name)).to_dict()
    from_recipe = resolve(["--recipe", name, "--data", from_card["data"]]).to_dict()
    # Where the run goes; the card's quiet flag is not a config. How the step is computed is
    # the machine's choice: the shipped model trained in bfloat16 (the card's command says so,
    # and whether under XLA); the recipe picks the machine's fastest precision.
    ignore = {"output", "data", "mixed_precision", "jit_compile"}
    assert {k: v for k, v in from_recipe.items() if k not in ignore} == \
           {k: v for k, v in from_card.items() if k not in ignore}
    assert from_recipe["output"] == f"runs/{name}"
    assert from_recipe["mixed_precision"] is None
    card = card_command(name)
    if "--recipe" in card:  # the card names the recipe itself (camvid_compact since 2026-12-07)
        assert card[card.index("--recipe") + 1] == name
        # and the shipped runs were trained as the recipe says (the card's resolved configs,
        # written by tools/ship_model.py from each run's config.json)
        text = (ROOT / "saved_models" / f"{name}.md").read_text()
        resolved = re.findall(r"^Resolved config[^:]*: encoder weights `([^`]+)`, frozen blocks "
                              r"(\d+), (\d+) epochs, batch (\d+), crops \[(\d+), (\d+)\]", text,
                              re.M)
        assert resolved, f"{name}'s card has no resolved config"
        for weights, frozen, epochs, batch, *crop in resolved:
            assert (weights, int(frozen), int(epochs), int(batch), [int(c) for c in crop]) == (
                from_recipe["encoder_weights"], from_recipe["frozen_blocks"],
                from_recipe["epochs"], from_recipe["batch_size"], from_recipe["crop_size"])
        # augmentation that is off by default: named on the card exactly when the recipe sets it
        grey = re.findall(r"greyscale crops p ([0-9]+(?:\.[0-9]+)?)", text)
        assert [float(g) for g in grey] == [from_recipe["grayscale_prob"]] * len(grey)
        assert bool(grey) == bool(from_recipe["grayscale_prob"])
    else:  # the expanded command the model was trained with, in bfloat16
        assert from_card["mixed_precision"] is True


@pytest.mark.parametrize("name", ["camvid_compact", "horse_compact"])
def test_recipe_trains_in_bfloat16_only_where_it_is_fast(name, monkeypatch):
    """A CPU without native bfloat16 emulates it (~9x slower, docs/benchmarks.md): a recipe
    trains in float32 there (with XLA), without the warning; in bfloat16 without XLA on CPUs
    with AMX or AVX-512 BF16, and in bfloat16 with XLA on GPUs."""
    from deconvnet_tf.training import train as train_module
    from deconvnet_tf.training.train import precision_warning, resolve_mixed_precision

    from tests.training.test_precision import (AMX_CPUINFO as amx, AVX2_CPUINFO as avx2,
                                               AVX512_CPUINFO as avx512)

    config = resolve(["--recipe", name, "--data", "d"])
    assert config.mixed_precision is None and config.jit_compile is None  # the machine picks
    mixed, why = resolve_mixed_precision(config, gpu_capabilities=[], cpuinfo=avx2)
    assert mixed is False and "without native bfloat16" in why
    assert precision_warning(mixed, gpu_capabilities=[], cpuinfo=avx2) is None
    for cpuinfo in (amx, avx512):
        assert resolve_mixed_precision(config, gpu_capabilities=[], cpuinfo=cpuinfo)[0] is True
    assert resolve_mixed_precision(config, gpu_capabilities=[(9, 0)])[0] is True
    long_run = 2 * train_module.XLA_MIN_RUN_SECONDS * train_module.CPU_GFLOPS_ESTIMATE
    if keras.config.backend() == "tensorflow":
        monkeypatch.setattr(train_module, "_tf_gpus", lambda: [])
        assert train_module.resolve_jit_compile(config, long_run, mixed=True,
                                                cpuinfo=avx512) is False
        assert train_module.resolve_jit_compile(config, long_run, mixed=False,
                                                cpuinfo=avx2) is True


def test_precedence_recipe_then_config_then_flags_then_set(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"learning_rate": 0.05, "epochs": 7}))
    got = resolve(["--recipe", "camvid_compact", "--data", "d", "--config", str(config),
                   "--epochs", "9", "--set", "momentum=0.5"])
    assert got.preset == "deconvnet_efficientnet_lite0" and got.optimizer == "adam"  # recipe
    assert got.learning_rate == 0.05  # --config over the recipe
    assert got.epochs == 9  # flag over --config
    assert got.momentum == 0.5  # --set
    assert got.crop_size == [176, 240]  # recipe fields the config file does not set stay


def test_unknown_recipe_and_missing_data_are_one_line_errors(capsys):
    for argv, needle in ((["--recipe", "nope"], "unknown recipe 'nope'; available: "
                                                "camvid_compact, camvid_vgg16, horse_compact"),
                         (["--recipe", "horse_compact"], "needs --data: Weizmann Horse")):
        with pytest.raises(SystemExit) as exit_:
            resolve(argv)
        assert exit_.value.code == 2
        assert needle in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown recipe"):
        get_recipe("../presets")


def test_every_recipe_is_a_valid_config():
    for name in list_recipes():
        recipe = get_recipe(name)
        assert recipe["description"] and recipe["data"]
        TrainConfig.from_dict({**TrainConfig().to_dict(), **recipe["config"]})


class FakeClock:
    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self):
        return self.now


def run_steps(callback, clock, steps, first=5.0):
    for i in range(steps):
        callback.on_train_batch_begin(i)
        clock.now += first if i == 0 else clock.step  # the first step compiles
        callback.on_train_batch_end(i)


def test_time_estimate_from_the_first_steps_skips_the_compiling_one():
    lines = []
    clock = FakeClock(0.5)
    estimate = TimeEstimate(1000, printer=lines.append, clock=clock)
    run_steps(estimate, clock, 10)
    assert estimate.seconds_per_step == pytest.approx(0.5)
    assert estimate.estimate == pytest.approx(500.0)
    assert len(lines) == 1 and "estimated training time 8.3 min" in lines[0]
    assert "1000 steps at 0.50 s/step, measured on steps 2-4" in lines[0]


def test_short_runs_print_nothing():
    lines = []
    clock = FakeClock(0.01)
    estimate = TimeEstimate(100, printer=lines.append, clock=clock)
    run_steps(estimate, clock, 8)
    assert estimate.estimate == pytest.approx(1.0) and lines == []
    assert [format_duration(s) for s in (42, 210, 7560)] == ["42 s", "3.5 min", "2.1 h"]


@pytest.mark.slow
def test_train_prints_the_estimate(tmp_path, monkeypatch, capsys):
    from deconvnet_tf.training import train as train_module

    monkeypatch.setattr(train_module, "TIME_ESTIMATE_THRESHOLD", 0.0)
    config = TrainConfig(preset="deconvnet_tiny", output=str(tmp_path / "run"), epochs=1,
                         batch_size=2, crop_size=[32, 32], synthetic_train=12, synthetic_val=2,
                         synthetic_size=[32, 32], encoder_weights=None, validation_freq=1)
    train_module.train(config, verbose=2)
    out = capsys.readouterr().out
    assert re.search(r"estimated training time \S+ (s|min|h) \(6 steps at", out), out
    assert np.isfinite(float(re.search(r"at ([0-9.]+) s/step", out).group(1)))
