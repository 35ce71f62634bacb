"""A readable summary of a dataset folder: writers, counts per label, and anything odd."""

from __future__ import annotations

from collections import Counter
from typing import Optional

import numpy as np
from PIL import Image

from . import FORGED, GENUINE, read_dataset


def _image_sizes(paths: list[str]) -> tuple[list[tuple[int, int]], list[str]]:
    sizes, unreadable = [], []
    for path in paths:
        try:
            with Image.open(path) as image:  # header only: no decoding
                sizes.append(image.size)
        except Exception as exc:  # noqa: BLE001 - any failure here is a finding to report
            unreadable.append(f"{path}: {exc}")
    return sizes, unreadable


def inspect_dataset(root: str, layout: Optional[str] = None) -> dict:
    """Summarise a dataset. Returns a dict of figures plus ``lines``, the human-readable report."""
    dataset = read_dataset(root, layout=layout)
    counts = dataset.counts()
    n_genuine = sum(c[GENUINE] for c in counts.values())
    n_forged = sum(c[FORGED] for c in counts.values())
    shapes = Counter((c[GENUINE], c[FORGED]) for c in counts.values())
    per_dataset = Counter(r.dataset for r in dataset.records)
    forgers = {r.forger for r in dataset.records if r.forger}

    sizes, unreadable = _image_sizes([r.path for r in dataset.records])
    odd: list[str] = []
    no_genuine = [w for w, c in counts.items() if c[GENUINE] == 0]
    no_forged = [w for w, c in counts.items() if c[FORGED] == 0]
    if no_genuine:
        odd.append(f"{len(no_genuine)} writers have no genuine signature: {', '.join(no_genuine[:10])}")
    if no_forged and len(no_forged) < len(counts):
        odd.append(f"{len(no_forged)} of {len(counts)} writers have no skilled forgery")
    if len(shapes) > 1:
        typical = shapes.most_common(1)[0][0]
        unusual = [f"{w} ({c[GENUINE]}g/{c[FORGED]}f)" for w, c in counts.items() if (c[GENUINE], c[FORGED]) != typical]
        odd.append(f"{len(unusual)} writers differ from the usual {typical[0]} genuine / {typical[1]} forged: " + ", ".join(unusual[:12]) + (" ..." if len(unusual) > 12 else ""))
    if dataset.unrecognised:
        odd.append(f"{len(dataset.unrecognised)} image files match no {dataset.layout} name and were ignored: " + ", ".join(dataset.unrecognised[:5]))
    odd += [f"label conflict: {c}" for c in dataset.conflicts]
    odd += [f"unreadable: {u}" for u in unreadable]

    lines = [
        f"dataset  {dataset.name}  (layout {dataset.layout}, {dataset.root})",
        f"images   {len(dataset.records)}: {n_genuine} genuine, {n_forged} forged",
        f"writers  {len(counts)}" + (f"; parts: " + ", ".join(f"{k} {v} images" for k, v in sorted(per_dataset.items())) if len(per_dataset) > 1 else ""),
        "per writer (genuine/forged -> writers): " + ", ".join(f"{g}/{f} -> {n}" for (g, f), n in shapes.most_common()),
    ]
    if forgers:
        lines.append(f"forgers  {len(forgers)} known forger ids")
    if sizes:
        widths, heights = np.array(sizes).T
        lines.append(
            f"sizes    width {widths.min()}-{widths.max()} (median {int(np.median(widths))}), "
            f"height {heights.min()}-{heights.max()} (median {int(np.median(heights))})"
        )
    lines += [f"odd      {line}" for line in odd] or ["odd      nothing"]

    return {
        "root": dataset.root,
        "dataset": dataset.name,
        "layout": dataset.layout,
        "n_images": len(dataset.records),
        "n_writers": len(counts),
        "n_genuine": n_genuine,
        "n_forged": n_forged,
        "per_writer": counts,
        "odd": odd,
        "lines": lines,
    }


def inspect_pages(root: str) -> dict:
    """Summarise a page dataset with box ground truth (Tobacco-800)."""
    from .tobacco import LOGO, read_tobacco800

    pages = read_tobacco800(root)
    signatures = [b for p in pages for b in p.signatures]
    logos = [b for p in pages for b in p.boxes if b.kind == LOGO]
    with_signature = sum(1 for p in pages if p.signatures)
    authors = {b.author for b in signatures if b.author}
    sizes = Counter((p.width, p.height) for p in pages)
    dpis = Counter(p.dpi for p in pages)
    odd = []
    unnamed = sum(1 for b in signatures if not b.author)
    if unnamed:
        odd.append(f"{unnamed} signature boxes have no AuthorID")
    tiny = [p.path for p in pages for b in p.signatures if b.width < 10 or b.height < 5]
    if tiny:
        odd.append(f"{len(tiny)} signature boxes are smaller than 10 x 5 px: {', '.join(tiny[:3])}")
    lines = [
        f"dataset  tobacco800 pages  ({root})",
        f"pages    {len(pages)}: {with_signature} with a signature, {len(pages) - with_signature} without",
        f"boxes    {len(signatures)} signatures (max {max(len(p.signatures) for p in pages)} on one page), {len(logos)} logos",
        f"authors  {len(authors)} distinct AuthorID; overlapped {sum(1 for b in signatures if b.overlapped)} yes / {sum(1 for b in signatures if b.overlapped is False)} no",
        "sizes    " + ", ".join(f"{w}x{h} ({n})" for (w, h), n in sizes.most_common(4)),
        "dpi      " + ", ".join(f"{d} ({n})" for d, n in dpis.most_common()),
    ]
    lines += [f"odd      {line}" for line in odd] or ["odd      nothing"]
    return {
        "root": root,
        "dataset": "tobacco800",
        "layout": "tobacco800",
        "n_pages": len(pages),
        "n_pages_with_signature": with_signature,
        "n_signatures": len(signatures),
        "n_logos": len(logos),
        "n_authors": len(authors),
        "odd": odd,
        "lines": lines,
    }
