#!/usr/bin/env python
"""How often the shipped detector finds the signature on generated cheques; prints JSON.

Usage: python scripts/evaluate_cheques.py [--seeds 10] [--detector PATH]

Cheques come from ``sigverify.synth.cheque.make_cheque`` with the bundled sample writers' genuine
signatures (CEDAR writers 2, 13, 19: test writers of the default split), seeds 0..N-1 per writer. A
signature counts as found when a box at the operating score overlaps it with IoU >= 0.5; every other
box is a false positive. The detector never saw a cheque in training.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import sigverify
from sigverify.detection.boxes import iou_matrix
from sigverify.imageio import load_gray
from sigverify.synth.cheque import make_cheque

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "sigverify" / "samples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="cheques per sample writer")
    parser.add_argument("--detector", default=None, help="detector artifact (default: the shipped one)")
    args = parser.parse_args()
    found = false_positives = total = 0
    for writer in sorted(p.name for p in SAMPLES.iterdir() if p.is_dir()):
        signatures = [load_gray(p) for p in sorted((SAMPLES / writer / "genuine").glob("*.png"))]
        for seed in range(args.seeds):
            cheque = make_cheque(signatures, seed)
            boxes = np.array([d["box"] for d in sigverify.detect(cheque.image, detector=args.detector)]).reshape(-1, 4)
            overlaps = iou_matrix(boxes, cheque.boxes)[:, 0] if len(boxes) else np.zeros(0)
            total += 1
            found += int((overlaps >= 0.5).any())
            false_positives += int((overlaps < 0.5).sum())
    print(json.dumps({"cheques": total, "found": found, "recall": round(found / total, 3), "false_positives": false_positives}, indent=1))


if __name__ == "__main__":
    main()
