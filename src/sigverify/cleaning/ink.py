"""Ink-level matching for the document path.

A cleaner returns the strokes but cannot know the pen: a signature cut from a scanned letter comes
back darker, lighter or flatter than the writer's references, and the verifier reads ink darkness
(it is one of the cues that separates CEDAR's forgeries). Before a cleaned crop is compared with a
writer's references, its ink grey levels are mapped, rank for rank, onto the references' ink-level
distribution: a monotone tone curve (histogram matching restricted to the Otsu ink pixels), so the
strokes keep their shape and relative shading and the paper stays as it is.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..preprocess import ink_mask

QUANTILES = np.linspace(0.0, 1.0, 101)
MIN_INK_PIXELS = 10


def ink_quantiles(gray: np.ndarray) -> np.ndarray:
    """Quantiles (0, 1, ..., 100 %) of the grey levels under the Otsu ink mask.

    Parameters
    ----------
    gray
        ``H x W`` uint8 image, 255 = paper.

    Returns
    -------
    np.ndarray
        ``(101,)`` float32, darkest first; all 255 when the image has no ink.
    """
    mask, _ = ink_mask(gray)
    values = gray[mask]
    if len(values) < MIN_INK_PIXELS:
        return np.full(len(QUANTILES), 255.0, dtype=np.float32)
    return np.quantile(values.astype(np.float32), QUANTILES).astype(np.float32)


def reference_ink_levels(references: Sequence[np.ndarray]) -> np.ndarray:
    """The mean ink-level quantiles of a writer's references: the target of :func:`match_ink_levels`."""
    if not references:
        raise ValueError("no references to take ink levels from")
    return np.mean([ink_quantiles(r) for r in references], axis=0).astype(np.float32)


def match_ink_levels(gray: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Map the ink pixels' grey levels onto ``target`` quantiles; paper pixels are unchanged.

    Each distinct ink grey level takes the target value at its mid-rank, so equal pixels stay equal
    (a bilevel scan's ink becomes the references' median ink level). The mask is the preprocessing's
    Otsu mask of a blurred copy, so a thin halo of paper around the strokes is matched too, onto the
    references' lightest levels (their own halo): on the development writers a variant restricted to
    pixels darker than the threshold did worse.

    Parameters
    ----------
    gray
        ``H x W`` uint8 image, 255 = paper.
    target
        ``(101,)`` ink-level quantiles, e.g. from :func:`reference_ink_levels`.

    Returns
    -------
    np.ndarray
        ``H x W`` uint8; ``gray`` itself when it has fewer than 10 ink pixels.
    """
    target = np.asarray(target, dtype=np.float32)
    if target.shape != QUANTILES.shape:
        raise ValueError(f"target must hold {len(QUANTILES)} quantiles, got shape {target.shape}")
    mask, _ = ink_mask(gray)
    values = gray[mask]
    if len(values) < MIN_INK_PIXELS:
        return gray
    counts = np.bincount(values, minlength=256).astype(np.float64)
    below = np.cumsum(counts) - counts  # pixels strictly darker than each level
    mid_rank = (below + (counts - 1) / 2) / max(1, len(values) - 1)
    curve = np.clip(np.rint(np.interp(mid_rank, QUANTILES, target)), 0, 255).astype(np.uint8)
    out = gray.copy()
    out[mask] = curve[values]
    return out
