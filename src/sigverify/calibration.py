"""Score calibration and decision thresholds, fitted on development writers only.

For every method and several reference counts R (:data:`CALIBRATION_REFS`), the multi-reference
protocol is run on the dev writers; the decision threshold is the raw score at the dev EER between
genuine queries and skilled forgeries (random ones when dev writers have no skilled forgeries), and a
monotone map (logistic, or isotonic) turns raw scores into the probability that the query is
genuine, fitted with balanced classes so that the dev-EER point sits near 0.5. At verification time
the entry fitted with the nearest R is used.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np
from scipy.special import expit

from .datasets import Record
from .methods import EUCLIDEAN, METHODS, Cohort, Comparator, lacks_inputs
from .metrics import eer
from .protocol import Trial, multi_reference_trials, score_trials

CALIBRATION_REFS = (1, 3, 5, 12)
# The cohort: 2 genuine signatures per training writer, at most 200 (each query meets all of them).
COHORT_SAMPLE = {"per_writer": 2, "limit": 200}
CALIBRATIONS = ("logistic", "isotonic")


def fit_entry(labels: np.ndarray, kinds: np.ndarray, scores: np.ndarray, kind: str = "logistic") -> dict[str, Any]:
    """Fit one calibration entry (threshold + probability map) on scored dev queries."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    negatives = "skilled" if (kinds == "skilled").any() else "random"
    chosen = (kinds == "genuine") | (kinds == negatives)
    y, s = labels[chosen], scores[chosen]
    dev_eer, threshold = eer(y, s)
    weights = np.where(y == 1, 0.5 / max(1, y.sum()), 0.5 / max(1, (y == 0).sum()))
    entry: dict[str, Any] = {"threshold_raw": float(threshold), "dev_eer": float(dev_eer), "negatives": negatives, "n": int(len(y))}
    if kind == "logistic":
        # Standardise first: raw scores of some methods span 1e-3, others 10.
        mean, std = float(s.mean()), float(s.std() or 1.0)
        model = LogisticRegression(C=1e4).fit(((s - mean) / std).reshape(-1, 1), y, sample_weight=weights * len(y))
        entry.update(method="logistic", coef=float(model.coef_[0, 0]) / std, intercept=float(model.intercept_[0]) - float(model.coef_[0, 0]) * mean / std)
    elif kind == "isotonic":
        model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s, y, sample_weight=weights)
        entry.update(method="isotonic", x=[float(v) for v in model.X_thresholds_], y=[float(v) for v in model.y_thresholds_])
    else:
        raise ValueError(f"calibration must be one of {CALIBRATIONS}")
    entry["threshold"] = float(to_probability(entry, np.array([threshold]))[0])
    return entry


def to_probability(entry: dict[str, Any], raw: np.ndarray) -> np.ndarray:
    """Map raw scores to calibrated probabilities with one calibration entry."""
    raw = np.asarray(raw, dtype=float)
    if entry["method"] == "logistic":
        return expit(entry["coef"] * raw + entry["intercept"])  # no overflow warning for far-off scores
    return np.interp(raw, entry["x"], entry["y"])


def pick_entry(calibration: dict[str, Any], method: str, n_refs: int) -> dict[str, Any]:
    """The entry of ``method`` fitted with the reference count nearest to ``n_refs`` (log scale)."""
    if method not in calibration:
        raise KeyError(f"the model has no calibration for method {method!r}")
    entries = calibration[method]
    best = min(entries, key=lambda r: abs(math.log(int(r)) - math.log(max(1, n_refs))))
    return entries[best]


