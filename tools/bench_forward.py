"""Forward-pass latency of a preset per pooling/unpooling implementation and backend.

Prints a markdown table: median seconds per forward (batch 1 and 4 by default) for TF eager
(argmax and switch pair), TF ``jit_compile`` (switch pair; MaxPoolWithArgmax has no XLA kernel)
and JAX (switch pair, jitted), with GFLOP/s achieved, per Keras dtype policy (``--policies``:
``float32`` by default; ``bfloat16`` = bf16 weights and compute, no per-layer casts;
``mixed_bfloat16`` = float32 weights cast per call). Each backend runs in its own subprocess
(KERAS_BACKEND is fixed per process).

    python tools/bench_forward.py --preset deconvnet_vgg16 --size 224 --batches 1 4
    python tools/bench_forward.py --preset deconvnet_vgg16_compact --batches 1 --backends tensorflow --policies float32 bfloat16
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

__all__ = ["forward_rows", "main"]

WORKER = r"""
import json, os, statistics, sys, time
import numpy as np, keras
import deconvnet_tf
from deconvnet_tf.models import count_flops
args = json.loads(sys.argv[1])
backend = keras.backend.backend()
rows = []
variants = [("argmax", False), ("switch", False), ("switch", True)] if backend == "tensorflow" else [("switch", True)]
for policy, (unpooling, jit) in [(p, v) for p in args["policies"] for v in variants]:
    keras.config.set_dtype_policy(policy)
    model = deconvnet_tf.build_model(args["preset"], input_shape=(args["size"], args["size"], 3), unpooling=unpooling)
    flops = count_flops(model)
    if backend == "tensorflow":
        import tensorflow as tf
        fn = tf.function(lambda x: model(x, training=False), jit_compile=True) if jit else (lambda x: model(x, training=False))
        run = lambda x: fn(x).numpy()
    else:
        import jax
        fn = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
        tv = [v.value for v in model.trainable_variables]; ntv = [v.value for v in model.non_trainable_variables]
        run = lambda x: np.asarray(fn(tv, ntv, x).block_until_ready())
    for batch in args["batches"]:
        x = np.random.default_rng(0).integers(0, 256, (batch, args["size"], args["size"], 3)).astype("float32")
        t0 = time.perf_counter(); run(x); first = time.perf_counter() - t0
        times = []
        for _ in range(args["repeats"]):
            t0 = time.perf_counter(); run(x); times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        label = {("argmax", False): "TF eager, argmax pair", ("switch", False): "TF eager, switch pair",
                 ("switch", True): "TF jit_compile, switch pair" if backend == "tensorflow" else "JAX jit, switch pair"}[(unpooling, jit)]
        if policy != "float32":
            label += f", {policy}"
        rows.append({"impl": label, "policy": policy, "backend": backend,
                     "compute_dtype": model.get_layer("block1_conv1").compute_dtype,
                     "variable_dtype": model.get_layer("block1_conv1").kernel.dtype, "unpooling": unpooling, "jit": jit,
                     "batch": batch, "first_s": first, "median_s": med, "per_image_s": med / batch,
                     "flops_per_image": flops, "gflops": flops * batch / med / 1e9})
    del model
print("RESULT " + json.dumps(rows))
"""


POLICIES = ("float32", "bfloat16", "mixed_bfloat16")


def forward_rows(preset: str, size: int, batches=(1, 4), repeats: int = 5,
                 backends=("tensorflow", "jax"), policies=("float32",)) -> list[dict]:
    """Forward-pass timings of ``preset``, one subprocess per backend.

    Args:
        preset: Preset name.
        size: Square input size.
        batches: Batch sizes to time.
        repeats: Timed calls per configuration (median reported).
        backends: Keras backends (``"tensorflow"``, ``"jax"``).
        policies: Keras dtype policies (of :data:`POLICIES`).

    Returns:
        One dict per policy, implementation and batch: ``impl``, ``policy``, ``backend``,
        ``compute_dtype`` and ``variable_dtype`` (of the first convolution), ``unpooling``, ``jit``,
        ``batch``, ``first_s``, ``median_s``, ``per_image_s``, ``flops_per_image``, ``gflops``.

    Raises:
        ValueError: An unknown policy.
        RuntimeError: If a worker fails (its stderr tail is in the message).
    """
    unknown = sorted(set(policies) - set(POLICIES))
    if unknown:
        raise ValueError(f"policies: unknown {unknown}; expected some of {list(POLICIES)}")
    payload = json.dumps({"preset": preset, "size": size, "batches": list(batches),
                          "repeats": repeats, "policies": list(policies)})
    rows = []
    for backend in backends:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
        proc = subprocess.run([sys.executable, "-c", WORKER, payload], env=env,
                              capture_output=True, text=True)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"bench_forward worker ({backend}, {preset}) failed with exit code "
                               f"{proc.returncode}:\n{proc.stderr[-3000:]}")
        rows += json.loads(lines[-1][len("RESULT "):])
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="deconvnet_vgg16")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--policies", nargs="+", default=["float32"], choices=POLICIES,
                        help="Keras dtype policies to time (default: float32)")
    args = parser.parse_args(argv)
    try:
        rows = forward_rows(args.preset, args.size, args.batches, args.repeats, args.backends,
                            args.policies)
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"{args.preset} {args.size}x{args.size}, {os.cpu_count()} CPU cores, median of {args.repeats}")
    print("| implementation | batch | first call s | median s | s/image | GFLOP/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['impl']} | {r['batch']} | {r['first_s']:.2f} | {r['median_s']:.3f} | "
              f"{r['per_image_s']:.3f} | {r['gflops']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
