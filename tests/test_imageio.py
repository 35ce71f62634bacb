import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import FORMATS
from sigverify import ImageTooLarge, InvalidImage, NoSignatureFound
from sigverify.imageio import load_gray
from sigverify.preprocess import preprocess

REFERENCE = load_gray(FORMATS / "gray.png")


@pytest.mark.parametrize("name", ["rgb.png", "palette.png", "gray16.png", "gray.bmp"])
def test_lossless_formats_decode_to_the_same_grey(name):
    assert np.array_equal(load_gray(FORMATS / name), REFERENCE)


@pytest.mark.parametrize("name", ["gray.jpg", "exif_rot.jpg"])
def test_jpeg_close_and_exif_orientation_applied(name):
    gray = load_gray(FORMATS / name)
    assert gray.shape == REFERENCE.shape  # exif_rot.jpg is stored rotated: only EXIF makes it upright
    assert np.abs(gray.astype(int) - REFERENCE).mean() < 2


def test_rgba_transparent_paper_becomes_white():
    gray = load_gray(FORMATS / "rgba.png")
    assert gray.shape == REFERENCE.shape
    assert set(np.unique(gray)) <= {0, 255}
    assert (gray == 255).mean() > 0.8


def test_multipage_1bit_tiff_reads_first_page():
    with Image.open(FORMATS / "bilevel_g4.tif") as tif:
        assert tif.n_frames == 2 and tif.mode == "1"
    gray = load_gray(FORMATS / "bilevel_g4.tif")
    assert gray.shape == REFERENCE.shape  # the second page is 100 x 100
    assert set(np.unique(gray)) == {0, 255}


def test_all_sources_agree():
    data = (FORMATS / "gray.png").read_bytes()
    for source in (str(FORMATS / "gray.png"), FORMATS / "gray.png", data, io.BytesIO(data), Image.open(io.BytesIO(data)), REFERENCE):
        assert np.array_equal(load_gray(source), REFERENCE)


@pytest.mark.parametrize(
    "array",
    [
        REFERENCE.astype(np.uint16) * 257,
        REFERENCE.astype(np.float32) / 255.0,
        np.stack([REFERENCE] * 3, axis=2),
        np.dstack([REFERENCE] * 3 + [np.full_like(REFERENCE, 255)]),
    ],
)
def test_array_inputs(array):
    assert np.abs(load_gray(array).astype(int) - REFERENCE).max() <= 1


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InvalidImage, match="empty.png: empty file"):
        load_gray(path)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidImage, match="no such file"):
        load_gray(tmp_path / "nope.png")


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is text, not a PNG")
    with pytest.raises(InvalidImage, match="notes.png: not an image"):
        load_gray(path)


def test_truncated_png(tmp_path):
    data = (FORMATS / "gray.png").read_bytes()
    path = tmp_path / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidImage, match="truncated.png: truncated or corrupt"):
        load_gray(path)


def test_truncated_jpeg(tmp_path):
    data = (FORMATS / "gray.jpg").read_bytes()
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        load_gray(data[: len(data) // 3])


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but which carries no pixel data at all."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


def test_pixel_limit_refused_before_decoding(tmp_path):
    # 10000 x 6000 = 60 MP claimed, no pixel data: only a header check can answer ImageTooLarge
    # (decoding would fail with InvalidImage instead).
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(10000, 6000))
    with pytest.raises(ImageTooLarge, match="bomb.png: 10000x6000 = 60000000 pixels, over the limit of 50000000"):
        load_gray(path)
    with pytest.raises(ImageTooLarge):
        load_gray(FORMATS / "gray.png", max_pixels=1000)


def test_pillow_decompression_bomb_is_image_too_large():
    # Over Pillow's own hard limit (2 x MAX_IMAGE_PIXELS): still our typed error.
    with pytest.raises(ImageTooLarge):
        load_gray(_png_header_only(20000, 20000), max_pixels=10**12)


def test_byte_limit(tmp_path):
    with pytest.raises(ImageTooLarge, match="over the limit of 100"):
        load_gray(FORMATS / "gray.png", max_bytes=100)


def test_blank_page_has_no_signature():
    with pytest.raises(NoSignatureFound, match="blank.png"):
        preprocess(FORMATS / "blank.png")
    with pytest.raises(NoSignatureFound):
        preprocess(np.full((200, 300), 255, dtype=np.uint8))


def test_bad_arrays():
    with pytest.raises(InvalidImage, match="empty array"):
        load_gray(np.zeros((0, 5), dtype=np.uint8))
    with pytest.raises(InvalidImage, match="expected a H x W"):
        load_gray(np.zeros((4, 4, 2), dtype=np.uint8))
    with pytest.raises(InvalidImage, match="NaN"):
        load_gray(np.full((4, 4), np.nan))
    with pytest.raises(InvalidImage, match="unsupported image source"):
        load_gray(12345)
