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
    import numpy as np

    import deconvnet_tf
    from deconvnet_tf.data.synthetic import make_scene
    from deconvnet_tf.visualize import Projector, top_k

    t0 = time.perf_counter()
    model = deconvnet_tf.build_model(args.preset, num_classes=21,
                                     input_shape=(args.size, args.size, 3))
    build_s = time.perf_counter() - t0
    images = np.stack([make_scene(i, args.size, args.size)[0] for i in range(args.images)])
    print(f"backend {keras.backend.backend()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; {args.preset} (random init, {model.count_params() / 1e6:.1f}M "
          f"params) built in {build_s:.1f} s")

    projector = Projector(model, args.layer)
    image = images[:1]
    for mode in args.modes:
        t = time.perf_counter()
        projector.project(image, args.channel, mode=mode)
        first = time.perf_counter() - t
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            proj = projector.project(image, args.channel, mode=mode)
            times.append(time.perf_counter() - t)
        print(f"project one unit of {args.layer} at {args.size}x{args.size}, mode {mode}: "
              f"{statistics.median(times):.2f} s (median of {args.repeats}; first call "
              f"{first:.2f} s; projection non-zero: {bool(np.abs(proj).max() > 0)})")

    t = time.perf_counter()
    acts = projector.activations(images[: args.batch_size])
    fwd = (time.perf_counter() - t) / args.batch_size
    print(f"forward to {args.layer}: {fwd:.2f} s/image at batch {args.batch_size} "
          f"(map {acts.shape[1]}x{acts.shape[2]}x{acts.shape[3]})")

    t = time.perf_counter()
    rows = top_k(model, args.layer, images, channel=args.channel, k=args.top_k,
                 batch_size=args.batch_size)
    scan = time.perf_counter() - t
    items = rows[0].items
    print(f"top-{args.top_k} scan of channel {args.channel} over {args.images} images at "
          f"{args.size}x{args.size} (forward all + project {len(items)}): {scan:.1f} s "
          f"({scan / args.images:.2f} s/image); strongest {items[0].value:.3g} in "
          f"{items[0].source}, receptive field {items[0].box.height}x{items[0].box.width}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
