#!/usr/bin/env python
"""Development-writer check of U-Net cleaners, for choosing one (never the report's test material).

Usage: python scripts/check_cleaner_dev.py [--model VERIFIER] [--method unet|cyclegan] [--mask] [--oracle] [--kinds] [CLEANER.safetensors ...]   (none given: the shipped one)

1. Synthetic clutter (noise seeds of its own) over the verifier split's dev writers, 5 clean references,
   writer-threshold: EER of the cleaned noisy queries, beside clean and uncleaned queries.
   Two leads for a document pipeline, beside the plain figure (queries cleaned, references as they
   are): "refs cleaned" - the references go through the same cleaner, so both sides share its
   rendering; "+ ink matched" - the cleaned query's ink levels are also mapped, rank for rank, onto
   the mean ink-level quantiles of the trial's (cleaned) references, since no cleaner can know the pen.
   ``--kinds``: each noise kind alone (same seeds), noisy and cleaned, and the clean images through the
   cleaner - which clutter the cleaner repairs and which it does not.
   ``--mask``: each cleaner's output used only as a mask over the scan (``cleaning.evaluate.keep_scanned_ink``).
   ``--oracle``: where the document path's remaining damage lies - the same figure with everything
   outside the clean twin's ink box erased from each cleaned query, then with everything outside its
   ink mask (dilated 7 x 7) erased: residue beside and between the strokes, or far from them.
2. Tobacco-800 signature crops annotated Overlapped="No" (``evaluate-cleaner`` uses only the "Yes"
   crops): a cleaner should not damage clean real signatures -> same-author AUC, cleaned vs not.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from sigverify.api import load_model
from sigverify.cleaning import load_cleaner, run_network
from sigverify.cleaning.evaluate import _eer_noisy_queries, _vectors, author_pairs, dev_clean_twins, keep_scanned_ink, matched_query_vectors, pair_scores
from sigverify.datasets.tobacco import read_tobacco800
from sigverify.imageio import load_gray
from sigverify.metrics import auc
from sigverify.preprocess import ink_mask
from sigverify.synth.noise import NOISE_KINDS, add_noise

DATA = ["../shared/data/cedar", "../shared/data/sigcomp2009"]
TOBACCO = "../shared/data/tobacco800_signatures"


def clean_tobacco_crops() -> list[tuple[np.ndarray, str]]:
    crops = []
    for page in read_tobacco800(TOBACCO):
        boxes = [b for b in page.signatures if b.overlapped is False and b.author]
        if boxes:
            gray = load_gray(page.path)
            crops += [(gray[int(b.y0) : int(b.y1), int(b.x0) : int(b.x1)].copy(), b.author.strip()) for b in boxes]
    return crops


def reference_matched_eer(artifact, records, references: list[np.ndarray], queries: list[np.ndarray]) -> float:
    """EER (5 references, 2 draws, writer-threshold, genuine vs skilled) with each trial's queries
    ink-matched to that trial's references, as verify-document compares them."""
    vectors = matched_query_vectors(artifact, references, queries)
    return round(100 * _eer_noisy_queries(artifact, _vectors(artifact, references), vectors, records, "writer-threshold", 5, 2, 0), 2)


def erase_outside(cleaned: np.ndarray, twin: np.ndarray, *, box: bool) -> np.ndarray:
    """An oracle: paper wherever the clean twin has no ink - outside its ink box (padded 10 px) or
    outside its ink mask dilated 7 x 7."""
    mask, _ = ink_mask(twin)
    keep = np.zeros_like(mask)
    if box:
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        keep[max(0, rows[0] - 10) : rows[-1] + 11, max(0, cols[0] - 10) : cols[-1] + 11] = True
    else:
        keep = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    return np.where(keep, cleaned, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cleaners", nargs="*", help="learned cleaner files (default: the shipped one of --method)")
    parser.add_argument("--method", choices=["unet", "cyclegan"], default="unet", help="which shipped cleaner when no file is given")
    parser.add_argument("--mask", action="store_true", help="the cleaner's output only as a mask over the scan (keep_scanned_ink)")
    parser.add_argument("--model", help="verifier artifact (default: the shipped one)")
    parser.add_argument("--oracle", action="store_true", help="also the document-path figure with residue outside the clean twin's ink box / ink erased")
    parser.add_argument("--kinds", action="store_true", help="also one line per noise kind alone: noisy and cleaned EER")
    args = parser.parse_args()
    artifact = load_model(args.model)
    chosen, clean = dev_clean_twins(DATA)
    noisy = [add_noise(t, 5_000_000 + i).noisy for i, t in enumerate(clean)]
    references = _vectors(artifact, clean)

    def synthetic_eer(queries, reference_vectors=references) -> float:
        return round(100 * _eer_noisy_queries(artifact, reference_vectors, _vectors(artifact, queries), chosen, "writer-threshold", 5, 2, 0), 2)

    crops = clean_tobacco_crops()
    kept, pairs, labels = author_pairs([a for _, a in crops])

    def tobacco_auc(cleaner) -> float:
        return round(auc(labels, pair_scores(dict(zip(kept, _vectors(artifact, [cleaner(crops[i][0]) for i in kept]))), pairs, artifact.comparator)), 4)

    print(f"dev writers: {len(chosen)} images; EER clean {synthetic_eer(clean)} % (ink matched {reference_matched_eer(artifact, chosen, clean, clean)} %), "
          f"noisy {synthetic_eer(noisy)} %; "
          f"Tobacco-800 Overlapped=No: {len(kept)} crops, {int(labels.sum())} same-author pairs, AUC uncleaned {tobacco_auc(lambda g: g)}", flush=True)
    for path in args.cleaners or [None]:
        network = load_cleaner(args.method, path)

        def run(gray: np.ndarray) -> np.ndarray:
            out = run_network(network, gray)
            return keep_scanned_ink(gray, out) if args.mask else out

        cleaned = [run(n) for n in noisy]
        cleaned_references = [run(c) for c in clean]
        print(f"{path or 'shipped ' + args.method}{' as a mask' if args.mask else ''}: synthetic dev EER {synthetic_eer(cleaned)} % "
              f"(refs cleaned {synthetic_eer(cleaned, _vectors(artifact, cleaned_references))} %, "
              f"+ ink matched {reference_matched_eer(artifact, chosen, cleaned_references, cleaned)} %), "
              f"Tobacco-800 Overlapped=No AUC {tobacco_auc(run)}", flush=True)
        if args.oracle:
            boxed = [erase_outside(q, t, box=True) for q, t in zip(cleaned, clean)]
            inked = [erase_outside(q, t, box=False) for q, t in zip(cleaned, clean)]
            print(f"  + ink matched, residue outside the clean ink box erased {reference_matched_eer(artifact, chosen, cleaned_references, boxed)} %, "
                  f"outside the clean ink erased {reference_matched_eer(artifact, chosen, cleaned_references, inked)} %", flush=True)
        if args.kinds:
            print(f"  clean through the cleaner {synthetic_eer(cleaned_references)} %", flush=True)
            for kind in NOISE_KINDS:
                alone = [add_noise(t, 5_000_000 + i, kinds=[kind]).noisy for i, t in enumerate(clean)]
                print(f"  {kind} alone: noisy {synthetic_eer(alone)} %, cleaned {synthetic_eer([run(n) for n in alone])} %", flush=True)


if __name__ == "__main__":
    main()
