"""GPU benchmark: the package's Keras 3 + JAX path and a PyTorch peer, side by side, one run.

Measures on the same GPU, in one invocation (each configuration in its own process, so that
peak-memory numbers are per configuration and one failure does not stop the others):

* a bf16 matmul peak (JAX, ``n x n`` bf16 GEMMs), the yardstick of the utilisation columns;
* Keras 3 + JAX (``deconvnet_tf.build_model``, switch pooling/unpooling, XLA-jitted
  ``stateless_call`` train step with the package's ``SegmentationCrossEntropy`` and SGD
  momentum 0.9) at fp32 and at ``mixed_bfloat16``: training images/s, inference images/s at
  the batch size and latency at batch 1 (argmax on the device, label map copied to the host),
  peak device memory, first-step (compile) time;
* the same network in PyTorch (``tools/peers/deconvnet_torch.py``, benchmark-only): eager
  NCHW, eager channels_last and ``torch.compile`` channels_last, fp32 and/or bf16 autocast.

Utilisation = model FLOP/s (training: 3x the forward FLOPs) / the measured bf16 matmul peak.
Data are synthetic and stay on the device. Writes a JSON file and a markdown table (into a
marked section of a markdown file, e.g. ``docs/benchmarks.md``).

    python tools/bench_gpu.py --json bench_gpu.json --markdown docs/benchmarks.md
    # a CPU smoke run of the whole machinery (tiny sizes):
    python tools/bench_gpu.py --preset deconvnet_tiny --batch 2 --size 64 --steps 2 --cpu-ok

The device image has JAX, PyTorch and Keras (carried as a wheel) but no TensorFlow: this file
imports neither at top level; the workers import what they measure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from _outputs import existing_output_error, replace_text, write_json_new

__all__ = ["add_arguments", "build_parser", "run_gpu_benchmark", "format_markdown",
           "write_markdown_section", "BenchmarkError", "main"]

REPO = Path(__file__).resolve().parents[1]
BEGIN = "<!-- bench_gpu:begin -->"
END = "<!-- bench_gpu:end -->"
TORCH_VARIANTS = {
    "eager_nchw": "eager, NCHW, MaxPool2d(return_indices) + MaxUnpool2d",
    "eager_cl": "eager, channels_last",
    "compile_cl": "torch.compile, channels_last",
}
KERAS_VARIANT = "switch pool/unpool (keras.ops), XLA jit"
DEFAULT_TORCH_RUNS = "eager_nchw:fp32,eager_nchw:bf16,eager_cl:bf16,compile_cl:bf16"
PRECISIONS = ("fp32", "bf16")


class BenchmarkError(RuntimeError):
    """The benchmark cannot run (no GPU without ``--cpu-ok``, a bad argument)."""


# --------------------------------------------------------------------------------------------
# Arguments


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds this benchmark's options to ``parser`` (``tools/benchmark.py --gpu`` reuses them)."""
    parser.add_argument("--preset", default="deconvnet_vgg16", help="model preset")
    parser.add_argument("--num-classes", type=int, default=21)
    parser.add_argument("--batch", type=int, default=64, help="training/inference batch")
    parser.add_argument("--size", type=int, default=224, help="square input size")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first")
    parser.add_argument("--infer-iters", type=int, default=20, help="timed inference batches")
    parser.add_argument("--latency-iters", type=int, default=50, help="timed batch-1 calls")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS,
                        help="Keras/JAX precisions (bf16 = mixed_bfloat16)")
    parser.add_argument("--torch-runs", default=DEFAULT_TORCH_RUNS,
                        help="comma-separated VARIANT:PRECISION for the PyTorch peer "
                             f"(variants {', '.join(TORCH_VARIANTS)}); 'none' to skip")
    parser.add_argument("--torch-python", default=sys.executable,
                        help="interpreter with PyTorch (default: this one)")
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras/JAX rows")
    parser.add_argument("--matmul-size", type=int, default=8192, help="n of the n x n matmuls")
    parser.add_argument("--cpu-ok", action="store_true",
                        help="allow running without a GPU (smoke test with tiny settings)")
    parser.add_argument("--worker-timeout", type=int, default=900, help="seconds per worker")
    parser.add_argument("--json", dest="json_path", default=None,
                        help="write results here (a new file, unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json")
    parser.add_argument("--markdown", default=None,
                        help="markdown file whose bench_gpu section gets the table")
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python tools/bench_gpu.py``."""
    parser = argparse.ArgumentParser(prog="bench_gpu.py", description=__doc__.splitlines()[0])
    return add_arguments(parser)


def _complete(args) -> argparse.Namespace:
    """``args`` with every option this module knows (defaults for the missing ones)."""
    values = vars(build_parser().parse_args([]))
    values.update({k: v for k, v in vars(args).items() if v is not None or k not in values})
    return argparse.Namespace(**values)


def _torch_runs(spec: str) -> list[tuple[str, str]]:
    if not spec or spec.strip().lower() == "none":
        return []
    runs = []
    for item in spec.split(","):
        variant, _, precision = item.strip().partition(":")
        if variant not in TORCH_VARIANTS or precision not in PRECISIONS:
            raise BenchmarkError(
                f"--torch-runs: bad entry {item!r}; expected VARIANT:PRECISION with VARIANT in "
                f"{sorted(TORCH_VARIANTS)} and PRECISION in {list(PRECISIONS)}")
        runs.append((variant, precision))
    return runs


def _architecture(preset: str, num_classes: int) -> dict:
    """The preset's architecture fields, read from presets.py without importing the package
    (the PyTorch worker's interpreter may not have Keras)."""
    path = REPO / "deconvnet_tf" / "models" / "presets.py"
    spec = importlib.util.spec_from_file_location("_bench_gpu_presets", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        if preset not in module.PRESETS:
            raise BenchmarkError(f"--preset: unknown {preset!r}; available: "
                                 f"{', '.join(module.list_presets())}")
        arch = module.get_architecture(preset, num_classes=num_classes)
    finally:
        sys.modules.pop(spec.name, None)
    if arch.family != "deconvnet":
        raise BenchmarkError(f"--preset: {preset!r} is an {arch.family} model; the PyTorch peer "
                             "and this benchmark cover the deconvnet family")
    return arch.to_dict()


# --------------------------------------------------------------------------------------------
# Workers (run in subprocesses: ``python bench_gpu.py --worker KIND SPEC``)


def _timed(fn, iters: int, sync) -> float:
    """Seconds for ``iters`` calls of ``fn`` (``sync`` waits for the device at the end)."""
    start = time.perf_counter()
    out = None
    for _ in range(iters):
        out = fn()
    sync(out)
    return time.perf_counter() - start


def _median_ms(fn, iters: int) -> float:
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return 1000.0 * times[len(times) // 2]


def _worker_matmul(spec: dict) -> dict:
    import jax
    import jax.numpy as jnp

    device = jax.devices()[0]
    n = int(spec["matmul_size"])
    key = jax.random.PRNGKey(0)
    a = jax.random.normal(key, (n, n), jnp.bfloat16)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.bfloat16)
    matmul = jax.jit(lambda x, y: x @ y)
    matmul(a, b).block_until_ready()
    iters = max(3, int(spec.get("matmul_iters", 30)))
    seconds = _timed(lambda: matmul(a, b), iters, lambda o: o.block_until_ready())
    return {
        "platform": device.platform,
        "device_kind": getattr(device, "device_kind", str(device)),
        "device_count": len(jax.devices()),
        "jax_version": jax.__version__,
        "matmul_size": n,
        "bf16_matmul_tflops": 2.0 * n**3 * iters / seconds / 1e12,
    }


def _peak_bytes(device) -> int | None:
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    return None if not stats else stats.get("peak_bytes_in_use")


def _worker_keras(spec: dict) -> dict:
    import functools

    import jax
    import jax.numpy as jnp
    import keras
    import numpy as np

    device = jax.devices()[0]
    if device.platform != "gpu" and not spec["cpu_ok"]:
        raise BenchmarkError(f"JAX sees no GPU (default device {device}); pass --cpu-ok")
    keras.config.set_dtype_policy("mixed_bfloat16" if spec["precision"] == "bf16" else "float32")
    keras.utils.set_random_seed(0)
    import deconvnet_tf
    from deconvnet_tf.models import count_flops
    from deconvnet_tf.training.losses import SegmentationCrossEntropy

    batch, size, classes = int(spec["batch"]), int(spec["size"]), int(spec["num_classes"])
    model = deconvnet_tf.build_model(spec["preset"], num_classes=classes,
                                     input_shape=(size, size, 3), unpooling="switch")
    flops = count_flops(model)
    loss_fn = SegmentationCrossEntropy(classes, 255)
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    optimizer.build(model.trainable_variables)
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    ov = [v.value for v in optimizer.variables]

    def loss_and_updates(tv, ntv, x, y):
        logits, ntv = model.stateless_call(tv, ntv, x, training=True)
        return loss_fn(y, logits), ntv

    grad_fn = jax.value_and_grad(loss_and_updates, has_aux=True)

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def train_step(tv, ntv, ov, x, y):
        (loss, ntv), grads = grad_fn(tv, ntv, x, y)
        tv, ov = optimizer.stateless_apply(ov, grads, tv)
        return loss, tv, ntv, ov

    @jax.jit
    def infer(tv, ntv, x):
        logits, _ = model.stateless_call(tv, ntv, x, training=False)
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)

    rng = np.random.default_rng(0)
    x = jax.device_put(rng.integers(0, 256, (batch, size, size, 3)).astype(np.uint8), device)
    y = jax.device_put(rng.integers(0, classes, (batch, size, size)).astype(np.int32), device)
    state = {"tv": tv, "ntv": ntv, "ov": ov}

    def step():
        loss, state["tv"], state["ntv"], state["ov"] = train_step(
            state["tv"], state["ntv"], state["ov"], x, y)
        return loss

    start = time.perf_counter()
    loss_first = float(step())
    first_step = time.perf_counter() - start
    for _ in range(int(spec["warmup"])):
        step()
    seconds = _timed(step, int(spec["steps"]), lambda o: o.block_until_ready())
    loss_last = float(step())
    peak_train = _peak_bytes(device)

    tv, ntv = state["tv"], state["ntv"]
    infer(tv, ntv, x).block_until_ready()
    infer_seconds = _timed(lambda: infer(tv, ntv, x), int(spec["infer_iters"]),
                           lambda o: o.block_until_ready())
    x1 = x[:1]
    np.asarray(infer(tv, ntv, x1))
    latency = _median_ms(lambda: np.asarray(infer(tv, ntv, x1)), int(spec["latency_iters"]))
    return {
        "framework": "Keras 3 + JAX",
        "variant": KERAS_VARIANT,
        "precision": spec["precision"],
        "platform": device.platform,
        "device_kind": getattr(device, "device_kind", str(device)),
        "versions": {"jax": jax.__version__, "keras": keras.__version__},
        "params": int(model.count_params()),
        "forward_flops_per_image": int(flops),
        "first_step_s": first_step,
        "train_img_s": batch * int(spec["steps"]) / seconds,
        "infer_img_s": batch * int(spec["infer_iters"]) / infer_seconds,
        "latency_b1_ms": latency,
        "peak_mem_bytes": peak_train,
        "peak_mem_bytes_all": _peak_bytes(device),
        "loss_first": loss_first,
        "loss_last": loss_last,
    }


def _worker_torch(spec: dict) -> dict:
    import numpy as np
    import torch

    from peers.deconvnet_torch import DeconvNetTorch, keras_param_count

    cuda = torch.cuda.is_available()
    if not cuda and not spec["cpu_ok"]:
        raise BenchmarkError("PyTorch sees no GPU; pass --cpu-ok")
    device = torch.device("cuda" if cuda else "cpu")
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    variant, precision = spec["variant"], spec["precision"]
    channels_last = variant.endswith("_cl")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    batch, size, classes = int(spec["batch"]), int(spec["size"]), int(spec["num_classes"])
    model = DeconvNetTorch(**spec["architecture"]).to(device).to(memory_format=fmt)
    forward = torch.compile(model, dynamic=False) if variant.startswith("compile") else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    criterion = torch.nn.CrossEntropyLoss(ignore_index=255)
    gen = np.random.default_rng(0)
    x = torch.from_numpy(gen.integers(0, 256, (batch, 3, size, size)).astype(np.uint8))
    x = x.to(device).contiguous(memory_format=fmt)
    y = torch.from_numpy(gen.integers(0, classes, (batch, size, size)).astype(np.int64)).to(device)

    def autocast():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                              enabled=precision == "bf16")

    def sync(_=None):
        if cuda:
            torch.cuda.synchronize()

    def step():
        with autocast():
            loss = criterion(forward(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    model.train()
    start = time.perf_counter()
    loss_first = float(step())
    first_step = time.perf_counter() - start
    for _ in range(int(spec["warmup"])):
        step()
    sync()
    seconds = _timed(step, int(spec["steps"]), sync)
    loss_last = float(step())
    peak = torch.cuda.max_memory_allocated() if cuda else None

    model.eval()
    with torch.inference_mode(), autocast():
        def infer(images):
            return forward(images).argmax(1).to(torch.int32)

        infer(x)
        sync()
        infer_seconds = _timed(lambda: infer(x), int(spec["infer_iters"]), sync)
        x1 = x[:1].contiguous(memory_format=fmt)
        infer(x1).cpu()
        latency = _median_ms(lambda: infer(x1).cpu(), int(spec["latency_iters"]))
    return {
        "framework": "PyTorch",
        "variant": TORCH_VARIANTS[variant],
        "precision": precision,
        "platform": device.type,
        "device_kind": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
        "versions": {"torch": torch.__version__},
        "tf32": {"cudnn_conv": bool(torch.backends.cudnn.allow_tf32),
                 "matmul": bool(torch.backends.cuda.matmul.allow_tf32)},
        "params": int(keras_param_count(model)),
        "first_step_s": first_step,
        "train_img_s": batch * int(spec["steps"]) / seconds,
        "infer_img_s": batch * int(spec["infer_iters"]) / infer_seconds,
        "latency_b1_ms": latency,
        "peak_mem_bytes": peak,
        "loss_first": loss_first,
        "loss_last": loss_last,
    }


WORKERS = {"matmul": _worker_matmul, "keras": _worker_keras, "torch": _worker_torch}


def _worker_main(kind: str, spec_json: str) -> int:
    try:
        result = WORKERS[kind](json.loads(spec_json))
    except Exception as err:  # reported to the parent as this configuration's error
        import traceback

        traceback.print_exc()
        result = {"error": f"{type(err).__name__}: {err}"}
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def _run_worker(kind: str, spec: dict, *, python: str, env: dict, timeout: int) -> dict:
    start = time.perf_counter()
    try:
        proc = subprocess.run([python, str(Path(__file__).resolve()), "--worker", kind,
                               json.dumps(spec)], env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s", "wall_s": time.perf_counter() - start}
    except OSError as err:
        return {"error": f"cannot start {python!r}: {err}", "wall_s": 0.0}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        tail = (proc.stderr or proc.stdout)[-1500:].strip()
        return {"error": f"worker exited with {proc.returncode}: {tail}",
                "wall_s": time.perf_counter() - start}
    result = json.loads(lines[-1][len("RESULT "):])
    if "error" in result:
        result["log_tail"] = proc.stderr[-1500:]
    result["wall_s"] = time.perf_counter() - start
    return result


def _env(extra_path: Path | None = None, **updates: str) -> dict:
    """The workers' environment; ``extra_path`` (the checkout, for ``deconvnet_tf`` where the
    package is not installed) is prepended to ``PYTHONPATH``. The workers run this file as a
    script, so ``tools/`` is their ``sys.path[0]`` and ``peers.deconvnet_torch`` imports."""
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(extra_path), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(updates)
    return env


# --------------------------------------------------------------------------------------------
# The run


def run_gpu_benchmark(args) -> dict:
    """Runs the GPU benchmark and returns its results (also written to ``--json`` and the
    ``--markdown`` file when given).

    Args:
        args: An ``argparse.Namespace`` with this module's options (``add_arguments``);
            missing ones take their defaults.

    Returns:
        ``{"config", "device", "matmul", "rows", "markdown"}``; each row holds one
        configuration's numbers, or an ``"error"``.

    Raises:
        BenchmarkError: If no GPU is visible and ``cpu_ok`` is not set, or on bad options.
    """
    args = _complete(args)
    if not args.overwrite and (error := existing_output_error(args.json_path)):
        raise BenchmarkError(error + " or pass --overwrite")
    torch_runs = _torch_runs(args.torch_runs)
    arch = _architecture(args.preset, args.num_classes)
    for name in ("batch", "size", "steps", "infer_iters", "latency_iters", "matmul_size"):
        if int(getattr(args, name)) < 1:
            raise BenchmarkError(f"--{name.replace('_', '-')} must be >= 1")
    common = {k: getattr(args, k) for k in ("preset", "num_classes", "batch", "size", "steps",
                                            "warmup", "infer_iters", "latency_iters", "cpu_ok")}
    jax_env = _env(REPO, KERAS_BACKEND="jax", XLA_PYTHON_CLIENT_PREALLOCATE="false")
    timeout = int(args.worker_timeout)

    matmul = _run_worker("matmul", {"matmul_size": args.matmul_size}, python=sys.executable,
                         env=jax_env, timeout=timeout)
    if "error" in matmul:
        raise BenchmarkError(f"JAX matmul probe failed: {matmul['error']}")
    if matmul["platform"] != "gpu" and not args.cpu_ok:
        raise BenchmarkError(f"no GPU visible to JAX (platform {matmul['platform']!r}): run this "
                             "on a GPU machine, or pass --cpu-ok for a smoke run")
    rows = []
    if not args.no_keras:
        for precision in args.precisions:
            rows.append({"framework": "Keras 3 + JAX", "variant": KERAS_VARIANT,
                         "precision": precision,
                         **_run_worker("keras", dict(common, precision=precision),
                                       python=sys.executable, env=jax_env, timeout=timeout)})
    for variant, precision in torch_runs:
        spec = dict(common, variant=variant, precision=precision, architecture=arch)
        rows.append({"framework": "PyTorch", "variant": TORCH_VARIANTS[variant],
                     "precision": precision,
                     **_run_worker("torch", spec, python=args.torch_python, env=_env(),
                                   timeout=timeout)})
    flops = next((r["forward_flops_per_image"] for r in rows if "forward_flops_per_image" in r),
                 None)
    peak = matmul["bf16_matmul_tflops"]
    for row in rows:
        if "error" in row or flops is None:
            continue
        row["train_tflops"] = row["train_img_s"] * 3 * flops / 1e12
        row["train_util"] = row["train_tflops"] / peak
        row["infer_util"] = row["infer_img_s"] * flops / 1e12 / peak
    result = {
        "config": dict(common, torch_runs=args.torch_runs, precisions=list(args.precisions),
                       matmul_size=args.matmul_size),
        "device": {"platform": matmul["platform"], "device_kind": matmul["device_kind"],
                   "device_count": matmul["device_count"], "host": platform.node(),
                   "python": platform.python_version()},
        "matmul": matmul,
        "architecture": arch,
        "forward_flops_per_image": flops,
        "rows": rows,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    result["markdown"] = format_markdown(result)
    if args.json_path:
        write_json_new(args.json_path, result, overwrite=args.overwrite)
    if args.markdown:
        write_markdown_section(args.markdown, result["markdown"])
    return result


def _fmt(value, pattern: str) -> str:
    return "—" if value is None else format(value, pattern)


def format_markdown(result: dict) -> str:
    """The results as a markdown paragraph and table."""
    cfg, dev = result["config"], result["device"]
    flops = result.get("forward_flops_per_image")
    params = next((r.get("params") for r in result["rows"] if r.get("params")), None)
    versions = {}
    for row in result["rows"]:
        versions.update(row.get("versions", {}))
    lines = [
        f"GPU benchmark ({result.get('date', '')}): {dev['device_kind']} ({dev['platform']}), "
        f"`{cfg['preset']}`"
        + (f" ({params / 1e6:.1f}M params" if params else " (")
        + (f", {flops / 1e9:.3g} GFLOP/image forward)" if flops else ")")
        + f", batch {cfg['batch']}, {cfg['size']}x{cfg['size']}, synthetic data on the device, "
        f"{cfg['steps']} timed steps. bf16 matmul peak measured in this run: "
        f"{result['matmul']['bf16_matmul_tflops']:.4g} TFLOP/s. "
        + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + ".",
        "",
        f"| implementation | precision | train img/s | infer img/s (b{cfg['batch']}) "
        "| latency b1 (ms) | peak memory (GiB) | train util | first step (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        name = f"{row.get('framework', '?')}: {row.get('variant', '?')}"
        if "error" in row:
            lines.append(f"| {name} | {row.get('precision', '?')} | error: "
                         f"{row['error'][:120].replace('|', '/')} | | | | | |")
            continue
        mem = row.get("peak_mem_bytes")
        util = row.get("train_util")
        lines.append(
            f"| {name} | {row['precision']} | {row['train_img_s']:.1f} | {row['infer_img_s']:.1f} "
            f"| {row['latency_b1_ms']:.2f} | {_fmt(None if mem is None else mem / 2**30, '.1f')} "
            f"| {_fmt(None if util is None else 100 * util, '.0f')}{'%' if util is not None else ''} "
            f"| {row['first_step_s']:.1f} |"
        )
    lines += ["", "Train util = 3 x forward FLOPs x img/s / bf16 matmul peak; latency = batch 1, "
              "argmax on the device, label map copied to the host. Peak memory: JAX "
              "`peak_bytes_in_use` (no preallocation), PyTorch `max_memory_allocated`."]
    return "\n".join(lines) + "\n"


def write_markdown_section(path: str | os.PathLike, text: str, *, begin: str = BEGIN,
                           end: str = END) -> Path:
    """Puts ``text`` between the ``begin``/``end`` markers of ``path`` (default: the
    ``bench_gpu`` ones; appended, with markers, when the file or the markers do not exist
    yet); other sections of the file are kept; atomic."""
    path = Path(path)
    block = f"{begin}\n{text.rstrip()}\n{end}"
    old = path.read_text() if path.is_file() else ""
    if begin in old and end in old and old.index(begin) < old.index(end):
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = (old.rstrip() + "\n\n" if old.strip() else "") + block + "\n"
    replace_text(path, new)
    return path


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        if len(argv) != 3 or argv[1] not in WORKERS:
            print(f"bench_gpu.py: error: --worker needs KIND ({', '.join(WORKERS)}) and a JSON "
                  "spec", file=sys.stderr)
            return 2
        return _worker_main(argv[1], argv[2])
    args = build_parser().parse_args(argv)
    try:
        result = run_gpu_benchmark(args)
    except BenchmarkError as err:
        print(f"bench_gpu.py: error: {err}", file=sys.stderr)
        return 2
    print(result["markdown"])
    failed = [r for r in result["rows"] if "error" in r]
    for row in failed:
        print(f"bench_gpu.py: {row.get('framework', '?')} {row.get('variant', '')} "
              f"{row.get('precision', '')}: {row['error']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
