"""``deconvnet-crf``: refine saved class probabilities with a fully connected CRF.

``--image`` is an image or a folder; ``--probs`` the matching ``(H, W, C)`` ``.npy`` file or a
folder with ``<stem>_probs.npy`` / ``<stem>.npy`` per image (as ``deconvnet-predict --save-probs``
writes). Writes ``<stem>_labels.png``, ``<stem>_color.png``, ``<stem>_overlay.png`` (and the
refined probabilities ``<stem>_probs.npy`` with ``--save-probs``); existing outputs are replaced
only with ``--overwrite``, and never an input. Defaults: DeconvNet's CRF settings;
``--preset deeplab`` for DeepLab's; every value can be overridden.
"""

from __future__ import annotations

import argparse
import sys

from deconvnet_tf.cli._common import Reporter, positive_int, plain_text

__all__ = ["main"]

PROG = "deconvnet-crf"


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description=plain_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s --image IMAGE --probs PROBS --output OUTPUT [options]")
    parser.add_argument("--image", required=True, help="image file or folder")
    parser.add_argument("--probs", required=True, help=".npy file or folder of .npy files")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs of an earlier run (never an input)")
    parser.add_argument("--skip-errors", action="store_true",
                        help="report images whose image/probability file is bad and go on "
                             "(exit status 1 if any)")
    parser.add_argument("--preset", choices=["deconvnet", "deeplab"], default="deconvnet",
                        help="CRF parameter set (default: deconvnet); the flags below override it")
    parser.add_argument("--iterations", type=positive_int, help="mean-field iterations")
    parser.add_argument("--gaussian-sxy", type=_non_negative_float,
                        help="spatial std. dev. of the smoothness kernel, pixels (deconvnet: 3)")
    parser.add_argument("--gaussian-compat", type=_non_negative_float,
                        help="weight of the smoothness kernel (deconvnet: 3)")
    parser.add_argument("--bilateral-sxy", type=_non_negative_float,
                        help="spatial std. dev. of the appearance kernel, pixels (deconvnet: 20)")
    parser.add_argument("--bilateral-srgb", type=_non_negative_float,
                        help="colour std. dev. of the appearance kernel, 0..255 (deconvnet: 3)")
    parser.add_argument("--bilateral-compat", type=_non_negative_float,
                        help="weight of the appearance kernel (deconvnet: 5)")
    parser.add_argument("--save-probs", action="store_true",
                        help="also write the refined probabilities (<stem>_probs.npy, float16)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    report = Reporter(PROG)

    from deconvnet_tf.inference.crf import refine_files

    overrides = {name: getattr(args, name) for name in (
        "iterations", "gaussian_sxy", "gaussian_compat", "bilateral_sxy", "bilateral_srgb",
        "bilateral_compat") if getattr(args, name) is not None}
    try:
        written = refine_files(args.image, args.probs, args.output, preset=args.preset,
                               save_probs=args.save_probs, progress=not args.quiet,
                               overwrite=args.overwrite, skip_errors=args.skip_errors,
                               on_skip=report.skip, **overrides)
    except MemoryError:
        return report.error("out of memory running the dense CRF; use smaller images")
    except (OSError, ValueError, ImportError) as err:
        return report.error(err)
    print(f"Wrote CRF-refined labels of {len(written)} image(s) to {args.output}")
    return report.finish(len(written))


if __name__ == "__main__":
    sys.exit(main())
