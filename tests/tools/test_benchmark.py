"""tools/benchmark.py end to end at tiny settings (every part, JSON + markdown section), its
argument errors and the --gpu delegation to tools/bench_gpu.py."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from tests.conftest import requires_tf

pytestmark = requires_tf

TOOLS = Path(__file__).resolve().parents[2] / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

import benchmark  # noqa: E402  (tools/ is not a package)
import bench_gpu  # noqa: E402


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("benchmark")
    md = tmp / "benchmarks.md"
    # A GPU section written before must survive the CPU section's update.
    bench_gpu.write_markdown_section(md, "GPU TABLE KEPT")
    md.write_text("# Benchmarks\n\n" + md.read_text())
    out = tmp / "bench.json"
    code = benchmark.main(["--presets", "deconvnet_tiny", "--size", "32", "--quick",
                           "--repeats", "1", "--steps", "1", "--json", str(out),
                           "--markdown", str(md)])
    return code, json.loads(out.read_text()), md.read_text()


def test_every_part_measured(smoke):
    code, result, _ = smoke
    assert code == 0
    parts = result["parts"]
    assert set(parts) == set(benchmark.PARTS)
    assert not [k for k, v in parts.items() if isinstance(v, dict)], parts
    peak = {r["precision"]: r["peak_gflops"] for r in parts["train"]}
    assert set(peak) == {"float32", "bfloat16"} and all(_finite(v) for v in peak.values())
    # Both train modes by default: Keras' default step (argmax pair) and the XLA step.
    assert {(r["precision"], r["jit"]) for r in parts["train"]} == {
        ("float32", False), ("bfloat16", False), ("float32", True), ("bfloat16", True)}
    for r in parts["train"]:
        assert _finite(r["step_s"]) and _finite(r["utilisation"])
    impls = {r["impl"] for r in parts["inference"]}
    assert impls == {"TF eager, argmax pair", "TF eager, switch pair",
                     "TF jit_compile, switch pair"}
    formats = {r["format"] for r in parts["export"]}
    assert formats == {"SavedModel", "LiteRT fp32", "LiteRT int8"}  # Keras: inference part
    assert all(_finite(r["latency_s"]) and _finite(r["gflops"]) for r in parts["export"])
    assert all(r["size_mib"] > 0 for r in parts["export"])


def test_pool_share_is_measured_per_layer(smoke):
    _, result, _ = smoke
    rows = {r["pair"]: r for r in result["parts"]["pooling"]}
    assert set(rows) == {"argmax", "switch"}
    for r in rows.values():
        # deconvnet_tiny has 3 blocks: 3 pooling and 3 unpooling layers, at in-model shapes.
        assert [p["input_shape"] for p in r["layers"]["pool"]] == [
            [2, 32, 32, 8], [2, 16, 16, 16], [2, 8, 8, 32]]
        assert [u["output_shape"] for u in r["layers"]["unpool"]] == [
            [2, 8, 8, 32], [2, 16, 16, 16], [2, 32, 32, 8]]
        assert _finite(r["pool_s"]) and _finite(r["unpool_s"]) and _finite(r["step_s"])
        assert r["share"] == pytest.approx((r["pool_s"] + r["unpool_s"]) / r["step_s"])
    assert rows["switch"]["jit"] and not rows["argmax"]["jit"]


def test_table_rows_have_goals_and_numbers(smoke):
    _, result, _ = smoke
    table = result["table"]
    parts = {r["part"] for r in table}
    assert parts == {"train step", "inference", "pool/unpool share", "tf.data", "visualize"}
    goals = {r["goal"] for r in table if r["met"] != "-"}
    # Size 32 is not the goals' 224: only the pool-share and pipeline goals apply.
    assert goals == {"<= 5% of step", ">= 3x the step"}
    assert all(r["met"] in ("yes", "no") for r in table if r["goal"] != "-")
    assert any(r["configuration"] == "bf16 vs fp32 step time" for r in table)
    assert any(r["configuration"] == "bf16 vs fp32 step time, XLA" for r in table)
    assert all(r["measured"][0].isdigit() for r in table)
    pipeline = result["parts"]["pipeline"][0]
    assert _finite(pipeline["pipeline_img_s"])


def test_markdown_section_and_machine(smoke):
    _, result, text = smoke
    assert text.startswith("# Benchmarks\n")
    assert "GPU TABLE KEPT" in text and bench_gpu.BEGIN in text
    begin, end = text.index(benchmark.BEGIN), text.index(benchmark.END)
    section = text[begin:end]
    assert "## CPU benchmark" in section
    assert "| part | preset | configuration | measured |" in section
    assert "--presets deconvnet_tiny --size 32 --quick" in section
    assert "avx512_bf16 " in section and "Load average" in section
    machine = result["machine"]
    assert machine["cores"] >= 1 and len(machine["load_start"]) == len(machine["load_end"]) == 3
    assert machine["versions"]["tensorflow"]


def test_section_is_replaced_not_duplicated(tmp_path):
    md = tmp_path / "b.md"
    for text in ("first", "second"):
        bench_gpu.write_markdown_section(md, text, begin=benchmark.BEGIN, end=benchmark.END)
    content = md.read_text()
    assert content.count(benchmark.BEGIN) == 1 and "second" in content and "first" not in content


def test_bad_arguments(capsys):
    assert benchmark.main(["--skip", "export,nope"]) == 2
    assert "benchmark.py: error: --skip: unknown part(s) nope" in capsys.readouterr().err
    assert benchmark.main(["--presets", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert benchmark.main(["--presets", "deconvnet_vgg16", "--size", "64"]) == 2
    assert "minimum input 193" in capsys.readouterr().err


def test_gpu_mode_delegates_to_bench_gpu(capsys):
    # No GPU here: bench_gpu's matmul probe runs (JAX, CPU) and its no-GPU error comes back.
    code = benchmark.main(["--gpu", "--matmul-size", "64", "--no-keras", "--torch-runs", "none"])
    assert code == 2
    assert "benchmark.py: error: no GPU visible" in capsys.readouterr().err
