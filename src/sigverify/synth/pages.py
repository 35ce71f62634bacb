"""Synthetic document pages with real signatures and exact boxes, for training and testing the
detector.

A page is a letter-size sheet at 150-300 dpi with printed paragraphs (the machine's fonts), an
optional letterhead logo, ruled lines, boxes, signature lines with printed names, rubber stamps, and
0-3 real signatures pasted with ink blending (so they cross lines and text as real ones do); then a
small rotation and scanner effects (noise, blur, binarisation, JPEG). A signature's box is the
bounding box of its own ink after every transformation, tracked with a label map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from . import draw


@dataclass
class SyntheticPage:
    image: np.ndarray  # H x W uint8
    boxes: np.ndarray  # N x 4 float [x0, y0, x1, y1]
    dpi: int
    seed: int


def _paste_signature(page: np.ndarray, labels: np.ndarray, label: int, crop: np.ndarray, alpha: np.ndarray, x: int, y: int, rng: np.random.Generator) -> None:
    ink = int(rng.integers(0, 90))
    h, w = alpha.shape
    region = (slice(max(0, y), min(page.shape[0], y + h)), slice(max(0, x), min(page.shape[1], x + w)))
    draw.paste_ink(page, alpha, x, y, np.minimum(crop.astype(np.float32), ink + crop.astype(np.float32) * 0.15))
    sub = alpha[region[0].start - y : region[0].stop - y, region[1].start - x : region[1].stop - x] > 64
    labels[region][sub] = label


def make_page(signatures: Sequence[np.ndarray], seed: int, *, n_signatures: int | None = None, stamp_probability: float = 0.35) -> SyntheticPage:
    """Generate one page.

    Parameters
    ----------
    signatures
        Greyscale signature images (any size, white-ish paper) to draw from.
    seed
        The page is a pure function of ``seed`` and ``signatures``.
    n_signatures
        Force the number of signatures (default: 0 with probability 0.15, else 1-3).
    stamp_probability
        Chance of a rubber stamp (half the time over the first signature). The random draw happens
        either way, so changing it alters nothing else on the page.
    """
    rng = np.random.default_rng(seed)
    dpi = int(rng.choice([150, 200, 204, 300]))
    width, height = int(8.5 * dpi), int(11 * dpi)
    page = np.full((height, width), 255, dtype=np.uint8)
    labels = np.zeros((height, width), dtype=np.int32)
    margin = int(dpi * rng.uniform(0.6, 1.1))
    pt = dpi / 72.0
    y = int(margin * rng.uniform(0.4, 0.8))

    if rng.random() < 0.6:  # letterhead
        mark = draw.logo(rng, int(dpi * rng.uniform(0.5, 1.1)))
        x = int(rng.choice([margin, (width - mark.shape[1]) // 2, width - margin - mark.shape[1]]))
        draw.paste_ink(page, mark, x, y, int(rng.integers(0, 80)))
        y += mark.shape[0] + int(dpi * 0.2)
        if rng.random() < 0.5:
            draw.draw_line(page, (margin, y), (width - margin, y), max(1, dpi // 100), 20)
            y += int(dpi * 0.2)

    if n_signatures is None:
        n_signatures = 0 if rng.random() < 0.15 else int(rng.choice([1, 1, 1, 2, 2, 3]))
    font_size = int(rng.uniform(9, 12.5) * pt)
    body_end = int(height * rng.uniform(0.45, 0.75)) if n_signatures else int(height * rng.uniform(0.6, 0.92))
    while y < body_end:
        block_end = min(body_end, y + int(rng.uniform(1.0, 3.0) * dpi))
        if rng.random() < 0.15:  # a boxed form field or table
            box_h = int(rng.uniform(0.3, 1.0) * dpi)
            draw.draw_box(page, margin, y, width - margin, y + box_h, max(1, dpi // 100), 30)
            for row in range(1, int(rng.integers(1, 4))):
                yy = y + row * box_h // 4
                draw.draw_line(page, (margin, yy), (width - margin, yy), 1, 40)
            draw.paragraph(page, rng, margin + 8, y + 6, width - margin - 8, y + box_h - 4, int(font_size * 0.9))
            y += box_h + int(dpi * 0.15)
        else:
            y = draw.paragraph(page, rng, margin, y, width - margin, block_end, font_size) + int(dpi * 0.1)
        if rng.random() < 0.1:
            yy = y + int(dpi * 0.05)
            draw.draw_line(page, (margin, yy), (width - margin, yy), max(1, dpi // 150), 40, dashed=bool(rng.random() < 0.4))
            y = yy + int(dpi * 0.1)

    # Signature blocks: a line, a printed name, and a real signature crossing them.
    slots = []
    if n_signatures:
        columns = n_signatures if n_signatures > 1 and rng.random() < 0.6 else 1
        block_w = (width - 2 * margin) // columns
        for index in range(n_signatures):
            column = index % columns
            row = index // columns
            sx = margin + column * block_w + int(rng.uniform(0, 0.2) * block_w)
            sy = int(y + dpi * rng.uniform(0.6, 1.0) + row * dpi * 1.4)
            slots.append((sx, sy, block_w))
    for label, (sx, sy, block_w) in enumerate(slots, start=1):
        if sy > height - margin // 2:
            continue
        line_len = int(min(block_w * 0.85, dpi * rng.uniform(2.0, 3.2)))
        if rng.random() < 0.8:
            draw.draw_line(page, (sx, sy), (sx + line_len, sy), max(1, dpi // 120), int(rng.integers(0, 60)), dashed=bool(rng.random() < 0.15))
        name = " ".join(w.capitalize() for w in draw.random_words(rng, 2))
        draw.draw_text_line(page, name, sx, sy + int(dpi * 0.08), draw.random_font(rng, int(font_size * 0.95)), 20)
        gray = signatures[int(rng.integers(len(signatures)))]
        try:
            crop, alpha = draw.signature_crop(gray)
        except ValueError:
            continue
        target_w = dpi * rng.uniform(1.2, 2.8)
        scale = min(target_w / crop.shape[1], dpi * rng.uniform(0.35, 0.9) / crop.shape[0])
        size = (max(8, int(crop.shape[1] * scale)), max(8, int(crop.shape[0] * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        if rng.random() < 0.3:
            angle = rng.uniform(-8, 8)
            crop, alpha = draw.rotate_bound(crop, angle, 255), draw.rotate_bound(alpha, angle, 0)
        x = sx + int(rng.uniform(-0.05, 0.3) * line_len)
        yy = sy - int(alpha.shape[0] * rng.uniform(0.55, 0.95))
        _paste_signature(page, labels, label, crop, alpha, x, yy, rng)

    if rng.random() < stamp_probability:  # rubber stamp, sometimes over a signature
        mark = draw.stamp(rng, int(dpi * rng.uniform(0.8, 1.5)))
        if slots and rng.random() < 0.5:
            sx, sy, _ = slots[0]
            x, yy = sx + int(rng.uniform(-0.3, 1.5) * dpi), sy - int(rng.uniform(0.2, 1.0) * dpi)
        else:
            x, yy = int(rng.uniform(margin, width - margin - mark.shape[1])), int(rng.uniform(margin, height - margin - mark.shape[0]))
        draw.paste_ink(page, mark, x, yy, int(rng.integers(40, 140)))

    angle = rng.uniform(-2.0, 2.0) if rng.random() < 0.7 else 0.0
    if angle:
        page = draw.rotate_bound(page, angle, 255)
        labels = draw.rotate_bound(labels.astype(np.float32), angle, 0, interpolation=cv2.INTER_NEAREST).astype(np.int32)
    page = draw.scanner(page, rng)
    boxes = []
    for label in range(1, len(slots) + 1):
        ys, xs = np.nonzero(labels == label)
        if len(xs) >= 20:
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return SyntheticPage(page, np.array(boxes, dtype=float).reshape(-1, 4), dpi, seed)


def signature_pool(records, limit: int = 400, seed: int = 0) -> list[np.ndarray]:
    """Greyscale images of genuine signatures from dataset records (a seeded sample)."""
    from ..imageio import load_gray

    rng = np.random.default_rng(seed)
    genuine = [r for r in records if r.is_genuine]
    chosen = rng.choice(len(genuine), size=min(limit, len(genuine)), replace=False)
    return [load_gray(genuine[int(i)].path) for i in sorted(chosen)]
