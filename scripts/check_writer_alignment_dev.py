#!/usr/bin/env python
"""Where do per-writer thresholds sit, and does anything in the references predict it? Dev writers only.

Usage: python scripts/check_writer_alignment_dev.py RUNS_DIR DATA [DATA ...] [--refs 12 5]

Stop 26's diagnostic for issue 4: with 12 references the fold models rank each writer's queries well
(mean per-writer-threshold EER 5.3 %) but the pooled EER is 8.5 %: one threshold does not fit every
writer. For each fold model ``RUNS_DIR/fold-K/stage-2/model.safetensors`` and its own dev writers
(test writers are never read), 3 draws, genuine vs skilled forgeries, the score is the
``cohort-multi-k`` statistic (no TTA). Per writer x draw it finds the threshold at that writer's own
EER and correlates it (centred per fold) with per-writer features computed from the references
alone. Prints Pearson r per feature and R, and the pooled vs per-writer EER.
"""

import argparse
import time

import cv2
import numpy as np
import torch

from sigverify.cache import load_or_build
from sigverify.datasets import read_datasets
from sigverify.metrics import eer
from sigverify.models.artifact import load_artifact

from _dev_trials import dev_distances, skilled_trials


def multi_k(to_refs: np.ndarray, among: np.ndarray, reference_scale: float) -> np.ndarray:
    """cohort-multi-k: -d_k / sqrt(LOO_k x cohort scale), averaged over k in 1, 3, 5."""
    scores = []
    for k in (1, 3, 5):
        d_k = to_refs[:, :k].mean(axis=1)
        loo_k = among[:, : min(k, among.shape[1] - 1)].mean(axis=1)
        scores.append(-d_k / np.sqrt(loo_k.mean() * reference_scale))
    return np.mean(scores, axis=0)


def image_features(image: np.ndarray) -> tuple[float, float]:
    """Ink fraction and connected-component count of one preprocessed image (ink is bright)."""
    ink = image > 127
    count = cv2.connectedComponents(ink.astype(np.uint8), connectivity=8)[0] - 1
    return float(ink.mean()), float(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir")
    parser.add_argument("data", nargs="+")
    parser.add_argument("--refs", type=int, nargs="+", default=[12, 5])
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows: dict[int, list[dict]] = {r: [] for r in args.refs}
    pooled: dict[int, list[float]] = {r: [] for r in args.refs}
    own: dict[int, list[float]] = {r: [] for r in args.refs}
    cache = None
    for fold in range(args.folds):
        artifact = load_artifact(f"{args.runs_dir}/fold-{fold}/stage-2/model.safetensors")
        if cache is None:
            cache = load_or_build(read_datasets(args.data), artifact.preprocess, log=None)
        started = time.time()
        dev = dev_distances(artifact, cache)
        ink_and_parts = np.array([image_features(cache.images[i]) for i in dev.index])
        sizes = cache.sizes[dev.index]
        n_writers = len({cache.records[i].writer_key for i in dev.index})
        print(f"fold {fold}: {len(dev.index)} images of {n_writers} dev writers; {time.time() - started:.0f} s", flush=True)
        for n_refs in args.refs:
            labels_by_draw: dict[int, list[np.ndarray]] = {}
            scores_by_draw: dict[int, list[np.ndarray]] = {}
            for draw, trial in skilled_trials(cache, dev, n_refs):
                refs = trial.references
                scores = multi_k(trial.to_refs, trial.among, dev.scale[refs].mean())
                writer_eer, threshold = eer(trial.labels, scores)
                own[n_refs].append(writer_eer)
                rows[n_refs].append({
                    "fold": fold,
                    "threshold": float(threshold),
                    "log_loo": float(np.log(trial.among[:, :3].mean())),
                    "log_scale": float(np.log(dev.scale[refs].mean())),
                    "log_spread": float(np.log(trial.spread)),
                    "ink": float(ink_and_parts[refs, 0].mean()),
                    "parts": float(ink_and_parts[refs, 1].mean()),
                    "size0": float(sizes[refs, 0].mean()),
                    "size1": float(sizes[refs, 1].mean()),
                    "size2": float(sizes[refs, 2].mean()),
                })
                labels_by_draw.setdefault(draw, []).append(trial.labels)
                scores_by_draw.setdefault(draw, []).append(scores)
            for draw in sorted(labels_by_draw):
                pooled[n_refs].append(eer(np.concatenate(labels_by_draw[draw]), np.concatenate(scores_by_draw[draw]))[0])
    for n_refs in args.refs:
        table = rows[n_refs]
        folds = np.array([r["fold"] for r in table])
        threshold = np.array([r["threshold"] for r in table])
        centred = threshold.copy()
        for fold in np.unique(folds):
            centred[folds == fold] -= centred[folds == fold].mean()
        print(f"R={n_refs}: pooled EER {100 * np.mean(pooled[n_refs]):.2f} %, mean per-writer EER {100 * np.mean(own[n_refs]):.2f} %, "
              f"{len(table)} writer-draws; threshold sd {threshold.std():.3f} (within folds {centred.std():.3f})")
        for name in ("log_loo", "log_scale", "log_spread", "ink", "parts", "size0", "size1", "size2"):
            feature = np.array([r[name] for r in table])
            for fold in np.unique(folds):
                feature[folds == fold] -= feature[folds == fold].mean()
            r = np.corrcoef(feature, centred)[0, 1]
            print(f"  r(threshold, {name}) = {r:+.2f}")


if __name__ == "__main__":
    main()
