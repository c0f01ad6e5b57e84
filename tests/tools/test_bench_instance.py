"""tools/bench_instance.py: the per-stage split of instance-wise inference and its floor, at
tiny settings (the numbers are measured, so only their consistency is checked)."""

from __future__ import annotations

import json

import pytest

import bench_instance  # tools/bench_instance.py (pytest's pythonpath has tools/)
from deconvnet_tf.inference.timing import STAGES
from tests.conftest import requires_tf

pytestmark = requires_tf  # the floor's rate is an XLA-compiled TensorFlow forward


def test_stages_floor_and_table(tmp_path, capsys):
    out = tmp_path / "instance.json"
    assert bench_instance.main(["--preset", "deconvnet_tiny", "--size", "32", "--top-k", "6",
                                "--images", "2", "--edge", "gradient", "--crf", "--repeats", "1",
                                "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["images"]) == 2
    for image in result["images"]:
        assert image["shape"] == [180, 240] and 1 <= image["crops"] <= 6
        assert {"edges", "proposals", "crops", "network", "paste", "crf"} <= set(image["stages"])
        assert set(image["stages"]) <= set(STAGES)
        assert sum(image["stages"].values()) <= image["total_s"]
    rate = result["rate"]
    assert rate["batch"] == 8 and rate["gflops"] > 0 and rate["flops_per_crop"] > 0
    crops = sorted(i["crops"] for i in result["images"])
    median_crops = (crops[0] + crops[1]) / 2
    assert result["floor_s"] == pytest.approx(
        median_crops * rate["flops_per_crop"] / (rate["gflops"] * 1e9))
    assert result["ratio"] == pytest.approx(result["median_total_s"] / result["floor_s"])
    assert result["goal_met"] == (result["ratio"] <= bench_instance.GOAL_RATIO)
    assert result["cold_s"] > 0 and result["settings"]["jit_compile"] is None
    table = capsys.readouterr().out
    assert "| crf |" in table and "| **total** |" in table and "FLOP floor:" in table
    assert "First image of the process (compiles, HED loading):" in table
    assert "crops XLA-compiled: default (yes when the network can be compiled)" in table
    before = out.read_bytes()
    with pytest.raises(SystemExit) as exc:  # never replaces a file, checked before the run
        bench_instance.main(["--preset", "deconvnet_tiny", "--json", str(out)])
    assert exc.value.code == 2 and f"--json {str(out)!r} exists" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_bad_arguments_name_the_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        bench_instance.main(["--top-k", "0"])
    assert exc.value.code == 2 and "--top-k must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        bench_instance.main(["--images", "/nonexistent/folder"])
    assert str(exc.value) == ("bench_instance: --images '/nonexistent/folder': Input not found: "
                              "'/nonexistent/folder' does not exist")
    with pytest.raises(SystemExit) as exc:
        bench_instance.main(["--model", "/nonexistent/model.keras", "--images", "1"])
    assert str(exc.value).startswith("bench_instance: ") and "model.keras" in str(exc.value)


def test_jit_flag_reaches_the_predictor(tmp_path, capsys):
    out = tmp_path / "off.json"
    assert bench_instance.main(["--preset", "deconvnet_tiny", "--size", "32", "--top-k", "3",
                                "--images", "1", "--edge", "gradient", "--repeats", "1",
                                "--no-jit-compile", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["settings"]["jit_compile"] is False
    assert "crops XLA-compiled: no (--no-jit-compile)" in capsys.readouterr().out
