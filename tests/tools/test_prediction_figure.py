"""tools/prediction_figure.py: rows and columns, void in white, CRF column, errors."""

from __future__ import annotations

import numpy as np

import deconvnet_tf
from deconvnet_tf.data.folder import list_examples, load_example, read_meta
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from deconvnet_tf.render import TITLE_HEIGHT, colorize, make_palette
from tests.conftest import requires_tf

import prediction_figure  # tools/prediction_figure.py (pytest's pythonpath has tools/)

pytestmark = requires_tf


def test_figure_rows_columns_and_errors(tmp_path, capsys):
    import pydensecrf  # noqa: F401  (the "crf" extra, installed by `make test`)
    data = write_synthetic_dataset(tmp_path / "ds", num_train=1, num_val=2, height=32, width=40)
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=11)
    picture = prediction_figure.figure(model, data, "val", [0, 1], crf=True, titles=False,
                                       legend=False)
    # 2 rows of 32 px + a 4 px gap; 4 columns of 40 px + three 4 px gaps.
    assert picture.shape == (2 * 32 + 4, 4 * 40 + 3 * 4, 3) and picture.dtype == np.uint8
    image, label = load_example(*list_examples(data, "val")[0])
    np.testing.assert_array_equal(picture[:32, :40], image)  # the photo
    truth = colorize(label)
    truth[label >= 11] = 255  # void is white
    np.testing.assert_array_equal(picture[:32, 44:84], truth)
    np.testing.assert_array_equal(picture[32:36], 255)  # the gap between rows
    # Default: column titles above (dark text on white) and the class key below.
    full = prediction_figure.figure(model, data, "val", [0, 1], crf=True)
    assert full.shape[1] == picture.shape[1] and full.shape[0] > picture.shape[0] + TITLE_HEIGHT
    np.testing.assert_array_equal(full[TITLE_HEIGHT:TITLE_HEIGHT + picture.shape[0]], picture)
    title = full[:TITLE_HEIGHT]
    for col in range(4):  # every column has a title
        assert title[:, col * 44:col * 44 + 40].min() < 100
    key = full[TITLE_HEIGHT + picture.shape[0]:]
    colours = {tuple(c) for c in key.reshape(-1, 3)}
    num_classes = read_meta(data).num_classes
    assert all(tuple(c) in colours for c in make_palette(num_classes))  # one swatch per class
    path = tmp_path / "m.keras"
    model.save(path)
    out = tmp_path / "fig.png"
    assert prediction_figure.main(["--model", str(path), "--data", str(data), "--indices", "1",
                                   "--flip", "--output", str(out)]) == 0
    assert out.stat().st_size > 0
    assert prediction_figure.main(["--model", str(path), "--data", str(data), "--indices", "5",
                                   "--output", str(out), "--overwrite"]) == 2
    assert "outside the 2 images" in capsys.readouterr().err
