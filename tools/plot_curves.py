"""Training curves of one or more runs as a PNG (OpenCV only; no plotting library needed).

Reads each run's ``log.csv`` (written by ``deconvnet-train``) and draws one metric per panel
(default: validation mean IoU and training loss) against the epoch, one colour per run.

    python tools/plot_curves.py runs/camvid_compact runs/camvid_fcn8s --labels DeconvNet FCN-8s \
        --output docs/camvid_curves.png --overwrite
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from _outputs import existing_output_error

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


MISSING = (None, "", "NA", "nan")


def read_log(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Columns of ``<run>/log.csv`` as ``(epoch, value)`` lists.

    Epochs without a value (validation every few epochs: Keras writes ``NA``) are left out; an
    epoch logged twice (a resumed run repeats the interrupted epoch) keeps its last row.
    """
    path = run / "log.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} not found: is {str(run)!r} a deconvnet-train run?")
    with path.open() as f:
        rows = {int(r["epoch"]): r for r in csv.DictReader(f)}  # later rows win
    if not rows:
        raise ValueError(f"{str(path)!r} has no epochs yet")
    columns = [key for key in next(iter(rows.values())) if key != "epoch"]
    log = {key: [(e, float(r[key])) for e, r in sorted(rows.items()) if r.get(key) not in MISSING]
           for key in columns}
    return {key: points for key, points in log.items() if points}


def draw_panel(series: list[tuple[str, list[tuple[int, float]]]], title: str,
               size=(360, 480)) -> np.ndarray:
    """One line chart: ``series`` of (label, ``(epoch, value)`` points)."""
    import cv2

    h, w = size
    left, right, top, bottom = 56, 16, 34, 40
    canvas = np.full((h, w, 3), 255, np.uint8)
    values = [v for _, points in series for _, v in points]
    lo, hi = min(values), max(values)
    lo, hi = (lo - 0.05 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9))
    epochs = max(e for _, points in series for e, _ in points) + 1

    def xy(i, v):
        x = left + (w - left - right) * (i / max(1, epochs - 1))
        y = top + (h - top - bottom) * (1 - (v - lo) / (hi - lo))
        return int(round(x)), int(round(y))

    cv2.rectangle(canvas, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        _, y = xy(0, v)
        cv2.line(canvas, (left, y), (w - right, y), (225, 225, 225), 1)
        cv2.putText(canvas, f"{v:.2f}", (4, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1)
    for e in range(0, epochs, max(1, epochs // 8)):
        x, _ = xy(e, lo)
        cv2.putText(canvas, str(e + 1), (x - 4, h - bottom + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                    (0, 0, 0), 1)
    cv2.putText(canvas, "epoch", (w // 2 - 18, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1)
    cv2.putText(canvas, title, (left, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    for n, (label, points) in enumerate(series):
        colour = COLOURS[n % len(COLOURS)]
        pixels = np.array([xy(e, v) for e, v in points], np.int32)
        cv2.polylines(canvas, [pixels], False, colour, 2, cv2.LINE_AA)
        for x, y in pixels:
            cv2.circle(canvas, (int(x), int(y)), 2, colour, -1, cv2.LINE_AA)
        cv2.putText(canvas, label, (left + 8, top + 18 + 16 * n), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                    colour, 1, cv2.LINE_AA)
    return canvas


def plot_runs(runs: list[Path], labels: list[str], metrics: list[str]) -> np.ndarray:
    """Panels side by side, one per metric."""
    logs = [read_log(r) for r in runs]
    panels = []
    for metric in metrics:
        series = [(lab, log[metric]) for lab, log in zip(labels, logs) if metric in log]
        if not series:
            raise ValueError(f"No run has a {metric!r} column (columns: {sorted(logs[0])})")
        panels.append(draw_panel(series, metric))
    return np.concatenate(panels, axis=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of deconvnet-train")
    parser.add_argument("--labels", nargs="+", help="one label per run (default: folder names)")
    parser.add_argument("--metrics", nargs="+", default=["val_mean_iou", "loss"])
    parser.add_argument("--output", type=Path, required=True, help="PNG to write (a new file)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    args = parser.parse_args(argv)
    if not args.overwrite and (error := existing_output_error(args.output, "--output")):
        parser.error(error + " or pass --overwrite")
    labels = args.labels or [r.name for r in args.runs]
    if len(labels) != len(args.runs):
        parser.error(f"--labels needs {len(args.runs)} names, got {len(labels)}")
    from deconvnet_tf.render import save_png

    try:
        picture = plot_runs(args.runs, labels, args.metrics)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    print(save_png(args.output, picture, overwrite=args.overwrite))
    return 0


if __name__ == "__main__":
    sys.exit(main())
