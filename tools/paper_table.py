#!/usr/bin/env python
"""The paper's Table 1 on any dataset split: FCN-8s, DeconvNet (whole image), DeconvNet
(instance-wise), EDeconvNet (the paper's ensemble, and one with the whole-image DeconvNet),
each with and without the dense CRF; per-class IoU and mean IoU.

    python tools/paper_table.py --deconvnet runs/dn/model.keras --fcn runs/fcn/model.keras \
        --data /path/to/camvid_360x480 --split test --output table.json

A thin CLI over ``deconvnet_tf.evaluation.compare.compare_methods``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _class_indices(data: str, names: list[str]) -> tuple[int, ...]:
    """The indices of the class ``names`` of the dataset at ``data``."""
    from deconvnet_tf.data.sources import open_source

    known = list(open_source(data).info.class_names)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"--largest-component {' '.join(unknown)}: not a class of {data!r} "
                         f"(its classes: {', '.join(known)})")
    return tuple(known.index(name) for name in names)


def main(argv: list[str] | None = None) -> int:
    from deconvnet_tf.evaluation.compare import METHODS  # framework-free on import

    parser = argparse.ArgumentParser(prog="paper_table", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deconvnet", required=True, help="DeconvNet .keras file / SavedModel")
    parser.add_argument("--fcn", help="FCN-8s .keras file / SavedModel (for FCN and EDeconvNet)")
    parser.add_argument("--data", required=True, help="dataset root (folder layout or PASCAL VOC)")
    parser.add_argument("--split", default="val",
                        help="split, with an optional selector: train[0001TP] (one CamVid "
                             "sequence), train[-0001TP], train[2/5] (a fold)")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), metavar="METHOD",
                        help="subset of: " + " ".join(METHODS) + " (default: all the models "
                        "allow)")
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--top-k", type=int, default=50)
    parser.add_argument("--edge", choices=["hed", "gradient"], default="hed")
    parser.add_argument("--proposals", choices=["edgeboxes", "selective_search"],
                        default="edgeboxes")
    parser.add_argument("--min-box", type=int, default=16)
    parser.add_argument("--enlarge", type=float, default=1.2)
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--aggregate", choices=["max", "mean"], default="max")
    parser.add_argument("--ensemble-method", choices=["mean", "product"], default="mean")
    parser.add_argument("--crf-preset", choices=["deconvnet", "deeplab"], default="deconvnet")
    parser.add_argument("--largest-component", nargs="+", metavar="CLASS", default=[],
                        help="class names (of --data) whose pixels keep only their largest "
                        "connected region in every method's output, after its CRF (the "
                        "one-object scenes, e.g. --largest-component horse on Weizmann Horse)")
    parser.add_argument("--proposal-cache", help="folder to cache proposals per image")
    parser.add_argument("--output", help="also write the results as JSON here (a new file; "
                        "an existing one is refused before the run unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output file")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="test-time augmentation for every network (mirrored image "
                        "averaged); default: each model's own setting (a Segmenter's "
                        "test_time_flip)")
    parser.add_argument("--scales", type=float, nargs="+", metavar="S",
                        help="test-time multi-scale for every whole-image network: also run "
                        "it at these multiples of its working size and average the "
                        "probabilities (e.g. --scales 1 1.5; --scales 1: the working size "
                        "only); default: each model's own setting (test_time_scales)")
    parser.add_argument("--color-target", metavar="SPLIT|off", default=None,
                        help="test-time colour normalisation of every network to the "
                        "per-channel mean / std of this split of --data (e.g. the models' "
                        "training split), instead of each model's own setting; 'off': none")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    from deconvnet_tf.cli._common import check_scales_flag  # the CLIs' --scales rule

    check_scales_flag(parser, args.scales)
    if args.output and Path(args.output).exists() and not args.overwrite:
        parser.error(f"--output {args.output!r} exists; name a new file or pass --overwrite")

    from deconvnet_tf.data.folder import DatasetError
    from deconvnet_tf.evaluation.compare import compare_methods
    from deconvnet_tf.inference.pipeline import InferenceOptions

    options = InferenceOptions(
        ensemble_method=args.ensemble_method, crf_preset=args.crf_preset,
        input_size=args.input_size, batch_size=args.batch_size, aggregate=args.aggregate,
        proposals=dict(method=args.proposals, edge=args.edge, top_k=args.top_k,
                       min_size=args.min_box, enlarge=args.enlarge,
                       cache_dir=args.proposal_cache))
    try:
        if args.largest_component:
            options.largest_component = _class_indices(args.data, args.largest_component)
        deconvnet, fcn = args.deconvnet, args.fcn
        if args.flip is not None or args.color_target is not None or args.scales:
            import dataclasses

            from deconvnet_tf.data.sources import open_source
            from deconvnet_tf.inference.predict import load_predictor
            from multiscale_table import color_target_arg  # the tools' shared flag

            target = color_target_arg(open_source(args.data), args.color_target)
            flip = {} if args.flip is None else {"flip": args.flip}
            flip.update({"scales": args.scales} if args.scales else {})
            deconvnet = dataclasses.replace(
                load_predictor(deconvnet, color_target=target), **flip)
            fcn = (dataclasses.replace(load_predictor(fcn, color_target=target), **flip)
                   if fcn else None)
        result = compare_methods(deconvnet, args.data, args.split, fcn=fcn,
                                 methods=args.methods, limit=args.limit, options=options,
                                 progress=not args.quiet)
    except (DatasetError, FileNotFoundError, ValueError, ImportError) as err:
        print(f"paper_table: error: {err}", file=sys.stderr)
        return 2
    print(result.table())
    print("\nSeconds per image: " + ", ".join(f"{k} {v:.3f}" for k, v in result.seconds.items())
          + f" ({result.num_images} images)")
    if args.output:
        from deconvnet_tf.io import OutputError, write_bytes

        try:
            path = write_bytes(Path(args.output),
                               (json.dumps(result.to_dict(), indent=2) + "\n").encode(),
                               overwrite=args.overwrite)
        except (OutputError, OSError) as err:  # created meanwhile, or an unwritable folder
            print(f"paper_table: error: {err}", file=sys.stderr)
            return 2
        print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
