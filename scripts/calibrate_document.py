#!/usr/bin/env python
"""Fit the document path's calibration for one verifier and one cleaner, on dev writers only.

Usage: python scripts/calibrate_document.py [--cleaner unet] [--model VERIFIER] [--out FILE]
(default out: src/sigverify/weights/document-<cleaner>.json, which verify-document loads when its
verifier version and cleaner file match).

The verifier's development writers (its training split, never its test writers) get synthetic
clutter (noise seeds of their own, 9,000,000 + image index); the noisy images and the clean ones go
through the cleaner; each trial's cleaned noisy queries have their ink levels matched to the trial's
cleaned references - exactly what ``verify-document`` does - and every method is calibrated on them
for R = 1, 3, 5, 12 (threshold at the dev EER, logistic probability map).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
import time
from pathlib import Path

from sigverify.api import load_model
from sigverify.calibration import calibrate_methods
from sigverify.cleaning import CLEANERS, clean
from sigverify.cleaning.document import cleaner_fingerprint, document_calibration_path
from sigverify.cleaning.evaluate import _vectors, dev_clean_twins, matched_query_vectors
from sigverify.methods import METHODS
from sigverify.synth.noise import add_noise

NOISE_SEED = 9_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cleaner", default="unet", choices=[c for c in CLEANERS if c != "none"])
    parser.add_argument("--model", help="verifier artifact (default: the shipped one)")
    parser.add_argument("--out", help="output JSON (default: the package's weights/document-<cleaner>.json)")
    args = parser.parse_args()
    started = time.perf_counter()
    artifact = load_model(args.model)
    training = artifact.metadata.get("training", {})
    config = training.get("config", {})
    data, split_seed = config.get("data"), config.get("split_seed")
    if not data or split_seed is None:
        sys.exit(f"{args.model or 'the shipped model'}: its metadata does not name its training data and split seed")
    records, clean_images = dev_clean_twins(data, seed=split_seed)
    dev_writers = sorted({r.writer_key for r in records})
    recorded_test = set(training.get("test_writers", []))
    if recorded_test & set(dev_writers):
        sys.exit("the recomputed dev writers overlap the model's recorded test writers: refusing to calibrate on them")
    print(f"dev writers: {len(dev_writers)}, {len(records)} images; cleaning with {args.cleaner}", flush=True)
    noisy = [add_noise(image, NOISE_SEED + index).noisy for index, image in enumerate(clean_images)]
    cleaned_queries = [clean(image, args.cleaner) for image in noisy]
    cleaned_references = [clean(image, args.cleaner) for image in clean_images]
    print(f"cleaned in {time.perf_counter() - started:.0f} s", flush=True)
    reference_vectors = _vectors(artifact, cleaned_references)
    calibration = calibrate_methods(
        reference_vectors,
        records,
        background=artifact.background,
        vote_distance=artifact.thresholds.get("distance", 0.0),
        methods=METHODS,
        query_vectors=matched_query_vectors(artifact, cleaned_references, cleaned_queries),
        comparator=artifact.comparator,
        cohort=artifact.cohort,
    )
    summary = {method: {r: round(100 * entry["dev_eer"], 2) for r, entry in entries.items()} for method, entries in calibration.items()}
    out = Path(args.out) if args.out else document_calibration_path(args.cleaner)
    document = {
        "kind": "document-calibration",
        "verifier": artifact.name,
        "verifier_version": artifact.version,
        "cleaner": args.cleaner,
        "cleaner_fingerprint": cleaner_fingerprint(args.cleaner),
        "protocol": (
            "verifier dev writers under synthetic clutter (sigverify.synth.noise.add_noise, seed "
            f"{NOISE_SEED} + image index); references and queries through the cleaner; queries' ink levels matched to "
            "each trial's references; 3 draws per R; threshold at the dev EER (genuine vs skilled), logistic map"
        ),
        "dev_writers": dev_writers,
        "dev_eer_percent": summary,
        "calibration": calibration,
        "command": "python scripts/calibrate_document.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    out.write_text(json.dumps(document, indent=1) + "\n")
    for method, entries in summary.items():
        print(f"  {method:18s} dev EER % by R: {entries}")
    print(f"wrote {out} ({document['seconds']} s)")


if __name__ == "__main__":
    main()
