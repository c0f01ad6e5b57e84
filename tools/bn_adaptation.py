"""Test-time batch-norm adaptation per image (alpha-BN): every trained ``BatchNormalization``
layer normalises with a mix of its moving (training) statistics and those of the current image,
``mean = (1 - a) * moving_mean + a * image_mean`` and ``var = (1 - a) * moving_var + a *
image_var`` (per image, over its spatial positions; ``a = 0`` is the model as it is). Layers
that never trained (not ``trainable``: the frozen encoder blocks, whose statistics stay at
their initial 0 / 1) are left as they are. Prints rows for each ``--alphas`` value:

* mean IoU without and with test-time flip at one network input size from the native images
  (the rows of ``tools/multiscale_table.py``, its ``--color-target`` included), or
* with ``--crf``: the whole-image DeconvNet rows of ``tools/paper_table.py``, network and +
  dense CRF, per class (Horse's ``horse`` IoU).

    python tools/bn_adaptation.py --model runs/s27_A12/model.keras \\
        --data /path/to/camvid_360x480 --split "train[0001TP]" --size 180x240 \\
        --color-target "train[-0001TP]" --alphas 0 0.1 0.25 0.5 1

The measurement behind docs/results.md, section "Test-time batch-norm adaptation and a
two-model Horse ensemble on the dev splits". Not a model setting: no runtime applies it.
"""

from __future__ import annotations

import argparse
import sys


def adapt_batchnorm(model, alpha: float) -> int:
    """Makes every trained ``BatchNormalization`` layer of ``model`` (a Segmenter's network
    included) normalise with ``alpha``-mixed moving and per-image statistics.

    Changes the layers in place (their ``call``); use it on a freshly loaded model, before its
    first prediction (an already traced predict function keeps the old behaviour).

    Args:
        model: A ``keras.Model`` (channels-last BatchNormalization layers).
        alpha: Weight of the image's statistics, in [0, 1]; 0 leaves the model as it is.

    Returns:
        The number of layers adapted (0 when ``alpha`` is 0).

    Raises:
        ValueError: ``alpha`` outside [0, 1], a BatchNormalization layer that is not
            channels-last, or no trained BatchNormalization layer at all.
    """
    import keras

    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    network = getattr(model, "network", model)
    layers = [layer for layer in network._flatten_layers(include_self=False, recursive=True)
              if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
    if not layers:
        raise ValueError(f"model {network.name!r} has no trained BatchNormalization layer")
    for layer in layers:
        rank = getattr(layer.input_spec, "ndim", None)
        if layer.axis != -1 and (rank is None or layer.axis != rank - 1):
            raise ValueError(f"layer {layer.name!r}: only channels-last BatchNormalization "
                             f"(axis -1) can adapt, got axis {layer.axis}")
    if alpha == 0:
        return 0
    for layer in layers:
        layer.call = _mixed_call(layer, float(alpha))
    return len(layers)


def _mixed_call(layer, alpha: float):
    """``layer``'s inference call with ``alpha``-mixed statistics (computed in float32)."""
    from keras import ops

    def call(inputs, training=None, mask=None):
        x = ops.cast(inputs, "float32")
        mean, var = ops.moments(x, axes=list(range(1, len(x.shape) - 1)), keepdims=True)
        mean = (1 - alpha) * ops.cast(layer.moving_mean, "float32") + alpha * mean
        var = (1 - alpha) * ops.cast(layer.moving_variance, "float32") + alpha * var
        y = (x - mean) * ops.rsqrt(var + layer.epsilon)
        if layer.scale:
            y = y * ops.cast(layer.gamma, "float32")
        if layer.center:
            y = y + ops.cast(layer.beta, "float32")
        return ops.cast(y, inputs.dtype)

    return call


def _percent(value: float) -> str:
    return "-" if value != value else f"{100 * value:.1f}"  # NaN: a class absent from the split


def _rows(args) -> list[str]:
    """The table lines: one per alpha, two with ``--crf`` (network, + CRF); the model is
    loaded afresh for each alpha (the adaptation changes it in place)."""
    from multiscale_table import _load, color_target_arg, score_subsets

    from deconvnet_tf.data.sources import open_source

    source = open_source(args.data)
    target = color_target_arg(source, args.color_target)
    if args.crf:
        from deconvnet_tf.evaluation.compare import compare_methods

        names = source.info.class_names
        lines = ["| alpha | method | " + " | ".join(names) + " | mean IoU |",
                 "|---|---|" + "---:|" * (len(names) + 1)]
    else:
        lines = [f"| alpha | mean IoU ({args.size[0]}x{args.size[1]}) | + flip |",
                 "|---|---:|---:|"]
    for alpha in args.alphas:
        model = _load(args.model, own=args.color_target is None)
        adapt_batchnorm(model, alpha)
        if args.crf:
            result = compare_methods(model, args.data, args.split, limit=args.limit,
                                     methods=("deconvnet_whole", "deconvnet_whole_crf"),
                                     progress=False)
            for method, name in (("deconvnet_whole", "network"), ("deconvnet_whole_crf", "+ CRF")):
                report = result.reports[method]
                cells = [name] + [_percent(v) for v in report.per_class_iou]
                lines.append(f"| {alpha:g} | " + " | ".join(cells)
                             + f" | {_percent(report.mean_iou)} |")
        else:
            from deconvnet_tf.evaluation.evaluate import check_input_size

            check_input_size(model, args.size, "--size")  # named as this tool's flag
            reports = score_subsets(model, source, args.split, [args.size], limit=args.limit,
                                    color_target=target)
            size = f"{args.size[0]}x{args.size[1]}"
            cells = [_percent(reports[size + s].mean_iou) for s in ("", " flip")]
            lines.append(f"| {alpha:g} | " + " | ".join(cells) + " |")
        if not args.quiet:
            print(lines[-1], file=sys.stderr, flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    from _args import unit_interval  # tools/ siblings
    from multiscale_table import parse_size

    parser = argparse.ArgumentParser(prog="bn_adaptation", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help=".keras file or training run folder")
    parser.add_argument("--data", required=True, help="dataset root (folder layout or PASCAL VOC)")
    parser.add_argument("--split", default="val", help="split, e.g. 'train[0001TP]'")
    parser.add_argument("--alphas", nargs="+", type=unit_interval, default=[0.0, 0.1],
                        metavar="A",
                        help="weights of the image's statistics, each in [0, 1] (default 0 0.1)")
    parser.add_argument("--size", type=parse_size, default=None, metavar="HxW",
                        help="network input size (not with --crf; default: the model's own)")
    parser.add_argument("--crf", action="store_true",
                        help="rows of the whole-image network and + dense CRF per class "
                             "(tools/paper_table.py's), instead of mean IoU +- flip")
    parser.add_argument("--color-target", metavar="SPLIT|off", default=None,
                        help="as tools/multiscale_table.py's (not with --crf)")
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.crf and (args.size is not None or args.color_target is not None):
        parser.error("--size and --color-target are not used with --crf (each model's own "
                     "settings, as tools/paper_table.py)")
    if not args.crf and args.size is None:
        parser.error("--size is required without --crf, e.g. --size 180x240")
    from deconvnet_tf.data.folder import DatasetError
    from deconvnet_tf.evaluation.evaluate import ModelFileError

    try:
        lines = _rows(args)
    except (DatasetError, ModelFileError, FileNotFoundError, ValueError, ImportError) as err:
        print(f"bn_adaptation: error: {err}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
