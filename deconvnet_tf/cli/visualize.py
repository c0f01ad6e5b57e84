"""``deconvnet-visualize``: Zeiler-Fergus deconvnet projections of one layer's units, as a PNG grid.

Scans ``--input`` (an image or a folder of images) for the ``--top-k`` strongest activations of
a channel (``--channel K``) or of the N channels with the strongest mean activation
(``--top-channels N``, one row each), projects each back to pixel space (``--mode deconvnet``:
Zeiler & Fergus' deconvnet; ``gradient``: saliency; ``guided``: guided backpropagation) and
writes each projection beside the image patch under the unit's receptive field, like the
paper's Figure 2.

``--model`` is a ``.keras`` file (any functional CNN of conv, BatchNorm, ReLU and max pooling;
this project's models load without custom objects), a shipped model's name (``camvid_compact``,
``horse_compact``: the ``.keras`` file ``deconvnet-predict`` uses) or ``vgg16`` for
``keras.applications.VGG16(weights=None)`` (random weights, offline). A model with a
test-time colour normalisation (a Segmenter's ``color_target``, e.g. ``camvid_compact``'s)
scans the images as it predicts them, normalised (the grid's patches show them so);
``--no-color-norm`` skips it.

An existing ``--output`` is replaced only with ``--overwrite`` (never an input image); the grid
is tagged as an output of this project, so a later folder ``--input`` skips it.
``--skip-errors`` reads every input image first and leaves out (and lists) those that cannot
be read; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import sys

from deconvnet_tf.cli._common import (Reporter, add_verbose_flag, plain_text, positive_int,
                                      select_backend)

__all__ = ["main"]

PROG = "deconvnet-visualize"


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a channel index >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a channel index >= 0, got {value}")
    return value


def _load(spec: str):
    if spec == "vgg16":
        import keras

        return keras.applications.VGG16(weights=None)
    from pathlib import Path

    from deconvnet_tf import load_model
    from deconvnet_tf.models.registry import REGISTRY, resolve

    if not (Path(spec).suffix.lower() == ".keras" or Path(spec).exists() or spec in REGISTRY):
        raise ValueError(f"--model {spec!r}: expected a .keras model file, a shipped model's "
                         f"name ({', '.join(sorted(REGISTRY))}) or 'vgg16'")
    path = resolve(spec)[0] if spec in REGISTRY and not Path(spec).exists() else spec
    try:
        return load_model(path)
    except Exception as err:  # Keras raises many types (and bare JSON errors) for a bad archive
        if spec in str(err):
            raise
        detail = next((line.strip() for line in str(err).splitlines() if line.strip()),
                      type(err).__name__)
        raise ValueError(f"Cannot load the model {spec!r}: {detail}") from err


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=plain_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s --model MODEL --layer LAYER (--channel K | --top-channels N) "
              "--input INPUT --output OUTPUT.png [options]")
    parser.add_argument("--model", required=True,
                        help=".keras model file, a shipped model's name, or 'vgg16'")
    parser.add_argument("--layer", required=True, help="layer name, e.g. block5_conv3")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--channel", type=_non_negative, help="the channel (feature map) to show")
    which.add_argument("--top-channels", type=positive_int, metavar="N",
                       help="show the N channels with the strongest mean activation")
    parser.add_argument("--input", required=True, help="an image file or a folder of images")
    parser.add_argument("--output", required=True, help="PNG file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument("--skip-errors", action="store_true",
                        help="leave out (and list) input images that cannot be read")
    parser.add_argument("--mode", choices=["deconvnet", "gradient", "guided"], default="deconvnet",
                        help="deconvnet (Zeiler & Fergus), gradient (saliency) or guided "
                        "(guided backpropagation)")
    parser.add_argument("--ties", choices=["exact", "skip"], default="exact",
                        help="exact: the paper's unpooling rule; skip: a display choice that "
                        "unpools nothing into all-zero pooling windows (docs/visualize.md)")
    parser.add_argument("--top-k", type=positive_int, default=9,
                        help="strongest activations per channel (default 9)")
    parser.add_argument("--batch-size", type=positive_int, default=8,
                        help="images per forward pass when ranking activations (default: 8)")
    parser.add_argument("--no-color-norm", dest="color_norm", action="store_false",
                        help="skip the model's test-time colour normalisation (a Segmenter's "
                        "color_target, e.g. camvid_compact's): images as they are")
    parser.add_argument("--tile", type=positive_int, help="tile side in pixels (default: from the "
                        "receptive field, 48..112)")
    parser.add_argument("--backend", choices=["tensorflow", "jax"],
                        help="Keras backend (default: KERAS_BACKEND, else tensorflow)")
    add_verbose_flag(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.output.lower().endswith(".png"):
        parser.error(f"--output {args.output!r}: expected a .png file name")
    select_backend(args.backend, verbose=args.verbose)
    report = Reporter(PROG)

    from pathlib import Path

    from deconvnet_tf.io import ImageReadError, output_folder, read_image
    from deconvnet_tf.render import check_outputs
    from deconvnet_tf.visualize import VisualizationError, visualize
    from deconvnet_tf.visualize.topk import image_files

    output = Path(args.output)
    try:
        # the grid's folder; removed again if the run fails before writing the grid
        with output_folder(output.parent if str(output.parent) else Path("."),
                           "--output folder"):
            # Inputs and the output first: errors come before the model is loaded.
            files = image_files(args.input)
            check_outputs([output], inputs=files, overwrite=args.overwrite)
            if args.skip_errors:
                readable = []
                for path in files:
                    try:
                        read_image(path)
                    except ImageReadError as err:
                        report.skip(path, str(err))
                    else:
                        readable.append(path)
                if not readable:
                    return report.error(f"--input {args.input!r}: none of the {len(files)} "
                                        "image(s) could be read")
                files = readable
            model = _load(args.model)
            target = getattr(model, "color_target", None) if args.color_norm else None
            if target is not None:
                print(f"{PROG}: colour normalisation on (the model's color_target, mean "
                      f"{target['mean']}); --no-color-norm to skip it", file=sys.stderr,
                      flush=True)
            result = visualize(
                model, args.layer, files, output, channel=args.channel,
                top_channels=args.top_channels, k=args.top_k, mode=args.mode,
                batch_size=args.batch_size, tile=args.tile, overwrite=args.overwrite,
                ties=args.ties, color_target=target,
            )
    except MemoryError:
        return report.error("out of memory; use smaller images or a smaller --batch-size")
    except (VisualizationError, OSError, ValueError, ImportError) as err:
        return report.error(err)
    for row in result.channels:
        best = ", ".join(f"{it.source}@{it.position}={it.value:.3g}" for it in row.items[:3])
        print(f"{args.layer} channel {row.channel}: mean {row.mean_activation:.4g}, "
              f"{len(row.items)} shown (strongest: {best})")
    print(f"Wrote {result.path} ({args.mode}, {result.num_images} images scanned)")
    return report.finish(result.num_images)


if __name__ == "__main__":
    sys.exit(main())
