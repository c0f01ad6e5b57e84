"""Behaviour of deconvnet_tf.io pinned by mutation testing (mutmut survivors of the size_rule
group): JPEG/PNG/BMP/WebP walk edges, exact messages, defaults and class-count edges."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from deconvnet_tf import io
from deconvnet_tf.io import check_image_bytes

pytestmark = pytest.mark.jax  # no TensorFlow

SOI, EOI = b"\xff\xd8", b"\xff\xd9"
SOS = b"\xff\xda\x00\x02"  # a start of scan with an empty header
TRUNCATED = "truncated JPEG (the file ends before its end-of-image marker)"
SUFFIXES = ".jpg, .jpeg, .png, .bmp, .tif, .tiff, .webp"


def _png(tmp_path, name, marked=False):
    ok, data = cv2.imencode(".png", np.zeros((2, 2), np.uint8))
    data = data.tobytes()
    path = tmp_path / name
    path.write_bytes(io.mark_png(data) if marked else data)
    return path


def _check_in_time(data, seconds=5.0):
    """check_image_bytes in a thread: a walk that stops advancing fails the test, not the run."""
    result = []
    worker = threading.Thread(target=lambda: result.append(check_image_bytes(data)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert result, "check_image_bytes did not finish"
    return result[0]


# ------------------------------------------------------------------------------ JPEG walk
@pytest.mark.parametrize("data, problem", [
    (SOI + b"\xff\x00" + EOI, None),          # FF 00 between segments: no length field
    (SOI + SOI + EOI, None),                   # a repeated SOI: no length field
    (SOI + b"\xff\xd7" + EOI, None),           # RST7: no length field
    (SOI + b"\xff\xd0", TRUNCATED),            # ends after a marker without length
    (SOI + b"\xff\xe0\x00\x02" + EOI, None),   # the smallest segment (length 2, no payload)
    (SOI + b"\xff\xe0\x00\x01", "corrupt JPEG (segment 0xFFE0 has length 1)"),  # at the end
    # stray bytes, then a bad segment: the walk resumes at the first 0xFF, not the last
    (SOI + b"\x12\x34\xff\xe0\x00\x01" + EOI, "corrupt JPEG (segment 0xFFE0 has length 1)"),
    (SOI + SOS + b"\x12\x00" + EOI, None),     # scan data ending in 0x00 before EOI
])
def test_jpeg_walk_edges(data, problem):
    assert check_image_bytes(data) == problem


def test_jpeg_fill_bytes_in_scan_data():
    assert _check_in_time(SOI + SOS + b"\x12\xff\xff\xd9") is None


# ------------------------------------------------------------------------------ PNG, BMP, WebP
def test_png_bad_checksum_of_a_non_alphabetic_chunk_type():
    ok, data = cv2.imencode(".png", np.zeros((2, 2), np.uint8))
    data = bytearray(data.tobytes())
    data[12:16] = b"IH1R"  # the type of the first chunk; its CRC no longer matches
    assert check_image_bytes(bytes(data)) == "corrupt PNG (bad checksum in chunk b'IH1R')"


def test_bmp_and_riff_headers():
    assert check_image_bytes(b"BM" + (100).to_bytes(4, "little")) == "truncated BMP (6 of 100 bytes)"
    # the size is the 4 bytes at 2..5; the reserved bytes after it are not part of it
    assert check_image_bytes(b"BM" + (10).to_bytes(4, "little") + b"\x01\x00\x00\x00") is None
    # a RIFF file that is not WebP (WAVE) is left to the decoder
    assert check_image_bytes(b"RIFF" + (100).to_bytes(4, "little") + b"WAVE") is None


# ------------------------------------------------------------------------------ read_image
def test_read_image_os_error_message(tmp_path):
    parent = tmp_path / "file.png"
    parent.write_bytes(b"x")
    with pytest.raises(io.ImageReadError) as err:
        io.read_image(parent / "x.png")
    assert str(err.value) == f"Cannot read image {str(parent / 'x.png')!r}: Not a directory"


def test_read_image_decoder_error_message(tmp_path, monkeypatch):
    path = _png(tmp_path, "a.png")

    def fail(*args):
        raise cv2.error("OpenCV(4.x) imgcodecs.cpp:1: error: (-215:Assertion failed)\n"
                        "first detail\nlast detail\n")

    monkeypatch.setattr(cv2, "imdecode", fail)
    with pytest.raises(io.ImageReadError) as err:
        io.read_image(path)
    assert str(err.value) == f"Cannot read image {str(path)!r}: last detail"


def test_read_image_of_one_pixel(tmp_path):
    ok, data = cv2.imencode(".png", np.full((1, 1), 9, np.uint8))
    path = tmp_path / "one.png"
    path.write_bytes(data.tobytes())
    assert io.read_image(path, unchanged=True).tolist() == [[9]]


# ------------------------------------------------------------------------------ listing inputs
def test_mark_png_needs_signature_and_ihdr():
    for data in (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, b"\x00" * 8 + b"\x00\x00\x00\x0dIHDR"):
        with pytest.raises(ValueError) as err:
            io.mark_png(data)
        assert str(err.value) == "mark_png: not a PNG starting with its IHDR chunk"


def test_is_project_output_of_a_missing_file(tmp_path):
    assert io.is_project_output(tmp_path / "missing.png") is False


def test_list_images_messages(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError) as err:
        io.list_images(empty)
    assert str(err.value) == f"No images ({SUFFIXES}) in folder {str(empty)!r}"
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    _png(outputs, "a.png", marked=True), _png(outputs, "b.png", marked=True)
    with pytest.raises(ValueError) as err:
        io.list_images(outputs)
    assert str(err.value) == (f"No images ({SUFFIXES}) in folder {str(outputs)!r}; 2 file(s) "
                              "there are outputs of deconvnet-tf and are not read")
    text = tmp_path / "notes.txt"
    text.write_text("x")
    with pytest.raises(ValueError) as err:
        io.list_images(text)
    assert str(err.value) == f"{str(text)!r} is not an image file ({SUFFIXES})"


def test_list_images_of_two_folders(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first, second = _png(tmp_path / "a", "1.png"), _png(tmp_path / "b", "2.png")
    assert io.list_images([tmp_path / "a", tmp_path / "b"]) == [first, second]


# ------------------------------------------------------------------------------ writing outputs
def test_ensure_output_dir_reason_without_strerror(tmp_path, monkeypatch):
    def refuse(**kwargs):
        raise OSError("disk says no")

    monkeypatch.setattr(io.tempfile, "mkstemp", refuse)
    with pytest.raises(io.OutputError) as err:
        io.ensure_output_dir(tmp_path)
    assert str(err.value) == f"--output {str(tmp_path)!r}: cannot write there (disk says no)"


def test_save_npy_overwrites_by_default_and_refuses_pickles(tmp_path):
    path = tmp_path / "a.npy"
    io.save_npy(path, np.zeros(2))
    io.save_npy(path, np.ones(2))
    np.testing.assert_array_equal(np.load(path), np.ones(2))
    with pytest.raises(ValueError, match="Object arrays cannot be saved when allow_pickle=False"):
        io.save_npy(tmp_path / "b.npy", np.array([{}], object))


# ------------------------------------------------------------------------------ size rule
def test_plan_size_and_fit_image_defaults():
    assert io.plan_size(1, 1).padded == (1, 1)
    plan = io.plan_size(1, 1, min_size=2)
    out = io.fit_image(np.full((1, 1, 3), 7, np.uint8), plan)
    assert out[..., 0].tolist() == [[7, 0], [0, 0]]


def test_upscale_labels_class_edges():
    # 257 classes: labels above 255 need int32
    probabilities = np.zeros((1, 1, 257), np.float32)
    probabilities[..., 256] = 1
    labels = io.upscale_labels(probabilities, 2, 2)
    assert labels.dtype == np.int32 and labels.tolist() == [[256, 256], [256, 256]]
    # the scores are compared in float32: a float64 difference below its precision is a tie,
    # and ties go to the lowest class
    tie = np.array([[[0.5, 0.5 + 1e-12]]])
    assert io.upscale_labels(tie, 2, 2).tolist() == [[0, 0], [0, 0]]


def test_upscale_labels_dtype_is_the_same_with_and_without_resizing():
    # the same-size shortcut returns the documented dtype too (uint8; int32 above 256 classes)
    for classes, dtype in ((3, np.uint8), (300, np.int32)):
        probabilities = np.random.default_rng(classes).random((2, 3, classes), np.float32)
        same = io.upscale_labels(probabilities, 2, 3)
        assert same.dtype == dtype == io.upscale_labels(probabilities, 4, 6).dtype
        np.testing.assert_array_equal(same, probabilities.argmax(-1))


def test_upscale_labels_of_many_classes_on_a_tall_image():
    # 4096 classes at 5000 x 1: the classes are resized in groups of an int size
    probabilities = np.zeros((2, 1, 4096), np.float32)
    probabilities[..., 4000] = 1
    labels = io.upscale_labels(probabilities, 5000, 1)
    assert labels.shape == (5000, 1) and set(np.unique(labels)) == {4000}


# ------------------------------------------------------------------------------ class names
def test_find_class_names_relative_data_from_the_working_folder(tmp_path, monkeypatch):
    data = tmp_path / "cwd" / "rel" / "ds"
    data.mkdir(parents=True)
    (data / "meta.json").write_text(json.dumps({"classes": ["sky", "road"]}))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"data": "rel/ds"}))
    monkeypatch.chdir(tmp_path / "cwd")
    assert io.find_class_names(run / "model.keras") == ["sky", "road"]


def test_find_class_names_skips_a_tfds_config_next_to_the_model(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "config.json").write_text(json.dumps({"tfds": "voc"}))
    (run / "config.json").write_text(json.dumps({}))
    (run / "synthetic_data").mkdir()
    (run / "synthetic_data" / "meta.json").write_text(json.dumps({"classes": ["a", "b"]}))
    assert io.find_class_names(run / "checkpoints" / "m.keras") == ["a", "b"]
