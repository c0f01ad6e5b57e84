"""The paper-table comparison on a tiny generated dataset with tiny random models."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import keras
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from deconvnet_tf.inference.compare import METHODS, compare_methods
from deconvnet_tf.inference.pipeline import InferenceOptions
from deconvnet_tf.training.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[2]
FAST = InferenceOptions(input_size=32, batch_size=4,
                        proposals=dict(edge="gradient", top_k=4, min_size=8))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    data = write_synthetic_dataset(tmp / "data", num_train=1, num_val=2, height=48, width=64)
    keras.utils.set_random_seed(0)
    deconvnet = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    fcn = deconvnet_tf.build_model("fcn8s_tiny", num_classes=5)
    deconvnet.save(tmp / "deconvnet.keras")
    fcn.save(tmp / "fcn.keras")
    return tmp, data, deconvnet, fcn


def test_compare_methods_scores_every_method_like_evaluate(setup):
    tmp, data, deconvnet, fcn = setup
    result = compare_methods(deconvnet, data, "val", fcn=fcn, options=FAST, progress=False)
    assert list(result.reports) == list(METHODS) and result.num_images == 2
    # the whole-image rows are exactly what deconvnet-evaluate reports
    for key, model in (("deconvnet_whole", deconvnet), ("fcn8s", fcn)):
        expected = evaluate(model, data, "val", progress=False)
        np.testing.assert_array_equal(result.reports[key].confusion, expected.confusion)
    for report in result.reports.values():
        assert report.confusion.sum() == 2 * 48 * 64  # no void pixels in generated data
        assert 0.0 <= report.mean_iou <= 1.0
    table = result.table()
    assert table.splitlines()[0].startswith("| method | background |")
    assert len(table.splitlines()) == 2 + len(METHODS)
    assert "| EDeconvNet + CRF |" in table and "**mean IoU**" in table
    assert set(result.seconds) == {"deconvnet_whole", "deconvnet_instance", "fcn8s",
                                   "deconvnet_whole_crf", "deconvnet_crf", "edeconvnet_crf"}
    assert json.loads(json.dumps(result.to_dict()))["methods"]["edeconvnet"]["name"] == "EDeconvNet"


def test_compare_methods_without_fcn_and_bad_methods(setup):
    _, data, deconvnet, _ = setup
    result = compare_methods(deconvnet, data, "val", options=FAST, limit=1, progress=False)
    assert list(result.reports) == ["deconvnet_whole", "deconvnet_whole_crf", "deconvnet",
                                    "deconvnet_crf"]
    crf_only = compare_methods(deconvnet, data, "val", methods=["deconvnet_whole_crf"],
                               limit=1, progress=False)
    np.testing.assert_array_equal(crf_only.reports["deconvnet_whole_crf"].confusion,
                                  result.reports["deconvnet_whole_crf"].confusion)
    assert set(crf_only.seconds) == {"deconvnet_whole", "deconvnet_whole_crf"}
    with pytest.raises(ValueError, match="need an FCN"):
        compare_methods(deconvnet, data, methods=["edeconvnet"], progress=False)
    with pytest.raises(ValueError, match="Unknown method"):
        compare_methods(deconvnet, data, methods=["deeplab"], progress=False)


def test_paper_table_tool(setup, capsys):
    tmp, data, _, _ = setup
    spec = importlib.util.spec_from_file_location("paper_table", ROOT / "tools" / "paper_table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp / "table.json"
    code = tool.main(["--deconvnet", str(tmp / "deconvnet.keras"), "--fcn", str(tmp / "fcn.keras"),
                      "--data", str(data), "--methods", "fcn8s", "deconvnet", "edeconvnet",
                      "--edge", "gradient", "--top-k", "3", "--input-size", "32", "--limit", "1",
                      "--output", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| FCN-8s |" in printed and "| EDeconvNet |" in printed
    assert "Seconds per image" in printed
    assert set(json.loads(out.read_text())["methods"]) == {"fcn8s", "deconvnet", "edeconvnet"}
    assert tool.main(["--deconvnet", str(tmp / "missing.keras"), "--data", str(data)]) == 2
    assert "paper_table: error: Model not found" in capsys.readouterr().err
    assert tool.main(["--deconvnet", str(tmp / "missing.keras"), "--data", str(data), "--flip"]) == 2
    assert "paper_table: error: Model not found" in capsys.readouterr().err
    code = tool.main(["--deconvnet", str(tmp / "deconvnet.keras"), "--fcn", str(tmp / "fcn.keras"),
                      "--data", str(data), "--methods", "fcn8s", "deconvnet_whole", "--flip",
                      "--limit", "1", "--output", str(tmp / "flip.json"), "--quiet"])
    assert code == 0
    assert set(json.loads((tmp / "flip.json").read_text())["methods"]) == {"fcn8s", "deconvnet_whole"}
