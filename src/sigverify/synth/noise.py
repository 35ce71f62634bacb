"""Noisy copies of clean signatures, each aligned pixel for pixel with its clean twin.

The clean twin is the scan with its paper tone removed (everything lighter than the Otsu threshold
becomes 255) on a canvas with a margin around the ink; the noisy copy is the same canvas with
document clutter drawn over it - printed text in several fonts and sizes, ruled and signature lines
(straight, slightly skewed, dashed), round and rectangular rubber stamps with text in grey, boxes -
and scanner effects (speckle, blur, binarisation, JPEG). Nothing moves the signature, so the twin
stays aligned. Everything is a pure function of the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import cv2
import numpy as np

from . import draw

NOISE_KINDS = ("text", "lines", "stamp", "box", "scanner")


@dataclass
class NoisyPair:
    noisy: np.ndarray  # H x W uint8
    clean: np.ndarray  # H x W uint8, aligned with noisy
    kinds: list[str] = field(default_factory=list)
    seed: int = 0


def clean_twin(gray: np.ndarray, margin: float = 0.25, max_side: int = 600) -> np.ndarray:
    """The clean reference canvas: paper tone removed, the ink cropped with a margin, downscaled
    so the long side is at most ``max_side`` (600 dpi scans are far larger than needed)."""
    from ..preprocess import PreprocessConfig, ink_mask

    mask, threshold = ink_mask(gray, PreprocessConfig())
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        raise ValueError("no ink")
    crop = gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].copy()
    crop[crop > threshold] = 255
    scale = min(1.0, max_side / max(crop.shape))
    if scale < 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    pad_y, pad_x = int(crop.shape[0] * margin) + 4, int(crop.shape[1] * margin * 0.5) + 4
    return cv2.copyMakeBorder(crop, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT, value=255)


def add_noise(clean: np.ndarray, seed: int, *, kinds: Optional[Sequence[str]] = None) -> NoisyPair:
    """Draw document clutter over a clean canvas (from :func:`clean_twin`).

    Parameters
    ----------
    kinds
        Which clutter to draw (subset of :data:`NOISE_KINDS`); default: a random non-empty mix.
    """
    rng = np.random.default_rng(seed)
    if kinds is None:
        kinds = [k for k in NOISE_KINDS if rng.random() < {"text": 0.7, "lines": 0.7, "stamp": 0.4, "box": 0.2, "scanner": 0.8}[k]]
        if not any(k in kinds for k in ("text", "lines", "stamp", "box")):
            kinds.append(str(rng.choice(["text", "lines", "stamp"])))
    noisy = clean.copy()
    h, w = noisy.shape
    unit = max(8, h // 6)  # a text size that scales with the signature's height
    if "lines" in kinds:
        for _ in range(int(rng.integers(1, 4))):
            y = int(rng.uniform(0.35, 0.95) * h)
            skew = int(rng.uniform(-0.03, 0.03) * w)
            thickness = int(rng.integers(1, max(2, h // 40) + 1))
            x0, x1 = int(rng.uniform(-0.1, 0.3) * w), int(rng.uniform(0.7, 1.1) * w)
            draw.draw_line(noisy, (x0, y), (x1, y + skew), thickness, int(rng.integers(0, 90)), dashed=bool(rng.random() < 0.3))
        if rng.random() < 0.2:  # a vertical rule (table border)
            x = int(rng.uniform(0.05, 0.95) * w)
            draw.draw_line(noisy, (x, 0), (x, h), int(rng.integers(1, 3)), int(rng.integers(0, 80)))
    if "text" in kinds:
        for _ in range(int(rng.integers(1, 4))):
            size = int(unit * rng.uniform(0.6, 1.4))
            font = draw.random_font(rng, size)
            words = " ".join(draw.random_words(rng, int(rng.integers(3, 10))))
            x, y = int(rng.uniform(-0.2, 0.6) * w), int(rng.uniform(-0.05, 0.9) * h)
            draw.draw_text_line(noisy, words, x, y, font, int(rng.integers(0, 70)), angle=float(rng.uniform(-3, 3)) if rng.random() < 0.3 else 0.0)
    if "stamp" in kinds:
        mark = draw.stamp(rng, int(h * rng.uniform(0.6, 1.2)))
        x, y = int(rng.uniform(-0.2, 0.8) * w), int(rng.uniform(-0.3, 0.5) * h)
        # Stamps are coloured ink, lighter than pen ink once scanned to grey.
        draw.paste_ink(noisy, mark, x, y, int(rng.integers(70, 170)))
    if "box" in kinds:
        x0, y0 = int(rng.uniform(0, 0.2) * w), int(rng.uniform(0, 0.2) * h)
        x1, y1 = int(rng.uniform(0.8, 1.0) * w), int(rng.uniform(0.8, 1.0) * h)
        draw.draw_box(noisy, x0, y0, x1, y1, int(rng.integers(1, 3)), int(rng.integers(0, 80)))
    if "scanner" in kinds:
        noisy = draw.scanner(noisy, rng, binarize=bool(rng.random() < 0.3), jpeg=bool(rng.random() < 0.4))
    return NoisyPair(noisy, clean, list(kinds), seed)


def darken_ink(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same signature written with a darker, possibly broader pen (felt tip, office bilevel scan):
    ink grey levels scaled towards black, strokes sometimes dilated by a pixel. Applied to the clean
    twin *before* clutter is drawn, so a cleaner cannot learn that dark strokes are always print."""
    out = clean.astype(np.float32)
    ink = out < 255
    out[ink] *= rng.uniform(0.0, 0.5)
    out = out.astype(np.uint8)
    if rng.random() < 0.5:
        out = cv2.erode(out, np.ones((2, 2), np.uint8))  # erosion of the paper = a broader stroke
    return out


def noisy_dataset(records, *, per_image: int = 1, seed: int = 0, max_side: int = 600, darken_probability: float = 0.0) -> list[tuple[NoisyPair, object]]:
    """(noisy pair, record) for every record's image, ``per_image`` noisy versions each; seeded.

    With ``darken_probability`` a copy's clean twin is first redrawn with :func:`darken_ink`."""
    from ..imageio import load_gray

    pairs = []
    for index, record in enumerate(records):
        clean = clean_twin(load_gray(record.path), max_side=max_side)
        for copy in range(per_image):
            copy_seed = seed * 1_000_003 + index * 97 + copy
            twin = clean
            if darken_probability:
                rng = np.random.default_rng([copy_seed, 1])
                if rng.random() < darken_probability:
                    twin = darken_ink(clean, rng)
            pairs.append((add_noise(twin, copy_seed), record))
    return pairs
