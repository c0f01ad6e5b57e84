#!/usr/bin/env python
"""Instance-wise inference per stage, against its FLOP floor.

Runs ``deconvnet-predict --mode instance``'s path (:func:`deconvnet_tf.inference.pipeline.infer`)
on a few images and splits each image's wall time into the stages of
:mod:`deconvnet_tf.inference.timing` (edges, proposals, crops, network, paste-back, CRF). The
floor is the network's FLOPs on the crops at the rate an XLA-compiled forward of the same network
reaches on this machine, measured in the same run (batch of ``--batch`` crops); the goal of issue
#21 is a time per image <= 1.3x that floor.

    python tools/bench_instance.py --model camvid_compact --images photos/ --crf
    python tools/bench_instance.py --preset deconvnet_tiny --size 32 --top-k 8 --images 1  # smoke

``--images`` is a file, a folder or a count of generated 180x240 scenes (default 2). Prints a
markdown table; ``--json`` also writes the numbers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from _outputs import existing_output_error, write_json_new

__all__ = ["GOAL_RATIO", "instance_rows", "main", "xla_rate"]

GOAL_RATIO = 1.3  # issue #21: time per image <= 1.3x the FLOP floor of its crops


def xla_rate(model, size: tuple[int, int], batch: int, repeats: int) -> dict:
    """Median GFLOP/s of an XLA-compiled forward of ``model`` on ``batch`` crops of ``size``
    (``(height, width)``)."""
    import numpy as np
    import tensorflow as tf

    from deconvnet_tf.models import count_flops, with_unpooling

    network = getattr(model, "network", model)  # a Segmenter's network
    if getattr(network, "unpooling", "switch") != "switch":
        network = with_unpooling(network, "switch")  # MaxPoolWithArgmax has no XLA kernel
    flops = count_flops(network, tuple(size))
    fn = tf.function(lambda x: network(x, training=False), jit_compile=True)
    x = np.random.default_rng(0).integers(0, 256, (batch, *size, 3)).astype("float32")
    fn(x).numpy()  # compile
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn(x).numpy()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"flops_per_crop": flops, "batch": batch, "median_s": median,
            "gflops": flops * batch / median / 1e9}


def _images(spec: str) -> list:
    import numpy as np

    from deconvnet_tf.data.synthetic import make_scene
    from deconvnet_tf.io import list_images, read_image

    if spec.isdigit():
        return [make_scene(1000 + i, 180, 240)[0] for i in range(int(spec))]
    try:
        paths = list_images(spec)
    except (OSError, ValueError) as err:
        raise SystemExit(f"bench_instance: --images {spec!r}: {err}") from None
    if not paths:
        raise SystemExit(f"bench_instance: --images {spec!r}: no images there")
    return [np.asarray(read_image(p)) for p in paths]


def instance_rows(model_or_preset: str, images, *, size: int = 224, batch: int = 8,
                  top_k: int = 50, edge: str = "hed", crf: bool = False, repeats: int = 3,
                  num_classes: int = 12, jit_compile: bool | None = None) -> dict:
    """Per-image stage times of instance-wise inference and the floor.

    Args:
        model_or_preset: A model file / shipped name (``camvid_compact``), or a preset name
            (built with random weights: the stage times do not depend on the weights).
        images: RGB uint8 images.
        size: Crop size (``--input-size``); a model with a fixed input size uses its own.
        batch: Crops per network call; also the batch of the XLA rate.
        top_k, edge: Proposals per image and the edge map (``--top-k``, ``--edge``).
        crf: Run the dense CRF after the instance-wise pass.
        repeats: Timed repetitions of the XLA forward.
        num_classes: Classes of a preset built here.
        jit_compile: The crops' forward pass XLA-compiled (``None``: the default of
            ``predict_instances``, on for a network XLA can compile).

    Returns:
        ``{"images": [{"crops", "total_s", "stages": {stage: s}}], "rate": xla_rate(...),
        "floor_s", "median_total_s", "ratio", "goal_met", "stages_median", "cold_s"}``
        (``cold_s``: the first image of the process, compiles and HED loading included).
    """
    import deconvnet_tf
    from deconvnet_tf.inference.pipeline import InferenceOptions, infer
    from deconvnet_tf.inference.predict import as_predictor
    from deconvnet_tf.models import PRESETS

    if model_or_preset in PRESETS:
        model = deconvnet_tf.build_model(model_or_preset, num_classes=num_classes)
    else:
        from deconvnet_tf.evaluation.evaluate import load_model_file

        model, _ = load_model_file(model_or_preset)  # a file, a run folder or a shipped name
    predictor = as_predictor(model).with_jit_compile(jit_compile)
    crop = (size, size)
    if predictor.input_size is not None:  # a fixed-size model warps its crops to its size
        crop = tuple(int(v) for v in predictor.input_size)
    import tempfile

    from deconvnet_tf.inference.proposals import propose_boxes

    with tempfile.TemporaryDirectory(prefix="bench_instance_") as cache:
        # The proposal cache lets each image's crop count be read back without recomputing.
        proposals = {"top_k": top_k, "edge": edge, "cache_dir": cache}
        options = InferenceOptions(mode="instance", input_size=size, batch_size=batch, crf=crf,
                                   proposals=proposals)
        start = time.perf_counter()
        infer(predictor, images[0], options)  # warm-up: compiles the network, loads HED
        cold = time.perf_counter() - start
        for path in Path(cache).iterdir():
            path.unlink()  # the first image is timed without its cached proposals
        per_image = []
        for image in images:
            timings: dict = {}
            start = time.perf_counter()
            infer(predictor, image, options, timings=timings)
            total = time.perf_counter() - start
            crops = len(propose_boxes(image, **proposals))
            per_image.append({"shape": list(image.shape[:2]), "crops": crops, "total_s": total,
                              "stages": timings})
    rate = xla_rate(model, crop, batch, repeats)
    crops = statistics.median(r["crops"] for r in per_image)
    floor = crops * rate["flops_per_crop"] / (rate["gflops"] * 1e9)
    total = statistics.median(r["total_s"] for r in per_image)
    names = sorted({k for r in per_image for k in r["stages"]})
    stages = {k: statistics.median(r["stages"].get(k, 0.0) for r in per_image) for k in names}
    return {"images": per_image, "rate": rate, "floor_s": floor, "median_total_s": total,
            "ratio": total / floor if floor else float("inf"),
            "goal_met": total <= GOAL_RATIO * floor, "stages_median": stages, "cold_s": cold,
            "settings": {"crop": list(crop), "batch": batch, "top_k": top_k, "edge": edge,
                         "crf": crf, "jit_compile": jit_compile}}


def _jit_text(value) -> str:
    return {True: "yes (--jit-compile)", False: "no (--no-jit-compile)"}.get(
        value, "default (yes when the network can be compiled)")


def format_table(result: dict) -> str:
    from deconvnet_tf.inference.timing import STAGES

    total = result["median_total_s"]
    lines = ["| stage | s/image (median) | share |", "|---|---:|---:|"]
    for name in STAGES:
        if name in result["stages_median"]:
            value = result["stages_median"][name]
            lines.append(f"| {name} | {value:.3f} | {value / total:.0%} |")
    rest = total - sum(result["stages_median"].values())
    lines.append(f"| other (Python, softmax, copies) | {rest:.3f} | {rest / total:.0%} |")
    lines.append(f"| **total** | **{total:.3f}** | 100% |")
    rate = result["rate"]
    crops = statistics.median(r["crops"] for r in result["images"])
    lines += [
        "",
        f"FLOP floor: {crops:g} crops x {rate['flops_per_crop'] / 1e9:.2f} GFLOP at "
        f"{rate['gflops']:.0f} GFLOP/s (XLA forward, batch {rate['batch']}) = "
        f"{result['floor_s']:.3f} s; total / floor = {result['ratio']:.2f}x "
        f"(goal <= {GOAL_RATIO}x: {'met' if result['goal_met'] else 'not met'})",
        f"First image of the process (compiles, HED loading): {result['cold_s']:.3f} s; "
        f"crops XLA-compiled: {_jit_text(result['settings'].get('jit_compile'))}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_instance", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="model file or shipped name (default: --preset, random weights)")
    parser.add_argument("--preset", default="deconvnet_vgg16_compact",
                        help="preset built when --model is not given")
    parser.add_argument("--images", default="2",
                        help="image file, folder, or a count of generated 180x240 scenes")
    parser.add_argument("--size", type=int, default=224, help="crop size (224)")
    parser.add_argument("--batch", type=int, default=8, help="crops per network call (8)")
    parser.add_argument("--top-k", type=int, default=50, help="proposals per image (50)")
    parser.add_argument("--edge", choices=("hed", "gradient"), default="hed")
    parser.add_argument("--crf", action="store_true", help="also run the dense CRF")
    parser.add_argument("--repeats", type=int, default=3, help="timed XLA forwards (3)")
    parser.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=None,
                        help="crops XLA-compiled (default: predict_instances' default, on)")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    for name in ("size", "batch", "top_k", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if error := existing_output_error(args.json):  # checked before the run, never replaced
        parser.error(error)
    images = _images(args.images)
    try:
        result = instance_rows(args.model or args.preset, images, size=args.size,
                               batch=args.batch, top_k=args.top_k, edge=args.edge, crf=args.crf,
                               repeats=args.repeats, jit_compile=args.jit_compile)
    except (OSError, ValueError) as err:  # a missing or unreadable --model, bad sizes
        raise SystemExit(f"bench_instance: {err}") from None
    print(format_table(result))
    if args.json:
        write_json_new(args.json, result, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
