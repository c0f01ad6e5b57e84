"""Learning-rate schedules at their edges: period 0 and 1, the defaults, a one-epoch run."""

from __future__ import annotations

import pytest

from deconvnet_tf.training.schedules import lr_schedule, step_decay


def test_step_decay_period_zero_is_constant_and_period_one_decays_every_epoch():
    assert [step_decay(0.5, 0, 0.1)(e) for e in range(3)] == [0.5, 0.5, 0.5]
    assert [step_decay(1.0, 1, 0.5)(e) for e in range(3)] == [1.0, 0.5, 0.25]
    assert [step_decay(1.0, 2, 0.5)(e) for e in range(4)] == [1.0, 1.0, 0.5, 0.5]


def test_lr_schedule_defaults_constant_step_and_factor_one_tenth():
    assert [lr_schedule("step", 0.2, 10)(e) for e in (0, 5, 9)] == [0.2, 0.2, 0.2]
    assert lr_schedule("step", 1.0, 10, every=2)(2) == pytest.approx(0.1)
    assert lr_schedule("poly", 1.0, 10)(5) == pytest.approx(0.5 ** 0.9)


def test_a_one_epoch_run_is_allowed():
    for kind in ("step", "poly", "cosine"):
        assert lr_schedule(kind, 0.3, 1)(0) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        lr_schedule("cosine", 0.3, 0)
