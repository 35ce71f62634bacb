"""The multi-reference verification protocol.

For each evaluated writer and each draw, ``R`` references are drawn at random from the writer's
genuine signatures; the queries are the writer's remaining genuine signatures (label 1), all of its
skilled forgeries (label 0, kind ``skilled``) and genuine signatures of other evaluated writers
(label 0, kind ``random``). Writers with fewer than ``R + 1`` genuine signatures are skipped for
that ``R`` (and counted). Nothing here knows about training: callers pass only the writers they
evaluate, which is what keeps the protocol writer-disjoint.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from .datasets import GENUINE, Record
from .methods import EUCLIDEAN, NEEDS_TWO_REFERENCES, Cohort, Comparator, raw_scores


@dataclass
class Trial:
    """One writer, one draw of references, its queries (indices into the evaluated set)."""

    writer: str
    draw: int
    references: np.ndarray
    queries: np.ndarray
    labels: np.ndarray
    kinds: np.ndarray


@dataclass
class TrialSet:
    trials: list[Trial]
    n_refs: int
    skipped_writers: list[str]


def multi_reference_trials(
    records: Sequence[Record],
    n_refs: int,
    *,
    draws: int = 1,
    seed: int = 0,
    content_ids: Optional[Sequence[str]] = None,
    random_per_trial: int = 100,
    shuffle_references: bool = False,
) -> TrialSet:
    """Build the trials of the protocol on ``records`` (one set of evaluated writers).

    Parameters
    ----------
    random_per_trial
        At most this many random forgeries per trial (drawn from the other writers' genuine).
    shuffle_references
        Control: draw each writer's references from *another* writer's genuine signatures.
    """
    rng = np.random.default_rng(seed)
    genuine, forged = defaultdict(list), defaultdict(list)
    for index, record in enumerate(records):
        (genuine if record.label == GENUINE else forged)[record.writer_key].append(index)
    writers = sorted(genuine)
    eligible = [w for w in writers if len(genuine[w]) >= n_refs + 1]
    skipped = [w for w in writers if w not in eligible]
    trials = []
    for draw in range(draws):
        for position, writer in enumerate(eligible):
            mine = np.array(genuine[writer])
            order = rng.permutation(len(mine))
            refs, genuine_queries = mine[order[:n_refs]], mine[order[n_refs:]]
            if shuffle_references:
                donors = [w for w in eligible if w != writer]
                if not donors:
                    continue
                donor = donors[rng.integers(len(donors))]
                refs = rng.choice(np.array(genuine[donor]), size=n_refs, replace=False)
            others = np.array([i for w in writers if w != writer for i in genuine[w]], dtype=np.int64)
            randoms = rng.choice(others, size=min(random_per_trial, len(others)), replace=False) if len(others) else others
            skilled = np.array(forged.get(writer, []), dtype=np.int64)
            queries = np.concatenate([genuine_queries, skilled, randoms]).astype(np.int64)
            labels = np.concatenate([np.ones(len(genuine_queries)), np.zeros(len(skilled) + len(randoms))]).astype(np.int64)
            kinds = np.array(["genuine"] * len(genuine_queries) + ["skilled"] * len(skilled) + ["random"] * len(randoms))
            if content_ids is not None:
                # A query identical to a reference would be a copy, not a signature: leave it out.
                ref_ids = {content_ids[i] for i in refs}
                keep = np.array([content_ids[q] not in ref_ids for q in queries], dtype=bool)
                queries, labels, kinds = queries[keep], labels[keep], kinds[keep]
            trials.append(Trial(writer, draw, np.asarray(refs, dtype=np.int64), queries, labels, kinds))
    return TrialSet(trials, n_refs, skipped)


@dataclass
class Scored:
    """Scores of every query of a trial set under one method."""

    labels: np.ndarray
    kinds: np.ndarray
    scores: np.ndarray
    writers: np.ndarray
    draws: np.ndarray


def score_trials(
    trial_set: TrialSet,
    embeddings: np.ndarray,
    method: str,
    *,
    background: Optional[np.ndarray] = None,
    vote_distance: Optional[float] = None,
    query_vectors: Optional[Callable[[Trial, np.ndarray], np.ndarray]] = None,
    comparator: Comparator = EUCLIDEAN,
    cohort: Optional[Cohort] = None,
) -> Optional[Scored]:
    """Raw scores of every trial's queries; ``None`` when the method cannot run at this ``R``.

    ``query_vectors``, when given, supplies each trial's query vectors, called as
    ``query_vectors(trial, trial.queries)`` in place of ``embeddings[trial.queries]``: for queries rendered to match the trial's references
    (the document path's ink matching). ``comparator``: the model's distance (``artifact.comparator``);
    ``cohort``: the model's cohort (``artifact.cohort``), for ``cohort-threshold``."""
    if method in NEEDS_TWO_REFERENCES and trial_set.n_refs < 2:
        return None
    parts = {"labels": [], "kinds": [], "scores": [], "writers": [], "draws": []}
    for trial in trial_set.trials:
        scores = raw_scores(
            method,
            embeddings[trial.references],
            embeddings[trial.queries] if query_vectors is None else query_vectors(trial, trial.queries),
            background=background,
            vote_distance=vote_distance,
            seed=trial.draw,
            comparator=comparator,
            cohort=cohort,
        )
        parts["labels"].append(trial.labels)
        parts["kinds"].append(trial.kinds)
        parts["scores"].append(scores)
        parts["writers"].append(np.full(len(scores), trial.writer, dtype=object))
        parts["draws"].append(np.full(len(scores), trial.draw))
    if not parts["scores"]:
        return None
    return Scored(**{k: np.concatenate(v) for k, v in parts.items()})
