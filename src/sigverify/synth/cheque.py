"""Synthetic bank cheques with one real signature and its exact box.

A cheque is a 6 x 2.75 inch slip at 150-300 dpi: a light security tint (fine wavy lines), the bank's
name and address, a cheque number, a date line, "Pay to the order of" with the payee, an amount box, the
amount in words, a memo line, a MICR-style number row along the bottom, and the signature on the
signature line at the bottom right, crossing it as real ones do; then the scanner effects of
:func:`draw.scanner`. Nothing here was used to train the detector: cheques test how far it
generalises beyond letters.
"""

from __future__ import annotations

import numpy as np
import cv2

from . import draw
from .pages import SyntheticPage, _paste_signature


def _font(rng: np.random.Generator, size: int):
    """A text font that prints Latin letters and digits (some machine fonts, e.g. the DejaVu
    "Display" faces, hold almost no glyphs and would leave a field blank)."""
    usable = [f for f in draw.available_fonts() if any(k in f for k in ("DejaVuSans", "DejaVuSerif", "Liberation")) and not any(k in f for k in ("Display", "ExtraLight"))]
    return draw._font(usable[int(rng.integers(len(usable)))], int(size))


def _security_tint(height: int, width: int, rng: np.random.Generator, dpi: int) -> np.ndarray:
    """Light guilloche-like background: families of thin sine waves in pale grey."""
    page = np.full((height, width), 255, dtype=np.uint8)
    layer = np.zeros_like(page)
    xs = np.arange(width)
    period = dpi * rng.uniform(0.3, 0.6)
    for offset in range(0, height + dpi, max(4, dpi // 12)):
        ys = offset + (dpi / 10) * np.sin(2 * np.pi * xs / period + offset / 17.0)
        points = np.stack([xs, ys], axis=1).astype(np.int32)
        cv2.polylines(layer, [points], False, 255, 1, lineType=cv2.LINE_AA)
    draw.paste_ink(page, layer, 0, 0, int(rng.integers(205, 235)))
    return page


def make_cheque(signatures, seed: int) -> SyntheticPage:
    """Generate one cheque carrying one signature drawn from ``signatures`` (greyscale, white paper).

    The cheque is a pure function of ``seed`` and ``signatures``; ``boxes`` holds the signature's box
    (x0, y0, x1, y1) in cheque pixels after every transformation.
    """
    rng = np.random.default_rng(seed)
    dpi = int(rng.choice([150, 200, 300]))
    width, height = int(6.0 * dpi), int(2.75 * dpi)
    page = _security_tint(height, width, rng, dpi)
    labels = np.zeros((height, width), dtype=np.int32)
    pt = dpi / 72.0
    margin = int(0.2 * dpi)
    line_ink = int(rng.integers(0, 60))

    bank = " ".join(w.capitalize() for w in draw.random_words(rng, 2)) + " Bank"
    draw.draw_text_line(page, bank, margin, margin, _font(rng, int(12 * pt)), 10)
    address = " ".join(w.capitalize() for w in draw.random_words(rng, 4))
    draw.draw_text_line(page, address, margin, margin + int(0.25 * dpi), _font(rng, int(7 * pt)), 30)
    small = _font(rng, int(8 * pt))
    draw.draw_text_line(page, str(int(rng.integers(100, 9999))), width - margin - int(0.5 * dpi), margin, small, 20)

    # Date, payee, amount box, amount in words.
    date_x = int(width * 0.62)
    date_y = int(0.65 * dpi)
    draw.draw_text_line(page, "Date", date_x, date_y - int(0.17 * dpi), small, 20)
    draw.draw_line(page, (date_x + int(0.45 * dpi), date_y), (width - margin, date_y), max(1, dpi // 150), line_ink)
    pay_y = int(1.05 * dpi)
    draw.draw_text_line(page, "Pay to the order of", margin, pay_y - int(0.17 * dpi), small, 20)
    draw.draw_line(page, (margin + int(1.35 * dpi), pay_y), (int(width * 0.72), pay_y), max(1, dpi // 150), line_ink)
    payee = " ".join(w.capitalize() for w in draw.random_words(rng, 2))
    draw.draw_text_line(page, payee, margin + int(1.5 * dpi), pay_y - int(0.22 * dpi), _font(rng, int(10 * pt)), 20)
    box_x0 = int(width * 0.76)
    draw.draw_box(page, box_x0, pay_y - int(0.25 * dpi), width - margin, pay_y + int(0.05 * dpi), max(1, dpi // 150), line_ink)
    amount = f"$ {int(rng.integers(10, 99999)):,}.{int(rng.integers(0, 100)):02d}"
    draw.draw_text_line(page, amount, box_x0 + int(0.08 * dpi), pay_y - int(0.21 * dpi), _font(rng, int(10 * pt)), 20)
    words_y = int(1.45 * dpi)
    draw.draw_line(page, (margin, words_y), (width - margin - int(0.7 * dpi), words_y), max(1, dpi // 150), line_ink)
    draw.draw_text_line(page, "Dollars", width - margin - int(0.6 * dpi), words_y - int(0.17 * dpi), small, 20)
    draw.draw_text_line(page, " ".join(draw.random_words(rng, 5)), margin + int(0.2 * dpi), words_y - int(0.22 * dpi), _font(rng, int(9 * pt)), 20)

    # Memo (left) and signature line (right).
    sign_y = int(2.05 * dpi)
    draw.draw_text_line(page, "Memo", margin, sign_y - int(0.17 * dpi), small, 20)
    draw.draw_line(page, (margin + int(0.45 * dpi), sign_y), (int(width * 0.45), sign_y), max(1, dpi // 150), line_ink)
    line_x0, line_x1 = int(width * 0.55), width - margin
    draw.draw_line(page, (line_x0, sign_y), (line_x1, sign_y), max(1, dpi // 120), line_ink)
    micr = f"|{int(rng.integers(10**8, 10**9))}|  {int(rng.integers(10**9, 10**10))}|  {int(rng.integers(100, 9999))}"
    draw.draw_text_line(page, micr, margin + int(0.3 * dpi), height - int(0.32 * dpi), _font(rng, int(10 * pt)), 10)

    gray = signatures[int(rng.integers(len(signatures)))]
    crop, alpha = draw.signature_crop(gray)
    line_len = line_x1 - line_x0
    scale = min(line_len * rng.uniform(0.6, 0.9) / crop.shape[1], dpi * rng.uniform(0.4, 0.7) / crop.shape[0])
    size = (max(8, int(crop.shape[1] * scale)), max(8, int(crop.shape[0] * scale)))
    crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    x = line_x0 + int(rng.uniform(0.0, 0.1) * line_len)
    y = sign_y - int(alpha.shape[0] * rng.uniform(0.6, 0.9))
    _paste_signature(page, labels, 1, crop, alpha, x, y, rng)

    page = draw.scanner(page, rng, binarize=False)
    ys, xs = np.nonzero(labels == 1)
    boxes = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=float) if len(xs) >= 20 else np.zeros((0, 4))
    return SyntheticPage(page, boxes, dpi, seed)
