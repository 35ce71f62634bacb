"""Reading whole documents: PDF pages (rendered with pypdfium2), multi-page TIFFs, single images.

:func:`load_pages` returns every page as an 8-bit greyscale array. Pages larger than the pixel
limit are refused for image files (:class:`ImageTooLarge`, before decoding) and rendered at a
lower resolution for PDFs (their size is chosen, not stored).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image

from .errors import ImageTooLarge, InputError, InvalidImage
from .imageio import DEFAULT_MAX_PIXELS, ImageSource, describe_source, load_gray, read_bytes

PDF_MAGIC = b"%PDF"
DEFAULT_DPI = 200
DEFAULT_MAX_PAGES = 50


@dataclass
class PageImage:
    """One page: grey pixels, its index in the document, and the scale from the source's units."""

    image: np.ndarray
    index: int
    source: str
    dpi: Optional[float] = None


def _pdf_pages(data: bytes, name: str, dpi: float, max_pages: int, max_pixels: int) -> list[PageImage]:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower() or "security" in message.lower():
            raise InvalidImage(name, "the PDF is encrypted (password protected); decrypt it first") from None
        raise InvalidImage(name, f"unreadable PDF ({message})") from None
    try:
        if len(document) == 0:
            raise InvalidImage(name, "the PDF has no pages")
        if len(document) > max_pages:
            raise InvalidImage(name, f"the PDF has {len(document)} pages, over the limit of {max_pages}")
        pages = []
        for index in range(len(document)):
            page = document[index]
            width_pt, height_pt = page.get_size()
            scale = dpi / 72.0
            if width_pt * height_pt * scale * scale > max_pixels:
                # A rendered page's size is ours to choose: render it smaller instead of refusing.
                scale = 0.995 * (max_pixels / (width_pt * height_pt)) ** 0.5  # rounding stays under
            bitmap = page.render(scale=scale, grayscale=True)
            pil = bitmap.to_pil().convert("L")
            pages.append(PageImage(np.asarray(pil, dtype=np.uint8).copy(), index, name, dpi=scale * 72.0))
            page.close()
        return pages
    finally:
        document.close()


def _decode(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """``load_gray`` on a page's bytes, its errors naming the page's source rather than ``<N bytes>``."""
    try:
        return load_gray(data, max_pixels=max_pixels)
    except InputError as exc:
        raise type(exc)(name, exc.reason) from None


def load_pages(
    source: ImageSource,
    *,
    dpi: float = DEFAULT_DPI,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: Optional[int] = None,
) -> list[PageImage]:
    """Every page of a PDF, multi-page TIFF or image, as greyscale arrays.

    Parameters
    ----------
    dpi
        Rendering resolution of PDF pages.
    max_pages
        Documents with more pages are refused.
    """
    name = describe_source(source)
    if isinstance(source, (np.ndarray, Image.Image)):
        return [PageImage(load_gray(source, max_pixels=max_pixels), 0, name)]
    data = read_bytes(source, max_bytes=max_bytes)
    if data is None:
        raise InvalidImage(name, f"unsupported source type {type(source).__name__}")
    if not data:
        raise InvalidImage(name, "empty file")
    if data[:1024].lstrip().startswith(PDF_MAGIC):
        return _pdf_pages(data, name, dpi, max_pages, max_pixels)
    try:
        image = Image.open(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - load_gray gives the precise error
        return [PageImage(_decode(data, name, max_pixels), 0, name)]
    frames = getattr(image, "n_frames", 1)
    if frames <= 1:
        return [PageImage(_decode(data, name, max_pixels), 0, name, _dpi(image))]
    if frames > max_pages:
        raise InvalidImage(name, f"{frames} pages, over the limit of {max_pages}")
    pages = []
    for index in range(frames):
        image.seek(index)
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooLarge(f"{name} page {index + 1}", f"{width}x{height} pixels, over the limit of {max_pixels}")
        frame = image.copy()
        pages.append(PageImage(load_gray(frame, max_pixels=max_pixels), index, name, _dpi(image)))
    return pages


def _dpi(image: Image.Image) -> Optional[float]:
    dpi = image.info.get("dpi")
    try:
        return float(dpi[0]) if dpi else None
    except (TypeError, ValueError, IndexError):
        return None


def is_pdf(path: str | os.PathLike) -> bool:
    with open(path, "rb") as handle:
        return handle.read(1024).lstrip().startswith(PDF_MAGIC)


__all__ = ["PageImage", "load_pages", "is_pdf"]
