"""Reading images from every form a caller may hold them in, safely.

One entry point, :func:`load_gray`, turns a path, bytes, a file object, a NumPy array or a PIL image
into an 8-bit greyscale ``H x W`` array (0 = black ink, 255 = white paper). It refuses, with a typed
exception naming the source, anything empty, truncated, not an image, or larger than the pixel limit,
and it checks the pixel count from the header *before* decoding so a decompression bomb never
reaches memory.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO, Optional, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageTooLarge, InvalidImage

DEFAULT_MAX_PIXELS = 50_000_000

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, Image.Image, BinaryIO]


def describe_source(source: object) -> str:
    """A short human name for an image source, used in error messages."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if isinstance(source, np.ndarray):
        return f"<array {source.shape} {source.dtype}>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.mode} {source.size[0]}x{source.size[1]}>"
    name = getattr(source, "name", None)
    return str(name) if name else f"<{type(source).__name__}>"


def read_bytes(source: ImageSource, *, max_bytes: int | None = None) -> bytes | None:
    """The raw encoded bytes of a path/bytes/file source (``None`` for arrays and PIL images)."""
    name = describe_source(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InvalidImage(name, "no such file")
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise ImageTooLarge(name, f"file is {path.stat().st_size} bytes, over the limit of {max_bytes}")
        return path.read_bytes()
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidImage(name, "file object did not return bytes")
        data = bytes(data)
    else:
        return None
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageTooLarge(name, f"{len(data)} bytes, over the limit of {max_bytes}")
    return data


def _open_encoded(data: bytes, name: str, max_pixels: int) -> Image.Image:
    if len(data) == 0:
        raise InvalidImage(name, "empty file")
    with warnings.catch_warnings():
        # Our own limit below is the one that counts; Pillow's bomb warning would only be noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(name, f"over the pixel limit ({exc})") from None
        except UnidentifiedImageError:
            raise InvalidImage(name, "not an image, or a format sigverify cannot read") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise InvalidImage(name, f"cannot be decoded ({exc})") from None
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InvalidImage(name, f"has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLarge(name, f"{width}x{height} = {width * height} pixels, over the limit of {max_pixels}")
    return image


def _pil_to_gray(image: Image.Image, name: str) -> np.ndarray:
    """Decode (first frame, EXIF-upright) and convert any PIL mode to 8-bit grey."""
    try:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)  # multi-page TIFF: the first page is the signature
        image.load()
        image = ImageOps.exif_transpose(image)
        mode = image.mode
        if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            array = np.asarray(image, dtype=np.float64)
            top = 65535.0 if (mode != "I" or array.max() > 255) else 255.0
            return np.clip(np.rint(array * (255.0 / top)), 0, 255).astype(np.uint8)
        if mode == "F":
            array = np.asarray(image, dtype=np.float64)
            scale = 255.0 if array.max() <= 1.0 else 1.0
            return np.clip(np.rint(array * scale), 0, 255).astype(np.uint8)
        if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            # Transparent areas are paper, not ink: composite over white.
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, rgba)
        return np.asarray(image.convert("L"), dtype=np.uint8).copy()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(name, f"truncated or corrupt ({exc})") from None


def _array_to_gray(array: np.ndarray, name: str) -> np.ndarray:
    if array.size == 0:
        raise InvalidImage(name, "empty array")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] in (3, 4):
        rgb = array[:, :, :3].astype(np.float64)
        if array.dtype == np.uint16:
            rgb /= 257.0
        elif np.issubdtype(array.dtype, np.floating) and rgb.max() <= 1.0:
            rgb *= 255.0
        gray = rgb @ np.array([0.299, 0.587, 0.114])
        if array.shape[2] == 4:
            alpha = array[:, :, 3].astype(np.float64)
            alpha /= 65535.0 if array.dtype == np.uint16 else (1.0 if alpha.max() <= 1.0 else 255.0)
            gray = gray * alpha + 255.0 * (1.0 - alpha)
        return np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    if array.ndim != 2:
        raise InvalidImage(name, f"expected a H x W or H x W x 3/4 array, got shape {array.shape}")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == np.bool_:
        return np.where(array, 255, 0).astype(np.uint8)
    if array.dtype == np.uint16:
        return np.rint(array / 257.0).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InvalidImage(name, "array holds NaN or infinite values")
        scale = 255.0 if array.max() <= 1.0 else 1.0
        return np.clip(np.rint(array * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        return np.clip(array, 0, 255).astype(np.uint8)
    raise InvalidImage(name, f"unsupported array dtype {array.dtype}")


def _dpi_of(image: Image.Image) -> Optional[float]:
    """The resolution an image file declares, when plausible (50-2400 dpi)."""
    dpi = image.info.get("dpi")
    try:
        value = float(dpi[0]) if dpi else None
    except (TypeError, ValueError, IndexError):
        return None
    return value if value and 50 <= value <= 2400 else None


def read_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int | None = None,
    name: Optional[str] = None,
) -> tuple[np.ndarray, Optional[float]]:
    """Like :func:`load_gray`, plus the resolution the file declares (``None`` when it declares none).

    ``name`` names the source in errors (default: the path, or a description of the object).

    Returns
    -------
    (gray, dpi)
        ``H x W`` uint8 and dots per inch or ``None``.
    """
    name = name or describe_source(source)
    if isinstance(source, np.ndarray):
        if source.ndim >= 2 and source.shape[0] * source.shape[1] > max_pixels:
            raise ImageTooLarge(name, f"over the pixel limit of {max_pixels}")
        return _array_to_gray(source, name), None
    if isinstance(source, Image.Image):
        width, height = source.size
        if width * height > max_pixels:
            raise ImageTooLarge(name, f"{width}x{height} pixels, over the limit of {max_pixels}")
        return _pil_to_gray(source, name), _dpi_of(source)
    data = read_bytes(source, max_bytes=max_bytes)
    if data is None:
        raise InvalidImage(name, f"unsupported image source type {type(source).__name__}")
    image = _open_encoded(data, name, max_pixels)
    return _pil_to_gray(image, name), _dpi_of(image)


def load_gray(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int | None = None,
) -> np.ndarray:
    """Read an image as 8-bit greyscale.

    Parameters
    ----------
    source
        A path, encoded bytes, a binary file object, a NumPy array (``H x W`` or ``H x W x 3/4``,
        uint8/uint16/float/bool) or a PIL image. PNG (grey, palette, RGB, RGBA, 16-bit), JPEG, TIFF
        (1-bit CCITT; multi-page: the first page), BMP and WebP are read; EXIF orientation is applied.
    max_pixels
        Images with more pixels are refused with :class:`ImageTooLarge` before decoding.
    max_bytes
        Optional limit on the encoded size.

    Returns
    -------
    np.ndarray
        ``H x W`` uint8, 0 = black, 255 = white.
    """
    return read_image(source, max_pixels=max_pixels, max_bytes=max_bytes)[0]
