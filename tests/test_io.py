"""deconvnet_tf.io: strict image reading, input listing, no-clobber atomic writes and the size
rule shared by the Keras, SavedModel and LiteRT predictors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from deconvnet_tf import io


def _scene(height=30, width=40, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3)).astype(np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _encode(ext, array, params=()):
    ok, data = cv2.imencode(ext, array, list(params))
    assert ok
    return data.tobytes()


def test_io_imports_neither_tensorflow_nor_keras():
    script = ("import sys, deconvnet_tf.io; "
              "print(sorted(m for m in sys.modules if m.split('.')[0] in "
              "('tensorflow', 'keras', 'jax')))")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    # deconvnet_tf/__init__ imports Keras when it is installed; io itself must not need it.
    blocked = ("import importlib.abc, sys\n"
               "class B(importlib.abc.MetaPathFinder):\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name.split('.')[0] in ('tensorflow', 'keras', 'jax'):\n"
               "            raise ImportError(name)\n"
               "sys.meta_path.insert(0, B())\n" + script.replace("; ", "\n"))
    out = subprocess.run([sys.executable, "-c", blocked], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("kind", ["jpeg", "progressive_jpeg", "png", "bmp", "webp"])
def test_truncated_files_are_errors_naming_the_file(tmp_path, kind):
    image = _scene(60, 80)
    ext, params = {"jpeg": (".jpg", ()),
                   "progressive_jpeg": (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
                   "png": (".png", ()), "bmp": (".bmp", ()),
                   "webp": (".webp", (cv2.IMWRITE_WEBP_QUALITY, 90))}[kind]
    data = _encode(ext, image, params)
    whole = tmp_path / f"whole{ext}"
    whole.write_bytes(data)
    assert io.read_image(whole).shape == (60, 80, 3)
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(io.ImageReadError, match=rf"Cannot read image '.*cut\{ext}': truncated"):
        io.read_image(cut)


def test_corrupt_and_non_image_files(tmp_path):
    data = bytearray(_encode(".png", _scene()))
    data[60] ^= 0xFF  # inside the IDAT chunk
    (tmp_path / "flipped.png").write_bytes(bytes(data))
    with pytest.raises(io.ImageReadError, match="flipped.png': corrupt PNG .*chunk IDAT"):
        io.read_image(tmp_path / "flipped.png")
    (tmp_path / "text.jpg").write_text("hello, not a picture")
    with pytest.raises(io.ImageReadError, match="text.jpg': corrupt, unsupported or not"):
        io.read_image(tmp_path / "text.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(io.ImageReadError, match="empty.png': empty file"):
        io.read_image(tmp_path / "empty.png")
    with pytest.raises(io.ImageReadError, match="missing.png': no such file"):
        io.read_image(tmp_path / "missing.png")
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(io.ImageReadError, match="folder.png': it is a folder"):
        io.read_image(tmp_path / "folder.png")


def test_jpeg_with_exif_thumbnail_and_trailing_bytes_reads(tmp_path):
    from PIL import Image

    image = _scene(64, 48)
    exif = Image.Exif()
    exif[0x0112] = 1
    thumb = Image.fromarray(image).resize((12, 16))
    buffer = tmp_path / "t.jpg"
    thumb.save(buffer)
    # An APP1 segment holding a complete JPEG (its own end marker) precedes the real image.
    app1 = b"Exif\x00\x00" + buffer.read_bytes()
    main = Image.fromarray(image)
    main.save(tmp_path / "m.jpg", exif=exif)
    data = (tmp_path / "m.jpg").read_bytes()
    segment = b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1
    (tmp_path / "thumb.jpg").write_bytes(data[:2] + segment + data[2:] + b"trailer")
    assert io.read_image(tmp_path / "thumb.jpg").shape == (64, 48, 3)
    truncated = data[:2] + segment + data[2:len(data) // 2]
    (tmp_path / "cut.jpg").write_bytes(truncated)  # the thumbnail's end marker does not count
    with pytest.raises(io.ImageReadError, match="truncated JPEG"):
        io.read_image(tmp_path / "cut.jpg")


def test_grey_rgba_and_16_bit_images_come_back_as_8_bit_rgb(tmp_path):
    rgb = _scene()
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    np.testing.assert_array_equal(io.read_image(tmp_path / "grey.png"), np.dstack([grey] * 3))
    rgba = np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 9, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    np.testing.assert_array_equal(io.read_image(tmp_path / "rgba.png"), rgb)
    deep = rgb.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "deep.png"), deep[..., ::-1])
    np.testing.assert_array_equal(io.read_image(tmp_path / "deep.png"), rgb)
    label = io.read_image(tmp_path / "deep.png", unchanged=True)
    assert label.dtype == np.uint16 and label.shape == (30, 40, 3)


def test_list_images_skips_project_outputs_in_folders_only(tmp_path):
    from deconvnet_tf.render import save_png

    save_png(tmp_path / "photo.png", _scene())
    save_png(tmp_path / "photo_color.png", _scene(), mark=True)
    (tmp_path / "notes.txt").write_text("x")
    assert io.is_project_output(tmp_path / "photo_color.png")
    assert not io.is_project_output(tmp_path / "photo.png")
    assert io.list_images(tmp_path) == [tmp_path / "photo.png"]
    # Named explicitly, an output is read like any image (and decodes normally).
    assert io.list_images(tmp_path / "photo_color.png") == [tmp_path / "photo_color.png"]
    np.testing.assert_array_equal(io.read_image(tmp_path / "photo_color.png"), _scene())
    (tmp_path / "photo.png").unlink()
    with pytest.raises(ValueError, match="1 file.s. there are outputs of deconvnet-tf"):
        io.list_images(tmp_path)
    with pytest.raises(FileNotFoundError, match="Input not found: .*nope' does not exist"):
        io.list_images(tmp_path / "nope")


def test_plan_size_is_one_rule():
    plan = io.plan_size(3000, 4000, max_pixels=2_000_000)
    assert plan.scaled == plan.padded == (1224, 1632) and plan.downscaled
    assert plan.scaled[0] * plan.scaled[1] <= 2_000_000
    assert io.plan_size(100, 200, max_pixels=20_000).identity  # at the budget: unchanged
    small = io.plan_size(9, 30, min_size=17, max_pixels=2_000_000)
    assert small.scaled == (9, 30) and small.padded == (17, 30) and not small.downscaled
    fixed = io.plan_size(3000, 4000, input_size=(64, 96), min_size=17, max_pixels=10)
    assert fixed.scaled == fixed.padded == (64, 96) and not fixed.downscaled
    thin = io.plan_size(10, 100_000, min_size=17, max_pixels=100_000)
    assert thin.scaled == (3, 31622) and thin.padded == (17, 31622)
    with pytest.raises(ValueError, match="max_pixels must be >= 1"):
        io.plan_size(5, 5, max_pixels=0)


def test_fit_image_and_restore_scores_invert_each_other():
    image = _scene(40, 60).astype(np.float32)
    plan = io.plan_size(40, 60, min_size=32, max_pixels=600)
    assert plan.scaled == (20, 30) and plan.padded == (32, 32)
    fitted = io.fit_image(image, plan, (1.0, 2.0, 3.0))
    assert fitted.shape == (32, 32, 3)
    np.testing.assert_allclose(fitted[:20, :30],
                               cv2.resize(image, (30, 20), interpolation=cv2.INTER_AREA))
    np.testing.assert_array_equal(fitted[20:, :], np.broadcast_to([1.0, 2.0, 3.0], (12, 32, 3)))
    np.testing.assert_array_equal(fitted[:, 30:], np.broadcast_to([1.0, 2.0, 3.0], (32, 2, 3)))
    scores = np.random.default_rng(0).random((32, 32, 7)).astype(np.float32)
    back = io.restore_scores(scores, plan)
    np.testing.assert_allclose(back, cv2.resize(scores[:20, :30], (60, 40)), atol=1e-6)


def test_upscale_labels_is_the_argmax_of_the_resized_probabilities():
    rng = np.random.default_rng(3)
    probs = rng.random((12, 16, 5)).astype(np.float32)
    probs /= probs.sum(-1, keepdims=True)
    labels = io.upscale_labels(probs, 36, 50)
    np.testing.assert_array_equal(labels, cv2.resize(probs, (50, 36)).argmax(-1))
    many = rng.random((6, 8, 600)).astype(np.float32)  # more classes than OpenCV channels
    np.testing.assert_array_equal(io.upscale_labels(many, 12, 16),
                                  io.resize_channels(many, 12, 16).argmax(-1))


def test_writes_are_atomic_with_unique_temp_names_and_never_clobber(tmp_path):
    target = tmp_path / "x.bin"
    (tmp_path / ".x.bin.tmp").mkdir()  # what a fixed temp name of another writer looks like
    io.write_bytes(target, b"one")
    assert target.read_bytes() == b"one"
    with pytest.raises(io.OutputError, match="x.bin' already exists; pass --overwrite"):
        io.write_bytes(target, b"two", overwrite=False)
    assert target.read_bytes() == b"one"
    io.write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    io.save_npy(tmp_path / "p.npy", np.arange(3), overwrite=False)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".x.bin.tmp", "p.npy", "x.bin"]


def test_ensure_output_dir_errors(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(io.OutputError, match="--output '.*file' is a file; expected a folder"):
        io.ensure_output_dir(tmp_path / "file")
    with pytest.raises(io.OutputError, match="cannot write there .a part of the path is a file"):
        io.ensure_output_dir(tmp_path / "file" / "sub")
    assert io.ensure_output_dir(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    import errno
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(io.OutputError, match="cannot write there .Read-only file system"):
        io.ensure_output_dir(tmp_path / "new")


def test_output_folder_removes_only_the_empty_folders_it_created(tmp_path, monkeypatch):
    # Nothing written: every folder the block created goes again, the existing parent stays.
    with io.output_folder(tmp_path / "a" / "b" / "c") as folder:
        assert folder == tmp_path / "a" / "b" / "c" and folder.is_dir()
    assert sorted(tmp_path.iterdir()) == []
    # A failure inside the block: the same, and the error comes through.
    with pytest.raises(RuntimeError, match="boom"):
        with io.output_folder(tmp_path / "new"):
            raise RuntimeError("boom")
    assert not (tmp_path / "new").exists()
    # Something written: it and its parents stay.
    with io.output_folder(tmp_path / "x" / "y") as folder:
        (folder / "mask.png").write_bytes(b"1")
    assert (tmp_path / "x" / "y" / "mask.png").read_bytes() == b"1"
    # A folder that existed before stays even when empty; a new one inside it goes.
    (tmp_path / "mine").mkdir()
    with io.output_folder(tmp_path / "mine"):
        pass
    with io.output_folder(tmp_path / "mine" / "sub"):
        pass
    assert (tmp_path / "mine").is_dir() and list((tmp_path / "mine").iterdir()) == []
    # Only the innermost created folder got a file: the created parents above it stay too.
    with io.output_folder(tmp_path / "p" / "q") as folder:
        (tmp_path / "p" / "note.txt").write_text("kept")
    assert (tmp_path / "p" / "note.txt").exists() and not (tmp_path / "p" / "q").exists()
    # A folder that cannot be written: the error names it, and nothing is left.
    import errno
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(io.OutputError, match="--masks .*ro/deep.: cannot write there .Read-only"):
        with io.output_folder(tmp_path / "ro" / "deep", "--masks"):
            raise AssertionError("not reached")
    assert not (tmp_path / "ro").exists()


def test_library_writers_leave_no_folder_when_the_first_image_fails(tmp_path):
    """predict_files (and the CLIs over it) on a corrupt image into a new folder: the error,
    and no empty folder behind it."""
    import deconvnet_tf
    from deconvnet_tf.inference.pipeline import predict_files

    (tmp_path / "fake.png").write_text("garbage")
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3)
    with pytest.raises(io.ImageReadError, match="fake.png"):
        predict_files(model, [tmp_path / "fake.png"], tmp_path / "out" / "masks",
                      progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.png"]


def test_average_with_mirror_is_the_mean_of_the_batch_and_its_mirror_mirrored_back():
    """The test-time flip rule every runtime shares: a column ramp averages to its middle;
    a mirror-equivariant output is unchanged."""
    from deconvnet_tf.io import average_with_mirror

    seen = []

    def run(batch):
        seen.append(batch.copy())
        out = np.zeros(batch.shape[:3] + (2,), np.float32)
        out[..., 0] = np.arange(batch.shape[2], dtype=np.float32) / 10
        out[..., 1] = batch[..., 0]
        return out

    batch = np.random.default_rng(0).integers(0, 256, (2, 3, 5, 3)).astype(np.uint8)
    got = average_with_mirror(run, batch)
    np.testing.assert_array_equal(seen[1], batch[:, :, ::-1])
    np.testing.assert_allclose(got[..., 0], 0.2)  # (x + (4 - x)) / 2 / 10
    np.testing.assert_allclose(got[..., 1], batch[..., 0])


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_give_new_files_the_mode_open_would(tmp_path, umask):
    """mkstemp's temporary files are 0o600; a published output must not be (a mask or a saved
    model unreadable to the user's group, or to a web server, where open() would allow it)."""
    from tools import _outputs

    old = os.umask(umask)
    try:
        (tmp_path / "plain.bin").write_bytes(b"x")  # what open() gives under this umask
        expected = (tmp_path / "plain.bin").stat().st_mode & 0o777
        assert io.new_file_mode() == expected == 0o666 & ~umask
        written = [io.write_bytes(tmp_path / "a.png", b"png"),
                   io.write_bytes(tmp_path / "b.png", b"png", overwrite=False),
                   io.save_npy(tmp_path / "c.npy", np.arange(2)),
                   _outputs.write_json_new(tmp_path / "d.json", {"a": 1}),
                   _outputs.replace_text(tmp_path / "e.md", "x")]
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in written} == {
        p.name: expected for p in written}
