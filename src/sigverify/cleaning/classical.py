"""The classical cleaner, the baseline a learned cleaner must beat.

1. Ink mask: Otsu on a lightly blurred copy.
2. Ruled and signature lines: morphological opening of the ink mask with long horizontal (and
   vertical) kernels finds straight strokes much longer than any pen stroke; their pixels are
   erased, except where a stroke crosses them (ink directly above and below the line).
3. Printed text and stamps: connected components of what is left are kept only if they belong to
   the signature: components that are tiny (specks) or text-like (short, in a row of similar
   components far from the main ink mass) are erased.
Returns a greyscale image of the same size with erased pixels set to paper white.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np


def _line_mask(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    binary = mask.astype(np.uint8) * 255
    horizontal = cv2.morphologyEx(binary, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (max(15, w // 5), 1)))
    vertical = cv2.morphologyEx(binary, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(15, h // 2))))
    lines = cv2.dilate(horizontal | vertical, np.ones((3, 3), np.uint8))
    return lines > 0


def ink_and_line_pixels(gray: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """Steps 1-2: the ink mask and the ruled-line pixels to erase (both H x W bool), or None when
    the crop holds (almost) no ink."""
    blurred = cv2.GaussianBlur(gray, (0, 0), 0.8)
    threshold, _ = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = blurred <= threshold
    if ink.mean() < 1e-4:
        return None
    lines = _line_mask(ink)
    # Keep line pixels where a pen stroke crosses: ink a few pixels above and below, off the line.
    reach = 3
    above = np.zeros_like(ink)
    below = np.zeros_like(ink)
    off_line = ink & ~lines
    above[reach:] = off_line[:-reach]
    below[:-reach] = off_line[reach:]
    return ink, lines & ~(above & below)


def clean_classical(gray: np.ndarray) -> np.ndarray:
    """Remove lines, printed text and specks from a signature crop (H x W uint8, 255 = paper)."""
    found = ink_and_line_pixels(gray)
    if found is None:
        return gray.copy()
    ink, erase = found
    remaining = ink & ~erase

    count, labels, stats, centroids = cv2.connectedComponentsWithStats(remaining.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, dtype=bool)
    if count > 1:
        areas = stats[1:, cv2.CC_STAT_AREA].astype(float)
        heights = stats[1:, cv2.CC_STAT_HEIGHT].astype(float)
        widths = stats[1:, cv2.CC_STAT_WIDTH].astype(float)
        biggest = np.argsort(-areas)
        # The signature's mass: the largest components holding 60 % of the ink.
        cumulative = np.cumsum(areas[biggest]) / areas.sum()
        core = biggest[: int(np.searchsorted(cumulative, 0.6)) + 1]
        x0 = stats[1:, cv2.CC_STAT_LEFT][core].min()
        y0 = stats[1:, cv2.CC_STAT_TOP][core].min()
        x1 = (stats[1:, cv2.CC_STAT_LEFT] + widths)[core].max()
        y1 = (stats[1:, cv2.CC_STAT_TOP] + heights)[core].max()
        pad_x, pad_y = 0.15 * (x1 - x0), 0.25 * (y1 - y0)
        median_height = np.median(heights)
        for index in range(count - 1):
            cx, cy = centroids[index + 1]
            inside = x0 - pad_x <= cx <= x1 + pad_x and y0 - pad_y <= cy <= y1 + pad_y
            speck = areas[index] < max(4, 0.0005 * remaining.sum())
            text_like = heights[index] <= 1.2 * median_height and widths[index] <= 2.5 * heights[index] and not inside
            keep[index + 1] = index in core or (inside and not speck) or not (speck or text_like)
    cleaned = np.full_like(gray, 255)
    kept = keep[labels] & remaining
    # Keep the scanned grey levels of the kept ink (and its anti-aliased edge).
    halo = (cv2.dilate(kept.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~erase
    cleaned[halo] = gray[halo]
    return cleaned
