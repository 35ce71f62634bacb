"""Evaluation protocols on embedded signatures (writer-disjoint by construction).

:func:`single_reference_pairs` is the one-reference protocol used for model selection and for the
models issue's figures: for every evaluated writer, every genuine-genuine pair (positives), every
genuine-skilled-forgery pair, and as many genuine-random-forgery pairs (another evaluated writer's
genuine) as there are genuine pairs. Identical files are never paired.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .datasets import GENUINE, Record
from .methods import EUCLIDEAN, Comparator


@dataclass
class ScoredPairs:
    """Pairs (index arrays into the embedded set) with labels, kinds and scores."""

    first: np.ndarray
    second: np.ndarray
    labels: np.ndarray  # 1 genuine-genuine, 0 forgery
    kinds: np.ndarray  # "genuine", "skilled", "random"
    writers: np.ndarray  # the claimed writer of each pair
    scores: Optional[np.ndarray] = None


def single_reference_pairs(
    records: Sequence[Record],
    *,
    content_ids: Optional[Sequence[str]] = None,
    random_per_writer: Optional[int] = None,
    seed: int = 0,
) -> ScoredPairs:
    """All one-reference comparisons among ``records`` (indices refer to ``records``).

    Parameters
    ----------
    random_per_writer
        Random-forgery pairs per writer; default: as many as the writer's genuine pairs.
    """
    rng = np.random.default_rng(seed)
    genuine, forged = defaultdict(list), defaultdict(list)
    for index, record in enumerate(records):
        (genuine if record.label == GENUINE else forged)[record.writer_key].append(index)
    writers = sorted(genuine)
    first, second, labels, kinds, claimed = [], [], [], [], []

    def add(a: int, b: int, label: int, kind: str, writer: str) -> None:
        if a == b or (content_ids is not None and content_ids[a] == content_ids[b]):
            return
        first.append(a)
        second.append(b)
        labels.append(label)
        kinds.append(kind)
        claimed.append(writer)

    for writer in writers:
        mine = genuine[writer]
        for x, a in enumerate(mine):
            for b in mine[x + 1 :]:
                add(a, b, 1, "genuine", writer)
        for a in mine:
            for b in forged.get(writer, []):
                add(a, b, 0, "skilled", writer)
        others = [i for w in writers if w != writer for i in genuine[w]]
        if others:
            n_random = random_per_writer if random_per_writer is not None else len(mine) * (len(mine) - 1) // 2
            for _ in range(n_random):
                add(int(rng.choice(mine)), int(rng.choice(others)), 0, "random", writer)
    return ScoredPairs(
        np.array(first, dtype=np.int64),
        np.array(second, dtype=np.int64),
        np.array(labels, dtype=np.int64),
        np.array(kinds),
        np.array(claimed),
    )


def distance_scores(embeddings: np.ndarray, pairs: ScoredPairs, comparator: Comparator = EUCLIDEAN) -> np.ndarray:
    """Similarity = minus the distance of each pair's vectors (the model's ``comparator``)."""
    return -comparator.paired(embeddings[pairs.first], embeddings[pairs.second])


# --------------------------------------------------------------------------- multi-reference report

REPORT_FIGURES = ("eer", "eer_random", "eer_user_thresholds", "far_skilled", "far_random", "frr", "accuracy", "auc_mean")


def _per_writer_mean(labels: np.ndarray, kinds: np.ndarray, scores: np.ndarray, writers: np.ndarray, fn) -> float:
    """Mean over writers of ``fn(labels, scores)`` on each writer's genuine vs skilled queries."""
    values = []
    for writer in np.unique(writers):
        mask = (writers == writer) & ((kinds == "genuine") | (kinds == "skilled"))
        if (labels[mask] == 1).any() and (labels[mask] == 0).any():
            values.append(fn(labels[mask], scores[mask]))
    return float(np.mean(values)) if values else float("nan")


def trial_metrics(scored, probabilities: np.ndarray, threshold: float) -> dict[str, Any]:
    """Figures of one scored trial set (one draw) at a threshold fixed beforehand.

    ``eer`` is pooled over all writers, genuine vs skilled forgeries (random ones when there are no
    skilled); ``eer_random`` genuine vs random; ``eer_user_thresholds`` the mean of per-writer EERs
    (skilled); ``auc_mean`` the mean per-writer AUC (skilled); FAR/FRR/accuracy and the confusion
    matrix are at ``threshold`` over all queries.
    """
    from .metrics import auc, confusion, eer as eer_fn, rates_at

    labels, kinds = scored.labels, scored.kinds
    result: dict[str, Any] = {}
    has_skilled = (kinds == "skilled").any()
    negatives = "skilled" if has_skilled else "random"
    chosen = (kinds == "genuine") | (kinds == negatives)
    result["eer"] = eer_fn(labels[chosen], probabilities[chosen])[0]
    randoms = (kinds == "genuine") | (kinds == "random")
    if (kinds == "random").any():
        result["eer_random"] = eer_fn(labels[randoms], probabilities[randoms])[0]
    if has_skilled:
        result["eer_user_thresholds"] = _per_writer_mean(labels, kinds, probabilities, scored.writers, lambda y, s: eer_fn(y, s)[0])
        result["auc_mean"] = _per_writer_mean(labels, kinds, probabilities, scored.writers, auc)
    accept = probabilities >= threshold
    for kind in ("skilled", "random"):
        if (kinds == kind).any():
            result[f"far_{kind}"] = float(accept[kinds == kind].mean())
    rates = rates_at(labels, probabilities, threshold)
    result["frr"], result["accuracy"] = rates["frr"], rates["accuracy"]
    result["confusion"] = confusion(labels, probabilities, threshold)
    result["n_queries"] = {k: int((kinds == k).sum()) for k in ("genuine", "skilled", "random")}
    return result


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over runs (folds x draws) of every figure; confusion matrices summed."""
    summary: dict[str, Any] = {"runs": len(runs)}
    for figure in REPORT_FIGURES:
        values = [r[figure] for r in runs if figure in r and r[figure] == r[figure]]
        if values:
            summary[figure] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    if runs and all("confusion" in r for r in runs):
        summary["confusion"] = {k: int(sum(r["confusion"][k] for r in runs)) for k in runs[0]["confusion"]}
    return summary
