#!/usr/bin/env python
"""A learned fusion of multi-reference statistics against cohort-multi-k, on fold models' DEV writers.

Usage: python scripts/check_learned_fusion_dev.py MODEL [MODEL ...] --data DATA [DATA ...] [--tta] [--json OUT]

Stop 34's check (the rule is quoted in the issue note and MODEL_CARD.md). Per-writer EERs of
``cohort-multi-k`` are far below its pooled EER, so the question is whether a logistic regression over
several per-query statistics puts writers on one scale better than the one hand-made ratio. Each model
is one fold's and is scored on its own dev writers only (the protocol's trials, 3 draws, genuine vs
skilled; test writers are never read). The estimate is honest for 7 dev writers: leave one dev writer
out (fit on the other writers' trials, score the held-out writer's), then the pooled EER per draw over
the held-out scores, mean over draws; the figure is the mean over models.

Features per query (d_k = mean distance to the k nearest references, LOO3 = each reference's mean
distance to its 3 nearest other references, scales = mean distance to the nearest fifth of the cohort):
cohort-multi-k's score, -d3 / spread, -(d3 - mean LOO3) / std LOO3, -d3 / sqrt(query scale x references'
scale), log d1, log d3, log references' scale, log query scale, log mean LOO3.
"""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sigverify.cache import Cache
from sigverify.metrics import eer

from _dev_trials import DevDistances, TrialDistances, multi_k_score, run_fold_dev_check, skilled_trials

FEATURES = ("cohort-multi-k", "writer-threshold", "loo-z", "s-ratio", "log-d1", "log-d3", "log-ref-scale", "log-query-scale", "log-loo3")


def trial_features(trial: TrialDistances, scale: np.ndarray) -> np.ndarray:
    """Q x len(FEATURES): the statistics above for a trial's queries."""
    d1 = trial.to_refs[:, 0]
    d3 = trial.to_refs[:, :3].mean(axis=1)
    loo = trial.among[:, : min(3, len(trial.references) - 1)].mean(axis=1)
    reference_scale = float(scale[trial.references].mean())
    query_scale = scale[trial.queries]
    columns = [
        multi_k_score(trial, scale),
        -d3 / trial.spread,
        -(d3 - loo.mean()) / (loo.std() + 1e-6),
        -d3 / np.sqrt(query_scale * reference_scale),
        np.log(d1 + 1e-6),
        np.log(d3 + 1e-6),
        np.full(len(d1), np.log(reference_scale)),
        np.log(query_scale),
        np.full(len(d1), np.log(loo.mean() + 1e-6)),
    ]
    return np.stack(columns, axis=1)


def held_out_eers(cache: Cache, dev: DevDistances, n_refs: int) -> dict[str, float]:
    """Pooled dev EER (mean over draws) of cohort-multi-k and of the leave-one-writer-out fusion."""
    rows = []  # (draw, writer, features, labels)
    for draw, trial in skilled_trials(cache, dev, n_refs):
        writer = cache.records[dev.index[trial.references[0]]].writer_key
        rows.append((draw, writer, trial_features(trial, dev.scale), trial.labels))
    writers = sorted({row[1] for row in rows})
    fused = [np.empty(0)] * len(rows)
    for held_out in writers:
        train = [row for row in rows if row[1] != held_out]
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000))
        model.fit(np.concatenate([row[2] for row in train]), np.concatenate([row[3] for row in train]))
        for i, row in enumerate(rows):
            if row[1] == held_out:
                fused[i] = model.decision_function(row[2])
    figures: dict[str, list[float]] = {"cohort-multi-k": [], "learned-fusion": []}
    for draw in sorted({row[0] for row in rows}):
        members = [i for i, row in enumerate(rows) if row[0] == draw]
        labels = np.concatenate([rows[i][3] for i in members])
        figures["cohort-multi-k"].append(eer(labels, np.concatenate([rows[i][2][:, 0] for i in members]))[0])
        figures["learned-fusion"].append(eer(labels, np.concatenate([fused[i] for i in members]))[0])
    return {name: float(np.mean(values)) for name, values in figures.items()}


if __name__ == "__main__":
    run_fold_dev_check(__doc__.splitlines()[0], held_out_eers, extra_json={"features": FEATURES})
