#!/usr/bin/env python
"""Would averaging several trainings of one recipe help? On DEVELOPMENT writers only.

Usage: python scripts/check_ensemble_dev.py MODEL MODEL [MODEL ...] --data DATA [DATA ...] [--tta] [--json OUT]

The models must be trainings of one fold (same split; e.g. the same config with other seeds). For each
model, the learned distances among the fold's dev writers' signatures and to the training writers'
cohort (as `scripts/check_multiref_variants_dev.py` computes them); the ensemble averages those
distances over the models. Printed: the pooled dev EER (genuine vs skilled, 3 draws, evaluate's
trials) of `cohort-multi-k`'s statistic for each model alone and for the average, at R = 12 and 5.
Test writers are never read. Stop 27 (information for the next step; nothing in the package uses it).
"""

import argparse
import json
import time

import numpy as np
import torch

from sigverify.cache import load_or_build
from sigverify.datasets import read_datasets

from _dev_trials import DevDistances, add_trial_options, dev_distances, load_on, multi_k_score, pooled_dev_eers


def pooled_eer(cache, dev: DevDistances, n_refs: int) -> float:
    """Mean over draws of the pooled genuine-vs-skilled EER of the multi-k statistic."""
    return pooled_dev_eers(cache, dev, n_refs, lambda trial: {"multi-k": multi_k_score(trial, dev.scale)})["multi-k"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", nargs="+", required=True, help="the datasets the models were trained on")
    add_trial_options(parser, refs=(12, 5))
    args = parser.parse_args()
    if len(args.models) < 2:
        parser.error("an ensemble needs at least two models")
    torch.set_num_threads(2)
    started = time.time()
    each, cache = [], None
    for path in args.models:
        artifact = load_on(path, args.device)
        if cache is None:
            cache = load_or_build(read_datasets(args.data), artifact.preprocess, log=None)
        each.append(dev_distances(artifact, cache, tta=args.tta))
    if any(not np.array_equal(d.index, each[0].index) for d in each):
        raise SystemExit("the models record different dev writers: not trainings of one fold")
    average = DevDistances(each[0].index, np.mean([d.within for d in each], axis=0), np.mean([d.scale for d in each], axis=0), each[0].cohort_size)
    results = {}
    for n_refs in args.refs:
        single = [pooled_eer(cache, d, n_refs) for d in each]
        results[str(n_refs)] = {"each": single, "mean_single": float(np.mean(single)), "ensemble": pooled_eer(cache, average, n_refs)}
        print(f"R={n_refs}: each " + " ".join(f"{100 * v:.2f}" for v in single)
              + f"  mean {100 * np.mean(single):.2f}  ensemble {100 * results[str(n_refs)]['ensemble']:.2f}")
    print(f"{len(each[0].index)} dev images, {len(args.models)} models, {time.time() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"models": args.models, "tta": args.tta, "eer": results}, handle, indent=1)


if __name__ == "__main__":
    main()
