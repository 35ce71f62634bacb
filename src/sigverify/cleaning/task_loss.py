"""The verifier as a cleaner's loss: a cleaned signature should embed where its clean twin embeds.

A pixel loss weighs every pixel alike, but on the dev writers what costs the verifier its accuracy
after cleaning is clutter left *between and beside the strokes* (``scripts/check_cleaner_dev.py
--oracle``: erasing everything outside the clean twin's dilated ink gives back several points of EER,
erasing everything outside its ink box none). This loss asks the frozen verifier itself
which residue matters: the cleaner's output and the clean twin go through the same differentiable
copy of the preprocessing (paper above the clean twin's Otsu threshold removed, cropped to the clean
twin's ink box, resized and placed as :func:`sigverify.preprocess.preprocess_with_size` places it)
and the loss is the distance between the two L2-normalised embeddings, in units of the verifier's
decision distance (1 = as far apart as the dev-fitted threshold).

The geometry is the clean twin's, so the loss cannot see residue outside the ink box; the pixel loss
it is added to can.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..preprocess import PreprocessConfig, canvas_placement, ink_mask

# Width, in grey levels, of the soft step that stands in for "pixels lighter than the threshold
# are paper" (a hard step has no gradient).
SOFT_THRESHOLD_GREYS = 8.0


@dataclass(frozen=True)
class Placement:
    """Where preprocessing puts one clean twin's ink on the verifier's canvas."""

    threshold: float  # Otsu threshold (grey level); lighter pixels are paper
    box: tuple[int, int, int, int]  # r0, r1, c0, c1 of the ink in the twin
    size: tuple[int, int]  # resized ink box, rows x cols
    offset: tuple[int, int]  # top, left on the canvas


def placement(clean: np.ndarray, config: PreprocessConfig) -> Placement:
    """The preprocessing geometry of an ``H x W`` uint8 clean twin (the rules of
    :func:`sigverify.preprocess.preprocess_with_size` without its options for specks and ink
    normalisation, which the task loss does not support)."""
    mask, threshold = ink_mask(clean, config)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        raise ValueError("the clean twin has no ink")
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop = clean[r0:r1, c0:c1]
    ink = np.where(crop > threshold, 0.0, np.clip(255.0 - crop.astype(np.float64), 0, 255))
    size, offset, _ = canvas_placement(crop.shape, ink if ink.any() else mask[r0:r1, c0:c1].astype(np.float64), config)
    return Placement(float(threshold), (r0, r1, c0, c1), size, offset)


def to_canvas(ink: torch.Tensor, where: Placement, config: PreprocessConfig) -> torch.Tensor:
    """``H x W`` ink probabilities (1 = ink) -> ``H' x W'`` verifier input in 0..1, differentiable."""
    r0, r1, c0, c1 = where.box
    crop = ink[r0:r1, c0:c1]
    darkness = 255.0 * crop
    paper_level = 255.0 - where.threshold  # grey > threshold  <=>  darkness < 255 - threshold
    kept = darkness * torch.sigmoid((darkness - paper_level) / SOFT_THRESHOLD_GREYS)
    shrinking = where.size[0] < crop.shape[0]
    resized = F.interpolate(kept[None, None], size=where.size, mode="area" if shrinking else "bilinear", align_corners=None if shrinking else False)[0, 0]
    canvas = ink.new_zeros(config.shape)
    top, left = where.offset
    canvas = canvas.index_put((torch.arange(top, top + where.size[0])[:, None], torch.arange(left, left + where.size[1])[None, :]), resized)
    return (canvas / 255.0).clamp(0, 1)


class EmbeddingLoss:
    """``|embedding(cleaned) - embedding(clean twin)| / threshold distance`` under a frozen verifier.

    Parameters
    ----------
    artifact
        The verifier (:class:`sigverify.models.artifact.ModelArtifact`); its weights are not trained.
    bf16
        Run the verifier under bfloat16 autocast.
    """

    def __init__(self, artifact, *, bf16: bool = True) -> None:
        config = artifact.preprocess
        if config.min_component_area or config.normalize_ink or config.binarize or config.denoise != "none":
            raise ValueError("the task loss copies only the default preprocessing (no speck removal, ink normalisation, binarisation or denoising)")
        self.config = config
        # A private copy: the cached verifier other callers use keeps its gradients switched on.
        self.network = copy.deepcopy(artifact.network)
        self.network.eval()
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)
        self.bf16 = bf16
        self.version = artifact.version
        # Distances in units of the verifier's dev-fitted decision distance, so that a loss of 1
        # means "as far apart as the threshold" whatever the model.
        self.unit = float(artifact.thresholds.get("distance") or 1.0)

    def _embed(self, canvases: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            return F.normalize(self.network(canvases[:, None]).float(), dim=1)

    def __call__(self, cleaned_ink: torch.Tensor, clean_ink: torch.Tensor, placements: list[Placement]) -> torch.Tensor:
        """Mean loss over a batch.

        Parameters
        ----------
        cleaned_ink, clean_ink
            ``N x 1 x H x W`` ink probabilities (1 = ink): the cleaner's output and the clean twins.
        placements
            One :func:`placement` per clean twin, at this resolution.
        """
        outputs = torch.stack([to_canvas(x[0], p, self.config) for x, p in zip(cleaned_ink, placements)])
        with torch.no_grad():
            targets = self._embed(torch.stack([to_canvas(y[0], p, self.config) for y, p in zip(clean_ink, placements)]))
        return ((self._embed(outputs) - targets).norm(dim=1) / self.unit).mean()
