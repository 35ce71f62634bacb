#!/usr/bin/env python
"""How much the preprocessing canvas shrinks or enlarges each dataset's signatures.

Usage: python scripts/canvas_scale.py DATA [DATA ...] [--every N] [--height H --width W]

For every N-th image: the factor by which `preprocess` resizes the ink's bounding box to fit the
canvas (< 1: pixels lost, > 1: the canvas holds more pixels than the scan has). A canvas larger than
the one whose median factor is about 1 cannot show the network detail the scans do not hold.
"""

import argparse

import cv2
import numpy as np

from sigverify.datasets import read_dataset
from sigverify.preprocess import PreprocessConfig, canvas_placement, ink_mask


def resize_factor(path: str, config: PreprocessConfig) -> float:
    """The canvas resize factor of one image's ink box."""
    gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise SystemExit(f"{path}: not a readable image")
    mask, _ = ink_mask(gray, config)
    if not mask.any():
        raise SystemExit(f"{path}: no ink found")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    crop = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return canvas_placement(crop.shape, crop.astype(np.float64), config)[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+")
    parser.add_argument("--every", type=int, default=5, help="use every N-th image (default 5)")
    parser.add_argument("--height", type=int, default=PreprocessConfig.height)
    parser.add_argument("--width", type=int, default=PreprocessConfig.width)
    args = parser.parse_args()
    config = PreprocessConfig(height=args.height, width=args.width)
    for root in args.data:
        records = read_dataset(root).records[:: args.every]
        factors = np.array([resize_factor(str(r.path), config) for r in records])
        p10, median, p90 = np.percentile(factors, [10, 50, 90])
        print(f"{root}: {len(factors)} images, canvas {config.height}x{config.width}: resize factor median {median:.2f} "
              f"(10th-90th percentile {p10:.2f}-{p90:.2f}), {100 * (factors > 1).mean():.0f} % enlarged")


if __name__ == "__main__":
    main()
