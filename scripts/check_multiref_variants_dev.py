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
from sigverify.datasets import read_datasets

from _dev_trials import add_trial_options, dev_distances, load_on, multi_k_score, pooled_dev_eers


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
    add_trial_options(parser)
    args = parser.parse_args()
    torch.set_num_threads(2)
    artifact = load_on(args.model, args.device)
    cache = load_or_build(read_datasets(args.data), artifact.preprocess, log=None)
    started = time.time()
    dev = dev_distances(artifact, cache, tta=args.tta)
    dev_keys = sorted({cache.records[i].writer_key for i in dev.index})
    print(f"{len(dev.index)} images of {len(dev_keys)} dev writers, cohort {dev.cohort_size}; distances in {time.time() - started:.0f} s")
    results = {}
    for n_refs in args.refs:

        def score_trial(trial):
            d3 = trial.to_refs[:, :3].mean(axis=1)
            loo = trial.among[:, : min(3, len(trial.references) - 1)].mean(axis=1)
            reference_scale = dev.scale[trial.references].mean()
            variants = variant_scores(d3, trial.spread, loo, dev.scale[trial.queries], reference_scale)
            # stop 22: the loo-r statistic with k nearest instead of 3, and its mean over k in 1, 3, 5
            variants.update({f"loo-r-k{k}": multi_k_score(trial, dev.scale, (k,)) for k in (1, 2, 5)})
            variants["loo-r-multi-k"] = multi_k_score(trial, dev.scale)
            return variants

        results[str(n_refs)] = pooled_dev_eers(cache, dev, n_refs, score_trial)
        print(f"R={n_refs}: " + "  ".join(f"{name} {100 * v:.2f}" for name, v in results[str(n_refs)].items()))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"model": args.model, "tta": args.tta, "dev_writers": dev_keys, "cohort": dev.cohort_size, "eer": results}, handle, indent=1)


if __name__ == "__main__":
    main()
