#!/usr/bin/env python
"""Multi-reference candidates against cohort-multi-k on the DEVELOPMENT writers of several fold models.

Usage: python scripts/check_cohort_interp_dev.py MODEL [MODEL ...] --data DATA [DATA ...] [--tta] [--json OUT]

Stop 33's check (the rule is quoted in the issue note): each model is one fold's, and is scored on its
own dev writers only (the protocol's trials, 3 draws, genuine vs skilled; test writers are never read).
The figure per candidate is the mean over models of each model's pooled dev EER (mean over draws).
Candidates, all built from a trial's learned distances:

``cohort-multi-k``  the shipped method: mean over k in (1, 3, 5) of -d_k / sqrt(g_k * c)
``multi-k-all``     the same with k in (1, 3, 5, R) (k = R: every reference)
``interp``          mean over k of -(d_k - g_k) / (c - g_k): 0 at the writer's typical genuine
                    signature, 1 at a typical stranger
``*-near5``         c from the nearest 5 % of the cohort instead of 20 %

d_k = the query's mean distance to its k nearest references, g_k = the references' mean distance to
their k nearest other references (leave one out), c = the references' mean cohort scale.
"""

import argparse
import json
import time

import numpy as np
import torch

from sigverify.cache import load_or_build
from sigverify.datasets import read_datasets
from sigverify.methods import MULTI_K_NEIGHBOURS
from sigverify.models.artifact import load_artifact

from _dev_trials import TrialDistances, cohort_scale, dev_distances, multi_k_score, pooled_dev_eers


def interp_score(trial: TrialDistances, scale: np.ndarray) -> np.ndarray:
    """``interp``: mean over k in (1, 3, 5) of -(d_k - g_k) / (c - g_k) for a trial's queries."""
    c = float(scale[trial.references].mean())
    parts = []
    for k in MULTI_K_NEIGHBOURS:
        d_k = trial.to_refs[:, :k].mean(axis=1)
        g_k = float(trial.among[:, : min(k, len(trial.references) - 1)].mean())
        parts.append(-(d_k - g_k) / max(c - g_k, 1e-6))
    return np.mean(parts, axis=0)


def candidate_scores(trial: TrialDistances, scales: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each candidate's raw scores (higher = more likely genuine) for one trial's queries."""
    return {
        "cohort-multi-k": multi_k_score(trial, scales["near20"]),
        "multi-k-all": multi_k_score(trial, scales["near20"], (*MULTI_K_NEIGHBOURS, len(trial.references))),
        "interp": interp_score(trial, scales["near20"]),
        "cohort-multi-k-near5": multi_k_score(trial, scales["near5"]),
        "interp-near5": interp_score(trial, scales["near5"]),
    }


def model_eers(model: str, data: list[str], refs: list[int], tta: bool) -> dict[str, dict[str, float]]:
    """{R: {candidate: pooled dev EER, mean over draws}} for one model's dev writers."""
    artifact = load_artifact(model)
    cache = load_or_build(read_datasets(data), artifact.preprocess, log=None)
    started = time.time()
    dev = dev_distances(artifact, cache, tta=tta)
    scales = {"near20": dev.scale, "near5": cohort_scale(dev, 0.05)}
    writers = len({cache.records[i].writer_key for i in dev.index})
    print(f"{model}: {len(dev.index)} images of {writers} dev writers, cohort {dev.cohort_size}, {time.time() - started:.0f} s", flush=True)
    results = {}
    for n_refs in refs:
        results[str(n_refs)] = pooled_dev_eers(cache, dev, n_refs, lambda trial: candidate_scores(trial, scales))
        print(f"  R={n_refs}: " + "  ".join(f"{name} {100 * v:.2f}" for name, v in results[str(n_refs)].items()), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="fold models (each scored on its own dev writers)")
    parser.add_argument("--data", nargs="+", required=True, help="the datasets the models were trained on")
    parser.add_argument("--refs", type=int, nargs="+", default=[5, 12])
    parser.add_argument("--tta", action="store_true", help="test-time-augmented vectors (dev images and cohort)")
    parser.add_argument("--json", help="write the EERs here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    per_model = {model: model_eers(model, args.data, args.refs, args.tta) for model in args.models}
    summary = {}
    for n_refs in map(str, args.refs):
        names = next(iter(per_model.values()))[n_refs]
        summary[n_refs] = {name: float(np.mean([r[n_refs][name] for r in per_model.values()])) for name in names}
        baseline = summary[n_refs]["cohort-multi-k"]
        print(f"mean over {len(per_model)} models, R={n_refs}: "
              + "  ".join(f"{name} {100 * v:.2f} ({100 * (v - baseline):+.2f})" for name, v in summary[n_refs].items()))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"models": args.models, "tta": args.tta, "per_model": per_model, "mean": summary}, handle, indent=1)


if __name__ == "__main__":
    main()
