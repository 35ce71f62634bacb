"""Dataset hygiene: duplicates that would leak answers or make pairs compare a file with itself.

Errors (``sigverify data check`` exits 1):
    a byte-identical or pixel-identical image under two different writers or labels (a genuine that
    is also filed as a forgery, or one writer's scan filed under another), and files that cannot be
    read or hold no signature.
Warnings:
    exact duplicates within one writer and label, and near-duplicates (256-bit perceptual hash within
    :data:`NEAR_DUPLICATE_BITS`), within a writer or across writers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..cache import Cache

# Measured on CEDAR: a JPEG re-encoded, resized copy is 4 bits away; distinct genuine signatures of
# one writer are 21 or more bits apart (and different writers 61 or more).
NEAR_DUPLICATE_BITS = 12


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _identity(record) -> str:
    return f"{record.writer_key} ({record.label})"


def _exact_groups(cache: Cache, hashes: Sequence[str], kind: str, report: CheckReport, seen: set) -> None:
    groups: dict[str, list[int]] = defaultdict(list)
    for index, digest in enumerate(hashes):
        if digest:
            groups[digest].append(index)
    for members in groups.values():
        if len(members) < 2:
            continue
        key = tuple(sorted(cache.records[i].path for i in members))
        if key in seen:  # byte-identical files are pixel-identical too; report once
            continue
        seen.add(key)
        identities = {_identity(cache.records[i]) for i in members}
        names = ", ".join(cache.records[i].path for i in members)
        if len(identities) > 1:
            report.errors.append(f"{kind}-identical images under different writers/labels: {names}")
            report.counts["cross_duplicates"] = report.counts.get("cross_duplicates", 0) + 1
        else:
            report.warnings.append(f"{kind}-identical duplicates within {identities.pop()}: {names}")
            report.counts["within_duplicates"] = report.counts.get("within_duplicates", 0) + 1


def _near_duplicates(cache: Cache, report: CheckReport, max_bits: int) -> None:
    valid = [i for i, h in enumerate(cache.phash) if h]
    if len(valid) < 2:
        return
    bits = np.array(
        [np.unpackbits(np.frombuffer(bytes.fromhex(cache.phash[i]), dtype=np.uint8)) for i in valid], dtype=bool
    )
    exact = cache.content_ids()
    for row in range(len(valid) - 1):
        distance = (bits[row + 1 :] != bits[row]).sum(axis=1)
        for offset in np.flatnonzero(distance <= max_bits):
            i, j = valid[row], valid[row + 1 + offset]
            if exact[i] == exact[j]:
                continue  # already reported as an exact duplicate
            a, b = cache.records[i], cache.records[j]
            where = f"within {_identity(a)}" if _identity(a) == _identity(b) else f"{_identity(a)} vs {_identity(b)}"
            report.warnings.append(
                f"near-duplicates ({int(distance[offset])} of {bits.shape[1]} hash bits differ) {where}: {a.path}, {b.path}"
            )
            report.counts["near_duplicates"] = report.counts.get("near_duplicates", 0) + 1


def check_cache(cache: Cache, *, near_duplicate_bits: int = NEAR_DUPLICATE_BITS) -> CheckReport:
    """Look for duplicates and unusable files in a preprocessed dataset."""
    report = CheckReport(counts={"images": len(cache)})
    for failure in cache.header.get("failures", []):
        report.errors.append(f"unusable image: {failure['error']}")
    report.counts["unusable"] = len(cache.header.get("failures", []))
    seen: set = set()
    _exact_groups(cache, cache.sha256, "byte", report, seen)
    _exact_groups(cache, cache.pixel_hash, "pixel", report, seen)
    _near_duplicates(cache, report, near_duplicate_bits)
    return report


def check_pages(root: str, *, workers: int | None = None) -> CheckReport:
    """Duplicate pages in a box-annotated page dataset (Tobacco-800).

    Identical pages (bytes or pixels) with *different* ground truth are errors; with the same ground
    truth they are warnings (they would leak across a split unless kept together).
    """
    import multiprocessing
    import os

    from .tobacco import page_hashes, read_tobacco800

    pages = read_tobacco800(root)
    workers = workers or os.cpu_count() or 1
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        hashes = pool.map(page_hashes, [p.path for p in pages], chunksize=8)
    report = CheckReport(counts={"pages": len(pages)})
    for column, kind in ((0, "byte"), (1, "pixel")):
        groups: dict[str, list[int]] = defaultdict(list)
        for index, pair in enumerate(hashes):
            groups[pair[column]].append(index)
        for members in groups.values():
            if len(members) < 2 or (column == 1 and len({hashes[i][0] for i in members}) == 1):
                continue  # pixel duplicates that are byte duplicates were reported already
            truths = {tuple(sorted((b.kind, *b.as_list()) for b in pages[i].boxes)) for i in members}
            names = ", ".join(pages[i].path for i in members)
            if len(truths) > 1:
                report.errors.append(f"{kind}-identical pages with different ground truth: {names}")
            else:
                report.warnings.append(f"{kind}-identical pages: {names}")
    return report
