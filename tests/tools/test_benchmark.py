"""tools/benchmark.py end to end at tiny settings (every part, JSON + markdown section), its
argument errors and the --gpu delegation to tools/bench_gpu.py; the PyTorch peer part
(tools/bench_peers.py) end to end, its "not installed" rows (PyTorch hidden) and its
torch.compile row (measured, or the reason in one line)."""

from __future__ import annotations

import importlib.util
import json
import math
import resource
import statistics
import time
from pathlib import Path

import pytest

from tests.conftest import requires_tf

import bench_gpu  # tools/bench_gpu.py, ... (pytest's pythonpath has tools/)
import bench_peers
import benchmark

pytestmark = requires_tf

HAS_TORCH = importlib.util.find_spec("torch") is not None
requires_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch (the peers extra) is not "
                                    "installed; test_peers_not_installed covers this case")
OTHER_PARTS = ",".join(p for p in benchmark.PARTS if p != "peers")


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
                           "--markdown", str(md), "--peers", "none"])  # peers: tests below
    return code, json.loads(out.read_text()), md.read_text()


@pytest.mark.slow
def test_every_part_measured(smoke):
    code, result, _ = smoke
    assert code == 0
    parts = result["parts"]
    assert set(parts) == set(benchmark.PARTS) - {"peers"}
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    assert benchmark.main(["--peers", "eager_fp32,nope"]) == 2
    assert "--peers: unknown peer setting 'nope'" in capsys.readouterr().err
    assert benchmark.main(["--profile", "p", "--skip", "peers"]) == 2
    assert "--profile traces the peers part" in capsys.readouterr().err
    assert benchmark.main(["--peer-train-batches", "1", "4"]) == 2
    assert "--peer-train-batches must be >= 2" in capsys.readouterr().err


def test_peer_settings_parse():
    assert bench_peers.parse_peers("all") == list(bench_peers.PEER_SETTINGS)
    assert bench_peers.parse_peers("none") == []
    assert "onnxruntime" not in bench_peers.parse_peers("torch")
    assert bench_peers.parse_peers("onnxruntime,eager_fp32,onnxruntime") == [
        "onnxruntime", "eager_fp32"]
    assert bench_peers.project_settings(["xla"], ["float32"]) == ["keras_xla_fp32"]


def test_estimate_has_the_peers_part(capsys):
    code = benchmark.main(["--presets", "deconvnet_tiny", "--size", "64", "--quick",
                           "--estimate-only"])
    assert code == 0
    estimate = json.loads(capsys.readouterr().out)
    assert estimate["peers"] > 0 and estimate["total"] > estimate["peers"]


def test_gpu_mode_delegates_to_bench_gpu(capsys):
    # No GPU here: bench_gpu's matmul probe runs (JAX, CPU) and its no-GPU error comes back.
    code = benchmark.main(["--gpu", "--matmul-size", "64", "--no-keras", "--torch-runs", "none"])
    assert code == 2
    assert "benchmark.py: error: no GPU visible" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# The PyTorch peer (tools/bench_peers.py through benchmark.py)


@pytest.fixture(scope="module")
def peers_run(tmp_path_factory):
    """The peers part end to end at --quick (64x64, 1 round): every PyTorch setting but
    torch.compile (tested below: inductor's first compile takes minutes on 2 shared cores),
    ONNX Runtime, one Keras setting (XLA compiles would take most of a minute), a profile."""
    tmp = tmp_path_factory.mktemp("peers")
    out, md, prof = tmp / "peers.json", tmp / "b.md", tmp / "profiles"
    start = time.perf_counter()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    code = benchmark.main([
        "--presets", "deconvnet_tiny", "--quick", "--skip", OTHER_PARTS, "--peers",
        "eager_fp32,eager_bf16,channels_last_fp32,channels_last_bf16,onnxruntime",
        "--train-modes", "default", "--precisions", "float32", "--profile", str(prof),
        "--json", str(out), "--markdown", str(md)])
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    return code, json.loads(out.read_text()), md.read_text(), prof, (seconds, cpu_s)


