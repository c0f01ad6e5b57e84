"""``deconvnet-crf``: refine saved class probabilities with a fully connected CRF.

``--image`` is an image or a folder; ``--probs`` the matching ``(H, W, C)`` ``.npy`` file or a
folder with ``<stem>_probs.npy`` / ``<stem>.npy`` per image (as ``deconvnet-predict --save-probs``
writes). Writes ``<stem>.png``, ``<stem>_color.png``, ``<stem>_overlay.png`` (and the refined
probabilities with ``--save-probs``). Defaults: DeconvNet's CRF settings; ``--preset deeplab``
for DeepLab's; every value can be overridden.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deconvnet-crf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", required=True, help="image file or folder")
    parser.add_argument("--probs", required=True, help=".npy file or folder of .npy files")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--preset", choices=["deconvnet", "deeplab"], default="deconvnet")
    parser.add_argument("--iterations", type=int, help="mean-field iterations")
    parser.add_argument("--gaussian-sxy", type=float)
    parser.add_argument("--gaussian-compat", type=float)
    parser.add_argument("--bilateral-sxy", type=float)
    parser.add_argument("--bilateral-srgb", type=float)
    parser.add_argument("--bilateral-compat", type=float)
    parser.add_argument("--save-probs", action="store_true",
                        help="also write the refined probabilities (<stem>_probs.npy, float16)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    from deconvnet_tf.inference.crf import refine_files

    overrides = {name: getattr(args, name) for name in (
        "iterations", "gaussian_sxy", "gaussian_compat", "bilateral_sxy", "bilateral_srgb",
        "bilateral_compat") if getattr(args, name) is not None}
    try:
        written = refine_files(args.image, args.probs, args.output, preset=args.preset,
                               save_probs=args.save_probs, progress=not args.quiet, **overrides)
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"deconvnet-crf: error: {err}", file=sys.stderr)
        return 2
    print(f"Wrote CRF-refined labels of {len(written)} image(s) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
