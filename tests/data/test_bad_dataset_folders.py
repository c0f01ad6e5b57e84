"""Dataset folders with unusual or malformed content (the folder layout, docs/training.md,
"Data sources"): what the format allows reads correctly, and the same in every reader (the
validation pass, the tf.data pipeline, the PyDataset, evaluation's NumPy examples); anything else
is a ``DatasetError`` naming the file and what was expected, raised when the split is opened or
validated, before training; the folder is never written."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deconvnet_tf.data.base import DatasetError
from deconvnet_tf.data.folder import folder_dataset, read_meta
from deconvnet_tf.data.pydataset import make_pydataset
from deconvnet_tf.data.sources import open_source
from deconvnet_tf.data.stats import color_statistics
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from tests.cli.corpus import assert_one_line_error, run_main
from tests.conftest import requires_tf

pytestmark = requires_tf  # the tf.data pipeline is one of the readers compared


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("pristine") / "ds", num_train=4,
                                   num_val=2, height=32, width=32)


@pytest.fixture
def data(pristine, tmp_path):
    """A fresh copy of the 4 + 2 example dataset (5 classes, ignore label 255) to break."""
    root = tmp_path / "ds"
    shutil.copytree(pristine, root)
    return root


def _first(root: Path, kind: str = "labels") -> Path:
    return sorted((root / "train" / kind).iterdir())[0]


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _stems(root: Path) -> list[str]:
    return (root / "train.txt").read_text().split()


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _exif_jpeg(path: Path, stored: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(stored)).save(path, "JPEG", quality=95,
                                                       exif=exif.tobytes())


def _image_as_jpeg(root: Path, suffix: str = ".jpg", orientation: int | None = None) -> Path:
    """The first training image re-saved as a JPEG named ``<stem><suffix>``."""
    png = _first(root, "images")
    pixels = np.asarray(Image.open(png).convert("RGB"))
    jpeg = png.with_suffix(suffix)
    if orientation is None:
        Image.fromarray(pixels).save(jpeg, "JPEG", quality=95)
    else:  # stored turned: a viewer applying the tag shows the original pixels
        _exif_jpeg(jpeg, pixels[::-1, ::-1] if orientation == 3 else np.rot90(pixels, 1),
                   orientation)
    png.unlink()
    return jpeg


def _save_label(root: Path, array: np.ndarray, **kwargs) -> None:
    Image.fromarray(array, **kwargs).save(_first(root))


def _palette_labels(root: Path) -> None:
    """Every training label as a palette PNG whose indices are the classes (VOC, labelme)."""
    for path in sorted((root / "train" / "labels").iterdir()):
        indices = _pixels(path)
        image = Image.new("P", (indices.shape[1], indices.shape[0]))
        image.putpalette([(i * 37 + c * 91) % 256 for i in range(256) for c in range(3)])
        image.putdata(indices.ravel().tolist())
        image.save(path)


def _move_into(root: Path, stem: str, folder: str, name: str) -> None:
    for kind in ("images", "labels", "instances"):
        (root / "train" / kind / folder).mkdir(exist_ok=True)
        (root / "train" / kind / f"{stem}.png").rename(root / "train" / kind / folder / name)


def _write_meta(root: Path, **changes) -> None:
    meta = json.loads((root / "meta.json").read_text())
    meta.update(changes)
    (root / "meta.json").write_text(json.dumps(meta))


# --------------------------------------------------------------------------- refused folders
REFUSED = {
    # labels: only 8-bit greyscale or palette PNGs hold class indices as they decode
    "label-rgb-colour-coded": (
        lambda r: _save_label(r, np.stack([_pixels(_first(r)) * 40] * 3, -1)),
        r"Label '.*train_00000\.png' is an 8-bit RGB PNG: expected 8-bit greyscale \(or palette\) "
        r"class indices \(a colour-coded label\?"),
    "label-rgba": (lambda r: _save_label(r, np.stack([_pixels(_first(r))] * 4, -1)),
                   r"train_00000\.png' is an 8-bit RGBA PNG"),
    "label-grey-alpha": (
        lambda r: _save_label(r, np.stack([_pixels(_first(r))] * 2, -1), mode="LA"),
        r"train_00000\.png' is an 8-bit greyscale\+alpha PNG"),
    "label-16-bit": (lambda r: _save_label(r, _pixels(_first(r)).astype(np.uint16)),
                     r"train_00000\.png' is a 16-bit greyscale PNG: expected 8-bit .*decode "
                     r"scaled"),
    "label-1-bit": (lambda r: _save_label(r, _pixels(_first(r)) > 0),
                    r"train_00000\.png' is a 1-bit greyscale PNG: expected 8-bit"),
    "label-jpeg-named-png": (
        lambda r: Image.fromarray(_pixels(_first(r))).save(_first(r), "JPEG"),
        r"train_00000\.png' is a JPEG: expected a PNG of class indices"),
    "label-above-the-classes": (  # documented: neither a class nor the ignore label
        lambda r: _save_label(r, np.where(np.eye(32, dtype=bool), 7, _pixels(_first(r)))
                              .astype(np.uint8)),
        r"train_00000\.png' has value\(s\) \[7\] outside \[0, 5\)"),
    "label-other-size": (lambda r: _save_label(r, _pixels(_first(r))[:, :16].copy()),
                         r"Size mismatch: image .*train_00000\.png' is 32x32 but label"),
    # images: what TensorFlow decodes to the pixels OpenCV decodes
    "image-tiff-named-png": (
        lambda r: Image.open(_first(r, "images")).convert("RGB").save(_first(r, "images"), "TIFF"),
        r"Image '.*train_00000\.png' is a TIFF file: expected a JPEG or PNG image"),
    "image-exif-turned-180": (lambda r: _image_as_jpeg(r, orientation=3),
                              r"Image '.*train_00000\.jpg' has EXIF orientation 3 \(shown turned "
                              r"180 degrees\): .*stored or the shown pixels"),
    "image-exif-turned-90": (lambda r: _image_as_jpeg(r, orientation=6),
                             r"train_00000\.jpg' has EXIF orientation 6"),
    # split files
    "split-not-utf8": (lambda r: (r / "train.txt").write_bytes(b"train_00000\ncaf\xe9\n"),
                       r"Split file '.*train\.txt' is not UTF-8 text \(byte 15\)"),
    "split-duplicate-stem": (
        lambda r: (r / "train.txt").write_text("\n".join(_stems(r) + _stems(r)[:1])),
        r"train\.txt' lists 'train_00000' twice \(lines 1 and 5\)"),
    "split-absolute-path": (
        lambda r: (r / "train.txt").write_text(str(r / "train/images/train_00000") + "\n"),
        r"train\.txt', line 1: '.*train_00000' is an absolute path; expected a stem"),
    "split-file-names-not-stems": (
        lambda r: (r / "train.txt").write_text("".join(f"{s}.png\n" for s in _stems(r))),
        r"No image for 'train_00000\.png' .*; list stems without the extension"),
}

#: Cases whose files read fine (the error is about their values: evaluate checks them per image)
_VALUE_ERRORS = ("label-above-the-classes",)


@pytest.mark.parametrize("case", list(REFUSED))
def test_every_reader_refuses_naming_the_file(data, case):
    breaker, message = REFUSED[case]
    breaker(data)
    before = _snapshot(data)
    readers = {
        "validate (train, evaluate)": lambda: open_source(data).validate("train"),
        "folder_dataset": lambda: folder_dataset(data, "train"),
        "make_pydataset": lambda: make_pydataset(data, "train", crop_size=(32, 32),
                                                 batch_size=2),
    }
    if case not in _VALUE_ERRORS:
        readers["numpy_examples (evaluate)"] = lambda: list(
            open_source(data).numpy_examples("train"))
        readers["color_statistics"] = lambda: color_statistics(open_source(data), "train")
    for name, read in readers.items():
        with pytest.raises(DatasetError, match=message):
            read()
    assert _snapshot(data) == before, "the dataset folder was written"


@pytest.mark.parametrize("changes, message", [
    ({"ignore_label": 1}, r"'ignore_label' 1 is one of the 5 classes \[0, 5\); the ignore label "
                          r"must lie outside them"),
    ({"ignore_label": None, "void_label": 0}, r"'void_label' 0 is one of the 5 classes"),
    ({"ignore_label": -1}, r"'ignore_label' must be an integer in 0\.\.255 .*got -1"),
    ({"ignore_label": 256}, r"'ignore_label' must be an integer in 0\.\.255 .*got 256"),
    ({"ignore_label": "void"}, r"'ignore_label' must be an integer in 0\.\.255 .*got 'void'"),
    ({"ignore_label": 254.5}, r"'ignore_label' must be an integer .*got 254\.5"),
    ({"ignore_label": True}, r"'ignore_label' must be an integer .*got True"),
    ({"void_label": 11}, r"'ignore_label' 255 and 'void_label' 11 disagree"),
    ({"classes": ["a", None, "c", "d", "e"]}, r"'classes' must be a list of class names "
                                              r"\(strings\), found None"),
    ({"classes": [{"name": "a"}]}, r"'classes' must be a list .*found \{'name': 'a'\}"),
    ({"classes": ["a", "b", "a", "d", "e"]}, r"'classes' names \['a'\] more than once"),
    ({"num_classes": 7}, r"'num_classes' is 7 but 'classes' names 5"),
    ({"classes": "sky,road"}, r"'classes' must be a non-empty list of class names"),
], ids=["ignore-inside-the-classes", "void-0", "ignore-negative", "ignore-256", "ignore-text",
        "ignore-fraction", "ignore-bool", "ignore-and-void-disagree", "class-name-null",
        "class-name-object", "class-names-twice", "num-classes-disagrees", "classes-a-string"])
def test_bad_meta_json_names_the_file(data, changes, message):
    _write_meta(data, **changes)
    for read in (read_meta, open_source):
        with pytest.raises(DatasetError, match=r"meta\.json': " + message):
            read(data)


@pytest.mark.parametrize("content, message", [
    (b"[1, 2]", r"meta\.json': expected a JSON object with 'classes', got list"),
    ('{"classes": ["caf\u00e9"]}'.encode("latin-1"), r"meta\.json' is not UTF-8 text"),
    ('{"classes": ["a"]}'.encode("utf-16"), r"meta\.json' is not UTF-8 text \(byte 0\)"),
], ids=["a-list", "latin-1", "utf-16"])
def test_meta_json_that_is_not_a_utf8_object(data, content, message):
    (data / "meta.json").write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        open_source(data)


# --------------------------------------------------------------------------- accepted folders
def _upper_case_suffixes(root: Path) -> None:
    _image_as_jpeg(root, ".JPG")
    image = sorted((root / "train" / "images").iterdir())[1]
    image.rename(image.with_suffix(".PNG"))
    label = sorted((root / "train" / "labels").iterdir())[2]
    label.rename(label.with_suffix(".PNG"))


def _subfolder_stems(root: Path) -> None:
    stems = _stems(root)
    _move_into(root, stems[0], "seq_a", "frame.png")
    _move_into(root, stems[1], "seq_b", "frame.png")
    (root / "train.txt").write_text("\n".join(["seq_a/frame", "seq_b/frame"] + stems[2:]))


def _dotted_stem(root: Path) -> None:
    stems = _stems(root)
    for kind in ("images", "labels", "instances"):
        (root / "train" / kind / f"{stems[0]}.png").rename(
            root / "train" / kind / f"{stems[0]}.v2.png")
    (root / "train.txt").write_text("\n".join([f"{stems[0]}.v2"] + stems[1:]))


ACCEPTED = {
    "split-crlf": lambda r: (r / "train.txt").write_bytes(
        "\r\n".join(_stems(r)).encode() + b"\r\n"),
    "split-utf8-bom": lambda r: (r / "train.txt").write_bytes(
        b"\xef\xbb\xbf" + "\n".join(_stems(r)).encode()),
    "split-spaces-and-blank-lines": lambda r: (r / "train.txt").write_text(
        "\n\n" + "".join(f"  {s} \t\n\n" for s in _stems(r))),
    "split-subfolder-stems": _subfolder_stems,
    "split-dotted-stem": _dotted_stem,
    "meta-utf8-bom": lambda r: (r / "meta.json").write_bytes(
        b"\xef\xbb\xbf" + (r / "meta.json").read_bytes()),
    "meta-unknown-fields": lambda r: _write_meta(r, palette=[[0, 0, 0]] * 3, notes={"a": 1}),
    "meta-void-label-key": lambda r: _write_meta(r, ignore_label=None, void_label=255),
    "labels-palette-png": _palette_labels,
    "upper-case-suffixes": _upper_case_suffixes,
    "image-grey": lambda r: Image.open(_first(r, "images")).convert("L").save(
        _first(r, "images")),
    "image-rgba": lambda r: Image.open(_first(r, "images")).convert("RGBA").save(
        _first(r, "images")),
    "image-16-bit": lambda r: Image.fromarray(
        np.asarray(Image.open(_first(r, "images")).convert("L")).astype(np.uint16) * 257
    ).save(_first(r, "images")),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_allowed_variants_read_the_same_everywhere(pristine, data, case):
    """The class statistics equal the intact dataset's, and tf.data gives each example the
    labels (exactly) and image size that validation and evaluation read."""
    expected = open_source(pristine).validate("train")
    ACCEPTED[case](data)
    before = _snapshot(data)
    source = open_source(data)
    assert source.info.num_classes == 5 and source.info.ignore_label == 255
    for got, want in zip(source.validate("train"), expected):
        np.testing.assert_array_equal(got, want)
    numpy = list(source.numpy_examples("train"))
    tf_data = [(i.numpy(), lab.numpy()) for i, lab in source.dataset("train")]
    assert len(numpy) == len(tf_data) == 4
    for (image, label), (tf_image, tf_label) in zip(numpy, tf_data):
        assert tf_image.shape == image.shape
        np.testing.assert_array_equal(tf_label, label)
    images, labels = make_pydataset(data, "train", crop_size=(32, 32), batch_size=4)[0]
    assert images.shape == (4, 32, 32, 3) and set(np.unique(labels)) <= {0, 1, 2, 3, 4, 255}
    assert _snapshot(data) == before


def test_instances_of_subfolder_stems_are_their_own(data):
    """Stems ``seq_a/frame`` and ``seq_b/frame`` have instance files ``instances/seq_a/frame.png``
    and ``instances/seq_b/frame.png`` (not both ``instances/frame.png``)."""
    _subfolder_stems(data)
    records = open_source(data).records("train")
    assert [r.instances.relative_to(data / "train" / "instances").as_posix()
            for r in records[:2]] == ["seq_a/frame.png", "seq_b/frame.png"]


def test_unvalidated_tf_data_fails_naming_the_file(data):
    """``source.dataset`` without validation: a label no reader accepts, or an image and label
    of different sizes, stop the pipeline with the file's name (not garbage labels)."""
    import tensorflow as tf

    _save_label(data, np.stack([_pixels(_first(data))] * 3, -1))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"train_00000\.png' is an 8-bit "
                                                              r"RGB PNG"):
        list(open_source(data).dataset("train"))
    _save_label(data, np.zeros((32, 16), np.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Size mismatch: image\] "
                                                              r"\[.*train_00000\.png\]"):
        list(folder_dataset(data, "train", validate=False))


