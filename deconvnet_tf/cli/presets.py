"""``deconvnet-presets``: print the preset table (parameters, FLOPs, minimum input size)."""

from __future__ import annotations

import argparse
import sys

from deconvnet_tf.cli._common import select_backend

__all__ = ["main"]


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--size must look like 224x224, got {text!r}") from err
    return h, w


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deconvnet-presets", description=__doc__)
    parser.add_argument("presets", nargs="*", help="preset names (default: all)")
    parser.add_argument("--size", type=_size, default=(224, 224), help="HxW to count FLOPs at")
    parser.add_argument("--num-classes", type=int, default=21)
    parser.add_argument("--backend", choices=["tensorflow", "jax"],
                        help="Keras backend to build the models on (default: KERAS_BACKEND)")
    args = parser.parse_args(argv)
    select_backend(args.backend, argv)

    import keras

    from deconvnet_tf.models.presets import list_presets
    from deconvnet_tf.models.summary import format_table, preset_summaries

    unknown = [p for p in args.presets if p not in list_presets()]
    if unknown:
        parser.error(f"unknown preset(s) {unknown}; available: {', '.join(list_presets())}")
    print(f"Keras backend: {keras.backend.backend()}")
    print(format_table(preset_summaries(args.presets or None, args.size, args.num_classes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
