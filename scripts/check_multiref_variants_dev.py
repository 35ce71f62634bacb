#!/usr/bin/env python
"""Multi-reference score variants against writer-threshold, on a model's DEVELOPMENT writers only.

Usage: python scripts/check_multiref_variants_dev.py MODEL DATA [DATA ...] [--json OUT]

This is the dev check behind `cohort-threshold` (stop 21; the rule and the figures are in MODEL_CARD.md
and the issue notes): the evaluate protocol's trials (3 draws) on the dev writers the model records,
genuine vs skilled forgeries (random forgeries left out), pooled EER per variant and R. The cohort is
`calibration.background_sample(training writers, **COHORT_SAMPLE)`, as in training; "scale" = mean
learned distance to the nearest fifth of it. d3 = mean distance to the 3 nearest references, LOO =
each reference's mean distance to its 3 nearest other references. `loo-r` is what `cohort-threshold`
computes; the others were the candidates it was chosen from (`cohort-s20`: stop 20's failed variant).
Test writers are never read.
"""

import argparse
import json
import time

import numpy as np
import torch

from sigverify.cache import load_or_build
from sigverify.calibration import COHORT_SAMPLE, background_sample
from sigverify.datasets import read_datasets
from sigverify.methods import COHORT_NEAREST_SHARE
from sigverify.metrics import eer
from sigverify.models.artifact import load_artifact
from sigverify.protocol import multi_reference_trials


def variant_scores(d3: np.ndarray, spread: float, loo: np.ndarray, query_scale: np.ndarray, reference_scale: float) -> dict[str, np.ndarray]:
    """Each candidate's raw scores (higher = more likely genuine) for one trial's queries."""
    return {
        "writer-threshold": -d3 / spread,
        "loo": -d3 / loo.mean(),
        "loo-z": -(d3 - loo.mean()) / (loo.std() + 1e-6),
        "loo-q": -d3 / np.sqrt(loo.mean() * query_scale),
        "s-ratio": -d3 / np.sqrt(query_scale * reference_scale),
        "3way": -d3 / np.cbrt(spread * query_scale * reference_scale),
        "loo-r": -d3 / np.sqrt(loo.mean() * reference_scale),
        "cohort-s20": -d3 / np.sqrt(spread * query_scale),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data", nargs="+", help="the datasets the model was trained on (its dev and training writers)")
    parser.add_argument("--refs", type=int, nargs="+", default=[5, 12])
    parser.add_argument("--tta", action="store_true", help="test-time-augmented vectors (dev images and cohort)")
    parser.add_argument("--json", help="write the EERs here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    artifact = load_artifact(args.model)
    split = artifact.metadata["training"]["split"]
    cache = load_or_build(read_datasets(args.data), artifact.preprocess, log=None)
    keys = np.array([r.writer_key for r in cache.records])
    dev_idx = np.flatnonzero(np.isin(keys, split["dev"]))
    train_idx = np.flatnonzero(np.isin(keys, split["train"]))
    if len(dev_idx) == 0:
        raise SystemExit(f"{args.model}: none of its dev writers is in {args.data}")
    cohort_idx = train_idx[background_sample([cache.records[i] for i in train_idx], **COHORT_SAMPLE)]
    started = time.time()
    vectors = artifact.vectors(cache.images[dev_idx], cache.sizes[dev_idx], tta=args.tta)
    cohort = artifact.vectors(cache.images[cohort_idx], cache.sizes[cohort_idx], tta=args.tta)
    comparator = artifact.comparator
    within = np.full((len(vectors), len(vectors)), np.inf, dtype=np.float32)  # only a writer's own pairs are needed
    dev_keys = keys[dev_idx]
    for writer in np.unique(dev_keys):
        rows = np.flatnonzero(dev_keys == writer)
        within[np.ix_(rows, rows)] = comparator.matrix(vectors[rows], vectors[rows])
    nearest = max(1, int(round(COHORT_NEAREST_SHARE * len(cohort))))  # as methods.Cohort
    scale = np.sort(comparator.matrix(vectors, cohort), axis=1)[:, :nearest].mean(axis=1)
    print(f"{len(dev_idx)} images of {len(set(dev_keys))} dev writers, cohort {len(cohort_idx)}; distances in {time.time() - started:.0f} s")
    records = [cache.records[i] for i in dev_idx]
    all_ids = cache.content_ids()
    ids = [all_ids[i] for i in dev_idx]
    results = {}
    for n_refs in args.refs:
        trial_set = multi_reference_trials(records, n_refs, draws=3, seed=0, content_ids=ids)
        per_draw: dict[str, list[float]] = {}
        for draw in range(3):
            labels, scores = [], {}
            for trial in (t for t in trial_set.trials if t.draw == draw):
                keep = trial.kinds != "random"
                refs, queries = trial.references, trial.queries[keep]
                to_refs = np.sort(within[np.ix_(queries, refs)], axis=1)
                among = within[np.ix_(refs, refs)].copy()
                spread = among[np.triu_indices(len(refs), 1)].mean()
                np.fill_diagonal(among, np.inf)
                among = np.sort(among, axis=1)
                d3 = to_refs[:, :3].mean(axis=1)
                loo = among[:, : min(3, len(refs) - 1)].mean(axis=1)
                reference_scale = scale[refs].mean()
                variants = variant_scores(d3, spread, loo, scale[queries], reference_scale)
                by_k = {}  # stop 22: the loo-r statistic with k nearest instead of 3
                for k in (1, 2, 3, 5):
                    d_k = to_refs[:, :k].mean(axis=1)
                    loo_k = among[:, : min(k, len(refs) - 1)].mean(axis=1)
                    by_k[k] = -d_k / np.sqrt(loo_k.mean() * reference_scale)
                variants.update({"loo-r-k1": by_k[1], "loo-r-k2": by_k[2], "loo-r-k5": by_k[5]})
                variants["loo-r-multi-k"] = (by_k[1] + by_k[3] + by_k[5]) / 3
                for name, values in variants.items():
                    scores.setdefault(name, []).append(values)
                labels.append(trial.labels[keep])
            for name, values in scores.items():
                per_draw.setdefault(name, []).append(eer(np.concatenate(labels), np.concatenate(values))[0])
        results[str(n_refs)] = {name: float(np.mean(v)) for name, v in per_draw.items()}
        print(f"R={n_refs}: " + "  ".join(f"{name} {100 * v:.2f}" for name, v in results[str(n_refs)].items()))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"model": args.model, "tta": args.tta, "dev_writers": sorted(set(dev_keys)), "cohort": len(cohort_idx), "eer": results}, handle, indent=1)


if __name__ == "__main__":
    main()
