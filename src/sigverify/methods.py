"""Decision methods: how a query's embedding is scored against a writer's reference embeddings.

Every method maps ``R`` reference embeddings and ``Q`` query embeddings (all L2-normalised) to ``Q``
raw scores, higher = more likely genuine. Raw scores are then calibrated to probabilities (see
:mod:`sigverify.calibration`).

``single``            minus the distance to the first reference (the plain Siamese pair score)
``fusion-mean|max|median|min``   per-reference similarities (minus distance) fused
``vote``              share of references within the one-reference distance threshold (majority
                      voting); ties broken by the mean similarity, scaled by 1e-3
``writer-threshold``  mean distance to the (up to) 3 nearest references divided by the references'
                      own mean pairwise distance, negated: a per-writer threshold from the spread of
                      the references among themselves (the nearest 3, not all: chosen on dev writers)
``cohort-threshold``  the writer-threshold distance (mean distance to the 3 nearest references) divided
                      by the geometric mean of two scales of the references alone: the same statistic
                      computed among them (each reference's mean distance to its 3 nearest other
                      references) and their mean distance to the nearest fifth of a cohort of training
                      writers' genuine signatures; negated. A per-writer threshold (it depends on the
                      references only) that puts a writer's genuine variation against how far the
                      writer sits from strangers (chosen on dev writers, stop 21)
``cohort-multi-k``    ``cohort-threshold``'s statistic averaged over the 1, 3 and 5 nearest references
                      (the query's distance and the references' own spread both with the same k);
                      chosen on dev writers with test-time-augmented vectors (``--tta``, stop 22)
``wd-logreg``, ``wd-svm``   writer-dependent classifiers trained on the references (positives)
                      against a background set of other writers' genuine signatures (negatives);
                      logistic regression, or an RBF SVM, on the Siamese embeddings
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Optional, Protocol, Sequence

import numpy as np

FUSIONS = {
    "fusion-mean": np.mean,
    "fusion-max": np.max,
    "fusion-median": np.median,
    "fusion-min": np.min,
}
METHODS = ("single", *FUSIONS, "vote", "writer-threshold", "cohort-threshold", "cohort-multi-k", "wd-logreg", "wd-svm")
NEEDS_BACKGROUND = {"wd-logreg", "wd-svm"}
NEEDS_COHORT = {"cohort-threshold", "cohort-multi-k"}
WRITER_THRESHOLD_NEIGHBOURS = 3
NEEDS_TWO_REFERENCES = {"writer-threshold", "cohort-threshold", "cohort-multi-k"}
MULTI_K_NEIGHBOURS = (1, 3, 5)
COHORT_NEAREST_SHARE = 0.2
_COHORT_SCALE_CACHE = 50_000


def distances(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``len(first) x len(second)`` Euclidean distances."""
    squared = (first**2).sum(1)[:, None] + (second**2).sum(1)[None, :] - 2 * first @ second.T
    return np.sqrt(np.clip(squared, 0, None))


