"""The project's benchmark: one table of train-step time and FLOP utilisation, inference latency
(Keras, SavedModel, LiteRT fp32/int8), the pool/unpool share of the step, tf.data throughput and
the same network in PyTorch (and ONNX Runtime) measured interleaved with this project's settings.

Composes the single-purpose tools (nothing here re-implements them):

* ``bench_train``: ``tf.matmul`` peak (fp32, bf16) and the Keras train step (``train_rows``);
* ``bench_forward``: Keras/TF forward latency per pooling pair, eager and XLA (``forward_rows``,
  one subprocess per backend);
* ``bench_export``: SavedModel and LiteRT latency, sizes, export time (its CLI in subprocesses,
  split per format for the full network so that conversions never share one process' memory);
* ``bench_pipeline``: ``tf.data`` images/s (``measure_pipeline``);
* ``bench_visualize``: the Zeiler-Fergus projector (``visualize_rows``);
* ``bench_peers``: the PyTorch reference DeconvNet of ``tools/peers/`` (eager fp32, bf16
  autocast, channels_last, ``torch.compile``) and ONNX Runtime on its export, each timed call
  alternating with this project's settings in two worker processes (``peer_rows``; the rows
  say "not installed" without PyTorch: ``pip install -e ".[peers]"``); ratio rows = this
  project's best / the peer's best; ``--profile DIR`` adds a tf.profiler and a torch.profiler
  trace of one train step of each side's best setting and their top-10 ops by self time;
* the pool/unpool share is measured here (``pooling_rows``): forward + backward of exactly the
  model's pooling and unpooling layers at the shapes they have inside the model, summed,
  divided by the measured train step of the same model.

Utilisation is always against a ``tf.matmul`` peak measured right before the part (the machine
may be shared). Each row shows its goal (the issue's goals for ``deconvnet_vgg16`` at 224) and
whether it is met. ``--gpu`` runs ``bench_gpu`` instead (its options follow ``--gpu``).

    python tools/benchmark.py --json benchmark.json --markdown docs/benchmarks.md   # full run
    python tools/benchmark.py --estimate-only                                       # runtime
    python tools/benchmark.py --presets deconvnet_tiny --size 32 --quick            # smoke run
    python tools/benchmark.py --skip train,inference,export,pooling,pipeline,visualize \
        --profile profiles/                                        # only the PyTorch comparison
    python tools/benchmark.py --gpu --json bench_gpu.json --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Sibling tools, imported by plain name: tools/ is sys.path[0] when this runs as a script
# (python tools/benchmark.py) and is on pytest's pythonpath (pyproject.toml).
import bench_export
import bench_forward
import bench_gpu
import bench_peers
import bench_pipeline
import bench_train
import bench_visualize
from _outputs import existing_output_error, write_json_new

__all__ = ["PARTS", "GOALS", "BEGIN", "END", "build_parser", "describe_machine", "pooling_rows",
           "estimate_seconds", "run_benchmark", "format_table", "format_markdown", "main"]

TOOLS = Path(__file__).resolve().parent
BEGIN = "<!-- benchmark:cpu:begin -->"
END = "<!-- benchmark:cpu:end -->"
PARTS = ("train", "inference", "export", "pooling", "pipeline", "visualize", "peers")
GOAL_PRESET, GOAL_SIZE = "deconvnet_vgg16", 224
GOALS = {
    "inference_tf": 0.60,    # TF inference, batch 1, fraction of the fp32 matmul peak
    "litert_fp32": 0.70,     # LiteRT fp32 (2 threads), fraction of the fp32 matmul peak
    "train_fp32": 0.50,      # fp32 training, fraction of the fp32 matmul peak
    "bf16_speedup": 1.4,     # bf16 train step vs fp32
    "pool_share": 0.05,      # pool + unpool forward+backward / train step (every preset)
    "pipeline_ratio": 3.0,   # tf.data images/s / train-step images/s (every train row)
    "peer_ratio": 1.2,       # this project's best / the PyTorch peer's best (train, inference)
}
SPLIT_EXPORT_PARAMS = 50e6   # above this, SavedModel / LiteRT fp32 / int8 get a process each
PROG = "benchmark.py"


class _UsageError(ValueError):
    """A bad command-line value (reported as ``benchmark.py: error: ...``, exit 2)."""


# --------------------------------------------------------------------------------------------
# Arguments


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of the CPU benchmark (``--gpu`` has its own, see ``main``)."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--gpu", action="store_true",
                   help="run tools/bench_gpu.py's benchmark instead (its options follow)")
    p.add_argument("--presets", nargs="+", default=["deconvnet_vgg16", "deconvnet_vgg16_compact"],
                   help="presets (default: the paper network and the shipped models' preset)")
    p.add_argument("--size", type=int, default=None, help="square input size (224; --quick: 64)")
    p.add_argument("--batch", type=int, default=2, help="train batch (BatchNorm needs >= 2)")
    p.add_argument("--steps", type=int, default=None, help="timed train steps (3; --quick: 1)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed repetitions of latencies/matmul (5; --quick: 1)")
    p.add_argument("--matmul-size", type=int, default=None, help="peak matmul n (2048; quick 512)")
    p.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"],
                   choices=["float32", "bfloat16"], help="train precisions")
    p.add_argument("--train-modes", nargs="+", default=["default", "xla"],
                   choices=["default", "xla"],
                   help="train steps to time: default (Keras' tf.function, argmax pair) and/or "
                        "xla (jit_compile, switch pair: what deconvnet-train --jit-compile runs)")
    p.add_argument("--jit-compile", action="store_true",
                   help="shorthand for --train-modes xla")
    p.add_argument("--forward-backends", nargs="+", default=["tensorflow"],
                   choices=["tensorflow", "jax"], help="backends of the inference part")
    p.add_argument("--forward-batches", nargs="+", type=int, default=[1],
                   help="inference batch sizes")
    p.add_argument("--quantize", nargs="+", default=["none", "int8"],
                   choices=["none", "fp16", "dynamic", "int8"], help="LiteRT variants (none=fp32)")
    p.add_argument("--lite-threads", nargs="+", type=int, default=[1, 2], choices=[1, 2],
                   help="LiteRT threads (utilisation uses the largest)")
    p.add_argument("--export-samples", type=int, default=None,
                   help="scenes for the label agreement (2; --quick: 1)")
    p.add_argument("--pipeline-images", type=int, default=None, help="generated images (32; 8)")
    p.add_argument("--pipeline-batch", type=int, default=8)
    p.add_argument("--pipeline-batches", type=int, default=None, help="timed batches (30; 3)")
    p.add_argument("--visualize-images", type=int, default=None, help="top-k scan images (20; 4)")
    p.add_argument("--peers", default="all",
                   help="peer settings of the peers part: all (default), torch (no ONNX "
                        "Runtime), none (= --skip peers) or a comma-separated subset of "
                        "eager_fp32,eager_bf16,channels_last_fp32,channels_last_bf16,"
                        "compile_fp32,compile_bf16,onnxruntime")
    p.add_argument("--peer-train-batches", nargs="+", type=int, default=[2, 4],
                   help="train batches of the peers part (inference: --forward-batches' first)")
    p.add_argument("--profile", default=None, metavar="DIR",
                   help="peers part: write a tf.profiler and a torch.profiler trace of one train "
                        "step of each side's best setting to DIR and print their top-10 ops")
    p.add_argument("--torch-python", default=None,
                   help="interpreter with PyTorch for the peers part (default: this one)")
    p.add_argument("--skip", default="", help=f"comma-separated parts to skip: {','.join(PARTS)}")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: small defaults (size 64, 1 repeat, 1 step, small matmul)")
    p.add_argument("--estimate-only", action="store_true",
                   help="print the runtime estimate and exit")
    p.add_argument("--json", dest="json_path", default=None,
                   help="write all results here (a new file, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --json (e.g. docs/benchmarks.json)")
    p.add_argument("--markdown", default=None,
                   help="markdown file whose benchmark:cpu section gets the tables (written "
                        "only when given)")
    return p


def _resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Fills the quick/full defaults and validates; raises ``_UsageError``."""
    quick = args.quick
    defaults = {"size": (64, 224), "steps": (1, 3), "repeats": (1, 5), "matmul_size": (512, 2048),
                "export_samples": (1, 2), "pipeline_images": (8, 32), "pipeline_batches": (3, 30),
                "visualize_images": (4, 20)}
    for name, (small, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    if not args.overwrite and (error := existing_output_error(args.json_path)):
        raise _UsageError(error + " or pass --overwrite")
    skip = [s.strip() for s in args.skip.split(",") if s.strip()]
    bad = [s for s in skip if s not in PARTS]
    if bad:
        raise _UsageError(f"--skip: unknown part(s) {', '.join(bad)}; expected a comma-separated "
                          f"subset of {','.join(PARTS)}")
    try:
        args.peer_settings = bench_peers.parse_peers(args.peers)
    except ValueError as err:
        raise _UsageError(f"--peers: {err}") from None
    if args.peers.strip() == "none" and not args.profile:
        skip.append("peers")
    args.parts = [p for p in PARTS if p not in skip]
    if args.profile and "peers" not in args.parts:
        raise _UsageError("--profile traces the peers part's train steps; do not skip it")
    if "peers" in args.parts and any(b < 2 for b in args.peer_train_batches):
        raise _UsageError("--peer-train-batches must be >= 2 (BatchNorm after fc6/fc7)")
    if args.jit_compile:
        args.train_modes = ["xla"]
    args.train_modes = list(dict.fromkeys(args.train_modes))
    for name in ("size", "batch", "steps", "repeats", "matmul_size", "export_samples",
                 "pipeline_images", "pipeline_batch", "pipeline_batches", "visualize_images"):
        if getattr(args, name) < 1:
            raise _UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if "train" in args.parts and args.batch < 2:
        raise _UsageError("--batch must be >= 2 (BatchNorm after fc6/fc7 sees a 1x1 map)")
    from deconvnet_tf.models import get_architecture, list_presets

    for preset in args.presets:
        if preset not in list_presets():
            raise _UsageError(f"--presets: unknown preset {preset!r}; available: "
                              f"{', '.join(list_presets())}")
        minimum = get_architecture(preset).min_input_size()
        if args.size < minimum:
            raise _UsageError(f"--size {args.size} is below {preset}'s minimum input {minimum}")
    return args


# --------------------------------------------------------------------------------------------
# Machine


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model, flags


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe_machine() -> dict:
    """CPU model, cores, relevant ISA flags, memory, library versions and the load average."""
    model, flags = _cpuinfo()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem = None
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": model, "cores": os.cpu_count(), "cores_usable": affinity,
        "flags": {f: f in flags for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")},
        "memory_gib": mem, "host": platform.node(), "python": platform.python_version(),
        "versions": {k: _version(k) for k in ("tensorflow", "keras", "jax", "ai-edge-litert",
                                              "numpy", "torch", "onnxruntime")},
        "load_start": list(os.getloadavg()),
    }


# --------------------------------------------------------------------------------------------
# Pool/unpool share


def _median_call(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one untimed call (bench_export's timer)."""
    return bench_export._median_seconds(fn, repeats)


def _pool_unpool_seconds(model, batch: int, jit: bool, repeats: int) -> dict:
    """Forward + backward seconds of each pooling and unpooling layer of ``model`` at the
    shapes it has inside the model (batch ``batch``), in a ``tf.function``."""
    import numpy as np
    import tensorflow as tf

    from deconvnet_tf.layers import (MaxPoolingWithArgmax2D, MaxUnpooling2D, SwitchMaxPooling2D,
                                     SwitchUnpooling2D)

    rng = np.random.default_rng(0)

    def rand(shape):
        return tf.constant(rng.standard_normal(shape).astype("float32"))

    pools = [l for l in model.layers if isinstance(l, (MaxPoolingWithArgmax2D, SwitchMaxPooling2D))]
    unpools = [l for l in model.layers if isinstance(l, (MaxUnpooling2D, SwitchUnpooling2D))]
    if not pools or not unpools:
        raise ValueError(f"{model.name} has no pooling/unpooling layers to time")
    result = {"pool": [], "unpool": []}
    for layer in pools:
        shape = (batch, *layer.input.shape[1:])
        x = rand(shape)
        gy = rand((batch, *layer.output[0].shape[1:]))

        @tf.function(jit_compile=jit)
        def pool_step(x, gy, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(x)
                pooled, switches = layer(x)
            return pooled, switches, tape.gradient(pooled, x, output_gradients=gy)

        seconds = _median_call(lambda: pool_step(x, gy), repeats)
        result["pool"].append({"layer": layer.name, "input_shape": list(shape), "s": seconds})
    for layer in unpools:
        v_shape, _, ref_shape = [tuple(t.shape[1:]) for t in layer.input]
        # Real switches: pool a random tensor with the model's pooling layer of these shapes.
        pool = next(p for p in pools if tuple(p.input.shape[1:]) == ref_shape
                    and tuple(p.output[0].shape[1:]) == v_shape)
        reference = rand((batch, *ref_shape))
        _, switches = pool(reference)
        values = rand((batch, *v_shape))
        gy = rand((batch, *ref_shape))

        @tf.function(jit_compile=jit)
        def unpool_step(values, switches, reference, gy, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(values)
                y = layer([values, switches, reference])
            return y, tape.gradient(y, values, output_gradients=gy)

        seconds = _median_call(lambda: unpool_step(values, switches, reference, gy), repeats)
        result["unpool"].append({"layer": layer.name, "output_shape": [batch, *ref_shape],
                                 "s": seconds})
    return result


def pooling_rows(preset: str, size: int, batch: int, steps: int, repeats: int,
                 step_seconds: dict | None = None) -> list[dict]:
    """Measured share of a fp32 train step spent in pooling + unpooling, for both pairs.

    ``argmax`` pair (MaxPoolWithArgmax + scatter_nd): ops in a ``tf.function`` vs the Keras
    train step without XLA (MaxPoolWithArgmax has no XLA kernel); ``switch`` pair (keras.ops
    masks): ops in a ``tf.function(jit_compile=True)`` vs the XLA train step. The ops are
    timed alone (forward + backward with a random upstream gradient) at exactly the shapes of
    the model's layers; the step is ``bench_train.train_step_seconds``.

    Args:
        preset: A deconvnet-family preset.
        size: Square input size.
        batch: Train batch.
        steps: Timed train steps (median).
        repeats: Timed calls per layer (median).
        step_seconds: Already measured fp32 steps, ``{(preset, size, batch, jit): seconds}``;
            missing ones are measured.

    Returns:
        One dict per pair: ``pair``, ``pool_s``, ``unpool_s``, ``step_s``, ``share``,
        ``layers`` (per-layer seconds).
    """
    import keras

    import deconvnet_tf

    keras.config.set_dtype_policy("float32")
    rows = []
    for pair, jit in (("argmax", False), ("switch", True)):
        model = deconvnet_tf.build_model(preset, num_classes=21, input_shape=(size, size, 3),
                                         unpooling=pair)
        layers = _pool_unpool_seconds(model, batch, jit, repeats)
        del model
        key = (preset, size, batch, jit)
        if step_seconds and key in step_seconds:
            step_s, step_source = step_seconds[key], "train part"
        else:
            step_s, _ = bench_train.train_step_seconds(preset, size, batch, "float32", steps, jit)
            step_source = "measured here"
        gc.collect()
        pool_s = sum(r["s"] for r in layers["pool"])
        unpool_s = sum(r["s"] for r in layers["unpool"])
        rows.append({"preset": preset, "size": size, "batch": batch, "pair": pair, "jit": jit,
                     "pool_s": pool_s, "unpool_s": unpool_s, "step_s": step_s,
                     "step_source": step_source, "share": (pool_s + unpool_s) / step_s,
                     "layers": layers})
    return rows


# --------------------------------------------------------------------------------------------
# Runtime estimate


def estimate_seconds(args, summaries: dict, peak_gflops: float) -> dict:
    """Rough runtime per part (seconds) from FLOPs, parameters and the fp32 matmul peak.

    Assumes ~35% of the peak for training, ~40% for inference, conversion ~0.36 s per million
    parameters (measured: 90 s for deconvnet_vgg16's LiteRT fp32 conversion). Peers: the peer
    at ~30% of the peak, ``torch.compile`` ~60 s per train graph and ~30 s per inference graph
    (inductor, cold cache), the ONNX export ~10 s + 0.05 s per million parameters.
    """
    est = {}
    g = max(peak_gflops, 1.0)
    reps, steps, batch = args.repeats, args.steps, args.batch
    per = {}
    for preset, s in summaries.items():
        f, m = s["gflops"], s["params"] / 1e6
        build = 2 + 0.04 * m
        step = 3 * f * batch / (0.35 * g)
        infer = f / (0.4 * g)
        per[preset] = {
            "train": len(args.train_modes) * sum(
                build + 5 + (steps + 2) * step * (1.0 if p == "float32" else 0.8)
                for p in args.precisions),
            "inference": 8 + 3 * (build + (reps + 1) * infer * max(args.forward_batches)) + 15,
            "export": (3 * (8 + build) if s["params"] > SPLIT_EXPORT_PARAMS else 8 + build)
                      + 5 + 0.1 * m + (reps + 1 + args.export_samples) * infer
                      + sum(5 + (0.36 if q == "none" else 0.33) * m
                            + (8 * infer * 2 if q == "int8" else 0)
                            + (reps + 1) * len(args.lite_threads) * infer
                            + args.export_samples * infer for q in args.quantize),
            "pooling": 2 * (build + 3) + (steps + 2) * step + 20 + 0.2 * m,
            "peers": _peers_estimate(args, f, m, g),
        }
    for part in ("train", "inference", "export", "pooling", "peers"):
        if part in args.parts:
            est[part] = sum(v[part] for v in per.values())
    if "pipeline" in args.parts:
        est["pipeline"] = 10 + 0.1 * args.pipeline_images + args.pipeline_batches * 0.05
    if "visualize" in args.parts:
        s = summaries[args.presets[0]]
        infer = s["gflops"] / (0.4 * g)
        est["visualize"] = 2 + 0.04 * s["params"] / 1e6 + 3 * (args.repeats + 1) * 3 * infer \
            + 1.5 * args.visualize_images * infer
    est["total"] = sum(est.values()) + 10
    return est


def _peers_estimate(args, gflop: float, mparams: float, peak: float) -> float:
    """Seconds of the peers part for one preset (see ``estimate_seconds``)."""
    keras = bench_peers.project_settings(args.train_modes, args.precisions)
    torch_train = [n for n in args.peer_settings if "train" in bench_peers.PEER_SETTINGS[n][3]]
    compiled = [n for n in args.peer_settings if bench_peers.PEER_SETTINGS[n][1]]
    build, total = 2 + 0.04 * mparams, 10.0
    for batch in args.peer_train_batches:
        k_step = 3 * gflop * batch / (0.35 * peak)
        t_step = 3 * gflop * batch / (0.30 * peak)
        total += (len(keras) * (build + 3 * k_step) + 15 * sum("xla" in n for n in keras)
                  + len(torch_train) * (0.2 * build + 3 * t_step) + 60 * len(compiled)
                  + args.steps * (len(keras) * k_step + len(torch_train) * t_step)
                  # the best settings head to head (compiles hit the caches)
                  + 1.2 * build + 10 + (args.steps + 3) * (k_step + t_step))
    if args.forward_batches:
        infer = gflop * args.forward_batches[0] / (0.35 * peak)
        total += (len(keras) * (build + 2 * infer) + 5 * sum("xla" in n for n in keras)
                  + len(args.peer_settings) * (0.2 * build + 3 * infer) + 30 * len(compiled)
                  + ("onnxruntime" in args.peer_settings) * (10 + 0.05 * mparams)
                  + args.steps * (len(keras) + len(args.peer_settings)) * infer)
    return total


# --------------------------------------------------------------------------------------------
# Parts


def _log(message: str) -> None:
    print(f"[benchmark {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _free() -> None:
    """Drops the Keras models of a finished part (the full network holds ~1 GiB each)."""
    import keras

    keras.backend.clear_session()
    gc.collect()


def _peak(precision: str, args) -> float:
    return bench_train.matmul_gflops(precision, args.matmul_size, max(3, args.repeats))


def _run_export(preset: str, args, keras_row: bool) -> list[dict]:
    """bench_export's CLI in subprocesses; the full network gets one process per format."""
    with tempfile.TemporaryDirectory(prefix="benchmark_export_") as tmp:
        common = [sys.executable, str(TOOLS / "bench_export.py"), "--presets", preset,
                  "--size", str(args.size), "--threads", *map(str, args.lite_threads),
                  "--repeats", str(args.repeats), "--samples", str(args.export_samples)]
        if args.export_split:
            jobs = [["--quantize"] + ([] if keras_row else ["--no-keras"])]
            jobs += [["--quantize", q, "--no-saved-model", "--no-keras"] for q in args.quantize]
        else:
            jobs = [["--quantize", *args.quantize] + ([] if keras_row else ["--no-keras"])]
        rows = []
        for i, job in enumerate(jobs):
            out = Path(tmp) / f"rows{i}.json"
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
            proc = subprocess.run(common + job + ["--json", str(out)], env=env,
                                  capture_output=True, text=True)
            if proc.returncode != 0 or not out.is_file():
                raise RuntimeError(f"bench_export {' '.join(job)} for {preset} failed (exit "
                                   f"{proc.returncode}):\n{proc.stderr[-2000:]}")
            data = json.loads(out.read_text())
            for row in data["rows"]:
                row.update(preset=preset, peak_rss_gib=data.get("peak_rss_gib"))
                rows.append(row)
    return rows


def run_benchmark(args, log=_log) -> dict:
    """Runs the parts in ``args.parts`` and returns every measurement.

    Args:
        args: Resolved options (``build_parser`` + quick/full defaults).
        log: Progress printer.

    Returns:
        ``{"machine", "config", "estimate_s", "parts": {part: rows or {"error"}}, "table",
        "wall_s"}``; ``table`` is the list of summary rows (``format_table``).
    """
    started = time.perf_counter()
    machine = describe_machine()
    from deconvnet_tf.models.summary import preset_summaries

    summaries = {s.name: {"params": s.params, "gflops": s.gflops}
                 for s in preset_summaries(args.presets, (args.size, args.size))}
    _free()
    args.export_split = any(s["params"] > SPLIT_EXPORT_PARAMS for s in summaries.values())
    peak0 = _peak("float32", args)
    estimate = estimate_seconds(args, summaries, peak0)
    log(f"fp32 tf.matmul peak now {peak0:.0f} GFLOP/s; estimated runtime "
        f"{estimate['total'] / 60:.1f} min (" + ", ".join(
            f"{k} {v / 60:.1f}" for k, v in estimate.items() if k != "total") + ")")
    result = {"machine": machine, "config": _config(args), "summaries": summaries,
              "estimate_s": estimate, "parts": {}}
    if args.estimate_only:
        return result
    parts = result["parts"]
    step_cache = {}

    def run_part(name, fn):
        if name not in args.parts:
            return
        log(f"{name} ...")
        t0 = time.perf_counter()
        try:
            parts[name] = fn()
        except Exception as err:  # one failing part must not lose the others
            import traceback

            traceback.print_exc()
            parts[name] = {"error": f"{type(err).__name__}: {str(err)[-1500:]}"}
        log(f"{name} done in {time.perf_counter() - t0:.0f} s")

    def inference():
        pk = {"float32": _peak("float32", args)}
        rows = []
        for preset in args.presets:
            for r in bench_forward.forward_rows(preset, args.size, args.forward_batches,
                                                args.repeats, args.forward_backends):
                rows.append(dict(r, preset=preset, peak_gflops=pk["float32"],
                                 utilisation=r["gflops"] / pk["float32"]))
        return rows

    def export():
        pk = {"float32": _peak("float32", args)}
        rows = []
        for preset in args.presets:
            for r in _run_export(preset, args, keras_row="inference" not in args.parts):
                t = r["t2"] if r.get("t2") is not None else r["t1"]
                r.update(latency_s=t, gflops=r["flops"] / t / 1e9, peak_gflops=pk["float32"],
                         utilisation=r["flops"] / t / 1e9 / pk["float32"])
                rows.append(r)
        return rows

    def train():
        rows = []
        for mode in args.train_modes:
            jit = mode == "xla"
            mode_rows = bench_train.train_rows(args.presets, args.size, args.batch,
                                               args.precisions, args.steps, max(3, args.repeats),
                                               args.matmul_size, jit)
            for r in mode_rows:
                if r["precision"] == "float32":
                    step_cache[(r["preset"], args.size, args.batch, jit)] = r["step_s"]
            rows += mode_rows
            _free()
        return rows

    def pooling():
        rows = []
        for preset in args.presets:
            rows += pooling_rows(preset, args.size, args.batch, args.steps, max(3, args.repeats),
                                 step_cache)
            _free()
        return rows

    def pipeline():
        own_step = "train" not in args.parts or isinstance(parts.get("train"), dict)
        return [bench_pipeline.measure_pipeline(
            None, args.pipeline_images,
            (args.size + 16, args.size + 32) if args.quick else (360, 480),
            args.presets[0] if own_step else None, "crop", (args.size, args.size),
            args.pipeline_batch, args.pipeline_batches, args.steps if own_step else 0)]

    def visualize():
        import deconvnet_tf

        preset = args.presets[0]
        model = deconvnet_tf.build_model(preset, num_classes=21,
                                         input_shape=(args.size, args.size, 3))
        convs = [l.name for l in model.layers if l.name.startswith("block")
                 and "_conv" in l.name and "deconv" not in l.name
                 and type(l).__name__ == "Conv2D"]
        del model
        if not convs:
            raise ValueError(f"{preset} has no blockN_convM encoder layer to project")
        return [bench_visualize.visualize_rows(
            preset, convs[-1], 0, args.size, args.visualize_images, 9,
            min(8, args.visualize_images), args.repeats)]

    def peers():
        from deconvnet_tf.models import get_architecture

        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
        presets = [p for p in args.presets if get_architecture(p).family == "deconvnet"]
        other = [{"kind": "info", "side": "peer", "setting": "torch", "preset": p,
                  "status": "not compared", "detail": f"the peer is a DeconvNet, {p} is "
                  f"{get_architecture(p).family}"} for p in args.presets if p not in presets]
        if not presets:
            return other
        return other + bench_peers.peer_rows(
            presets, args.size, train_batches=args.peer_train_batches,
            infer_batch=args.forward_batches[0] if args.forward_batches else None,
            steps=args.steps, project=bench_peers.project_settings(
                args.train_modes, args.precisions),
            peers=args.peer_settings, matmul_size=args.matmul_size,
            repeats=max(3, args.repeats), profile_dir=args.profile,
            torch_python=args.torch_python, log=log)

    # Subprocess parts first: this process stays small while LiteRT converts the big network.
    run_part("inference", inference)
    run_part("export", export)
    run_part("train", train)
    run_part("pooling", pooling)
    run_part("pipeline", pipeline)
    run_part("visualize", visualize)
    run_part("peers", peers)  # two worker processes; last, so they have the memory
    machine["load_end"] = list(os.getloadavg())
    result["wall_s"] = time.perf_counter() - started
    log(f"finished in {result['wall_s'] / 60:.1f} min (estimated {estimate['total'] / 60:.1f})")
    result["table"] = summary_rows(result, args)
    return result


def _config(args) -> dict:
    keys = ("presets", "size", "batch", "steps", "repeats", "matmul_size", "precisions",
            "train_modes", "forward_backends", "forward_batches", "quantize", "lite_threads",
            "export_samples", "pipeline_images", "pipeline_batch", "pipeline_batches",
            "visualize_images", "parts", "quick", "peer_settings", "peer_train_batches",
            "profile")
    return {k: getattr(args, k) for k in keys}


# --------------------------------------------------------------------------------------------
# Table


def _goal(is_goal: bool, text: str, ok: bool) -> tuple[str, str]:
    return (text, "yes" if ok else "no") if is_goal else ("-", "-")


def _row(part, preset, config, measured, gflops=None, peak=None, util=None, goal="-", met="-",
         error=None) -> dict:
    return {"part": part, "preset": preset, "configuration": config, "measured": measured,
            "gflops": gflops, "peak_gflops": peak, "utilisation": util, "goal": goal, "met": met,
            **({"error": error} if error else {})}


def _ok(parts: dict, name: str) -> list[dict]:
    """The rows of a part that ran and did not fail (else ``[]``)."""
    rows = parts.get(name)
    return rows if isinstance(rows, list) else []


def summary_rows(result: dict, args) -> list[dict]:
    """The one table: a row per measurement, with its goal and whether it is met."""
    parts, size = result["parts"], args.size
    out = []
    full = size == GOAL_SIZE

    def is_goal(preset):
        return full and preset == GOAL_PRESET

    for name, rows in parts.items():
        if isinstance(rows, dict):
            out.append(_row(name, "-", "failed", rows["error"][:200], error=rows["error"]))
    train = _ok(parts, "train")
    for r in train:
        prec = "fp32" if r["precision"] == "float32" else "bf16 (mixed_bfloat16)"
        goal = _goal(is_goal(r["preset"]) and r["precision"] == "float32",
                     f">= {GOALS['train_fp32']:.0%} of peak",
                     r["utilisation"] >= GOALS["train_fp32"])
        out.append(_row("train step", r["preset"],
                        f"{prec}, batch {r['batch']}, {size}x{size}, SGD momentum"
                        + (", XLA" if r["jit"] else ""),
                        f"{r['step_s']:.3f} s/step ({r['images_per_s']:.2f} img/s)",
                        r["gflops"], r["peak_gflops"], r["utilisation"], *goal))
    for preset in args.presets:
        for jit in (False, True):
            by = {r["precision"]: r for r in train if r["preset"] == preset and r["jit"] == jit}
            if "float32" in by and "bfloat16" in by:
                speedup = by["float32"]["step_s"] / by["bfloat16"]["step_s"]
                goal = _goal(is_goal(preset), f">= {GOALS['bf16_speedup']}x",
                             speedup >= GOALS["bf16_speedup"])
                out.append(_row("train step", preset,
                                "bf16 vs fp32 step time" + (", XLA" if jit else ""),
                                f"{speedup:.2f}x faster", goal=goal[0], met=goal[1]))
    for r in _ok(parts, "inference"):
        goal = _goal(is_goal(r["preset"]) and r["batch"] == 1 and r["backend"] == "tensorflow",
                     f">= {GOALS['inference_tf']:.0%} of peak",
                     r["utilisation"] >= GOALS["inference_tf"])
        out.append(_row("inference", r["preset"], f"Keras: {r['impl']}, batch {r['batch']}",
                        f"{1000 * r['per_image_s']:.1f} ms/image (first call {r['first_s']:.1f} s)",
                        r["gflops"], r["peak_gflops"], r["utilisation"], *goal))
    export = _ok(parts, "export")
    for r in export:
        threads = "2 threads" if r.get("t2") is not None else "1 thread"
        fmt = r["format"]
        lite = fmt.startswith("LiteRT")
        extra = [f"{r['size_mib']:.1f} MiB" if r.get("size_mib") is not None else None,
                 f"export {r['export_s']:.0f} s" if r.get("export_s") is not None else None,
                 f"labels = Keras {100 * r['agreement']:.1f}%",
                 f"1 thread {1000 * r['t1']:.1f} ms" if lite and r.get("t2") is not None
                 and r.get("t1") is not None else None]
        int_fmt = fmt in ("LiteRT int8", "LiteRT dynamic", "LiteRT fp16")
        goal = _goal(is_goal(r["preset"]) and fmt == "LiteRT fp32",
                     f">= {GOALS['litert_fp32']:.0%} of peak",
                     r["utilisation"] >= GOALS["litert_fp32"])
        out.append(_row("inference", r["preset"],
                        f"{fmt}, batch 1" + (f", XNNPACK {threads}" if lite else ""),
                        f"{1000 * r['latency_s']:.1f} ms/image ("
                        + ", ".join(e for e in extra if e) + ")",
                        r["gflops"], None if int_fmt else r["peak_gflops"],
                        None if int_fmt else r["utilisation"], *goal))
    for r in _ok(parts, "pooling"):
        pair = ("argmax pair (MaxPoolWithArgmax + scatter_nd), no XLA" if r["pair"] == "argmax"
                else "switch pair (keras.ops masks), XLA")
        goal = _goal(True, f"<= {GOALS['pool_share']:.0%} of step",
                     r["share"] <= GOALS["pool_share"])
        out.append(_row("pool/unpool share", r["preset"],
                        f"{pair}, fwd+bwd, fp32 batch {r['batch']}",
                        f"{100 * r['share']:.1f}% (pool {1000 * r['pool_s']:.1f} ms + unpool "
                        f"{1000 * r['unpool_s']:.1f} ms of {1000 * r['step_s']:.0f} ms step)",
                        goal=goal[0], met=goal[1]))
    for r in _ok(parts, "pipeline"):
        out.append(_row("tf.data", "-", f"crop pipeline, {r['what']}, {size}x{size} crops, batch "
                        f"{r['batch']}", f"{r['pipeline_img_s']:.1f} img/s"))
        consumers = ([(t["preset"], t["precision"], t["images_per_s"]) for t in train]
                     or ([(r["preset"], "float32", r["step_img_s"])] if "step_img_s" in r else []))
        for preset, precision, img_s in consumers:
            ratio = r["pipeline_img_s"] / img_s
            goal = _goal(True, f">= {GOALS['pipeline_ratio']:.0f}x the step",
                         ratio >= GOALS["pipeline_ratio"])
            out.append(_row("tf.data", preset, f"pipeline / {precision} train step "
                            f"({img_s:.2f} img/s)", f"{ratio:.1f}x", goal=goal[0], met=goal[1]))
    for r in _ok(parts, "visualize"):
        for p in r["project"]:
            out.append(_row("visualize", r["preset"], f"project one unit of {r['layer']}, "
                            f"mode {p['mode']}", f"{p['median_s']:.2f} s"))
        out.append(_row("visualize", r["preset"], f"top-{r['top_k']} scan over {r['images']} "
                        f"images",
                        f"{r['scan_s']:.1f} s ({r['scan_s'] / r['images']:.2f} s/image)"))
    out += _peer_summary(_ok(parts, "peers"), size)
    return out


def _task(r: dict, size: int) -> str:
    return (f"train step, batch {r['batch']}, {size}x{size}" if r["task"] == "train"
            else f"inference, batch {r['batch']}, {size}x{size}")


def _latency(task: str, seconds: float, batch: int, extra=()) -> str:
    """``1.234 s/step (1.62 img/s, ...)`` or ``219.3 ms/image (...)``."""
    if task == "train":
        main, extra = f"{seconds:.3f} s/step", [f"{batch / seconds:.2f} img/s", *extra]
    else:
        main, extra = f"{1000 * seconds / batch:.1f} ms/image", list(extra)
    return main + (f" ({', '.join(extra)})" if extra else "")


def _peer_summary(rows: list[dict], size: int) -> list[dict]:
    """The peers part's table rows: the peer's status, every setting's median (both sides,
    measured interleaved) and per task the ratio of the best settings, with its goal."""
    out = []
    part = "vs PyTorch"
    for r in rows:
        if r["kind"] == "info" and r["side"] == "peer":
            name = ("ONNX Runtime" if r.get("setting") == "onnxruntime"
                    else "PyTorch reference (tools/peers/deconvnet_torch.py)")
            if r["status"] == "ok":
                v = r["versions"]
                extra = ", ".join(f"{k} {v[k]}" for k in ("onnxruntime", "onnx") if v.get(k))
                out.append(_row(part, "-", f"peer: {name}",
                                f"torch {v['torch']}, {r['threads']} threads, "
                                f"{r['cpu_capability']}" + (f"; {extra}" if extra else "")))
            else:
                hint = "; pip install -e \".[peers]\"" if r["status"] == "not installed" else ""
                out.append(_row(part, r.get("preset", "-"), f"peer: {name}",
                                f"{r['status']} ({r.get('detail') or ''}{hint})"))
    for r in rows:
        if r["kind"] == "measure":
            who = "this project" if r["side"] == "project" else "peer"
            config = f"{who}: {r['label']}, {_task(r, size)}"
            if "error" in r:
                out.append(_row(part, r["preset"], config, f"failed: {r['error']}",
                                error=r["error"]))
                continue
            extra = [f"first call {r['first_s']:.1f} s"]
            onnx = r.get("onnx")
            if onnx:
                ops = ", ".join(sorted(onnx["ops"]))
                std = ("standard ONNX ops only" if not onnx["nonstandard_domains"] else
                       "non-standard domains " + ", ".join(onnx["nonstandard_domains"]))
                extra += [f"export {onnx['export_s']:.0f} s", f"{std}: {ops}",
                          f"labels = PyTorch {100 * onnx['agreement']:.1f}%"]
            out.append(_row(part, r["preset"], config,
                            _latency(r["task"], r["median_s"], r["batch"], extra),
                            r["gflops"], r["peak_gflops"], r["utilisation"]))
        elif r["kind"] == "ratio":
            goal = _goal(size == GOAL_SIZE, f">= {GOALS['peer_ratio']}x",
                         r["ratio"] >= GOALS["peer_ratio"])
            measured = (f"{r['ratio']:.2f}x ({r['project_label']} "
                        f"{_latency(r['task'], r['project_s'], r['batch'])} vs "
                        f"{r['peer_label']} {_latency(r['task'], r['peer_s'], r['batch'])})")
            measured = measured[:-1] + f"; {r['source']})"
            if not r["params_equal"]:
                measured += " (parameter counts differ!)"
            out.append(_row(part, r["preset"], f"ratio: this project's best / the peer's best, "
                            f"{_task(r, size)}", measured, goal=goal[0], met=goal[1]))
    return out


def format_profiles(rows: list[dict]) -> str:
    """The ``--profile`` results: per traced step, the top-10 ops by self time."""
    blocks = []
    for r in rows:
        if r.get("kind") != "profile":
            continue
        title = (f"`{r['preset']}` {r['task']} step, batch {r['batch']}, "
                 f"{'this project' if r['side'] == 'project' else 'peer'}: {r['label']}")
        if "error" in r:
            blocks.append(f"{title}: profile failed: {r['error']}")
            continue
        lines = [f"{title} ({r['source']}; all ops {r['total_ms']:.0f} ms; trace "
                 f"`{r['trace']}`):", "", "| op | calls | self ms | share |",
                 "|---|---:|---:|---:|"]
        for t in r["top"]:
            share = "-" if t["share"] is None else f"{100 * t['share']:.1f}%"
            lines.append(f"| `{t['op']}` | {t['count']} | {t['self_ms']:.1f} | {share} |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def _num(value, pattern) -> str:
    return "-" if value is None else format(value, pattern)


def _gflops(value) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def format_table(rows: list[dict]) -> str:
    """The summary rows as one markdown table."""
    lines = ["| part | preset | configuration | measured | GFLOP/s | matmul peak GFLOP/s "
             "| of peak | goal | met |", "|---|---|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        preset = f"`{r['preset']}`" if r["preset"] != "-" else "-"
        util = ("-" if r["utilisation"] is None else f"{100 * r['utilisation']:.0f}%"
                if r["utilisation"] >= 0.01 else f"{100 * r['utilisation']:.2f}%")
        lines.append(f"| {r['part']} | {preset} | {r['configuration']} | "
                     f"{str(r['measured']).replace('|', '/')} | {_gflops(r['gflops'])} | "
                     f"{_num(r['peak_gflops'], '.0f')} | {util} | {r['goal']} | {r['met']} |")
    return "\n".join(lines) + "\n"


def format_markdown(result: dict) -> str:
    """Machine description, command, the table and how each number was measured."""
    m, cfg = result["machine"], result["config"]
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in m["flags"].items())
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    load = lambda xs: " / ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    lines = [
        "## CPU benchmark",
        "",
        f"Measured {result['date']} with `{result['command']}` ({result['wall_s'] / 60:.1f} min; "
        f"estimated {result['estimate_s']['total'] / 60:.1f} min).",
        "",
        f"* CPU: {m['cpu']}, {m['cores']} logical cores ({m['cores_usable']} usable), "
        f"{_num(m['memory_gib'], '.0f')} GiB RAM; {flags}",
        f"* Software: Python {m['python']}, {versions}",
        f"* Load average (1/5/15 min): {load(m['load_start'])} at the start, "
        f"{load(m['load_end'])} at the end"
        + (" (the machine was shared: other jobs ran)" if max(m['load_start'][0],
           m['load_end'][0]) > 0.5 * (m['cores'] or 1) else ""),
        f"* Presets {', '.join(f'`{p}`' for p in cfg['presets'])} at {cfg['size']}x{cfg['size']}; "
        f"train batch {cfg['batch']}, median of {cfg['steps']} steps; latencies median of "
        f"{cfg['repeats']}; parts: {', '.join(cfg['parts'])}",
        "",
        format_table(result["table"]).rstrip(),
        "",
        "GFLOP/s: forward FLOPs (2 x multiply-adds of convolutions, `count_flops`) per second; "
        "training counts 3x the forward. Peak: `tf.matmul` of 2 square matrices "
        f"({cfg['matmul_size']}^2) in the row's precision, measured right before each part "
        "(the fp32 peak is the yardstick of fp32, SavedModel and LiteRT fp32 rows). "
        "Inference rows are batch-1 latencies; LiteRT uses XNNPACK. Pool/unpool share: forward + "
        "backward of exactly the model's pooling and unpooling layers at their in-model shapes "
        "(random upstream gradient, timed alone, summed) / the fp32 train step of the same model "
        "with that pair; the XLA row's ops are compiled alone, so fusion inside the full step may "
        "make the real share smaller. Goals are the issue's (for `deconvnet_vgg16` at 224; "
        "the pool share and the pipeline goals apply to every preset, the PyTorch ratio goals "
        "to every preset at 224).",
    ]
    if "peers" in cfg["parts"]:
        lines += ["", _PEERS_TEXT]
    profiles = format_profiles(_ok(result["parts"], "peers"))
    if profiles:
        lines += ["", "### Where the time goes: one train step, top-10 ops by self time", "",
                  profiles.rstrip()]
    return "\n".join(lines) + "\n"


_PEERS_TEXT = (
    "vs PyTorch: the peer is `tools/peers/deconvnet_torch.py`, the same network layer for layer "
    "(`MaxPool2d(return_indices=True)` + `MaxUnpool2d`, BatchNorm; its parameter count equals "
    "the Keras model's, checked in the run), with the same loss (pixel cross-entropy, void 255), "
    "SGD step (lr 0.01, momentum 0.9, weight decay 5e-4), data, batch and size. This project's "
    "settings (Keras' default step = argmax pair, and the XLA step = switch pair, each fp32 and "
    "mixed_bfloat16; inference = `predict_on_batch` of the same models) run in one worker "
    "process, the peer's (eager fp32 and bf16 autocast in NCHW and in channels_last, "
    "`torch.compile` (inductor; inference with `freezing`) fp32 and bf16, and for inference ONNX "
    "Runtime on the peer's `torch.onnx` export) in another; both use every core. Per memory "
    "group (a precision; Keras' default step with PyTorch NCHW and ONNX Runtime, or the XLA "
    "step with PyTorch channels_last: one model per side alive), after one untimed call per "
    "setting (two for `torch.compile`) and the matmul peaks, the timed calls go round robin with "
    "the frameworks alternating (one call of each setting per round; the row is the median of "
    "the rounds). \"first call\" includes tracing/compilation. Ratio = the peer's best median / "
    "this project's best median (this project's throughput over the peer's), both from the same "
    "rounds: the best settings' group, or a head-to-head run of the two, interleaved, when they "
    "were in different groups. GFLOP/s of both sides are against the `tf.matmul` peak. "
    "SavedModel/LiteRT are not in the ratio (they are not interleaved with the peer).")


# --------------------------------------------------------------------------------------------
# CLI


def _gpu_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} --gpu", description=bench_gpu.__doc__.split(
        "\n\n")[0])
    parser.add_argument("--gpu", action="store_true", help="GPU mode (tools/bench_gpu.py)")
    bench_gpu.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        result = bench_gpu.run_gpu_benchmark(args)
    except bench_gpu.BenchmarkError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    print(result["markdown"])
    failed = [r for r in result["rows"] if "error" in r]
    for row in failed:
        print(f"{PROG}: {row.get('framework', '?')} {row.get('variant', '')} "
              f"{row.get('precision', '')}: {row['error']}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--gpu" in argv:
        return _gpu_main(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        args = _resolve(args)
    except _UsageError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    result = run_benchmark(args)
    result["command"] = "python tools/benchmark.py" + (" " + shlex.join(argv) if argv else "")
    result["date"] = time.strftime("%Y-%m-%d %H:%M %Z")
    if args.estimate_only:
        print(json.dumps(result["estimate_s"], indent=2))
        return 0
    result["markdown"] = format_markdown(result)
    print(format_table(result["table"]))
    profiles = format_profiles(_ok(result["parts"], "peers"))
    if profiles:
        print(profiles)
        for r in result["parts"]["peers"]:
            if r.get("kind") == "profile" and r.get("table"):
                print(f"torch.profiler key_averages ({r['preset']}, {r['label']}):\n{r['table']}")
    if args.json_path:
        write_json_new(args.json_path, result, default=str, overwrite=args.overwrite)
    if args.markdown:
        bench_gpu.write_markdown_section(args.markdown, result["markdown"],
                                         begin=BEGIN, end=END)
    failed = [k for k, v in result["parts"].items() if isinstance(v, dict)]
    for name in failed:
        print(f"{PROG}: part {name} failed: {result['parts'][name]['error']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