def test_paper_table_refuses_label_values_outside_the_classes(data):
    """``compare_methods`` (tools/paper_table.py) checks label values as evaluate does."""
    from deconvnet_tf.evaluation.compare import compare_methods
    from deconvnet_tf.inference.predict import Predictor

    REFUSED["label-above-the-classes"][0](data)
    uniform = Predictor(lambda batch: np.full(batch.shape[:3] + (5,), 0.2, np.float32),
                        outputs="probabilities", name="uniform")
    with pytest.raises(DatasetError, match=r"train_00000\.png' has value\(s\) \[7\] outside"):
        compare_methods(uniform, data, "train", methods=["deconvnet_whole"], progress=False)


# --------------------------------------------------------------------------- console scripts
TRAIN = ["--preset", "deconvnet_tiny", "--epochs", "1", "--batch-size", "2", "--quiet",
         "--no-eval", "--set", "crop_size=[32,32]", "--set", "steps_per_epoch=1"]


@pytest.mark.parametrize("case, needles", [
    ("label-16-bit", ["train_00000.png", "16-bit greyscale png", "expected 8-bit"]),
    ("image-exif-turned-180", ["train_00000.jpg", "exif orientation 3"]),
    ("split-not-utf8", ["train.txt", "not utf-8 text"]),
    ("meta-ignore-text", ["meta.json", "'ignore_label' must be an integer", "'void'"]),
])
def test_train_cli_stops_with_one_line(data, tmp_path, case, needles):
    from deconvnet_tf.cli import train as train_cli

    if case == "meta-ignore-text":
        _write_meta(data, ignore_label="void")
    else:
        REFUSED[case][0](data)
    run = tmp_path / "run"
    outcome = run_main(train_cli.main, TRAIN + ["--data", str(data), "--output", str(run)])
    assert_one_line_error(outcome, *needles)
    assert not run.exists()


@pytest.fixture(scope="module")
def five_class_model(tmp_path_factory):
    import deconvnet_tf

    path = tmp_path_factory.mktemp("model") / "five.keras"
    deconvnet_tf.build_model("deconvnet_tiny", num_classes=5).save(path)
    return path


@pytest.mark.parametrize("case, needles", [
    ("labels-palette-png", None),
    ("label-16-bit", ["train_00000.png", "16-bit greyscale png"]),
    ("split-duplicate-stem", ["train.txt", "lists 'train_00000' twice"]),
])
def test_evaluate_cli(data, tmp_path, five_class_model, case, needles):
    from deconvnet_tf.cli import evaluate as evaluate_cli

    (ACCEPTED.get(case) or REFUSED.get(case, (None,))[0])(data)
    outcome = run_main(evaluate_cli.main, ["--model", str(five_class_model), "--data", str(data),
                                           "--split", "train", "--output", str(tmp_path / "ev")])
    if needles is None:
        assert outcome.code == 0, outcome.stderr
        assert json.loads((tmp_path / "ev" / "metrics.json").read_text())
    else:
        assert_one_line_error(outcome, *needles)