class Comparator(Protocol):
    """How a model compares two signatures' vectors: a distance, small for the same writer's genuine
    signatures. Plain models use :data:`EUCLIDEAN`; a model with a learned local head supplies its
    own (:class:`sigverify.models.local.LearnedDistance`)."""

    def matrix(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """``len(first) x len(second)`` distances."""

    def paired(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Distances of row i of ``first`` to row i of ``second`` (``N``)."""

    def global_part(self, vectors: np.ndarray) -> np.ndarray:
        """The part of the vectors a writer-dependent classifier sees (embedding [+ size])."""


class Euclidean:
    """Euclidean distance between whole vectors (embedding [+ weighted size])."""

    def matrix(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return distances(first, second)

    def paired(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return np.linalg.norm(first - second, axis=1)

    def global_part(self, vectors: np.ndarray) -> np.ndarray:
        return vectors


EUCLIDEAN = Euclidean()


def reference_spread(references: np.ndarray, comparator: Comparator = EUCLIDEAN) -> float:
    """Mean pairwise distance among a writer's references (0 for a single reference)."""
    if len(references) < 2:
        return 0.0
    d = comparator.matrix(references, references)
    return float(d[np.triu_indices(len(references), 1)].mean())


def lacks_inputs(method: str, background: Optional[np.ndarray], cohort: Optional["Cohort"]) -> bool:
    """Whether ``method`` cannot run for want of the model's WD background set or its cohort (a model
    calibrated before the method existed): evaluation and calibration skip it then."""
    return (method in NEEDS_BACKGROUND and background is None) or (method in NEEDS_COHORT and cohort is None)


def reference_nearest_spread(references: np.ndarray, comparator: Comparator = EUCLIDEAN, neighbours: Sequence[int] = (WRITER_THRESHOLD_NEIGHBOURS,)) -> np.ndarray:
    """For each k in ``neighbours``: the mean over references of each one's mean distance to its (up
    to) k nearest other references, i.e. the query statistic of ``writer-threshold`` computed among
    genuine references (``len(neighbours)`` values; zeros for a single reference)."""
    if len(references) < 2:
        return np.zeros(len(neighbours))
    d = comparator.matrix(references, references)
    np.fill_diagonal(d, np.inf)
    d = np.sort(d, axis=1)
    return np.array([d[:, : min(k, len(references) - 1)].mean() for k in neighbours])


class Cohort:
    """Genuine signatures of training writers (never an evaluated writer) that references are also
    compared with: a signature's mean distance to the nearest :data:`COHORT_NEAREST_SHARE` of them is
    its scale (some signatures are close to everything, some far from everything).

    Parameters
    ----------
    vectors
        ``K x V`` full signature vectors (what the model's comparator takes, local descriptor included).
    """

    def __init__(self, vectors: np.ndarray) -> None:
        if vectors.ndim != 2 or len(vectors) == 0:
            raise ValueError(f"a cohort needs a non-empty K x V array, got shape {vectors.shape}")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.nearest = max(1, int(round(COHORT_NEAREST_SHARE * len(vectors))))
        # Evaluation meets the same references in many draws: remember recent scales by content.
        self._scales: OrderedDict[bytes, float] = OrderedDict()

    def scales(self, signatures: np.ndarray, comparator: "Comparator") -> np.ndarray:
        """``N`` mean distances of each signature (``N x V``) to its nearest cohort signatures."""
        signatures = np.ascontiguousarray(signatures, dtype=np.float32)
        keys = [hashlib.sha1(row.tobytes()).digest() for row in signatures]
        missing = [i for i, key in enumerate(keys) if key not in self._scales]
        scales = {}
        if missing:
            d = comparator.matrix(signatures[missing], self.vectors)
            scales = {keys[i]: float(v) for i, v in zip(missing, np.sort(d, axis=1)[:, : self.nearest].mean(axis=1))}
        for key in keys:
            if key in self._scales:
                scales[key] = self._scales[key]
                self._scales.move_to_end(key)
        self._scales.update(scales)
        while len(self._scales) > _COHORT_SCALE_CACHE:
            self._scales.popitem(last=False)
        return np.array([scales[key] for key in keys])


def raw_scores(
    method: str,
    references: np.ndarray,
    queries: np.ndarray,
    *,
    background: Optional[np.ndarray] = None,
    vote_distance: Optional[float] = None,
    seed: int = 0,
    comparator: Comparator = EUCLIDEAN,
    cohort: Optional[Cohort] = None,
) -> np.ndarray:
    """Raw scores of ``queries`` (``Q x D``) against one writer's ``references`` (``R x D``).

    Parameters
    ----------
    background
        ``B x D`` genuine embeddings of other writers (never the evaluated ones); WD methods only.
    vote_distance
        The one-reference distance threshold, for ``vote``.
    comparator
        The model's distance (:data:`EUCLIDEAN` unless the model has a learned local head).
    cohort
        Training writers' genuine signatures, for ``cohort-threshold``.

    Returns
    -------
    np.ndarray
        ``Q`` float scores, higher = more likely genuine.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    if len(references) == 0:
        raise ValueError("no references")
    d = comparator.matrix(queries, references)  # Q x R
    if method == "single":
        return -d[:, 0]
    if method in FUSIONS:
        return FUSIONS[method](-d, axis=1)
    if method == "vote":
        if vote_distance is None:
            raise ValueError("vote needs the one-reference distance threshold")
        return (d <= vote_distance).mean(axis=1) - 1e-3 * d.mean(axis=1)
    if method in NEEDS_TWO_REFERENCES:
        if len(references) < 2:
            raise ValueError(f"{method} needs at least 2 references")
        ordered = np.sort(d, axis=1)  # each query's references, nearest first
        if method == "writer-threshold":
            return -ordered[:, :WRITER_THRESHOLD_NEIGHBOURS].mean(axis=1) / max(reference_spread(references, comparator), 1e-6)
        if cohort is None:
            raise ValueError(f"{method} needs a cohort of training writers' signatures")
        to_cohort = max(float(cohort.scales(references, comparator).mean()), 1e-6)
        neighbours = MULTI_K_NEIGHBOURS if method == "cohort-multi-k" else (WRITER_THRESHOLD_NEIGHBOURS,)
        among = np.maximum(reference_nearest_spread(references, comparator, neighbours), 1e-6)
        return np.mean([-ordered[:, :k].mean(axis=1) / np.sqrt(spread * to_cohort) for k, spread in zip(neighbours, among)], axis=0)
    if background is None or len(background) == 0:
        raise ValueError(f"{method} needs a background set of other writers' embeddings")
    return _writer_dependent(method, comparator.global_part(references), comparator.global_part(queries), comparator.global_part(background), seed)


def _writer_dependent(method: str, references: np.ndarray, queries: np.ndarray, background: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    features = np.concatenate([references, background])
    targets = np.concatenate([np.ones(len(references)), np.zeros(len(background))])
    if method == "wd-logreg":
        classifier = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    else:
        # Embeddings are unit vectors: gamma 1 puts the RBF's length scale at their typical spacing.
        classifier = SVC(kernel="rbf", C=1.0, gamma=1.0, class_weight="balanced", random_state=seed)
    classifier.fit(features, targets)
    return classifier.decision_function(queries)
