"""Train-step time and FLOP utilisation, fp32 vs bf16, against a ``tf.matmul`` peak measured
the same way.

For each row the script measures the machine's ``tf.matmul`` throughput in that precision
right before the step timing (square matrices in a ``tf.function``, median of ``--repeats``;
on a shared machine both then see the same load), then the median time of a Keras
training step (``train_on_batch``: forward, loss, backward, SGD update) of each preset at
``--size`` and ``--batch``. Training FLOPs = 3 x forward FLOPs (``count_flops``; backward is
about twice the forward) x batch. Utilisation = achieved GFLOP/s / matmul GFLOP/s of the same
precision. bf16 uses Keras' ``mixed_bfloat16`` policy (bf16 compute, fp32 weights).

    python tools/bench_train.py --presets deconvnet_vgg16 deconvnet_small deconvnet_mobile \
        --size 224 --batch 2 --precisions float32 bfloat16
"""

from __future__ import annotations

import argparse
import statistics
import time

__all__ = ["matmul_gflops", "build_train_model", "train_step_seconds", "train_rows", "main"]


def matmul_gflops(dtype: str, n: int = 2048, repeats: int = 5) -> float:
    """Median GFLOP/s of an ``n x n`` by ``n x n`` ``tf.matmul`` in ``dtype``."""
    import tensorflow as tf

    a = tf.random.normal((n, n), dtype=tf.float32)
    b = tf.random.normal((n, n), dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(b, dtype)
    fn = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y)[:1, :1], tf.float32)))
    fn(a, b).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(a, b).numpy()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def build_train_model(preset: str, jit: bool = False, num_classes: int = 21,
                      input_shape: tuple | None = None):
    """The benchmarked Keras model, compiled: SGD momentum 0.9 (weight decay 5e-4, lr 0.01),
    ``SegmentationCrossEntropy`` (void 255); ``jit``: XLA step with the switch pair.

    Built in the current global dtype policy (the caller sets ``mixed_bfloat16`` for bf16).
    """
    import keras

    import deconvnet_tf
    from deconvnet_tf.models import get_architecture
    from deconvnet_tf.training.losses import SegmentationCrossEntropy

    family = get_architecture(preset).family
    extra = {"unpooling": "switch"} if jit and family == "deconvnet" else {}
    if input_shape is not None:
        extra["input_shape"] = tuple(input_shape)
    model = deconvnet_tf.build_model(preset, num_classes=num_classes, **extra)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9, weight_decay=5e-4),
                  loss=SegmentationCrossEntropy(num_classes, 255), jit_compile=jit)
    return model


def train_step_seconds(preset: str, size: int, batch: int, precision: str, steps: int,
                       jit: bool = False) -> tuple[float, int]:
    """Median seconds of one training step and the forward FLOPs per image."""
    import keras
    import numpy as np

    from deconvnet_tf.models import count_flops

    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        model = build_train_model(preset, jit)
        flops = count_flops(model, (size, size))
        rng = np.random.default_rng(0)
        x = rng.integers(0, 255, size=(batch, size, size, 3)).astype("float32")
        y = rng.integers(0, 21, size=(batch, size, size)).astype("int32")
        model.train_on_batch(x, y)  # trace + first step
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - start)
        return statistics.median(times), flops
    finally:
        keras.config.set_dtype_policy("float32")


def train_rows(presets, size: int, batch: int, precisions=("float32", "bfloat16"),
               steps: int = 3, repeats: int = 5, matmul_size: int = 2048,
               jit: bool = False) -> list[dict]:
    """Train-step time and utilisation per preset and precision (in this process).

    For each row the ``tf.matmul`` peak of that precision is measured right before the step
    timing, so both see the same machine load.

    Args:
        presets: Preset names.
        size: Square input size.
        batch: Batch size.
        precisions: ``"float32"`` and/or ``"bfloat16"`` (Keras ``mixed_bfloat16``).
        steps: Timed steps per configuration (median reported).
        repeats: ``tf.matmul`` repetitions for the peak.
        matmul_size: ``n`` of the ``n x n`` peak matmul.
        jit: XLA train step (switch unpooling).

    Returns:
        One dict per preset and precision: ``preset``, ``precision``, ``size``, ``batch``,
        ``jit``, ``step_s``, ``images_per_s``, ``flops_per_image`` (forward),
        ``train_gflop_per_step`` (3 x forward x batch), ``gflops``, ``peak_gflops``,
        ``utilisation`` (fraction of the peak).
    """
    rows = []
    for preset in presets:
        for precision in precisions:
            peak = matmul_gflops(precision, matmul_size, repeats)
            seconds, flops = train_step_seconds(preset, size, batch, precision, steps, jit)
            step_flops = 3 * flops * batch
            achieved = step_flops / seconds / 1e9
            rows.append({"preset": preset, "precision": precision, "size": size, "batch": batch,
                         "jit": jit, "step_s": seconds, "images_per_s": batch / seconds,
                         "flops_per_image": flops, "train_gflop_per_step": step_flops / 1e9,
                         "gflops": achieved, "peak_gflops": peak,
                         "utilisation": achieved / peak})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+",
                        default=["deconvnet_vgg16", "deconvnet_vgg16_slim", "deconvnet_small",
                                 "deconvnet_mobile"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"],
                        choices=["float32", "bfloat16"])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    parser.add_argument("--repeats", type=int, default=5, help="matmul repetitions")
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--jit-compile", action="store_true", help="XLA train step (switch unpooling)")
    args = parser.parse_args(argv)

    import tensorflow as tf

    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"device: {device}; train step at {args.size}x{args.size}, batch {args.batch}, SGD "
          f"momentum (median of {args.steps}; jit_compile={args.jit_compile}); matmul peak: "
          f"tf.matmul {args.matmul_size}^2 in the same precision, measured before each row\n")
    print("| preset | precision | s/step | images/s | train GFLOP/step | GFLOP/s | matmul GFLOP/s "
          "| of matmul peak |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for preset in args.presets:
        for r in train_rows([preset], args.size, args.batch, args.precisions, args.steps,
                            args.repeats, args.matmul_size, args.jit_compile):
            print(f"| `{preset}` | {r['precision']} | {r['step_s']:.3f} | "
                  f"{r['images_per_s']:.2f} | "
                  f"{r['train_gflop_per_step']:.1f} | {r['gflops']:.0f} | {r['peak_gflops']:.0f} | "
                  f"{100 * r['utilisation']:.0f}% |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
