"""``deconvnet-predict``: segment images with a trained model.

Writes, per image, ``<stem>.png`` (class ids), ``<stem>_color.png`` (palette),
``<stem>_overlay.png`` (palette over the photo) and, with ``--save-probs``, ``<stem>_probs.npy``
(float16 class probabilities). ``--mode instance`` segments object proposals one by one and
aggregates them (the paper's instance-wise inference); ``--ensemble FCN_MODEL`` combines the result
with an FCN run on the whole image (EDeconvNet); ``--crf`` refines with a dense CRF.
"""

from __future__ import annotations

import argparse
import sys

from deconvnet_tf.cli._common import select_backend

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deconvnet-predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help=".keras file or SavedModel folder")
    parser.add_argument("--input", required=True, nargs="+", help="image file(s) and/or folder(s)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--mode", choices=["whole", "instance"], default="whole")
    parser.add_argument("--ensemble", metavar="FCN_MODEL",
                        help="second model run on the whole image and combined (EDeconvNet)")
    parser.add_argument("--ensemble-method", choices=["mean", "product"], default="mean",
                        help="mean of probabilities (paper text) or product (released code)")
    parser.add_argument("--crf", action="store_true", help="dense-CRF post-processing")
    parser.add_argument("--flip", action="store_true",
                        help="test-time augmentation: average with the mirrored image's scores")
    parser.add_argument("--crf-preset", choices=["deconvnet", "deeplab"], default="deconvnet")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="images (whole mode) or proposal crops (instance mode) per call")
    parser.add_argument("--save-probs", action="store_true",
                        help="also write <stem>_probs.npy (float16 class probabilities)")
    group = parser.add_argument_group("instance-wise inference")
    group.add_argument("--proposals", choices=["edgeboxes", "selective_search"],
                       default="edgeboxes")
    group.add_argument("--edge", choices=["hed", "gradient"], default="hed",
                       help="edge map for EdgeBoxes (hed falls back to gradient if unavailable)")
    group.add_argument("--top-k", type=int, default=50, help="proposals per image (paper: 50)")
    group.add_argument("--min-box", type=int, default=16, help="smallest proposal side (pixels)")
    group.add_argument("--enlarge", type=float, default=1.2, help="proposal box scale")
    group.add_argument("--input-size", type=int, default=224, help="crop size fed to the model")
    group.add_argument("--aggregate", choices=["max", "mean"], default="max")
    group.add_argument("--proposal-cache", metavar="DIR", help="cache proposals per image here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--backend", choices=["tensorflow", "jax"])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.top_k < 1 or args.min_box < 1 or args.input_size < 1:
        parser.error("--batch-size, --top-k, --min-box and --input-size must be >= 1")
    if args.enlarge <= 0:
        parser.error("--enlarge must be > 0")
    select_backend(args.backend)

    import dataclasses

    from deconvnet_tf.inference.pipeline import InferenceOptions, predict_files
    from deconvnet_tf.inference.predict import load_predictor

    options = InferenceOptions(
        mode=args.mode, ensemble_method=args.ensemble_method, crf=args.crf,
        crf_preset=args.crf_preset, input_size=args.input_size, batch_size=args.batch_size,
        aggregate=args.aggregate,
        proposals=dict(method=args.proposals, edge=args.edge, top_k=args.top_k,
                       min_size=args.min_box, enlarge=args.enlarge,
                       cache_dir=args.proposal_cache),
    )
    try:
        model = dataclasses.replace(load_predictor(args.model), flip=args.flip)
        ensemble = (dataclasses.replace(load_predictor(args.ensemble), flip=args.flip)
                    if args.ensemble else None)
        written = predict_files(model, args.input, args.output, options, ensemble=ensemble,
                                save_probs=args.save_probs, progress=not args.quiet)
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"deconvnet-predict: error: {err}", file=sys.stderr)
        return 2
    print(f"Wrote predictions of {len(written)} image(s) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