def calibrate_methods(
    embeddings: np.ndarray,
    records: Sequence[Record],
    *,
    background: Optional[np.ndarray],
    vote_distance: float,
    methods: Sequence[str] = METHODS,
    refs: Sequence[int] = CALIBRATION_REFS,
    draws: int = 3,
    seed: int = 0,
    kind: str = "logistic",
    content_ids: Optional[Sequence[str]] = None,
    query_vectors: Optional[Callable[[Trial, np.ndarray], np.ndarray]] = None,
    comparator: Comparator = EUCLIDEAN,
    cohort: Optional[Cohort] = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Fit ``{method: {str(R): entry}}`` on dev writers' embeddings (``records`` are dev writers only).

    ``query_vectors``: per-trial query vectors, as in :func:`sigverify.protocol.score_trials`;
    ``comparator``: the model's distance; ``cohort``: training writers' signatures for the methods
    that need them (skipped without)."""
    calibration: dict[str, dict[str, dict[str, Any]]] = {}
    for n_refs in refs:
        trial_set = multi_reference_trials(records, n_refs, draws=draws, seed=seed, content_ids=content_ids)
        if not trial_set.trials:
            continue
        for method in methods:
            if lacks_inputs(method, background, cohort):
                continue
            scored = score_trials(
                trial_set, embeddings, method, background=background, vote_distance=vote_distance, query_vectors=query_vectors, comparator=comparator, cohort=cohort
            )
            if scored is None or len(set(scored.labels.tolist())) < 2:
                continue
            entry = fit_entry(scored.labels, scored.kinds, scored.scores, kind)
            entry["n_writers"] = len({t.writer for t in trial_set.trials})
            calibration.setdefault(method, {})[str(n_refs)] = entry
    return calibration


REFERENCE_CONSISTENCY_REFS = (5, 12)
REFERENCE_CONSISTENCY_QUANTILE = 0.99


def mean_distance_to_others(pairwise: np.ndarray) -> np.ndarray:
    """``R``: each reference's mean distance to the other ``R - 1`` (``pairwise``: ``R x R``, R >= 2)."""
    n = len(pairwise)
    return pairwise[~np.eye(n, dtype=bool)].reshape(n, n - 1).mean(axis=1)


def inconsistent_references(pairwise: np.ndarray, limit: float) -> np.ndarray:
    """``R`` booleans: the references whose :func:`mean_distance_to_others` exceeds ``limit`` (the
    reference-consistency warning's rule)."""
    return mean_distance_to_others(pairwise) > limit


def reference_consistency_distance(
    embeddings: np.ndarray,
    records: Sequence[Record],
    *,
    comparator: Comparator = EUCLIDEAN,
    content_ids: Optional[Sequence[str]] = None,
    refs: Sequence[int] = REFERENCE_CONSISTENCY_REFS,
    draws: int = 3,
    seed: int = 0,
    quantile: float = REFERENCE_CONSISTENCY_QUANTILE,
) -> Optional[float]:
    """The limit of the reference-consistency warning, fitted on dev writers' genuine signatures.

    Reference sets are drawn as the evaluation protocol draws them (``refs`` references, ``draws``
    draws); each reference's :func:`mean_distance_to_others` is collected, and the ``quantile`` of
    those values is returned: a reference farther than this from the others is flagged, so about
    ``1 - quantile`` of genuine references are flagged by chance (a false-alarm budget). The
    one-reference decision threshold is not used for this: a writer's own genuine signatures often
    lie farther apart than it (stop 23: it flagged 26-33 % of genuine-only dev reference sets).
    ``None`` when no dev writer has more than ``min(refs)`` genuine signatures (nothing to fit on).
    """
    values: list[np.ndarray] = []
    for n_refs in refs:
        for trial in multi_reference_trials(records, n_refs, draws=draws, seed=seed, content_ids=content_ids).trials:
            chosen = embeddings[trial.references]
            values.append(mean_distance_to_others(comparator.matrix(chosen, chosen)))
    if not values:
        return None
    return float(np.quantile(np.concatenate(values), quantile))


def background_sample(records: Sequence[Record], *, per_writer: int = 8, limit: int = 600, seed: int = 0) -> np.ndarray:
    """Indices of genuine signatures of the given (training) writers: WD negatives, or (fewer per
    writer, :data:`COHORT_SAMPLE`) the cohort of ``cohort-threshold``."""
    from collections import defaultdict

    rng = np.random.default_rng(seed)
    by_writer = defaultdict(list)
    for index, record in enumerate(records):
        if record.is_genuine:
            by_writer[record.writer_key].append(index)
    chosen = []
    for writer in sorted(by_writer):
        pool = by_writer[writer]
        chosen += [int(i) for i in rng.choice(pool, size=min(per_writer, len(pool)), replace=False)]
    chosen = np.array(sorted(chosen), dtype=np.int64)
    if len(chosen) > limit:
        chosen = np.sort(rng.choice(chosen, size=limit, replace=False))
    return chosen
