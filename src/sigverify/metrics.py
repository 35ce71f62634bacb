"""Verification metrics. Scores are "higher = more likely genuine"; labels are 1 for genuine
queries and 0 for forgeries (skilled or random).

Definitions
-----------
FAR  share of forgeries accepted (score >= threshold);
FRR  share of genuine signatures rejected (score < threshold);
EER  the error rate where FAR = FRR on the ROC curve (interpolated between its two nearest points);
AUC  area under the ROC curve.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def _as_arrays(labels: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError("labels and scores must be 1-D and of one length")
    if not np.isfinite(scores).all():
        raise ValueError("scores hold NaN or infinite values")
    if labels.min(initial=1) == labels.max(initial=0) or len(labels) == 0:
        raise ValueError("need both genuine (1) and forgery (0) labels")
    return labels, scores


def eer(labels: Sequence[int], scores: Sequence[float]) -> tuple[float, float]:
    """Equal error rate and the threshold where it occurs.

    Returns
    -------
    (eer, threshold)
        ``eer`` in 0..1; accepting ``score >= threshold`` gives FAR ~= FRR ~= eer.
    """
    labels, scores = _as_arrays(labels, scores)
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    fnr = 1 - tpr
    diff = fnr - fpr  # decreasing from 1 to -1 along the curve
    index = int(np.flatnonzero(diff <= 0)[0])
    if index == 0 or diff[index] == 0:
        rate = (fpr[index] + fnr[index]) / 2
        threshold = thresholds[index]
    else:
        # Linear interpolation between the last point with FRR > FAR and the first with FRR <= FAR.
        d0, d1 = diff[index - 1], diff[index]
        t = d0 / (d0 - d1)
        rate = fpr[index - 1] + t * (fpr[index] - fpr[index - 1])
        threshold = thresholds[index]
    if not np.isfinite(threshold):
        threshold = float(scores.max()) + 1e-9
    return float(rate), float(threshold)


def rates_at(labels: Sequence[int], scores: Sequence[float], threshold: float) -> dict[str, float]:
    """FAR, FRR and accuracy when accepting ``score >= threshold``."""
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    accept = scores >= threshold
    genuine = labels == 1
    far = float(accept[~genuine].mean()) if (~genuine).any() else float("nan")
    frr = float((~accept[genuine]).mean()) if genuine.any() else float("nan")
    accuracy = float((accept == genuine).mean()) if len(labels) else float("nan")
    return {"far": far, "frr": frr, "accuracy": accuracy}


def auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    labels, scores = _as_arrays(labels, scores)
    return float(roc_auc_score(labels, scores))


def confusion(labels: Sequence[int], scores: Sequence[float], threshold: float) -> dict[str, int]:
    """Counts: ``tp`` genuine accepted, ``fn`` genuine rejected, ``fp`` forgery accepted, ``tn`` rejected."""
    labels = np.asarray(labels, dtype=int)
    accept = np.asarray(scores, dtype=float) >= threshold
    return {
        "tp": int((accept & (labels == 1)).sum()),
        "fn": int((~accept & (labels == 1)).sum()),
        "fp": int((accept & (labels == 0)).sum()),
        "tn": int((~accept & (labels == 0)).sum()),
    }


def verification_metrics(
    labels: Sequence[int],
    scores: Sequence[float],
    kinds: Optional[Sequence[str]] = None,
    threshold: Optional[float] = None,
) -> dict[str, float]:
    """One dict of named figures for a set of scored queries.

    Parameters
    ----------
    labels, scores
        1 = genuine, 0 = forgery; higher score = more genuine.
    kinds
        Per query ``"genuine"``, ``"skilled"`` or ``"random"``; with it, FAR is also given per kind
        and EER is given for genuine vs skilled and genuine vs random separately.
    threshold
        A threshold fixed beforehand (on development data); rates at it are reported.
    """
    labels, scores = _as_arrays(labels, scores)
    result: dict[str, float] = {"n_genuine": int(labels.sum()), "n_forgery": int((labels == 0).sum())}
    result["eer"], result["eer_threshold"] = eer(labels, scores)
    result["auc"] = auc(labels, scores)
    if kinds is not None:
        kinds = np.asarray(kinds)
        for kind in ("skilled", "random"):
            subset = (kinds == "genuine") | (kinds == kind)
            if (kinds == kind).any() and (kinds == "genuine").any():
                result[f"eer_{kind}"], _ = eer(labels[subset], scores[subset])
    if threshold is not None:
        result["threshold"] = float(threshold)
        result.update(rates_at(labels, scores, threshold))
        if kinds is not None:
            for kind in ("skilled", "random"):
                mask = kinds == kind
                if mask.any():
                    result[f"far_{kind}"] = float((scores[mask] >= threshold).mean())
        result["confusion"] = confusion(labels, scores, threshold)  # type: ignore[assignment]
    return result
