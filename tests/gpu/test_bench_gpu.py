"""tools/bench_gpu.py on a CPU: options, the no-GPU error, markdown/JSON output, and (slow) a
tiny end-to-end run of the Keras/JAX workers."""

from __future__ import annotations

import argparse
import json
import pytest


@pytest.fixture(scope="module")
def bench():
    import bench_gpu  # tools/bench_gpu.py (pytest's pythonpath has tools/)

    return bench_gpu


def _result(rows, **config):
    cfg = dict(preset="deconvnet_vgg16", num_classes=21, batch=64, size=224, steps=20, warmup=3,
               infer_iters=20, latency_iters=50, cpu_ok=False)
    cfg.update(config)
    return {"config": cfg, "device": {"platform": "gpu", "device_kind": "NVIDIA H100"},
            "matmul": {"bf16_matmul_tflops": 800.0}, "forward_flops_per_image": 65.5e9,
            "rows": rows, "date": "today"}


def test_torch_runs_option(bench):
    assert bench._torch_runs("eager_nchw:fp32, compile_cl:bf16") == [("eager_nchw", "fp32"),
                                                                     ("compile_cl", "bf16")]
    assert bench._torch_runs("none") == []
    with pytest.raises(bench.BenchmarkError, match="bad entry 'eager:fp16'"):
        bench._torch_runs("eager:fp16")


def test_architecture_is_read_without_importing_the_package(bench):
    from deconvnet_tf.models import get_architecture

    assert bench._architecture("deconvnet_vgg16", 12) == get_architecture(
        "deconvnet_vgg16", num_classes=12).to_dict()
    with pytest.raises(bench.BenchmarkError, match="fcn8s model"):
        bench._architecture("fcn8s_tiny", 5)
    with pytest.raises(bench.BenchmarkError, match="unknown 'nope'"):
        bench._architecture("nope", 5)


def test_markdown_table_and_section(bench, tmp_path):
    rows = [
        {"framework": "Keras 3 + JAX", "variant": bench.KERAS_VARIANT, "precision": "bf16",
         "train_img_s": 1340.0, "infer_img_s": 5181.0, "latency_b1_ms": 1.6,
         "peak_mem_bytes": 10.2 * 2**30, "train_util": 0.33, "first_step_s": 40.0,
         "params": 251_839_061, "versions": {"jax": "0.11.2"}},
        {"framework": "PyTorch", "variant": "torch.compile, channels_last", "precision": "bf16",
         "error": "OutOfMemoryError: CUDA out of memory | tried"},
    ]
    text = bench.format_markdown(_result(rows))
    assert "251.8M params, 65.5 GFLOP/image forward" in text
    assert "| Keras 3 + JAX: switch pool/unpool (keras.ops), XLA jit | bf16 | 1340.0 | 5181.0 " \
           "| 1.60 | 10.2 | 33% | 40.0 |" in text
    assert "error: OutOfMemoryError: CUDA out of memory / tried" in text
    assert "800 TFLOP/s" in text and "jax 0.11.2" in text

    doc = tmp_path / "benchmarks.md"
    bench.write_markdown_section(doc, "first")
    assert doc.read_text() == f"{bench.BEGIN}\nfirst\n{bench.END}\n"
    doc.write_text("# Benchmarks\n\nintro\n\n" + doc.read_text() + "\n## CPU\n\nkept\n")
    bench.write_markdown_section(doc, "second")
    assert doc.read_text() == (f"# Benchmarks\n\nintro\n\n{bench.BEGIN}\nsecond\n{bench.END}\n"
                               "\n## CPU\n\nkept\n")


def test_partial_namespace_gets_defaults(bench):
    args = bench._complete(argparse.Namespace(preset="deconvnet_tiny", batch=2))
    assert args.preset == "deconvnet_tiny" and args.batch == 2 and args.size == 224
    assert args.torch_runs == bench.DEFAULT_TORCH_RUNS and args.cpu_ok is False


def test_no_gpu_is_a_clear_error(bench, capsys, monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")  # the workers inherit it: no GPU, even on one
    code = bench.main(["--preset", "deconvnet_tiny", "--matmul-size", "64", "--torch-runs",
                       "none"])
    assert code == 2
    assert "no GPU visible to JAX" in capsys.readouterr().err
    assert bench.main(["--worker", "bogus", "{}"]) == 2


@pytest.mark.slow
def test_tiny_end_to_end_run_on_cpu(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    args = bench.build_parser().parse_args([
        "--preset", "deconvnet_tiny", "--batch", "2", "--size", "64", "--steps", "2",
        "--warmup", "0", "--infer-iters", "2", "--latency-iters", "2", "--matmul-size", "128",
        "--precisions", "fp32", "--torch-runs", "none", "--cpu-ok",
        "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "b.md")])
    result = bench.run_gpu_benchmark(args)
    (row,) = result["rows"]
    assert "error" not in row, row
    import deconvnet_tf

    assert row["params"] == deconvnet_tf.build_model("deconvnet_tiny").count_params()
    assert row["train_img_s"] > 0 and row["infer_img_s"] > 0 and row["latency_b1_ms"] > 0
    assert row["loss_last"] < row["loss_first"]
    assert json.loads((tmp_path / "r.json").read_text())["rows"][0]["precision"] == "fp32"
    assert bench.BEGIN in (tmp_path / "b.md").read_text()
