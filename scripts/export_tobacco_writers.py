#!/usr/bin/env python
"""Tobacco-800's signed boxes as a folder-per-writer dataset of genuine signatures, for training.

Usage: python scripts/export_tobacco_writers.py TOBACCO OUT [--cleaner unet|classical|cyclegan|none] [--min-per-writer 2]

Every signature box with an AuthorID (overlapped with print or not) is cropped with the 5 % margin the
cleaner evaluation uses, passed through a cleaner (default: the shipped U-Net, as the document path
does), and written as ``OUT/<author>/genuine/<page>_<k>.png`` (the generic layout, so `sigverify train`
and `sigverify evaluate --extra-train OUT` read it). A crop whose pixels repeat one already written
(the copy holds byte-identical scans of some pages under two names) is written once; authors left with
fewer than ``--min-per-writer`` crops are left out. Genuine signatures only: Tobacco-800 has no forgeries.
"""

import argparse
import hashlib
import json
import re
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from sigverify.cleaning import clean
from sigverify.datasets.tobacco import read_tobacco800
from sigverify.errors import DatasetError
from sigverify.imageio import load_gray

MARGIN = 0.05  # as cleaning.evaluate.tobacco_crops


def author_folder(author: str) -> str:
    """A folder name for an AuthorID: letters and digits, other runs of characters as one underscore."""
    return re.sub(r"[^A-Za-z0-9]+", "_", author).strip("_") or "unnamed"


def signed_crops(root: str) -> dict[str, list[tuple[str, np.ndarray]]]:
    """``{author folder: [(name, grey crop), ...]}`` of every box with an AuthorID, exact repeats dropped."""
    by_author: dict[str, list[tuple[str, np.ndarray]]] = defaultdict(list)
    seen: set[str] = set()
    for page in read_tobacco800(root):
        boxes = [b for b in page.signatures if b.author and b.author.strip()]
        if not boxes:
            continue
        gray = load_gray(page.path)
        for k, box in enumerate(boxes):
            crop = box.crop(gray, MARGIN)
            digest = hashlib.sha256(np.asarray(crop.shape).tobytes() + crop.tobytes()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            by_author[author_folder(box.author.strip())].append((f"{Path(page.original_name).stem}_{k}", crop))
    return by_author


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tobacco", help="the Tobacco-800 folder (train/ and train_xml/)")
    parser.add_argument("out", help="where the writer folders go (must not exist)")
    parser.add_argument("--cleaner", default="unet", choices=["unet", "classical", "cyclegan", "none"])
    parser.add_argument("--min-per-writer", type=int, default=2)
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"{out} exists; give a new folder")
    started = time.time()
    try:
        by_author = {a: crops for a, crops in signed_crops(args.tobacco).items() if len(crops) >= args.min_per_writer}
    except DatasetError as error:
        raise SystemExit(str(error)) from None
    if not by_author:
        raise SystemExit(f"no author with {args.min_per_writer} or more signatures in {args.tobacco}")
    for author, crops in sorted(by_author.items()):
        folder = out / author / "genuine"
        folder.mkdir(parents=True)
        for name, crop in crops:
            image = crop if args.cleaner == "none" else clean(crop, args.cleaner)
            cv2.imwrite(str(folder / f"{name}.png"), image)
    n_images = sum(len(c) for c in by_author.values())
    summary = {"source": args.tobacco, "cleaner": args.cleaner, "min_per_writer": args.min_per_writer,
               "writers": len(by_author), "images": n_images, "seconds": round(time.time() - started, 1)}
    (out / "export.json").write_text(json.dumps(summary, indent=1))
    print(f"{out}: {n_images} signatures of {len(by_author)} writers (cleaner {args.cleaner}), {summary['seconds']} s")


if __name__ == "__main__":
    main()
