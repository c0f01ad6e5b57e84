"""The structural image checks of deconvnet_tf.io on real encoder output: every complete file is
accepted, every truncation of it is refused, and damaged segments and chunks are named
(mutation-checked: `python tools/mutation.py --groups size_rule`)."""

from __future__ import annotations

import zlib

import cv2
import numpy as np
import pytest

from deconvnet_tf.io import check_image_bytes

pytestmark = pytest.mark.jax  # no TensorFlow


def photo(h=24, w=32, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    image[: h // 2] = 255  # saturated bytes: 0xFF in the entropy-coded data (stuffed as FF 00)
    return image


JPEG_VARIANTS = {
    "baseline": [cv2.IMWRITE_JPEG_QUALITY, 95],
    "progressive": [cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
    "restart_markers": [cv2.IMWRITE_JPEG_RST_INTERVAL, 1],
    "optimized": [cv2.IMWRITE_JPEG_OPTIMIZE, 1, cv2.IMWRITE_JPEG_QUALITY, 30],
}


def encode(ext, params=()):
    ok, data = cv2.imencode(ext, photo(), list(params))
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("variant", sorted(JPEG_VARIANTS))
def test_complete_jpeg_accepted_and_every_truncation_refused(variant):
    data = encode(".jpg", JPEG_VARIANTS[variant])
    assert check_image_bytes(data) is None
    assert check_image_bytes(data + b"\x00trailing bytes\xff") is None
    for cut in range(2, len(data)):
        problem = check_image_bytes(data[:cut])
        assert problem is not None and "truncated JPEG" in problem, (variant, cut, len(data))


def test_jpeg_walk_details():
    data = encode(".jpg")
    assert data[:4] == b"\xff\xd8\xff\xe0"  # SOI, then the JFIF APP0 segment
    # Fill bytes (0xFF repeated) before a marker, and stray bytes between segments, are skipped
    # as libjpeg does.
    app0_end = 4 + int.from_bytes(data[4:6], "big")
    assert check_image_bytes(data[:app0_end] + b"\xff\xff\xff" + data[app0_end:]) is None
    assert check_image_bytes(data[:app0_end] + b"\x12\x34" + data[app0_end:]) is None
    # A segment whose length field is below 2 is corrupt (named with its marker).
    broken = data[:4] + b"\x00\x01" + data[6:]
    assert check_image_bytes(broken) == "corrupt JPEG (segment 0xFFE0 has length 1)"
    # An embedded JPEG (EXIF thumbnail) inside an APP1 segment does not end the file early.
    thumb = encode(".jpg")
    app1 = b"\xff\xe1" + (len(thumb) + 2).to_bytes(2, "big") + thumb
    with_thumb = data[:2] + app1 + data[2:]
    assert check_image_bytes(with_thumb) is None
    assert "truncated" in check_image_bytes(with_thumb[: 2 + len(app1) + 40])
    # Standalone markers (RSTn, TEM) between segments carry no length.
    assert check_image_bytes(data[:2] + b"\xff\xd0\xff\x01" + data[2:]) is None
    assert check_image_bytes(b"\xff\xd8") == check_image_bytes(b"\xff\xd8\xff") is not None


@pytest.mark.parametrize("level", [0, 9])
def test_complete_png_accepted_truncations_and_bad_checksums_refused(level):
    data = encode(".png", [cv2.IMWRITE_PNG_COMPRESSION, level])
    assert check_image_bytes(data) is None
    assert check_image_bytes(data + b"junk after IEND") is None
    step = max(1, len(data) // 300)
    for cut in list(range(8, len(data), step)) + list(range(len(data) - 12, len(data))):
        problem = check_image_bytes(data[:cut])
        assert problem == "truncated PNG (the file ends before its IEND chunk)", cut
    pos = 8
    while pos < len(data):  # damage one data byte of every chunk in turn
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8].decode()
        target = pos + 8 if length else pos + 4  # a data byte, or the type of an empty chunk
        damaged = bytearray(data)
        damaged[target] ^= 0x01
        problem = check_image_bytes(bytes(damaged))
        assert problem is not None and problem.startswith("corrupt PNG (bad checksum in chunk")
        if length:
            assert problem.endswith(f"{kind})")
        pos += 12 + length


def test_png_checksum_is_over_type_and_data():
    data = encode(".png")
    length = int.from_bytes(data[8:12], "big")
    assert zlib.crc32(data[12:16 + length]) == int.from_bytes(data[16 + length:20 + length], "big")


def test_bmp_webp_and_empty_files():
    for ext, name in ((".bmp", "BMP"), (".webp", "WebP")):
        data = encode(ext)
        assert check_image_bytes(data) is None
        problem = check_image_bytes(data[:-1])
        assert problem is not None and problem.startswith(f"truncated {name}")
        assert f"({len(data) - 1} of {len(data)} bytes)" in problem
    assert check_image_bytes(b"") == "empty file"
    assert check_image_bytes(b"II*\x00 some tiff") is None  # left to the decoder
