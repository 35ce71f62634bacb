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

import numpy as np

from sigverify.cache import Cache
from sigverify.methods import MULTI_K_NEIGHBOURS

from _dev_trials import DevDistances, TrialDistances, cohort_scale, multi_k_score, pooled_dev_eers, run_fold_dev_check


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


def candidate_eers(cache: Cache, dev: DevDistances, n_refs: int) -> dict[str, float]:
    """Every candidate's pooled dev EER at ``n_refs`` references."""
    scales = {"near20": dev.scale, "near5": cohort_scale(dev, 0.05)}
    return pooled_dev_eers(cache, dev, n_refs, lambda trial: candidate_scores(trial, scales))


if __name__ == "__main__":
    run_fold_dev_check(__doc__.splitlines()[0], candidate_eers)
