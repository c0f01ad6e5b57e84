"""Timing of the Zeiler-Fergus visualiser on the paper network.

Builds ``deconvnet_vgg16`` (random initialisation: timings do not depend on the weights),
then measures

1. projecting one unit (the strongest of one channel) of ``block5_conv3`` back to a 224x224
   input (forward pass with switches + deconvnet backward pass), per mode; median of repeats
   after one warm-up call;
2. a top-9 scan of one channel over 100 generated 224x224 images (batched forward pass to the
   layer over all images, then 9 projections), end to end, as ``deconvnet-visualize`` runs it.

    python tools/bench_visualize.py                      # defaults: the numbers in the README
    python tools/bench_visualize.py --images 20 --repeats 1   # quicker
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

__all__ = ["visualize_rows", "main"]


def visualize_rows(preset: str = "deconvnet_vgg16", layer: str = "block5_conv3",
                   channel: int = 0, size: int = 224, images: int = 100, top_k_count: int = 9,
                   batch_size: int = 8, repeats: int = 3,
                   modes=("deconvnet", "gradient", "guided")) -> dict:
    """Times the visualiser on a randomly initialised ``preset`` (in this process).

    Returns:
        ``{"preset", "layer", "size", "params", "build_s", "project": [{"mode", "median_s",
        "first_s", "nonzero"}], "forward_s_per_image", "map_shape", "scan_s", "images",
        "top_k", "strongest", "source", "receptive_field"}``.
    """
    import numpy as np

    import deconvnet_tf
    from deconvnet_tf.data.synthetic import make_scene
    from deconvnet_tf.visualize import Projector, top_k

    t0 = time.perf_counter()
    model = deconvnet_tf.build_model(preset, num_classes=21, input_shape=(size, size, 3))
    build_s = time.perf_counter() - t0
    batch = np.stack([make_scene(i, size, size)[0] for i in range(images)])
    result = {"preset": preset, "layer": layer, "size": size, "params": model.count_params(),
              "build_s": build_s, "project": [], "images": images, "top_k": top_k_count,
              "batch_size": batch_size, "repeats": repeats}
    projector = Projector(model, layer)
    image = batch[:1]
    for mode in modes:
        t = time.perf_counter()
        projector.project(image, channel, mode=mode)
        first = time.perf_counter() - t
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            proj = projector.project(image, channel, mode=mode)
            times.append(time.perf_counter() - t)
        result["project"].append({"mode": mode, "median_s": statistics.median(times),
                                  "first_s": first, "nonzero": bool(np.abs(proj).max() > 0)})
    t = time.perf_counter()
    acts = projector.activations(batch[:batch_size])
    result["forward_s_per_image"] = (time.perf_counter() - t) / min(batch_size, images)
    result["map_shape"] = list(acts.shape[1:])
    t = time.perf_counter()
    rows = top_k(model, layer, batch, channel=channel, k=top_k_count, batch_size=batch_size)
    result["scan_s"] = time.perf_counter() - t
    items = rows[0].items
    result.update(found=len(items), strongest=float(items[0].value), source=str(items[0].source),
                  receptive_field=[items[0].box.height, items[0].box.width])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="deconvnet_vgg16")
    parser.add_argument("--layer", default="block5_conv3")
    parser.add_argument("--channel", type=int, default=0)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--top-k", type=int, default=9)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["deconvnet", "gradient", "guided"])
    args = parser.parse_args(argv)

    import keras

    r = visualize_rows(args.preset, args.layer, args.channel, args.size, args.images,
                       args.top_k, args.batch_size, args.repeats, args.modes)
    print(f"backend {keras.backend.backend()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; {args.preset} (random init, {r['params'] / 1e6:.1f}M "
          f"params) built in {r['build_s']:.1f} s")
    for p in r["project"]:
        print(f"project one unit of {args.layer} at {args.size}x{args.size}, mode {p['mode']}: "
              f"{p['median_s']:.2f} s (median of {args.repeats}; first call "
              f"{p['first_s']:.2f} s; projection non-zero: {p['nonzero']})")
    shape = r["map_shape"]
    print(f"forward to {args.layer}: {r['forward_s_per_image']:.2f} s/image at batch "
          f"{args.batch_size} (map {shape[0]}x{shape[1]}x{shape[2]})")
    scan = r["scan_s"]
    print(f"top-{args.top_k} scan of channel {args.channel} over {args.images} images at "
          f"{args.size}x{args.size} (forward all + project {r['found']}): {scan:.1f} s "
          f"({scan / args.images:.2f} s/image); strongest {r['strongest']:.3g} in "
          f"{r['source']}, receptive field {r['receptive_field'][0]}x{r['receptive_field'][1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
