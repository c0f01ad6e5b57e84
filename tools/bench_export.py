"""Export benchmark: file sizes, export time and per-image latency of Keras, SavedModel and
LiteRT (fp32 / fp16 / int8, XNNPACK, 1 and 2 threads), with label agreement vs Keras.

Prints a markdown table (one row per preset and format). Latency: median of ``--repeats``
runs of one image in the same process, after a warm-up run. Agreement: fraction of pixels
whose label equals the Keras model's, on generated scenes (``deconvnet_tf.data.synthetic``)
resized to the input size; on a random-init preset the logits are nearly flat, so quantised
agreement there is a lower bound: pass ``--model`` for a trained model.

    python tools/bench_export.py --presets deconvnet_tiny deconvnet_mobile deconvnet_small
    python tools/bench_export.py --presets deconvnet_vgg16 --size 224 --json vgg16.json
    python tools/bench_export.py --model runs/shapes/model.keras --size 96x128
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _outputs import existing_output_error, write_json_new

__all__ = ["bench", "table", "main"]


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    return (int(parts[0]), int(parts[-1]))


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up (allocation, XNNPACK packing, tracing)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def bench(model, size, quantize, repeats, threads, workdir: Path, samples: int,
          saved_model: bool = True, keras_row: bool = True) -> list[dict]:
    """Rows for one model: Keras, SavedModel, and LiteRT per quantisation and thread count.

    Every row also holds ``flops`` (forward FLOPs per image at ``size``, ``count_flops``).
    """
    import cv2

    from deconvnet_tf.models import count_flops

    from deconvnet_tf.data.synthetic import make_scene
    from deconvnet_tf.export import export_tflite_variants, read_metadata
    from deconvnet_tf.lite import LiteSegmenter

    height, width = size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8)
    scenes = [cv2.resize(make_scene(70_000 + i, 96, 128)[0], (width, height))
              for i in range(samples)]
    reference = [np.argmax(np.asarray(model(s[None].astype("float32"), training=False))[0], -1)
                 for s in scenes]
    name = model.name
    flops = int(count_flops(model, tuple(size)))
    rows = []

    if keras_row:
        keras_s = _median_seconds(
            lambda: np.asarray(model(image.astype("float32"), training=False)), repeats)
        rows.append(dict(preset=name, format="Keras (TF eager)", size_mib=None, export_s=None,
                         t1=keras_s, t2=None, agreement=1.0, flops=flops))

    if saved_model:
        rows.append(dict(_bench_saved_model(model, size, image, scenes, reference, repeats,
                                            workdir), flops=flops))

    outputs = {q: workdir / f"{name}_{q}.tflite" for q in quantize}
    written = (export_tflite_variants(model, outputs, input_size=size, calibration_count=8)
               if outputs else {})
    for q, path in written.items():
        meta = read_metadata(path)
        latency = {}
        for n in threads:
            seg = LiteSegmenter(path, threads=n)
            latency[n] = _median_seconds(lambda: seg.run(image), repeats)
        seg = LiteSegmenter(path, threads=max(threads))
        agree = np.mean([np.mean(seg.run(s[None])["labels"][0] == r)
                         for s, r in zip(scenes, reference)])
        rows.append(dict(preset=name, format=f"LiteRT {'fp32' if q == 'none' else q}",
                         size_mib=path.stat().st_size / 2**20,
                         export_s=float(meta.extra.get("convert_seconds", 0.0)),
                         t1=latency.get(1), t2=latency.get(2), agreement=float(agree),
                         builtins_only=meta.builtins_only, flops=flops))
        del seg
    return rows


def _bench_saved_model(model, size, image, scenes, reference, repeats, workdir) -> dict:
    import tensorflow as tf

    from deconvnet_tf.export import export_saved_model

    name = model.name
    start = time.perf_counter()
    sm_dir = export_saved_model(model, workdir / f"{name}_saved_model", input_size=size)
    sm_export = time.perf_counter() - start
    serve = tf.saved_model.load(str(sm_dir)).signatures["serving_default"]
    sm_s = _median_seconds(lambda: serve(images=tf.constant(image))["probabilities"].numpy(),
                           repeats)
    agree = np.mean([np.mean(serve(images=tf.constant(s[None]))["labels"].numpy()[0] == r)
                     for s, r in zip(scenes, reference)])
    return dict(preset=name, format="SavedModel", size_mib=_dir_bytes(sm_dir) / 2**20,
                export_s=sm_export, t1=sm_s, t2=None, agreement=float(agree))


def table(rows: list[dict], size) -> str:
    def ms(value):
        return "-" if value is None else f"{1000 * value:.1f}"

    lines = [f"| preset | format | size MiB | export s | ms/image 1 thread | ms/image 2 threads "
             f"| label agreement vs Keras |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        size_text = "-" if r["size_mib"] is None else f"{r['size_mib']:.2f}"
        export = "-" if r["export_s"] is None else f"{r['export_s']:.1f}"
        lines.append(f"| {r['preset']} ({size[0]}x{size[1]}) | {r['format']} | {size_text} | "
                     f"{export} | {ms(r['t1'])} | {ms(r['t2'])} | {100 * r['agreement']:.2f}% |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+",
                        default=["deconvnet_tiny", "deconvnet_mobile", "deconvnet_small"])
    parser.add_argument("--model", default=None, help="a trained .keras model instead of presets")
    parser.add_argument("--size", default="224", help="input size: N or HxW (default 224)")
    parser.add_argument("--num-classes", type=int, default=21)
    parser.add_argument("--quantize", nargs="*", default=["none", "fp16", "int8"],
                        help="LiteRT variants (none = fp32); no value: no LiteRT rows")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=4, help="scenes for the agreement")
    parser.add_argument("--no-saved-model", action="store_true",
                        help="skip the SavedModel rows (saves memory for deconvnet_vgg16)")
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras latency rows")
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    parser.add_argument("--workdir", default=None, help="keep the exports here (default: temp)")
    args = parser.parse_args(argv)
    if error := existing_output_error(args.json):
        parser.error(error)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import deconvnet_tf

    size = _size(args.size)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        models = ([deconvnet_tf.load_model(args.model)] if args.model else
                  [deconvnet_tf.build_model(p, num_classes=args.num_classes) for p in args.presets])
        for model in models:
            started = time.perf_counter()
            rows += bench(model, size, args.quantize, args.repeats, args.threads, workdir,
                          args.samples, saved_model=not args.no_saved_model,
                          keras_row=not args.no_keras)
            print(f"# {model.name}: {time.perf_counter() - started:.0f} s, peak RSS "
                  f"{_peak_gib():.1f} GiB", file=sys.stderr, flush=True)
    print(table(rows, size))
    if args.json:
        write_json_new(args.json, {"size": size, "rows": rows, "peak_rss_gib": _peak_gib()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
