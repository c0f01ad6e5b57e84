"""A figure of predictions on dataset images: photo | ground truth | model | + CRF | LiteRT.

One row per image under a title per column, and a colour key of the dataset's classes below
(``--no-titles``/``--no-legend`` leave them out); void/ignored ground-truth pixels are white.
Colours: the palette of the LiteRT sidecar when ``--lite`` is given, else the package's
default palette.

    python tools/prediction_figure.py --model saved_models/camvid_compact.keras \
        --lite saved_models/camvid_compact_int8.tflite --data /path/to/camvid_180x240 \
        --split val --indices 0 60 --crf --no-titles --no-legend --output docs/camvid_prediction.png \
        --overwrite
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _outputs import existing_output_error


def figure(model, data: Path, split: str, indices: list[int], *, lite=None, crf: bool = False,
           flip: bool | None = None, titles: bool = True, legend: bool = True) -> np.ndarray:
    """Rows ``photo | ground truth | model [| + CRF] [| LiteRT]`` for ``indices`` of ``split``.

    Args:
        model: A Keras model, ``.keras`` path or SavedModel folder.
        data: Dataset root in the folder layout.
        split: Split name.
        indices: Positions in the split's list.
        lite: Optional ``.tflite`` path (LiteRT column; its sidecar gives the palette).
        crf: Add a dense-CRF column.
        flip: Mirrored-image averaging for the model column (and the CRF's input);
            ``None``: the model's own setting (a Segmenter's ``test_time_flip``).
        titles: Column titles above the rows (:data:`deconvnet_tf.render.TITLE_HEIGHT` px).
        legend: A colour key of the dataset's classes (name + swatch) below the rows, with
            ``void`` (white) when a shown ground truth has void pixels.

    Raises:
        IndexError: An index outside the split.
    """
    import dataclasses

    from deconvnet_tf.data.folder import list_examples, load_example, read_meta
    from deconvnet_tf.inference.predict import load_predictor, predict_image
    from deconvnet_tf.render import colorize, figure_grid, make_palette

    examples = list_examples(data, split)
    info = read_meta(data)
    for i in indices:
        if not 0 <= i < len(examples):
            raise IndexError(f"--indices: {i} is outside the {len(examples)} images of {split!r}")
    predictor = load_predictor(model) if isinstance(model, (str, Path)) else model
    if not hasattr(predictor, "prepare"):
        from deconvnet_tf.inference.predict import as_predictor

        predictor = as_predictor(predictor)
    if flip is not None:
        predictor = dataclasses.replace(predictor, flip=bool(flip))
    palette = make_palette()
    segmenter = None
    if lite is not None:
        from deconvnet_tf.lite import LiteSegmenter

        segmenter = LiteSegmenter(lite, flip=flip)
        palette = segmenter.palette
    names = ["image", "ground truth", "prediction"] + (["+ CRF"] if crf else [])
    names += ["LiteRT"] if segmenter is not None else []
    rows, void = [], False
    for i in indices:
        image, label = load_example(*examples[i])
        truth = colorize(label, palette)
        truth[label >= info.num_classes] = 255  # void: white (class 0 is often black)
        void = void or bool(np.any(label >= info.num_classes))
        probs = predict_image(predictor, image)
        columns = [image, truth, colorize(probs.argmax(-1), palette)]
        if crf:
            from deconvnet_tf.inference.crf import dense_crf

            columns.append(colorize(dense_crf(image, probs).argmax(-1), palette))
        if segmenter is not None:
            columns.append(colorize(segmenter.predict(image)[0], palette))
        rows.append(columns)
    return figure_grid(rows, names if titles else None,
                       class_names=info.class_names if legend else None,
                       palette=palette[: info.num_classes],
                       extra_legend=[("void", (255, 255, 255))] if void else ())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help=".keras file or SavedModel folder")
    parser.add_argument("--lite", help="optional .tflite model for a LiteRT column")
    parser.add_argument("--data", required=True, type=Path, help="dataset root (folder layout)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--indices", type=int, nargs="+", default=[0], help="images of the split")
    parser.add_argument("--crf", action="store_true", help="add a dense-CRF column")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="mirrored-image averaging (default: the model's own setting)")
    parser.add_argument("--no-titles", action="store_true", help="leave out the column titles")
    parser.add_argument("--no-legend", action="store_true", help="leave out the colour key")
    parser.add_argument("--output", required=True, type=Path, help="PNG to write (a new file)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    args = parser.parse_args(argv)
    if not args.overwrite and (error := existing_output_error(args.output, "--output")):
        parser.error(error + " or pass --overwrite")

    from deconvnet_tf.data.folder import DatasetError
    from deconvnet_tf.render import save_png

    try:
        picture = figure(args.model, args.data, args.split, args.indices, lite=args.lite,
                         crf=args.crf, flip=args.flip, titles=not args.no_titles,
                         legend=not args.no_legend)
    except (DatasetError, FileNotFoundError, IndexError, ValueError, ImportError) as err:
        print(f"prediction_figure: error: {err}", file=sys.stderr)
        return 2
    print(save_png(args.output, picture, overwrite=args.overwrite))
    return 0


if __name__ == "__main__":
    sys.exit(main())