@requires_torch
def test_peer_rows_end_to_end(peers_run):
    code, result, _, _, (seconds, cpu_s) = peers_run
    assert code == 0
    # The workers' CPU time: < 60 s of CPU is < 60 s of wall time on 2 idle cores (the wall
    # time itself stretches with whatever else runs on a shared machine).
    assert cpu_s < 60, f"the quick peers run used {cpu_s:.0f} s of CPU ({seconds:.0f} s wall)"
    rows = result["parts"]["peers"]
    info = {r["side"]: r for r in rows if r["kind"] == "info"}
    assert info["peer"]["status"] == "ok" and info["peer"]["versions"]["torch"]
    measured = [r for r in rows if r["kind"] == "measure"]
    assert not [r for r in measured if "error" in r], measured
    tasks = [("train", 2), ("train", 4), ("inference", 1)]
    for task, batch in tasks:
        got = {r["setting"]: r for r in measured if (r["task"], r["batch"]) == (task, batch)}
        want = {"keras_fp32", "eager_fp32", "eager_bf16", "channels_last_fp32",
                "channels_last_bf16"} | ({"onnxruntime"} if task == "inference" else set())
        assert set(got) == want
        for r in got.values():
            assert len(r["times"]) == 1 and r["median_s"] == statistics.median(r["times"])
            assert _finite(r["median_s"]) and _finite(r["first_s"]) and _finite(r["gflops"])
            assert r["size"] == 64 and _finite(r["peak_gflops"])
        # The peer is the same network: the same parameter count as the Keras model.
        assert got["keras_fp32"]["params"] == got["eager_fp32"]["params"] > 0
        ratio = next(r for r in rows if r["kind"] == "ratio" and (r["task"], r["batch"]) == (
            task, batch))
        peer_best = min((r for r in got.values() if r["side"] == "peer"),
                        key=lambda r: r["median_s"])
        assert ratio["peer_best"] == peer_best["setting"] and ratio["params_equal"]
        assert ratio["project_best"] == "keras_fp32"
        assert ratio["ratio"] == pytest.approx(ratio["peer_s"] / ratio["project_s"])
        if peer_best["group"] == got["keras_fp32"]["group"]:  # interleaved in one group
            assert ratio["source"] == "same group"
            assert (ratio["project_s"], ratio["peer_s"]) == (
                got["keras_fp32"]["median_s"], peer_best["median_s"])
        else:  # built again and timed head to head
            assert ratio["source"] == "head to head" and _finite(ratio["ratio"])
    onnx = next(r for r in measured if r["setting"] == "onnxruntime")["onnx"]
    assert onnx["nonstandard_domains"] == []  # no hand-written ops
    assert {"Conv", "ConvTranspose", "MaxPool"} <= set(onnx["ops"])
    assert onnx["agreement"] >= 0.99 and onnx["max_rel_diff"] < 1e-3


@requires_torch
def test_peer_table_ratio_rows_and_profiles(peers_run, capsys):
    _, result, text, prof, _ = peers_run
    table = [r for r in result["table"] if r["part"] == "vs PyTorch"]
    ratios = [r for r in table if r["configuration"].startswith("ratio: ")]
    assert [r["configuration"].split(", ", 1)[1] for r in ratios] == [
        "train step, batch 2, 64x64", "train step, batch 4, 64x64", "inference, batch 1, 64x64"]
    for r in ratios:
        assert r["measured"][0].isdigit() and "x (Keras fp32" in r["measured"]
        assert (r["goal"], r["met"]) == ("-", "-")  # the 1.2x goals are for 224x224
    assert any(r["configuration"].startswith("peer: ONNX Runtime")
               and "standard ONNX ops only" in r["measured"] for r in table)
    assert "vs PyTorch: the peer is `tools/peers/deconvnet_torch.py`" in text
    assert "### Where the time goes" in text
    profiles = [r for r in result["parts"]["peers"] if r["kind"] == "profile"]
    assert {r["side"] for r in profiles} == {"project", "peer"}
    for r in profiles:
        assert "error" not in r, r
        assert 1 <= len(r["top"]) <= 10 and all(t["self_ms"] >= 0 for t in r["top"])
        assert r["top"] == sorted(r["top"], key=lambda t: -t["self_ms"])
        assert r["total_ms"] > 0 and Path(r["trace"]).exists()
    keras = next(r for r in profiles if r["side"] == "project")
    assert "tf.profiler op stats" in keras["source"]  # Keras' default step: TF ops
    assert list(Path(keras["trace"]).glob("**/*.xplane.pb"))
    torch_ = next(r for r in profiles if r["side"] == "peer")
    assert "Self CPU" in torch_["table"] and any("aten::" in t["op"] for t in torch_["top"])
    assert sorted(p.name for p in prof.glob("*.top_ops.txt")) == sorted(
        f"deconvnet_tiny_train_b2_{r['setting']}.top_ops.txt" for r in profiles)


