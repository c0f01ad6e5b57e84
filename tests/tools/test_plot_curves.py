"""tools/plot_curves.py: sparse validation columns, resumed epochs, errors."""

from __future__ import annotations

import numpy as np
import pytest

import plot_curves  # tools/plot_curves.py (pytest's pythonpath has tools/)

LOG = """epoch,learning_rate,loss,mean_iou,val_learning_rate,val_loss,val_mean_iou
0,0.001,2.0,0.1,NA,NA,NA
1,0.001,1.5,0.2,NA,1.7,0.25
1,0.001,1.4,0.21,NA,1.6,0.3
2,0.0005,1.2,0.3,NA,NA,NA
3,0.0001,1.0,0.4,NA,1.1,0.45
"""


def _run(tmp_path, text=LOG):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text(text)
    return run


def test_read_log_keeps_epochs_and_last_row_of_a_repeated_epoch(tmp_path):
    log = plot_curves.read_log(_run(tmp_path))
    assert log["val_mean_iou"] == [(1, 0.3), (3, 0.45)]
    assert log["loss"] == [(0, 2.0), (1, 1.4), (2, 1.2), (3, 1.0)]
    assert "val_learning_rate" not in log  # only NA


def test_plot_writes_panels_and_names_missing_metrics(tmp_path):
    run = _run(tmp_path)
    picture = plot_curves.plot_runs([run], ["a"], ["val_mean_iou", "loss"])
    assert picture.shape == (360, 960, 3) and picture.dtype == np.uint8
    assert (picture != 255).any(axis=-1).mean() > 0.01  # something was drawn
    with pytest.raises(ValueError, match="'nope'"):
        plot_curves.plot_runs([run], ["a"], ["nope"])
    out = tmp_path / "c.png"
    assert plot_curves.main([str(run), "--output", str(out)]) == 0 and out.stat().st_size > 0


def test_missing_log_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="log.csv"):
        plot_curves.read_log(tmp_path)
