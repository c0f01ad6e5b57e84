"""``deconvnet-presets``: print the preset table (parameters, FLOPs, minimum input size)."""

from __future__ import annotations

import argparse
import sys

from deconvnet_tf.cli._common import add_verbose_flag, select_backend, plain_text

__all__ = ["main"]


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--size must look like 224x224, got {text!r}") from err
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"--size must be positive (e.g. 224x224), got {text!r}")
    return h, w


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deconvnet-presets", description=plain_text(__doc__))
    parser.add_argument("presets", nargs="*", help="preset names (default: all)")
    parser.add_argument("--size", type=_size, default=(224, 224),
                        help="HxW to count FLOPs at (at least each preset's minimum input size)")
    parser.add_argument("--num-classes", type=int, default=21,
                        help="classes of the score layer (>= 1, default 21)")
    parser.add_argument("--backend", choices=["tensorflow", "jax"],
                        help="Keras backend to build the models on (default: KERAS_BACKEND)")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    if args.num_classes < 1:
        parser.error(f"--num-classes must be >= 1, got {args.num_classes}")
    select_backend(args.backend, argv, verbose=args.verbose)

    from deconvnet_tf._backend import BackendUnavailableError, check_keras

    try:
        keras = check_keras()
    except BackendUnavailableError as err:
        parser.error(str(err))

    from deconvnet_tf.models.presets import get_architecture, list_presets
    from deconvnet_tf.models.summary import format_table, preset_summaries

    unknown = [p for p in args.presets if p not in list_presets()]
    if unknown:
        parser.error(f"unknown preset(s) {unknown}; available: {', '.join(list_presets())}")
    names = args.presets or list_presets()
    height, width = args.size
    minimums = {name: get_architecture(name).min_input_size() for name in names}
    small = {name: m for name, m in minimums.items() if m > min(height, width)}
    if small:
        listed = ", ".join(f"{n} ({m}x{m})" for n, m in small.items())
        parser.error(f"--size {height}x{width} is below the minimum input size of {listed}; "
                     f"pass a larger --size or other presets")
    print(f"Keras backend: {keras.backend.backend()}")
    try:
        rows = preset_summaries(args.presets or None, args.size, args.num_classes)
    except ValueError as err:  # an architecture check (the message names the value)
        parser.error(str(err).splitlines()[0])
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
