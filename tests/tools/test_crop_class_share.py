"""tools/crop_class_share.py: the shares are the label's own where the window cannot move, a
rare class's crop share rises with class-uniform windows where it can, and the CLI prints one
row per class and refuses bad arguments with one clear line."""

from __future__ import annotations

import re

import numpy as np
import pytest

from deconvnet_tf.data.synthetic import write_synthetic_dataset

import crop_class_share  # tools/crop_class_share.py (pytest's pythonpath has tools/)

IGNORE = 255


def _labels():
    """Two 30x40 labels: mostly class 0, class 1 on a band, a 2x2 patch of class 2 in one."""
    first = np.zeros((30, 40), np.uint8)
    first[:, :10] = 1
    first[0] = IGNORE
    second = np.zeros((30, 40), np.uint8)
    second[26:28, 35:37] = 2
    return [first, second]


@pytest.mark.jax
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_a_window_that_cannot_move_gives_the_labels_own_shares(p):
    labels = _labels()
    out = crop_class_share.crop_class_share(labels, num_classes=3, ignore_label=IGNORE,
                                            crop_size=(30, 40), scale=None, class_uniform=p,
                                            draws=10)
    counts = sum(np.bincount(label.ravel(), minlength=256)[:3] for label in labels)
    np.testing.assert_allclose(out["pixel_share"], counts / counts.sum())
    assert out["crop_share"] == [1.0, 0.5, 0.5] and out["draws"] == 10


@pytest.mark.jax
def test_class_uniform_windows_show_the_rare_class_more_often():
    labels = _labels()[1:]  # classes 0 and 2: class 2 drawn in half the class-uniform windows
    kwargs = dict(num_classes=3, ignore_label=IGNORE, crop_size=(8, 8), scale=(0.75, 1.5),
                  draws=400)
    plain = crop_class_share.crop_class_share(labels, class_uniform=0.0, **kwargs)
    uniform = crop_class_share.crop_class_share(labels, class_uniform=1.0, **kwargs)
    assert plain["crop_share"][2] < 0.15
    assert 0.4 < uniform["crop_share"][2] < 0.6
    assert uniform["pixel_share"][2] > 3 * plain["pixel_share"][2]


@pytest.mark.jax
def test_class_paste_shows_the_pasted_class_in_more_crops():
    """Class 2 (a 2x2 patch in every other label) is pasted from each crop's neighbour in the
    batch: with q = 1 every crop after one holding it holds it too."""
    labels = _labels()
    kwargs = dict(num_classes=3, ignore_label=IGNORE, crop_size=(30, 40), scale=None,
                  class_uniform=0.0, draws=64, batch_size=8)
    plain = crop_class_share.crop_class_share(labels, **kwargs)
    pasted = crop_class_share.crop_class_share(labels, class_paste=1.0, paste_classes=[2],
                                               **kwargs)
    assert plain["crop_share"][2] == 0.5 and pasted["crop_share"][2] == 1.0
    assert pasted["pixel_share"][2] == pytest.approx(2 * plain["pixel_share"][2], rel=0.01)
    # class 1, not pasted, keeps its crops (it is pasted over only where class 2 lands)
    assert pasted["crop_share"][1] == plain["crop_share"][1]
    off = crop_class_share.crop_class_share(labels, class_paste=0.0, paste_classes=[2], **kwargs)
    assert off == plain


@pytest.mark.jax
def test_bad_library_arguments():
    with pytest.raises(ValueError, match="at least one label"):
        crop_class_share.crop_class_share([], num_classes=3, ignore_label=IGNORE,
                                          crop_size=(8, 8), scale=None, class_uniform=0.5,
                                          draws=1)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        crop_class_share.crop_class_share(_labels(), num_classes=3, ignore_label=IGNORE,
                                          crop_size=(8, 8), scale=None, class_uniform=0.5,
                                          draws=1, batch_size=0)
    with pytest.raises(ValueError, match="draws must be >= 1"):
        crop_class_share.crop_class_share(_labels(), num_classes=3, ignore_label=IGNORE,
                                          crop_size=(8, 8), scale=None, class_uniform=0.5,
                                          draws=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("crop_share")
    return write_synthetic_dataset(root / "ds", num_train=3, num_val=1, height=40, width=48)


@pytest.mark.jax
def test_cli_prints_one_row_per_class(data, capsys):
    from deconvnet_tf.data.sources import open_source

    names = open_source(data).info.class_names
    assert crop_class_share.main(["--data", str(data), "--split", "train", "--crop-size",
                                  "16x24", "--scale-range", "0.5", "2", "--class-uniform", "0",
                                  "1", "--draws", "30"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == ("| class | pixels % (p=0) | crops % (p=0) | pixels % (p=1) | "
                        "crops % (p=1) |")
    assert [line.split(" | ")[0][2:] for line in lines[2:]] == list(names)
    pixel_shares = np.array([[float(v) for v in line.strip("| ").split(" | ")[1::2]]
                             for line in lines[2:]])
    np.testing.assert_allclose(pixel_shares.sum(axis=0), 100, atol=0.05 * len(names))


@pytest.mark.jax
def test_cli_class_paste_columns_name_the_rare_classes(data, capsys):
    from deconvnet_tf.data.sources import open_source
    from deconvnet_tf.training.losses import rare_classes

    source = open_source(data)
    rare = rare_classes(*source.validate("train"))
    assert crop_class_share.main(["--data", str(data), "--crop-size", "16x24", "--class-uniform",
                                  "0", "--class-paste", "0.5", "--draws", "24"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "class paste of: " + ", ".join(source.info.class_names[c] for c in rare)
    assert lines[1] == ("| class | pixels % (p=0) | crops % (p=0) | pixels % (paste=0.5) | "
                        "crops % (paste=0.5) |")


@pytest.mark.jax
@pytest.mark.parametrize("args, message", [
    (["--crop-size", "16x24", "--draws", "0"], r"--draws must be >= 1, got 0"),
    (["--crop-size", "16x24", "--batch-size", "0"], r"--batch-size must be >= 1, got 0"),
    (["--crop-size", "16x24", "--class-paste", "1.5"], r"expected a number in \[0, 1\]"),
    (["--crop-size", "16x24", "--class-uniform", "2"], r"expected a number in \[0, 1\], got '2'"),
    (["--crop-size", "16x24", "--scale-range", "2", "1"], r"--scale-range must be MIN MAX"),
    (["--crop-size", "16"], r"--crop-size"),
    ([], r"--crop-size"),
])
def test_bad_arguments(data, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        crop_class_share.main(["--data", str(data), *args])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.jax
@pytest.mark.parametrize("split", ["nope", "train[zzz]"])
def test_missing_data_or_split_is_one_clear_line(data, capsys, tmp_path, split):
    assert crop_class_share.main(["--data", str(tmp_path / "missing"), "--crop-size",
                                  "16x24"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crop_class_share: error: ") and "Traceback" not in err
    assert crop_class_share.main(["--data", str(data), "--split", split, "--crop-size",
                                  "16x24"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crop_class_share: error: ") and len(err.strip().splitlines()) == 1


@pytest.mark.jax
def test_paste_classes_outside_the_dataset_are_one_clear_line(data, capsys):
    assert crop_class_share.main(["--data", str(data), "--crop-size", "16x24", "--class-paste",
                                  "0.5", "--class-paste-classes", "1", "99"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crop_class_share: error: --class-paste-classes: [99] are not "
                          "classes of the dataset") and len(err.strip().splitlines()) == 1