def test_peers_not_installed(tmp_path, monkeypatch, capsys):
    """With PyTorch hidden, the peer rows say "not installed" and nothing else is measured."""
    hidden = tmp_path / "hide_torch"
    hidden.mkdir()
    (hidden / "torch.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n")
    monkeypatch.setenv("PYTHONPATH", str(hidden))
    out = tmp_path / "r.json"
    code = benchmark.main(["--presets", "deconvnet_tiny", "--quick", "--skip", OTHER_PARTS,
                           "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    rows = result["parts"]["peers"]
    assert [(r["kind"], r["setting"], r["status"]) for r in rows] == [
        ("info", "torch", "not installed"), ("info", "onnxruntime", "not installed")]
    assert "No module named 'torch'" in rows[0]["detail"]
    table = result["table"]
    assert len(table) == 2 and all(r["measured"].startswith("not installed") for r in table)
    assert 'pip install -e ".[peers]"' in table[0]["measured"]
    assert "| vs PyTorch | - | peer: PyTorch reference" in capsys.readouterr().out


def test_peers_skip_other_families(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert benchmark.main(["--presets", "fcn8s_tiny", "--quick", "--skip", OTHER_PARTS,
                           "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["parts"]["peers"]
    assert [(r["preset"], r["status"]) for r in rows] == [("fcn8s_tiny", "not compared")]
    assert "the peer is a DeconvNet, fcn8s_tiny is fcn8s" in capsys.readouterr().out


@requires_torch
def test_compile_row_is_measured_or_says_why(tmp_path, monkeypatch):
    """torch.compile (inductor) is measured; without a C++ compiler its row is the reason in
    one line and the other settings of the run are still measured."""
    kwargs = dict(train_batches=(), infer_batch=1, steps=1, project=[], matmul_size=128,
                  repeats=1, log=lambda message: None)
    rows = bench_peers.peer_rows(["deconvnet_tiny"], 32, peers=["compile_fp32"], **kwargs)
    row = next(r for r in rows if r["kind"] == "measure")
    assert "error" not in row, row
    assert _finite(row["median_s"]) and row["first_s"] > row["median_s"]

    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # no cached kernel
    rows = bench_peers.peer_rows(["deconvnet_tiny"], 32, peers=["compile_fp32", "eager_fp32"],
                                 **kwargs)
    got = {r["setting"]: r for r in rows if r["kind"] == "measure"}
    assert "\n" not in got["compile_fp32"]["error"] and len(got["compile_fp32"]["error"]) <= 240
    assert "compiler" in got["compile_fp32"]["error"].lower()
    assert _finite(got["eager_fp32"]["median_s"])


def test_tf_top_ops_of_a_trace(tmp_path):
    """tf.profiler's op stats of a traced step, grouped by op type, top 10 by self time."""
    import tensorflow as tf

    x = tf.random.normal((2, 64, 64, 16))
    kernel = tf.random.normal((3, 3, 16, 16))
    step = tf.function(lambda x: tf.reduce_sum(tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME"))))
    step(x)
    tf.profiler.experimental.start(str(tmp_path))
    for _ in range(3):
        step(x).numpy()
    tf.profiler.experimental.stop()
    top = bench_peers.tf_top_ops(tmp_path, 10)
    assert top["source"].startswith("tf.profiler op stats")
    ops = {t["op"]: t for t in top["top"]}
    conv = next(op for op in ops if "Conv2D" in op)
    assert ops[conv]["count"] >= 3 and ops[conv]["self_ms"] > 0  # 3 traced calls
    assert "IDLE" not in ops and len(top["top"]) <= 10
    assert sum(t["share"] for t in top["top"]) == pytest.approx(
        sum(t["self_ms"] for t in top["top"]) / top["total_ms"])
