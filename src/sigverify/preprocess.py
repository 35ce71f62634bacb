"""Signature preprocessing: part of every model's contract.

The default is the recipe of Hafemann et al. (luizgh/sigver), adapted so that it needs no
dataset-specific canvas size:

1. greyscale (any input :func:`sigverify.imageio.load_gray` reads);
2. optional denoising (median or non-local means);
3. Otsu threshold on a Gaussian-blurred copy: the blur keeps isolated specks and the scanner's paper
   texture out of the ink mask, and every pixel lighter than the threshold becomes pure paper, so the
   scanner's background tone never reaches the model;
4. optional removal of small connected components (speckles);
5. crop to the ink;
6. invert (ink bright, paper 0) and resize, keeping the aspect ratio, to fit the output canvas;
7. place the signature's centre of mass at the canvas centre (clamped so no ink is cut off).

The output is ``height x width`` uint8 with 0 = paper. All parameters live in one frozen
:class:`PreprocessConfig`; models store it in their metadata and reload it, so a model is always fed
exactly what it was trained on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

import cv2
import numpy as np

from .errors import NoSignatureFound
from .imageio import DEFAULT_MAX_PIXELS, ImageSource, describe_source, load_gray

DENOISE_METHODS = ("none", "median", "nlmeans")


@dataclass(frozen=True)
class PreprocessConfig:
    """Every preprocessing parameter; models carry one of these.

    Attributes
    ----------
    height, width
        Output size in pixels (sigver's 150 x 220).
    blur_sigma
        Gaussian sigma of the copy used for Otsu and cropping (not of the output).
    margin
        Empty border kept on each side of the ink, as a fraction of the output size.
    denoise
        ``"none"``, ``"median"`` (3 x 3) or ``"nlmeans"`` (OpenCV fast non-local means).
    min_component_area
        Ink components smaller than this many pixels (at the input's resolution) are erased;
        0 disables the speckle clean-up.
    binarize
        Output pure 0/255 ink instead of the scanned grey levels.
    normalize_ink
        Measure ink darkness from the paper's own grey level and stretch it so the darkest strokes
        (90th percentile) become full ink: a darker pen, a toned paper or a bilevel scan then looks
        like the same signature to the network.
    min_contrast
        Minimum mean grey difference between paper and ink; below it the image is blank.
    min_ink_pixels
        Minimum number of ink pixels; below it the image is blank.
    default_dpi
        Resolution assumed for size measurements when a file declares none.
    """

    height: int = 150
    width: int = 220
    blur_sigma: float = 2.0
    margin: float = 0.04
    denoise: str = "none"
    min_component_area: int = 0
    binarize: bool = False
    normalize_ink: bool = False
    min_contrast: float = 12.0
    min_ink_pixels: int = 20
    default_dpi: float = 150.0

    def __post_init__(self) -> None:
        if self.height < 16 or self.width < 16:
            raise ValueError(f"output size {self.height}x{self.width} is too small (min 16x16)")
        if self.denoise not in DENOISE_METHODS:
            raise ValueError(f"denoise must be one of {DENOISE_METHODS}, not {self.denoise!r}")
        if not 0.0 <= self.margin < 0.4:
            raise ValueError(f"margin must be in [0, 0.4), not {self.margin}")
        if self.blur_sigma < 0:
            raise ValueError("blur_sigma must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "PreprocessConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown preprocessing parameters: {sorted(unknown)}")
        return cls(**values)

    def digest(self) -> str:
        """A short stable hash of the parameters (cache keys, model metadata)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)


DEFAULT_CONFIG = PreprocessConfig()


def _denoise(gray: np.ndarray, method: str) -> np.ndarray:
    if method == "median":
        return cv2.medianBlur(gray, 3)
    if method == "nlmeans":
        return cv2.fastNlMeansDenoising(gray, None, h=10, templateWindowSize=7, searchWindowSize=21)
    return gray


def ink_mask(gray: np.ndarray, config: PreprocessConfig = DEFAULT_CONFIG) -> tuple[np.ndarray, int]:
    """Otsu ink mask of a greyscale image, computed on a blurred copy.

    Returns
    -------
    mask : np.ndarray
        ``H x W`` bool, True where there is ink.
    threshold : int
        The Otsu threshold; pixels above it are paper.
    """
    blurred = cv2.GaussianBlur(gray, (0, 0), config.blur_sigma) if config.blur_sigma > 0 else gray
    threshold, _ = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return blurred <= threshold, int(threshold)


def _remove_specks(mask: np.ndarray, min_area: int) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def canvas_placement(crop_shape: tuple[int, int], weights: np.ndarray, config: PreprocessConfig) -> tuple[tuple[int, int], tuple[int, int], float]:
    """Where a cropped signature goes on the canvas: resized to fit, aspect kept, its centre of mass
    (``weights``, the crop's ink) at the canvas centre, clamped so no ink is cut off.

    Returns
    -------
    size : (rows, cols) of the resized crop
    offset : (top, left) of the resized crop on the canvas
    scale : the resize factor (< 1: shrinking)
    """
    out_h, out_w = config.shape
    avail_h = max(1, round(out_h * (1 - 2 * config.margin)))
    avail_w = max(1, round(out_w * (1 - 2 * config.margin)))
    crop_h, crop_w = crop_shape
    scale = min(avail_h / crop_h, avail_w / crop_w)
    new_h = max(1, min(avail_h, round(crop_h * scale)))
    new_w = max(1, min(avail_w, round(crop_w * scale)))
    total = float(weights.sum())
    rows, cols = np.indices(weights.shape)
    centre_r = (rows * weights).sum() / total * scale
    centre_c = (cols * weights).sum() / total * scale
    top = int(round(out_h / 2 - centre_r))
    left = int(round(out_w / 2 - centre_c))
    top = min(max(top, 0), out_h - new_h)
    left = min(max(left, 0), out_w - new_w)
    return (new_h, new_w), (top, left), scale


def _fit_on_canvas(ink: np.ndarray, weights: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Resize ``ink`` (inverted, cropped) to fit the canvas and centre its mass."""
    (new_h, new_w), (top, left), scale = canvas_placement(ink.shape, weights, config)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(ink, (new_w, new_h), interpolation=interpolation)
    canvas = np.zeros(config.shape, dtype=np.uint8)
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas


SIZE_FEATURES = ("log_width_in", "log_height_in", "log_ink_area_in2")


def preprocess_with_size(
    gray: np.ndarray, config: PreprocessConfig = DEFAULT_CONFIG, *, dpi: Optional[float] = None, name: str = "<array>"
) -> tuple[np.ndarray, np.ndarray]:
    """Preprocess an ``H x W`` uint8 greyscale image and measure the signature's physical size.

    The preprocessed image is scale-normalised (it fills the canvas), so a signature's size is
    measured here instead: forgers often write larger or smaller than their model.

    Returns
    -------
    image : np.ndarray
        ``config.height x config.width`` uint8, ink bright on a 0 background.
    size : np.ndarray
        ``3`` float32: log width and log height of the ink box in inches, log ink area in square
        inches, at the file's resolution (``dpi``) or ``config.default_dpi``.

    Raises
    ------
    NoSignatureFound
        When the image holds no ink (too little contrast or too few ink pixels).
    """
    gray = _denoise(gray, config.denoise)
    mask, threshold = ink_mask(gray, config)
    if config.min_component_area > 0:
        mask = _remove_specks(mask, config.min_component_area)
    ink_count = int(mask.sum())
    if ink_count < config.min_ink_pixels or ink_count == mask.size:
        raise NoSignatureFound(name, f"no ink found ({ink_count} ink pixels)")
    contrast = float(gray[~mask].mean()) - float(gray[mask].mean())
    if contrast < config.min_contrast:
        raise NoSignatureFound(name, f"blank image (ink/paper contrast {contrast:.1f} < {config.min_contrast})")

    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = gray[r0:r1, c0:c1]
    crop_mask = mask[r0:r1, c0:c1]

    # Paper is whatever is lighter than the threshold; specks removed from the mask are paper too.
    paper = float(np.median(gray[~mask])) if config.normalize_ink else 255.0
    ink = np.clip(paper - crop.astype(np.float32), 0, 255)
    ink[crop > threshold] = 0
    if config.normalize_ink and ink.any():
        ink = np.clip(ink * (255.0 / max(1.0, float(np.percentile(ink[ink > 0], 90)))), 0, 255)
    if config.min_component_area > 0:
        ink[~crop_mask] = 0
    if config.binarize:
        ink = np.where(ink > 0, 255, 0)
    ink = np.round(ink).astype(np.uint8)
    weights = ink.astype(np.float64) if ink.any() else crop_mask.astype(np.float64)
    canvas = _fit_on_canvas(ink, weights, config)
    if config.binarize:  # resizing blends edges into grey: threshold again at mid-grey
        canvas = np.where(canvas >= 128, 255, 0).astype(np.uint8)
    resolution = dpi or config.default_dpi
    size = np.log(np.array([(c1 - c0) / resolution, (r1 - r0) / resolution, max(1, int((ink > 0).sum())) / resolution**2], dtype=np.float64))
    return canvas, size.astype(np.float32)


def preprocess_gray(gray: np.ndarray, config: PreprocessConfig = DEFAULT_CONFIG, *, name: str = "<array>") -> np.ndarray:
    """Preprocess an already-decoded ``H x W`` uint8 greyscale image (see :func:`preprocess_with_size`).

    Returns
    -------
    np.ndarray
        ``config.height x config.width`` uint8, ink bright on a 0 background.
    """
    return preprocess_with_size(gray, config, name=name)[0]


def preprocess(
    source: ImageSource,
    config: PreprocessConfig = DEFAULT_CONFIG,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read and preprocess one signature image.

    Parameters
    ----------
    source
        Anything :func:`sigverify.imageio.load_gray` reads.
    config
        The preprocessing parameters (a model's own, normally).

    Returns
    -------
    np.ndarray
        ``config.height x config.width`` uint8, ink bright on a 0 background.
    """
    gray = load_gray(source, max_pixels=max_pixels)
    return preprocess_gray(gray, config, name=describe_source(source))


def transform(image: np.ndarray, angle: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """Rotate (degrees, counter-clockwise) and scale a preprocessed image about its centre."""
    if angle == 0.0 and scale == 1.0:
        return image.copy()
    height, width = image.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)


def tta_variants(
    image: np.ndarray,
    angles: Sequence[float] = (-5.0, 0.0, 5.0),
    scales: Sequence[float] = (0.95, 1.0, 1.05),
) -> np.ndarray:
    """Test-time variants of a preprocessed image: every (angle, scale) combination.

    Returns
    -------
    np.ndarray
        ``V x H x W`` uint8 with ``V = len(angles) * len(scales)``; the untouched image is among them
        when 0 and 1 are.
    """
    return np.stack([transform(image, a, s) for a in angles for s in scales])


def preprocess_many(sources: Iterable[ImageSource], config: PreprocessConfig = DEFAULT_CONFIG) -> np.ndarray:
    """Preprocess several images into one ``N x H x W`` uint8 array (sequentially)."""
    images = [preprocess(source, config) for source in sources]
    if not images:
        return np.zeros((0, config.height, config.width), dtype=np.uint8)
    return np.stack(images)
