"""Shared by the dev-writer checks of multi-reference scores: a model's learned distances among its dev
writers' signatures and to its training-writer cohort, and the protocol's trials on them."""

from typing import Callable, Iterator, NamedTuple, Optional

import numpy as np

from sigverify.cache import Cache
from sigverify.calibration import COHORT_SAMPLE, background_sample
from sigverify.methods import COHORT_NEAREST_SHARE
from sigverify.metrics import eer
from sigverify.models.artifact import ModelArtifact
from sigverify.protocol import Trial, multi_reference_trials


class DevDistances(NamedTuple):
    index: np.ndarray  # the dev writers' rows of the cache
    within: np.ndarray  # learned distances between two signatures of one writer (inf across writers)
    scale: np.ndarray  # each signature's mean distance to its nearest COHORT_NEAREST_SHARE of the cohort
    cohort_size: int
    cohort_sorted: Optional[np.ndarray] = None  # each signature's distances to the whole cohort, ascending


def dev_distances(artifact: ModelArtifact, cache: Cache, *, tta: bool = False) -> DevDistances:
    """The distances the checks need, for the dev writers the model's metadata records (as
    ``calibration.background_sample`` and ``methods.Cohort`` build the cohort in training)."""
    split = artifact.metadata["training"]["split"]
    keys = np.array([r.writer_key for r in cache.records])
    dev_idx = np.flatnonzero(np.isin(keys, split["dev"]))
    train_idx = np.flatnonzero(np.isin(keys, split["train"]))
    if len(dev_idx) == 0:
        raise SystemExit("none of the model's dev writers is in the data given")
    cohort_idx = train_idx[background_sample([cache.records[i] for i in train_idx], **COHORT_SAMPLE)]
    vectors = artifact.vectors(cache.images[dev_idx], cache.sizes[dev_idx], tta=tta)
    cohort = artifact.vectors(cache.images[cohort_idx], cache.sizes[cohort_idx], tta=tta)
    comparator = artifact.comparator
    dev_keys = keys[dev_idx]
    within = np.full((len(vectors), len(vectors)), np.inf, dtype=np.float32)  # only a writer's own pairs are needed
    for writer in np.unique(dev_keys):
        members = np.flatnonzero(dev_keys == writer)
        within[np.ix_(members, members)] = comparator.matrix(vectors[members], vectors[members])
    nearest = max(1, int(round(COHORT_NEAREST_SHARE * len(cohort))))
    cohort_sorted = np.sort(comparator.matrix(vectors, cohort), axis=1)
    return DevDistances(dev_idx, within, cohort_sorted[:, :nearest].mean(axis=1), len(cohort_idx), cohort_sorted)


def cohort_scale(dev: DevDistances, share: float) -> np.ndarray:
    """Each dev signature's mean distance to its nearest ``share`` of the cohort (``dev.scale`` is
    this at :data:`COHORT_NEAREST_SHARE`)."""
    nearest = max(1, int(round(share * dev.cohort_size)))
    return dev.cohort_sorted[:, :nearest].mean(axis=1)


class TrialDistances(NamedTuple):
    labels: np.ndarray  # 1 genuine, 0 skilled forgery (random forgeries left out)
    references: np.ndarray  # rows of ``within``
    queries: np.ndarray
    to_refs: np.ndarray  # Q x R, each query's distances to the references, ascending
    among: np.ndarray  # R x R, each reference's distances to the others, ascending (inf last)
    spread: float  # mean distance between two references


def skilled_trials(cache: Cache, dev: DevDistances, n_refs: int, draws: int = 3) -> Iterator[tuple[int, TrialDistances]]:
    """(draw, distances) of every trial of the evaluate protocol on the dev writers, seed 0."""
    records = [cache.records[i] for i in dev.index]
    all_ids = cache.content_ids()
    trial_set = multi_reference_trials(records, n_refs, draws=draws, seed=0, content_ids=[all_ids[i] for i in dev.index])
    for trial in trial_set.trials:
        yield trial.draw, trial_distances(trial, dev.within)


def pooled_dev_eers(cache: Cache, dev: DevDistances, n_refs: int, score_trial: Callable[[TrialDistances], dict[str, np.ndarray]]) -> dict[str, float]:
    """Each named score's pooled genuine-vs-skilled EER over the dev writers, the mean over the
    protocol's draws. ``score_trial`` maps one trial to ``{name: Q raw scores}`` (higher = genuine)."""
    scores: dict[int, dict[str, list[np.ndarray]]] = {}
    labels: dict[int, list[np.ndarray]] = {}
    for draw, trial in skilled_trials(cache, dev, n_refs):
        for name, values in score_trial(trial).items():
            scores.setdefault(draw, {}).setdefault(name, []).append(values)
        labels.setdefault(draw, []).append(trial.labels)
    names = scores[min(scores)].keys()
    return {name: float(np.mean([eer(np.concatenate(labels[d]), np.concatenate(scores[d][name]))[0] for d in sorted(scores)])) for name in names}


def trial_distances(trial: Trial, within: np.ndarray) -> TrialDistances:
    keep = trial.kinds != "random"
    refs, queries = trial.references, trial.queries[keep]
    among = within[np.ix_(refs, refs)].copy()
    spread = float(among[np.triu_indices(len(refs), 1)].mean())
    np.fill_diagonal(among, np.inf)
    return TrialDistances(trial.labels[keep], refs, queries, np.sort(within[np.ix_(queries, refs)], axis=1), np.sort(among, axis=1), spread)


def multi_k_score(trial: TrialDistances, scale: np.ndarray, ks: tuple[int, ...] = (1, 3, 5)) -> np.ndarray:
    """``cohort-multi-k``'s statistic for a trial's queries (higher = more likely genuine): for each k,
    the mean distance to the k nearest references over sqrt(the references' own k-nearest mean
    distance x their mean cohort scale), averaged over ``ks``."""
    reference_scale = scale[trial.references].mean()
    scores = []
    for k in ks:
        d_k = trial.to_refs[:, :k].mean(axis=1)
        loo_k = trial.among[:, : min(k, len(trial.references) - 1)].mean(axis=1)
        scores.append(-d_k / np.sqrt(loo_k.mean() * reference_scale))
    return np.mean(scores, axis=0)
