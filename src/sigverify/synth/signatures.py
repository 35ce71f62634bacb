"""Procedural signatures: synthetic writers with genuine samples and skilled forgeries.

Only 95 real training writers are in ``../shared``; every network trained on them overfits their
forgeries within a few epochs. A synthetic writer here is a *prototype* - pen-down components, each a
smooth curve through control points that rise and fall like letters, with the writer's slant, letter
width, size, stroke width and flourish. A **genuine** sample is the prototype written again: small
jitter of every control point, of size, rotation and slant, and the writer's own speed-dependent
stroke width (thin where the pen moves fast, on straight runs). A **skilled forgery** copies the
shape but not the motion: larger shape errors and changed proportions, tremor along the stroke, a
near-constant stroke width (slow drawing), pen lifts and blunt ends. Ink and paper grey levels are
drawn per image from the same distribution for both classes, so that the pen never tells them apart.

Everything is a pure function of the seed. Images are uint8 greyscale, 255 = paper, sized like a
CEDAR scan (about 150 dpi). As pretraining for the shipped recipe they gave no gain on development
writers (MODEL_CARD.md, "Fine-tuning and synthetic writers"); the shipped model does not use them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SUPERSAMPLE = 2  # drawn at twice the size, then area-downscaled: anti-aliased strokes


@dataclass(frozen=True)
class WriterStyle:
    """The invariant part of a synthetic writer (lengths in x-height units unless noted)."""

    components: tuple[np.ndarray, ...]  # each K x 2 control points (x right, y up)
    slant: float  # shear of x by y
    unit_px: float  # x-height in pixels
    stroke_px: float  # mean stroke width in pixels
    speed_width: float  # how much faster strokes get thinner (0 = constant width)
    variability: float  # the writer's own control-point jitter


# Letter strokes in x-height units, starting and ending near the baseline: arch (n, m, h), cup (u,
# w), ascender loop (l, b, k), small loop (e), round (o, a), descender loop (g, y), spike (i, t).
_LETTERS = (
    ((0.0, 0.0), (0.1, 0.8), (0.35, 1.0), (0.55, 0.7), (0.6, 0.0)),
    ((0.0, 1.0), (0.05, 0.2), (0.25, 0.0), (0.45, 0.2), (0.5, 1.0), (0.6, 0.3)),
    ((0.0, 0.0), (0.3, 1.4), (0.35, 2.0), (0.2, 1.9), (0.15, 1.2), (0.25, 0.0)),
    ((0.0, 0.2), (0.3, 0.6), (0.2, 0.85), (0.05, 0.5), (0.2, 0.05), (0.45, 0.2)),
    ((0.3, 1.0), (0.05, 0.6), (0.15, 0.0), (0.4, 0.3), (0.35, 1.0), (0.5, 0.8)),
    ((0.0, 1.0), (0.1, 0.2), (0.15, -0.9), (0.0, -0.8), (0.1, -0.2), (0.4, 0.3)),
    ((0.0, 0.0), (0.15, 1.1), (0.25, 0.0)),
)
_CAPITALS = (
    ((0.0, 0.0), (0.2, 1.9), (0.35, 1.8), (0.5, 0.0), (0.7, 1.9), (0.9, 0.3)),
    ((0.3, 0.0), (0.3, 1.9), (0.7, 1.7), (0.3, 1.0), (0.8, 0.6), (0.4, 0.0)),
    ((0.9, 1.7), (0.4, 1.9), (0.0, 1.0), (0.3, 0.0), (0.9, 0.3)),
    ((0.0, 1.6), (0.4, 2.0), (0.3, 1.0), (0.1, 0.0), (0.5, 0.4), (0.8, 0.2)),
)


def _component(rng: np.random.Generator, x0: float, capital: bool) -> np.ndarray:
    """Control points of one pen-down component: an optional capital, then cursive letters, each
    a letter template distorted once for this writer."""
    templates = ([_CAPITALS[int(rng.integers(len(_CAPITALS)))]] if capital else []) + [
        _LETTERS[int(rng.choice(len(_LETTERS), p=[0.26, 0.14, 0.14, 0.14, 0.14, 0.1, 0.08]))]
        for _ in range(int(rng.integers(3, 8)))
    ]
    points, x = [], x0
    for template in templates:
        shape = np.asarray(template, dtype=np.float64)
        shape = shape * [rng.uniform(0.7, 1.5), rng.uniform(0.8, 1.2)] + rng.normal(0, 0.06, shape.shape)
        shape[:, 0] += x - shape[0, 0] + (0.05 if points else 0.0)
        points.extend(shape.tolist())
        x = float(shape[:, 0].max())
    return np.asarray(points, dtype=np.float64)


def random_style(rng: np.random.Generator) -> WriterStyle:
    """A new synthetic writer."""
    n_components = int(rng.choice([1, 2, 3], p=[0.35, 0.45, 0.2]))
    components, x = [], 0.0
    for index in range(n_components):
        points = _component(rng, x, capital=index == 0 or rng.random() < 0.5)
        components.append(points)
        x = points[:, 0].max() + rng.uniform(0.4, 1.0)
    if rng.random() < 0.4:  # a flourish under the name
        width = x
        flourish = np.asarray([
            (width + rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.5)),
            (width * rng.uniform(0.6, 0.9), rng.uniform(-0.9, -0.4)),
            (width * rng.uniform(0.2, 0.5), rng.uniform(-1.0, -0.5)),
            (rng.uniform(-0.4, 0.3), rng.uniform(-0.8, -0.2)),
        ])
        components.append(flourish)
    return WriterStyle(
        components=tuple(components),
        slant=float(rng.uniform(-0.15, 0.5)),
        unit_px=float(rng.uniform(18, 32)),
        stroke_px=float(rng.uniform(1.6, 3.6)),
        speed_width=float(rng.uniform(0.3, 0.8)),
        variability=float(rng.uniform(0.025, 0.06)),
    )


def _spline(points: np.ndarray, samples_per_segment: int = 12) -> np.ndarray:
    """Catmull-Rom curve through the control points (ends repeated)."""
    padded = np.vstack([points[:1], points, points[-1:]])
    t = np.linspace(0, 1, samples_per_segment, endpoint=False)[:, None]
    pieces = []
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1], padded[i], padded[i + 1], padded[i + 2]
        pieces.append(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3))
    pieces.append(points[-1:])
    return np.vstack(pieces)


def _smooth_noise(rng: np.random.Generator, n: int, scale: float, length: float) -> np.ndarray:
    """``n x 2`` Gaussian noise smoothed along the curve (correlation length in samples)."""
    from scipy.ndimage import gaussian_filter1d

    smoothed = gaussian_filter1d(rng.normal(0, 1, (n, 2)), sigma=length, axis=0, mode="nearest")
    return scale * smoothed / max(1e-6, float(smoothed.std()))


def render(style: WriterStyle, rng: np.random.Generator, *, forged: bool, forger_skill: float = 0.5) -> np.ndarray:
    """One signature image (uint8, 255 = paper) of ``style``: genuine, or a skilled forgery.

    ``forger_skill`` in [0, 1]: 1 is a forger whose shape errors are close to the writer's own
    variability; the tremor and near-constant width of slow drawing remain at every skill.
    """
    shape_error = style.variability * (1.0 + (1.0 - forger_skill) * 3.0 + 0.5) if forged else style.variability
    scale = style.unit_px * rng.normal(1.0, 0.05 if not forged else 0.09) * SUPERSAMPLE
    slant = style.slant + rng.normal(0, 0.04 if not forged else 0.1)
    angle = np.deg2rad(rng.normal(0, 2.0 if not forged else 3.5))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    curves = []
    for points in style.components:
        points = points.copy()
        if forged:  # a forger misjudges proportions component by component
            points[:, 0] = points[:, 0].min() + (points[:, 0] - points[:, 0].min()) * rng.normal(1.0, 0.08)
            points[:, 1] *= rng.normal(1.0, 0.08)
        points = points + rng.normal(0, shape_error, points.shape) + rng.normal(0, shape_error, 2)
        curve = _spline(points)
        curve[:, 0] += slant * curve[:, 1]
        curves.append(curve @ rotation.T * scale)
    everything = np.vstack(curves)
    low = everything.min(0)
    margin = 6 * SUPERSAMPLE
    size = np.ceil(everything.max(0) - low + 2 * margin).astype(int)
    ink = np.zeros((size[1], size[0]), dtype=np.float32)
    darkness = rng.uniform(0.45, 0.8)  # the pen: same distribution for genuine and forged
    width_px = style.stroke_px * rng.normal(1.0, 0.08) * SUPERSAMPLE * (1.1 if forged else 1.0)
    speed_width = style.speed_width * (0.25 if forged else 1.0)
    for curve in curves:
        xy = curve - low + margin
        xy[:, 1] = size[1] - xy[:, 1]  # y up -> image rows down
        if forged:  # tremor of slow drawing
            xy += _smooth_noise(rng, len(xy), rng.uniform(0.25, 0.7) * SUPERSAMPLE, rng.uniform(1.0, 3.0))
        step = np.linalg.norm(np.diff(xy, axis=0), axis=1)
        speed = np.concatenate([step, step[-1:]]) / max(1e-6, float(np.median(step)))
        widths = width_px * (1.0 + speed_width * (1.0 - np.clip(speed, 0.3, 1.7)))
        # pressure drifts along the stroke and eases off where the pen moves fast
        drift = _smooth_noise(rng, len(xy), 1.0, 12.0)[:, 0]
        pressure = np.clip(darkness * (0.9 + 0.07 * drift - 0.1 * speed_width * (np.clip(speed, 0.3, 1.7) - 1.0)), 0.2, 0.95)
        lifts = set()
        if forged and rng.random() < 0.35:
            lifts = set(rng.integers(5, max(6, len(xy) - 5), size=int(rng.integers(1, 3))).tolist())
        for i in range(len(xy) - 1):
            if any(abs(i - lift) < 3 for lift in lifts):
                continue
            thickness = max(1, int(round(widths[i])))
            a = (int(round(xy[i, 0] * 4)), int(round(xy[i, 1] * 4)))
            b = (int(round(xy[i + 1, 0] * 4)), int(round(xy[i + 1, 1] * 4)))
            cv2.line(ink, a, b, float(pressure[i]), thickness, cv2.LINE_AA, shift=2)
        if forged and rng.random() < 0.5:  # blunt start and end: the pen rests before moving
            for end in (xy[0], xy[-1]):
                cv2.circle(ink, (int(end[0]), int(end[1])), max(1, int(width_px * 0.8)), float(darkness), -1, cv2.LINE_AA)
    ink = cv2.resize(ink, (size[0] // SUPERSAMPLE, size[1] // SUPERSAMPLE), interpolation=cv2.INTER_AREA)
    ink = cv2.GaussianBlur(ink, (0, 0), rng.uniform(0.4, 0.8))
    paper = rng.uniform(235, 255)
    image = paper * (1.0 - ink) + rng.normal(0, 2.0, ink.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def synthetic_writer(seed: int, n_genuine: int, n_forged: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Genuine samples and skilled forgeries of the synthetic writer ``seed`` (forgeries by 1-3 forgers)."""
    rng = np.random.default_rng(seed)
    style = random_style(rng)
    genuine = [render(style, rng, forged=False) for _ in range(n_genuine)]
    skills = rng.uniform(0.2, 1.0, size=int(rng.integers(1, 4)))
    forged = [render(style, rng, forged=True, forger_skill=float(skills[i % len(skills)])) for i in range(n_forged)]
    return genuine, forged
