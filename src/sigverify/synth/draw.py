"""Drawing primitives for synthetic documents and noise: printed text in the machine's fonts,
ruled and signature lines, boxes, logos, rubber stamps, scanner effects.

Every function takes a ``numpy.random.Generator`` so that output is a pure function of the seed.
Images are uint8 greyscale, 255 = white paper; drawing darkens (min-blending), as ink does.
"""

from __future__ import annotations

import functools
import io
import math
import string
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
# Text fonts only: symbol, emoji and "last resort" fonts would print boxes and pictograms.
_SKIP_FONTS = ("STIXSiz", "STIXNonUni", "LastResort", "cmex", "cmsy", "Symbol", "Emoji", "Noto Color")


@functools.lru_cache(maxsize=1)
def available_fonts() -> tuple[str, ...]:
    """TrueType fonts on this machine (system folders and matplotlib's bundled DejaVu/STIX), sorted."""
    import matplotlib

    folders = [Path(d) for d in FONT_DIRS] + [Path(matplotlib.get_data_path()) / "fonts" / "ttf"]
    found = set()
    for folder in folders:
        if folder.is_dir():
            for path in folder.rglob("*.ttf"):
                if not any(skip.lower() in path.name.lower() for skip in _SKIP_FONTS):
                    found.add(str(path))
    if not found:
        raise RuntimeError("no TrueType fonts found (matplotlib's DejaVu fonts should always be there)")
    return tuple(sorted(found))


@functools.lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size=max(6, size))


def random_font(rng: np.random.Generator, size: int) -> ImageFont.FreeTypeFont:
    fonts = available_fonts()
    return _font(fonts[int(rng.integers(len(fonts)))], int(size))


_LETTERS = string.ascii_lowercase


def random_words(rng: np.random.Generator, count: int) -> list[str]:
    """Pseudo-words with English-like lengths (the text's meaning never matters)."""
    vowels, consonants = "aeiou", "bcdfghjklmnprstvwy"
    words = []
    for _ in range(count):
        length = int(rng.choice([1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 7, 8, 9, 11]))
        word = "".join(rng.choice(list(consonants if i % 2 == 0 else vowels)) for i in range(length))
        if rng.random() < 0.12:
            word = word.capitalize()
        if rng.random() < 0.08:
            word += str(rng.choice([",", ".", ";", ":"]))
        if rng.random() < 0.04:
            word = str(int(rng.integers(1, 9999)))
        words.append(word)
    return words


def draw_text_line(image: np.ndarray, text: str, x: int, y: int, font: ImageFont.FreeTypeFont, ink: int = 20, angle: float = 0.0) -> tuple[int, int, int, int]:
    """Print ``text`` with its top-left at (x, y); returns the drawn box (x0, y0, x1, y1)."""
    left, top, right, bottom = font.getbbox(text)
    width, height = right - left + 4, bottom - top + 4
    layer = Image.new("L", (width, height), 0)
    ImageDraw.Draw(layer).text((2 - left, 2 - top), text, fill=255, font=font)
    alpha = np.asarray(layer)
    if angle:
        alpha = rotate_bound(alpha, angle, fill=0)
    return paste_ink(image, alpha, x, y, ink)


def paste_ink(image: np.ndarray, alpha: np.ndarray, x: int, y: int, ink: int | np.ndarray = 20) -> tuple[int, int, int, int]:
    """Darken ``image`` where ``alpha`` (0..255) says, at (x, y), clipped to the image."""
    h, w = alpha.shape
    H, W = image.shape
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x0 >= x1 or y0 >= y1:
        return (x0, y0, x0, y0)
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32) / 255.0
    region = image[y0:y1, x0:x1].astype(np.float32)
    ink_value = ink if np.isscalar(ink) else ink[y0 - y : y1 - y, x0 - x : x1 - x]
    darker = region * (1 - a) + np.asarray(ink_value, dtype=np.float32) * a
    image[y0:y1, x0:x1] = np.minimum(region, darker).astype(np.uint8)
    return (x0, y0, x1, y1)


