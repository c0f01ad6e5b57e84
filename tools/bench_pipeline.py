"""Input-pipeline throughput vs the training step's consumption (the pipeline must never be
the bottleneck; goal: pipeline >= 3x the step's images/s).

Measures, in one process and one after the other: (1) images/s the ``tf.data`` pipeline
delivers alone (``crop``: decode + random scale/crop/flip/jitter; ``stage1``/``stage2``:
OpenCV warps of object windows + random crop/mirror), (2) images/s ``model.train_on_batch``
consumes on a fixed batch of the same shape. Data: ``--data`` (folder layout or VOC) or a
generated dataset of ``--num`` images of ``--image-size``.

    python tools/bench_pipeline.py --preset deconvnet_small --stage crop --crop 224 224 --batch 8
    python tools/bench_pipeline.py --data /data/camvid_360x480 --preset deconvnet_vgg16_slim
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

__all__ = ["measure_pipeline", "main"]


def measure_pipeline(data: str | None = None, num: int = 64, image_size=(360, 480),
                     preset: str | None = "deconvnet_small", stage: str = "crop",
                     crop=(224, 224), batch: int = 8, batches: int = 30, steps: int = 3,
                     cache: bool = True) -> dict:
    """Images/s of the ``tf.data`` pipeline alone and, optionally, of a train step.

    Args:
        data: Dataset root (folder layout or VOC); ``None``: ``num`` generated images of
            ``image_size`` in a temporary folder.
        num: Generated images.
        image_size: ``(height, width)`` of generated images.
        preset: Preset whose ``train_on_batch`` consumption is timed; ``None`` or
            ``steps=0``: pipeline only.
        stage: ``"crop"``, ``"stage1"`` or ``"stage2"``.
        crop: ``(height, width)`` of the training crops.
        batch: Batch size.
        batches: Pipeline batches timed (after one pass over the data).
        steps: Train steps timed (median).
        cache: Cache decoded examples in memory.

    Returns:
        ``{"data", "what", "stage", "crop", "batch", "batches", "pipeline_img_s"}`` plus
        ``"preset"``, ``"steps"``, ``"step_img_s"`` and ``"ratio"`` when a step was timed.
    """
    import keras
    import numpy as np

    import deconvnet_tf
    from deconvnet_tf.data.crops import make_window_pipeline, stage1_windows, stage2_windows
    from deconvnet_tf.data.pipeline import make_pipeline, pipeline_throughput
    from deconvnet_tf.data.sources import open_source
    from deconvnet_tf.data.synthetic import write_synthetic_dataset
    from deconvnet_tf.training.losses import SegmentationCrossEntropy

    root = data
    if root is None:
        root = write_synthetic_dataset(tempfile.mkdtemp(prefix="bench_pipeline_"), num, 4,
                                       *image_size)
    source = open_source(root)
    ignore = source.info.ignore_label if source.info.ignore_label is not None else 255
    crop = tuple(crop)
    if stage == "crop":
        ds = make_pipeline(source.dataset("train"), mode="crop", batch_size=batch,
                           crop_size=crop, ignore_label=ignore, cache=cache)
        what = f"{source.num_examples('train')} images"
    else:
        records = source.records("train")
        make = stage1_windows if stage == "stage1" else stage2_windows
        windows = make(records, ignore_label=ignore)
        ds = make_window_pipeline(records, windows, stage=stage, batch_size=batch,
                                  crop_size=crop, window_size=max(250, *crop), ignore_label=ignore,
                                  cache="auto" if cache else False)
        what = f"{len(windows)} windows of {len(records)} images"
    # Warm up: one pass over the data fills the cache (if any), then time.
    it = iter(ds)
    for _ in range(max(1, source.num_examples("train") // batch)):
        next(it)
    result = {"data": str(root), "what": what, "stage": stage, "crop": list(crop),
              "batch": batch, "batches": batches,
              "pipeline_img_s": pipeline_throughput(ds, batches)}
    if preset is None or steps < 1:
        return result

    model = deconvnet_tf.build_model(preset, num_classes=source.info.num_classes)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=SegmentationCrossEntropy(source.info.num_classes, ignore))
    x, y = next(iter(ds))
    x, y = np.asarray(x, "float32"), np.asarray(y)
    model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    step = batch / statistics.median(times)
    result.update(preset=preset, steps=steps, step_img_s=step,
                  ratio=result["pipeline_img_s"] / step)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="dataset root (default: generated shapes)")
    parser.add_argument("--num", type=int, default=64, help="generated images")
    parser.add_argument("--image-size", type=int, nargs=2, default=[360, 480])
    parser.add_argument("--preset", default="deconvnet_small")
    parser.add_argument("--stage", default="crop", choices=["crop", "stage1", "stage2"])
    parser.add_argument("--crop", type=int, nargs=2, default=[224, 224])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=30, help="pipeline batches timed")
    parser.add_argument("--steps", type=int, default=3, help="train steps timed")
    parser.add_argument("--no-cache", action="store_true", help="decode every epoch")
    args = parser.parse_args(argv)

    r = measure_pipeline(args.data, args.num, args.image_size, args.preset, args.stage,
                         args.crop, args.batch, args.batches, max(1, args.steps),
                         not args.no_cache)
    crop = r["crop"]
    print(f"data: {r['data']} ({r['what']}); stage {args.stage}, crop {crop[0]}x{crop[1]}, "
          f"batch {args.batch}")
    print("| measure | images/s |")
    print("|---|---:|")
    print(f"| input pipeline alone ({args.batches} batches) | {r['pipeline_img_s']:.1f} |")
    print(f"| `{args.preset}` train step (median of {r['steps']}) | {r['step_img_s']:.2f} |")
    print(f"| pipeline / step | {r['ratio']:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
