"""The figure of docs/visualize.md that compares the unpooling/ReLU rules on the same units.

For the N channels of ``--layer`` with the strongest mean activation over the images, and the
strongest activation of each channel in each image, it draws one row: the receptive-field patch,
then the projection with the exact deconvnet rule (``ties="exact"``, the paper), with
``ties="skip"`` (nothing unpooled into all-zero pooling windows) and with guided
backpropagation. Every projection is contrast-normalised on its own (zero = mid-grey).

    python tools/visualize_rules_figure.py --model saved_models/horse_compact.keras \
        --output docs/visualize_rules.png --overwrite

Default images: the two CamVid photos in the first column of docs/camvid_prediction.png
(rows 0-179 and 184-363, 180x240 each).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _outputs import existing_output_error

ROOT = Path(__file__).resolve().parents[1]
RULES = (("deconvnet (exact)", "deconvnet", "exact"), ("deconvnet, ties='skip'", "deconvnet", "skip"),
         ("guided backprop", "guided", "exact"))


def docs_photos() -> np.ndarray:
    """The two 180x240 CamVid photos of docs/camvid_prediction.png, ``(2, 180, 240, 3)`` RGB."""
    import cv2

    figure = cv2.imread(str(ROOT / "docs" / "camvid_prediction.png"))
    if figure is None:
        raise FileNotFoundError("docs/camvid_prediction.png is missing")
    figure = cv2.cvtColor(figure, cv2.COLOR_BGR2RGB)
    return np.stack([figure[0:180, 0:240], figure[184:364, 0:240]])


def rules_figure(model, layer: str, images: np.ndarray, *, channels: int = 3,
                 tile: int = 120) -> np.ndarray:
    """Rows ``unit label | patch | exact | ties='skip' | guided``, one per (channel, image)."""
    from deconvnet_tf.render import figure_grid, text_strip
    from deconvnet_tf.visualize import Projector
    from deconvnet_tf.visualize.grid import projection_to_image, square_tile

    projector = Projector(model, layer)
    act = projector.activations(images)
    means = act.mean(axis=tuple(range(act.ndim - 1)))
    chosen = [int(c) for c in np.argsort(-means, kind="stable")[:channels]]
    rows = []
    for c in chosen:
        projections = {}
        for title, mode, ties in RULES:
            projections[title], positions, values = projector.project(
                images, c, mode=mode, ties=ties, return_details=True)
        for n, image in enumerate(images):
            box = projector.receptive_field(positions[n], image.shape)
            crop = box.slices()
            label = text_strip(f"ch {c}, image {n + 1}", tile, tile, align="left")
            row = [label, square_tile(image[crop], tile)]
            row += [square_tile(projection_to_image(projections[t][n][crop]), tile)
                    for t, _, _ in RULES]
            rows.append(row)
    return figure_grid(rows, [layer, "receptive field", *[t for t, _, _ in RULES]])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="saved_models/horse_compact.keras",
                        help=".keras model (default: the shipped CamVid model)")
    parser.add_argument("--layer", default="block3_conv3_relu", help="layer to project")
    parser.add_argument("--channels", type=int, default=3,
                        help="channels with the strongest mean activation to show")
    parser.add_argument("--output", type=Path, default=Path("docs/visualize_rules.png"),
                        help="PNG to write (a new file)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    args = parser.parse_args(argv)
    if not args.overwrite and (error := existing_output_error(args.output, "--output")):
        parser.error(error + " or pass --overwrite")

    import deconvnet_tf
    from deconvnet_tf.render import save_png

    model = deconvnet_tf.load_model(args.model)
    picture = rules_figure(model, args.layer, docs_photos(), channels=args.channels)
    print(save_png(args.output, picture, overwrite=args.overwrite))
    return 0


if __name__ == "__main__":
    sys.exit(main())