def paragraph(image: np.ndarray, rng: np.random.Generator, x0: int, y0: int, x1: int, y1: int, font_size: int) -> int:
    """Fill a box with justified-looking lines of printed text; returns the y after the last line."""
    font = random_font(rng, font_size)
    line_height = int(font_size * rng.uniform(1.15, 1.5))
    y = y0
    ink = int(rng.integers(0, 60))
    while y + line_height <= y1:
        words = random_words(rng, 40)
        line, width = [], 0
        for word in words:
            w = font.getlength(word + " ")
            if x0 + width + w > x1:
                break
            line.append(word)
            width += w
        if rng.random() < 0.15:  # a short last line of a paragraph
            line = line[: max(1, len(line) // 3)]
        draw_text_line(image, " ".join(line), x0, y, font, ink)
        y += line_height
        if rng.random() < 0.12:
            y += line_height  # paragraph break
    return y


def _stroke_layer(image: np.ndarray, ink: int, paint) -> None:
    """Draw with ``paint(alpha_layer)`` and blend as ink: drawing only ever darkens the page."""
    alpha = np.zeros_like(image)
    paint(alpha)
    paste_ink(image, alpha, 0, 0, ink)


def draw_line(image: np.ndarray, p0: tuple[int, int], p1: tuple[int, int], thickness: int = 2, ink: int = 30, dashed: bool = False) -> None:
    def paint(alpha: np.ndarray) -> None:
        if not dashed:
            cv2.line(alpha, p0, p1, 255, int(thickness), cv2.LINE_AA)
            return
        length = max(1.0, math.dist(p0, p1))
        dash = max(4, int(thickness * 5))
        for i in range(max(1, int(length // (2 * dash)))):
            t0, t1 = (2 * i * dash) / length, min(1.0, (2 * i + 1) * dash / length)
            a = (int(p0[0] + (p1[0] - p0[0]) * t0), int(p0[1] + (p1[1] - p0[1]) * t0))
            b = (int(p0[0] + (p1[0] - p0[0]) * t1), int(p0[1] + (p1[1] - p0[1]) * t1))
            cv2.line(alpha, a, b, 255, int(thickness), cv2.LINE_AA)

    _stroke_layer(image, ink, paint)


def draw_box(image: np.ndarray, x0: int, y0: int, x1: int, y1: int, thickness: int = 2, ink: int = 30) -> None:
    _stroke_layer(image, ink, lambda alpha: cv2.rectangle(alpha, (x0, y0), (x1, y1), 255, int(thickness), cv2.LINE_AA))


def logo(rng: np.random.Generator, size: int) -> np.ndarray:
    """A letterhead logo (alpha mask): geometric marks and bold initials."""
    canvas = np.zeros((size, int(size * rng.uniform(1.0, 2.5))), dtype=np.uint8)
    h, w = canvas.shape
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.integers(3)
        centre = (int(rng.integers(w // 5, 4 * w // 5)), int(rng.integers(h // 5, 4 * h // 5)))
        if kind == 0:
            cv2.circle(canvas, centre, int(rng.integers(h // 6, h // 2)), 255, int(rng.choice([-1, 3, 6])), cv2.LINE_AA)
        elif kind == 1:
            points = rng.integers(0, [w, h], size=(int(rng.integers(3, 6)), 2)).astype(np.int32)
            cv2.fillPoly(canvas, [points], 255, cv2.LINE_AA)
        else:
            cv2.rectangle(canvas, (centre[0] - h // 3, centre[1] - h // 4), (centre[0] + h // 3, centre[1] + h // 4), 255, -1)
    font = random_font(rng, int(h * 0.45))
    layer = Image.fromarray(canvas)
    initials = "".join(rng.choice(list(string.ascii_uppercase), size=int(rng.integers(2, 5))))
    ImageDraw.Draw(layer).text((int(w * 0.1), int(h * 0.25)), initials, fill=255 if rng.random() < 0.5 else 0, font=font)
    return np.asarray(layer)


def stamp(rng: np.random.Generator, size: int, round_: Optional[bool] = None) -> np.ndarray:
    """A rubber stamp (alpha mask): a round or rectangular frame with text, partly worn."""
    round_ = bool(rng.random() < 0.5) if round_ is None else round_
    words = " ".join(random_words(rng, 3)).upper()
    if round_:
        canvas = np.zeros((size, size), dtype=np.uint8)
        centre = size // 2
        thickness = max(2, size // 40)
        cv2.circle(canvas, (centre, centre), centre - thickness, 255, thickness, cv2.LINE_AA)
        cv2.circle(canvas, (centre, centre), int(centre * 0.62), 255, max(1, thickness // 2), cv2.LINE_AA)
        font = random_font(rng, max(8, size // 9))
        text = (words + " * ") * 2
        layer = Image.fromarray(canvas)
        for i, char in enumerate(text[:36]):
            angle = 2 * math.pi * i / 36
            px = centre + int(centre * 0.8 * math.cos(angle)) - size // 30
            py = centre + int(centre * 0.8 * math.sin(angle)) - size // 30
            ImageDraw.Draw(layer).text((px, py), char, fill=255, font=font)
        middle = random_font(rng, max(8, size // 7))
        ImageDraw.Draw(layer).text((int(size * 0.3), int(size * 0.42)), str(int(rng.integers(1990, 2030))), fill=255, font=middle)
        canvas = np.asarray(layer).copy()
    else:
        width, height = int(size * rng.uniform(1.6, 2.6)), int(size * rng.uniform(0.5, 0.8))
        canvas = np.zeros((height, width), dtype=np.uint8)
        thickness = max(2, height // 20)
        cv2.rectangle(canvas, (thickness, thickness), (width - thickness, height - thickness), 255, thickness)
        layer = Image.fromarray(canvas)
        font = random_font(rng, max(8, height // 3))
        ImageDraw.Draw(layer).text((thickness * 4, height // 4), words[:18], fill=255, font=font)
        canvas = np.asarray(layer).copy()
    wear = rng.random(canvas.shape) < rng.uniform(0.05, 0.3)  # ink that did not take
    canvas[wear] = 0
    return canvas


def rotate_bound(image: np.ndarray, angle: float, fill: int = 255, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Rotate by ``angle`` degrees (counter-clockwise), enlarging the canvas to keep everything."""
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(h * sin + w * cos + 0.5), int(h * cos + w * sin + 0.5)
    matrix[0, 2] += new_w / 2 - w / 2
    matrix[1, 2] += new_h / 2 - h / 2
    return cv2.warpAffine(image, matrix, (new_w, new_h), flags=interpolation, borderValue=fill)


def scanner(image: np.ndarray, rng: np.random.Generator, *, binarize: Optional[bool] = None, jpeg: Optional[bool] = None) -> np.ndarray:
    """Scanner effects: blur, speckle, paper tone and noise, optional binarisation and JPEG."""
    out = image.astype(np.float32)
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.0))
    out += rng.normal(0, rng.uniform(0, 6), out.shape)
    out -= rng.uniform(0, 25)  # paper tone
    speckle = rng.random(out.shape) < rng.uniform(0, 0.0015)
    out[speckle] = rng.uniform(0, 80)
    out = np.clip(out, 0, 255).astype(np.uint8)
    binarize = bool(rng.random() < 0.5) if binarize is None else binarize
    if binarize:
        # Around Otsu's threshold, as a bilevel scanner's auto-threshold would be: light ink survives.
        otsu, _ = cv2.threshold(out, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        threshold = int(np.clip(otsu + rng.integers(-15, 25), 60, 235))
        out = np.where(out > threshold, 255, 0).astype(np.uint8)
    jpeg = bool(rng.random() < 0.3) if jpeg is None else jpeg
    if jpeg:
        ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 85))])
        out = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
    return out


def signature_crop(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A signature cut to its ink on pure white: (grey crop, alpha mask 0..255 of its ink)."""
    from ..preprocess import PreprocessConfig, ink_mask

    mask, threshold = ink_mask(gray, PreprocessConfig())
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        raise ValueError("no ink")
    crop = gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32)
    alpha = np.clip((threshold - crop) / max(1.0, threshold) * 255.0 * 1.6, 0, 255).astype(np.uint8)
    return crop.astype(np.uint8), alpha


def jpeg_bytes(image: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


__all__: Sequence[str] = [
    "available_fonts",
    "random_font",
    "random_words",
    "draw_text_line",
    "paste_ink",
    "paragraph",
    "draw_line",
    "draw_box",
    "logo",
    "stamp",
    "rotate_bound",
    "scanner",
    "signature_crop",
    "jpeg_bytes",
]
