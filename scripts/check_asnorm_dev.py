#!/usr/bin/env python
"""Adaptive symmetric score normalisation and reference trimming against cohort-multi-k, on the
DEVELOPMENT writers of several fold models.

Usage: python scripts/check_asnorm_dev.py MODEL [MODEL ...] --data DATA [DATA ...] [--tta] [--json OUT]

Stop 37's check (its rule is quoted in the issue note and in benchmarks/stop37-asnorm-fold-dev.json): each
model is one fold's, scored on its own dev writers only (the protocol's trials, 3 draws, genuine vs
skilled; test writers are never read); the figure per candidate is the mean over models of each
model's pooled dev EER. For k in (1, 3, 5), d_k = the query's mean distance to its k nearest references.

``cohort-multi-k``  the shipped method (the baseline)
``as-norm``         AS-norm, as speaker verification uses it to make one threshold fit every speaker:
                    mean over k of 0.5 [(d_k - mu_e,k) / sd_e,k + (d_k - mu_q) / sd_q], negated;
                    mu_e,k / sd_e,k = mean / std, over the nearest fifth of the cohort, of each cohort
                    signature's mean distance to its k nearest references (the impostor scores this
                    reference set gives); mu_q / sd_q = mean / std of the query's distances to its
                    nearest fifth of the cohort
``as-norm-e``       the enrollment side alone
``trim``            cohort-multi-k after dropping the floor(R / 6) references farthest, on average, from
                    the other references (none at R = 5)
"""

import numpy as np

from sigverify.cache import Cache
from sigverify.methods import COHORT_NEAREST_SHARE, MULTI_K_NEIGHBOURS

from _dev_trials import DevDistances, TrialDistances, distances_for, multi_k_score, pooled_dev_eers, run_fold_dev_check


def _mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (floored above 0) along the last axis."""
    return values.mean(axis=-1), values.std(axis=-1) + 1e-6


def as_norm_scores(trial: TrialDistances, dev: DevDistances) -> dict[str, np.ndarray]:
    """``as-norm`` and ``as-norm-e`` raw scores (higher = more likely genuine) for a trial's queries."""
    nearest = max(1, int(round(COHORT_NEAREST_SHARE * dev.cohort_size)))
    cohort_to_refs = np.sort(dev.to_cohort[trial.references], axis=0)  # R x C, ascending per cohort signature
    mu_q, sd_q = _mean_std(dev.cohort_sorted[trial.queries, :nearest])
    both, enrollment = [], []
    for k in MULTI_K_NEIGHBOURS:
        d_k = trial.to_refs[:, :k].mean(axis=1)
        mu_e, sd_e = _mean_std(np.sort(cohort_to_refs[:k].mean(axis=0))[:nearest])
        z_e = (d_k - mu_e) / sd_e
        enrollment.append(z_e)
        both.append(0.5 * (z_e + (d_k - mu_q) / sd_q))
    return {"as-norm": -np.mean(both, axis=0), "as-norm-e": -np.mean(enrollment, axis=0)}


def trimmed(trial: TrialDistances, dev: DevDistances) -> TrialDistances:
    """The trial without the floor(R / 6) references farthest on average from the other references."""
    refs = trial.references
    among = dev.within[np.ix_(refs, refs)]
    mean_to_others = (among.sum(axis=1) - np.diag(among)) / (len(refs) - 1)
    kept = refs[np.sort(np.argsort(mean_to_others, kind="stable")[: len(refs) - len(refs) // 6])]
    return distances_for(trial.labels, kept, trial.queries, dev.within)


def candidate_eers(cache: Cache, dev: DevDistances, n_refs: int) -> dict[str, float]:
    """Every candidate's pooled dev EER at ``n_refs`` references."""

    def score_trial(trial: TrialDistances) -> dict[str, np.ndarray]:
        return {"cohort-multi-k": multi_k_score(trial, dev.scale), **as_norm_scores(trial, dev),
                "trim": multi_k_score(trimmed(trial, dev), dev.scale)}

    return pooled_dev_eers(cache, dev, n_refs, score_trial)


if __name__ == "__main__":
    run_fold_dev_check(__doc__.splitlines()[0], candidate_eers)
