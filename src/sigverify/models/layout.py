"""The layout of the vectors :func:`sigverify.represent` hands out: one where plain distances work.

Internally a model compares ``[embedding | weighted size | local descriptor]`` with its own distance
(Euclidean, or the learned local head). Those blocks sit on very different scales (unit embedding,
weighted log sizes as far out as -10, a local descriptor of norm ~55), so a caller who scores the vectors with a plain
Euclidean or cosine distance - the usual thing to do with an embedding - gets far less than the
model knows (shipped model, held-out writers, one reference: 23.8 % Euclidean, 22.4 % cosine EER,
against 16.5 % with :func:`sigverify.distances`). :class:`RepresentLayout` rewrites the vector
invertibly so that every block has a fixed norm:

* the embedding as it is (unit L2);
* each weighted size value ``s``, centred on the cohort's mean ``c``, as a point on a circle of
  radius ``r``: ``r * (cos((s - c) / r), sin((s - c) / r))`` - the chord between two points is
  almost ``|s1 - s2|`` (``r`` is twice the cohort's largest deviation, so arcs stay small);
* the local descriptor L2-normalised times :data:`LOCAL_WEIGHT`, its norm kept on a circle of
  radius :data:`NORM_RADIUS` (too small to move a distance, there only so the vector can be decoded).

Every vector then has the same norm, so Euclidean and cosine distances rank pairs identically. The
constants come from the model's cohort (genuine signatures of its training writers, stored in the
artifact), so the layout is a deterministic function of the model file. :meth:`decode` gives back the
internal vector (to float32 rounding), which is what :func:`sigverify.distances` and ``verify`` with
embedded references compare.

The block weights (the local block at twice the embedding's norm, the size at its calibrated
weight) were chosen on the shipped model's development writers among rescalings of the three blocks
(stop 25 of the issue notes): dev EER 23.0 / 23.6 % (Euclidean / cosine) -> 16.5 / 16.5 %; the
writers it never saw, measured once afterwards: 23.8 / 22.4 % -> 19.5 / 19.5 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

LOCAL_WEIGHT = 2.0
NORM_RADIUS = 0.01
SIZE_DIMS = 3


@dataclass(frozen=True)
class RepresentLayout:
    """Invertible map between a model's internal vectors and the constant-norm ones it hands out.

    Parameters
    ----------
    embedding_dim
        E, the unit-norm embedding's length (first block, unchanged).
    size_center, size_radius
        Centre (3 values) and circle radius of the weighted size block; ``size_center`` is ``None``
        for a model that does not use size (no size block).
    descriptor_dim
        Length of the local descriptor (0 for a model without a local head).
    norm_center, norm_range
        The local descriptor's norm is stored as the angle ``(n - norm_center) / norm_range * pi / 2``.
    """

    embedding_dim: int
    size_center: Optional[tuple[float, ...]]
    size_radius: float
    descriptor_dim: int
    norm_center: float
    norm_range: float

    @classmethod
    def fit(cls, cohort: np.ndarray, embedding_dim: int, uses_size: bool, descriptor_dim: int) -> "RepresentLayout":
        """The layout's constants from ``K x V`` internal cohort vectors (training writers)."""
        if cohort.ndim != 2 or len(cohort) == 0:
            raise ValueError(f"a layout needs a non-empty K x V cohort, got shape {cohort.shape}")
        size_center, size_radius = None, 1.0
        if uses_size:
            sizes = cohort[:, embedding_dim : embedding_dim + SIZE_DIMS].astype(np.float64)
            center = sizes.mean(axis=0)
            size_center = tuple(float(v) for v in center)
            size_radius = float(max(1e-3, 2.0 * np.abs(sizes - center).max()))
        norm_center, norm_range = 1.0, 1.0
        if descriptor_dim:
            norms = np.linalg.norm(cohort[:, -descriptor_dim:].astype(np.float64), axis=1)
            norm_center = float(norms.mean())
            norm_range = float(max(1e-3, 2.0 * np.abs(norms - norm_center).max()))
        return cls(int(embedding_dim), size_center, size_radius, int(descriptor_dim), norm_center, norm_range)

    @property
    def internal_dim(self) -> int:
        return self.embedding_dim + (SIZE_DIMS if self.size_center is not None else 0) + self.descriptor_dim

    @property
    def dim(self) -> int:
        """Length of a handed-out vector: E [+ 6 size values] [+ descriptor + 2]."""
        return self.embedding_dim + (2 * SIZE_DIMS if self.size_center is not None else 0) + (self.descriptor_dim + 2 if self.descriptor_dim else 0)

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """``N x internal_dim`` internal vectors -> ``N x dim`` constant-norm vectors (float32)."""
        vectors = np.asarray(vectors, dtype=np.float64)
        e = self.embedding_dim
        blocks = [vectors[:, :e]]
        if self.size_center is not None:
            angle = (vectors[:, e : e + SIZE_DIMS] - np.asarray(self.size_center)) / self.size_radius
            blocks += [self.size_radius * np.cos(angle), self.size_radius * np.sin(angle)]
        if self.descriptor_dim:
            local = vectors[:, -self.descriptor_dim :]
            norms = np.linalg.norm(local, axis=1, keepdims=True)
            angle = (norms - self.norm_center) / self.norm_range * (np.pi / 2)
            blocks += [LOCAL_WEIGHT * local / np.maximum(norms, 1e-12), NORM_RADIUS * np.cos(angle), NORM_RADIUS * np.sin(angle)]
        return np.hstack(blocks).astype(np.float32)

    def decode(self, vectors: np.ndarray) -> np.ndarray:
        """``N x dim`` handed-out vectors -> ``N x internal_dim`` internal vectors (float32)."""
        vectors = np.asarray(vectors, dtype=np.float64)
        e = self.embedding_dim
        blocks = [vectors[:, :e]]
        at = e
        if self.size_center is not None:
            cos, sin = vectors[:, at : at + SIZE_DIMS], vectors[:, at + SIZE_DIMS : at + 2 * SIZE_DIMS]
            blocks.append(np.asarray(self.size_center) + self.size_radius * np.arctan2(sin, cos))
            at += 2 * SIZE_DIMS
        if self.descriptor_dim:
            direction = vectors[:, at : at + self.descriptor_dim] / LOCAL_WEIGHT
            cos, sin = vectors[:, at + self.descriptor_dim], vectors[:, at + self.descriptor_dim + 1]
            norms = self.norm_center + np.arctan2(sin, cos) / (np.pi / 2) * self.norm_range
            blocks.append(direction * norms[:, None])
        return np.hstack(blocks).astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "embedding_dim": self.embedding_dim, "size_center": None if self.size_center is None else list(self.size_center),
            "size_radius": self.size_radius, "descriptor_dim": self.descriptor_dim, "norm_center": self.norm_center,
            "norm_range": self.norm_range, "local_weight": LOCAL_WEIGHT, "norm_radius": NORM_RADIUS,
        }
