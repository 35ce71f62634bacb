#!/usr/bin/env python
"""Classical-cleaner variants on Tobacco-800 overlapped crops, DEV and HELD-OUT author halves (stop 25).

Usage: python scripts/check_tobacco_cleaner_variants.py dev|heldout|all [VARIANT,...] [--ink-matched] [--tobacco DIR]

The overlapped crops' authors are split by a seeded permutation (seed 25, sorted author ids) into two
halves; same- vs different-author pairs inside the chosen half (`author_pairs`, seed 0), scored by the
shipped verifier as `sigverify evaluate-cleaner` scores them. Variants: `none`; `classical` (the
shipped cleaner); `lines` (only its ruled-line erasure, every other pixel as scanned); `lines-specks`
(plus its tiny-component removal); `classical-grey` (its component filtering without flattening the
background). Prints the same-author AUC and the share of crops the variant erased ink on. The rule
(chosen on `dev`, `heldout` scored once) and the figures are in the issue notes: no variant kept the
held-out AUC, so none was built. Stop 32 added the learned cleaners, their outputs used as masks over
the scan (`unet-mask`, `cyclegan-mask`, `cleaning.evaluate.keep_scanned_ink`), and `--ink-matched`.
"""

import argparse

import cv2
import numpy as np
import torch

import sigverify
from sigverify.cleaning import load_cleaner, run_network
from sigverify.cleaning.ink import ink_quantiles, match_ink_levels
from sigverify.cleaning.classical import clean_classical, ink_and_line_pixels
from sigverify.cleaning.evaluate import _vectors, author_pairs, keep_scanned_ink, pair_scores, tobacco_crops
from sigverify.metrics import auc

VARIANTS = ("none", "classical", "lines", "lines-specks", "classical-grey", "unet", "cyclegan", "unet-mask", "cyclegan-mask")


def clean_variant(gray: np.ndarray, variant: str) -> np.ndarray:
    if variant == "none":
        return gray
    if variant == "classical":
        return clean_classical(gray)
    if variant in ("unet", "cyclegan"):
        return run_network(load_cleaner(variant), gray)
    if variant in ("unet-mask", "cyclegan-mask"):  # stop 32: the network says where, the scan says how
        return keep_scanned_ink(gray, run_network(load_cleaner(variant.split("-")[0]), gray))
    found = ink_and_line_pixels(gray)  # the first steps of clean_classical
    if found is None:
        return gray.copy()
    ink, erase = found
    out = gray.copy()
    out[erase] = 255
    if variant == "lines":
        return out
    remaining = ink & ~erase
    count, labels, stats, _ = cv2.connectedComponentsWithStats(remaining.astype(np.uint8), connectivity=8)
    if variant == "lines-specks":
        speck = stats[:, cv2.CC_STAT_AREA] < max(4, 0.0005 * remaining.sum())
        speck[0] = False
        out[speck[labels] & remaining] = 255
        return out
    if variant == "classical-grey":  # classical's component decisions, scanned grey kept everywhere else
        kept = np.zeros(count, dtype=bool)
        kept[np.unique(labels[remaining & (clean_classical(gray) < 255)])] = True
        out[remaining & ~kept[labels]] = 255
        return out
    raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("half", choices=["dev", "heldout", "all"], help="all: every overlapped crop, the pairs evaluate-cleaner scores")
    parser.add_argument("variants", nargs="?", default=",".join(VARIANTS))
    parser.add_argument("--tobacco", default="../shared/data/tobacco800_signatures")
    parser.add_argument("--ink-matched", action="store_true", help="also each pair as verify-document compares it: the earlier crop's ink levels matched onto the later one's (stop 32)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    artifact = sigverify.load_model()
    crops = tobacco_crops(args.tobacco)
    authors = [a for _, a in crops]
    unique = sorted(set(authors))
    order = np.random.default_rng(25).permutation(len(unique))
    dev_authors = {unique[k] for k in order[: len(unique) // 2]}
    chosen = [i for i, a in enumerate(authors) if args.half == "all" or (a in dev_authors) == (args.half == "dev")]
    kept, pairs, labels = author_pairs([authors[i] for i in chosen], seed=0)
    print(f"{args.half}: {len(kept)} crops, {len({authors[chosen[i]] for i in kept})} authors, {int(labels.sum())} same / {int(len(labels) - labels.sum())} different pairs")
    for variant in args.variants.split(","):
        originals = [crops[chosen[i]][0] for i in kept]
        cleaned = [clean_variant(gray, variant) for gray in originals]
        erased = np.mean([((o < 128) & (c >= 128)).any() for o, c in zip(originals, cleaned)])
        vectors = dict(zip(kept, _vectors(artifact, cleaned)))
        matched = ""
        if args.ink_matched:  # the later crop is the reference, the earlier one the query, as in cleaning.document
            by_index = dict(zip(kept, cleaned))
            ordered = [(min(i, j), max(i, j)) for i, j in pairs]
            queries = _vectors(artifact, [match_ink_levels(by_index[q], ink_quantiles(by_index[r])) for q, r in ordered])
            scores = -artifact.comparator.paired(queries, np.stack([vectors[r] for _, r in ordered]))
            matched = f"  ink-matched AUC {auc(labels, scores):.4f}"
        print(f"{variant:15s} AUC {auc(labels, pair_scores(vectors, pairs, artifact.comparator)):.4f}{matched}  crops with ink erased {100 * erased:.0f} %", flush=True)


if __name__ == "__main__":
    main()
