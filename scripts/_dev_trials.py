"""Shared by the dev-writer checks of multi-reference scores: a model's learned distances among its dev
writers' signatures and to its training-writer cohort, and the protocol's trials on them."""

import argparse
import json
import time
from typing import Any, Callable, Iterator, NamedTuple, Optional

import numpy as np
import torch

from sigverify.cache import Cache, load_or_build
from sigverify.calibration import COHORT_SAMPLE, background_sample
from sigverify.datasets import read_datasets
from sigverify.methods import COHORT_NEAREST_SHARE
from sigverify.metrics import eer
from sigverify.models.artifact import ModelArtifact, load_artifact
from sigverify.protocol import Trial, multi_reference_trials


class DevDistances(NamedTuple):
    index: np.ndarray  # the dev writers' rows of the cache
    within: np.ndarray  # learned distances between two signatures of one writer (inf across writers)
    scale: np.ndarray  # each signature's mean distance to its nearest COHORT_NEAREST_SHARE of the cohort
    cohort_size: int
    cohort_sorted: Optional[np.ndarray] = None  # each signature's distances to the whole cohort, ascending
    to_cohort: Optional[np.ndarray] = None  # the same distances in cohort order (dev signatures x cohort)


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
    to_cohort = comparator.matrix(vectors, cohort)
    cohort_sorted = np.sort(to_cohort, axis=1)
    return DevDistances(dev_idx, within, cohort_sorted[:, :nearest].mean(axis=1), len(cohort_idx), cohort_sorted, to_cohort)


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
    return distances_for(trial.labels[keep], trial.references, trial.queries[keep], within)


def distances_for(labels: np.ndarray, refs: np.ndarray, queries: np.ndarray, within: np.ndarray) -> TrialDistances:
    """The :class:`TrialDistances` of ``queries`` (rows of ``within``, with their ``labels``) against ``refs``."""
    among = within[np.ix_(refs, refs)].copy()
    spread = float(among[np.triu_indices(len(refs), 1)].mean())
    np.fill_diagonal(among, np.inf)
    return TrialDistances(labels, refs, queries, np.sort(within[np.ix_(queries, refs)], axis=1), np.sort(among, axis=1), spread)


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


def add_trial_options(parser: argparse.ArgumentParser, refs: tuple[int, ...] = (5, 12)) -> None:
    """The options every dev check shares: ``--refs R... --tta --json OUT --device D``."""
    parser.add_argument("--refs", type=int, nargs="+", default=list(refs))
    parser.add_argument("--tta", action="store_true", help="test-time-augmented vectors (dev images and cohort)")
    parser.add_argument("--json", help="write the EERs here")
    parser.add_argument("--device", default="cpu", help='where the networks run ("cpu", "cuda")')


def load_on(path: str, device: str) -> ModelArtifact:
    """A model whose network (the embedding and the learned distance) runs on ``device``."""
    artifact = load_artifact(path)
    artifact.network.to(device)
    return artifact


def run_fold_dev_check(description: str, candidate_eers: Callable[[Cache, DevDistances, int], dict[str, float]],
                       extra_json: Optional[dict[str, Any]] = None) -> None:
    """The command line of a check of candidates against ``cohort-multi-k`` on several fold models' dev
    writers: ``MODEL... --data DATA... [--refs R...] [--tta] [--json OUT] [--device D]``.
    ``candidate_eers(cache, dev, R)`` gives one model's ``{name: pooled dev EER}`` (``cohort-multi-k``
    among the names); printed per model, then the mean over models and its difference from
    ``cohort-multi-k``; ``--json`` writes models, tta, per_model, mean and ``extra_json``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("models", nargs="+", help="fold models (each scored on its own dev writers)")
    parser.add_argument("--data", nargs="+", required=True, help="the datasets the models were trained on")
    add_trial_options(parser)
    args = parser.parse_args()
    torch.set_num_threads(2)
    datasets = read_datasets(args.data)
    per_model: dict[str, dict[str, dict[str, float]]] = {}
    for model in args.models:
        artifact = load_on(model, args.device)
        cache = load_or_build(datasets, artifact.preprocess, log=None)
        started = time.time()
        dev = dev_distances(artifact, cache, tta=args.tta)
        per_model[model] = {str(n_refs): candidate_eers(cache, dev, n_refs) for n_refs in args.refs}
        writers = len({cache.records[i].writer_key for i in dev.index})
        print(f"{model}: {len(dev.index)} images of {writers} dev writers, cohort {dev.cohort_size}, {time.time() - started:.0f} s", flush=True)
        for n_refs, figures in per_model[model].items():
            print(f"  R={n_refs}: " + "  ".join(f"{name} {100 * v:.2f}" for name, v in figures.items()), flush=True)
    summary = {}
    for n_refs in map(str, args.refs):
        names = per_model[args.models[0]][n_refs]
        summary[n_refs] = {name: float(np.mean([r[n_refs][name] for r in per_model.values()])) for name in names}
        baseline = summary[n_refs]["cohort-multi-k"]
        print(f"mean over {len(per_model)} models, R={n_refs}: "
              + "  ".join(f"{name} {100 * v:.2f} ({100 * (v - baseline):+.2f})" for name, v in summary[n_refs].items()))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"models": args.models, "tta": args.tta, "per_model": per_model, "mean": summary, **(extra_json or {})}, handle, indent=1)
