#!/usr/bin/env python
"""How sure is the Tobacco-800 "cleaning lowers same-author AUC" figure? An author-level bootstrap.

Usage: python scripts/tobacco_auc_bootstrap.py [--tobacco DIR] [--cleaners classical unet cyclegan] [--rounds 2000] [--clean-references]

The same crops, pairs and scores as ``sigverify evaluate-cleaner --tobacco`` (Overlapped="Yes" crops,
every same-author pair, up to 4,000 random different-author pairs, one reference, the shipped
verifier). Crops of one author are not independent, so the resampling unit is the author: each round
draws authors with replacement and keeps every pair whose two authors were drawn (a pair counted as
many times as its authors were drawn together). Prints each cleaner's AUC, its difference from no
cleaning and the 95 % interval of that difference. A measurement only: it chooses nothing.
``--clean-references`` (stop 32): the pairs of ``evaluate-cleaner``'s ``tobacco800_overlapped_vs_clean_references``
instead (each overlapped crop against each clean crop of the authors that have both; pairs weighted by
how often their query author and their reference author were drawn), both of its protocols.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import numpy as np

from sigverify.api import load_model
from sigverify.cleaning import load_cleaner
from sigverify.cleaning.evaluate import author_pairs, clean_reference_pair_scores, cleaned_pair_scores, tobacco_crops
from sigverify.metrics import auc


def bootstrap_differences(labels: np.ndarray, scores: dict[str, np.ndarray], pair_authors: np.ndarray, rounds: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``rounds`` bootstrap AUC differences (cleaner - none) per cleaner; ``pair_authors`` is ``P x 2``."""
    rng = np.random.default_rng(seed)
    authors = np.unique(pair_authors)
    out: dict[str, list[float]] = {name: [] for name in scores if name != "none"}
    for _ in range(rounds):
        drawn = Counter(rng.choice(authors, size=len(authors), replace=True).tolist())
        weights = np.array([drawn[a] * drawn[b] if a != b else drawn[a] for a, b in pair_authors], dtype=float)
        keep = weights > 0
        if len(set(labels[keep].tolist())) < 2:
            continue
        repeat = weights[keep].astype(int)
        y = np.repeat(labels[keep], repeat)
        base = auc(y, np.repeat(scores["none"][keep], repeat))
        for name in out:
            out[name].append(auc(y, np.repeat(scores[name][keep], repeat)) - base)
    return {name: np.array(values) for name, values in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tobacco", default="../shared/data/tobacco800_signatures")
    parser.add_argument("--cleaners", nargs="+", default=["classical", "unet", "cyclegan"])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--clean-references", action="store_true", help="overlapped crops against clean (Overlapped=No) references of the same authors")
    args = parser.parse_args()
    artifact = load_model()
    networks = {name: load_cleaner(name) for name in args.cleaners if name in ("unet", "cyclegan")}
    if args.clean_references:
        by_protocol, labels, pair_authors = clean_reference_pair_scores(artifact, args.tobacco, ["none", *args.cleaners], networks)
        report = {"n_authors": len(set(pair_authors[:, 0].tolist())), "same_author_pairs": int(labels.sum()), "pairs": len(labels), "rounds": args.rounds}
        for protocol, scores in by_protocol.items():
            report[protocol] = summarize(labels, scores, pair_authors, args.rounds, protocol)
    else:
        report = overlapped_pairs_report(artifact, args, networks)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)


def summarize(labels: np.ndarray, scores: dict[str, np.ndarray], pair_authors: np.ndarray, rounds: int, title: str) -> dict:
    """AUC per cleaner, its difference from none and the bootstrap interval; printed and returned."""
    differences = bootstrap_differences(labels, scores, pair_authors, rounds)
    report = {"auc": {name: float(auc(labels, values)) for name, values in scores.items()}, "difference": {}}
    print(f"{title}: AUC none {report['auc']['none']:.4f}")
    for name, values in differences.items():
        low, high = np.percentile(values, [2.5, 97.5])
        share = float((values >= 0).mean())
        report["difference"][name] = {"point": report["auc"][name] - report["auc"]["none"], "ci95": [float(low), float(high)], "share_not_worse": share}
        print(f"{name:10s} AUC {report['auc'][name]:.4f}  minus none {report['difference'][name]['point']:+.4f}  95% [{low:+.4f}, {high:+.4f}]  rounds not worse {100 * share:.1f}%")
    return report


def overlapped_pairs_report(artifact, args, networks) -> dict:
    """The pairs of ``evaluate-cleaner``'s ``tobacco800_overlapped``."""
    crops = tobacco_crops(args.tobacco)
    authors = [a for _, a in crops]
    kept, pairs, labels = author_pairs(authors)  # as evaluate-cleaner draws them (seed 0, 4,000 negatives)
    scores, _ = cleaned_pair_scores(artifact, crops, kept, pairs, ["none", *args.cleaners], networks)
    pair_authors = np.array([(authors[i], authors[j]) for i, j in pairs])
    report = {"n_crops": len(kept), "n_authors": len({authors[i] for i in kept}), "same_author_pairs": int(labels.sum()), "rounds": args.rounds}
    print(f"{report['n_crops']} crops of {report['n_authors']} authors, {report['same_author_pairs']} same-author pairs")
    return {**report, **summarize(labels, scores, pair_authors, args.rounds, "overlapped pairs")}


if __name__ == "__main__":
    main()
