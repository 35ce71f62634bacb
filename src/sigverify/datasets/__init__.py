"""Signature datasets: one way to read every layout, and records that say who wrote what.

>>> ds = read_dataset("../shared/data/cedar")          # doctest: +SKIP
>>> ds.layout, len(ds.records), ds.records[0]          # doctest: +SKIP
('cedar', 2640, Record(path='.../forgeries_10_1.png', writer='10', label='forged', ...))
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Optional, Sequence

from ..errors import DatasetError
from .layouts import FORGED, GENUINE, IMAGE_SUFFIXES, LABELS, LAYOUTS, Parsed

__all__ = [
    "GENUINE",
    "FORGED",
    "LABELS",
    "LAYOUTS",
    "Record",
    "Dataset",
    "read_dataset",
    "read_datasets",
    "list_images",
]


@dataclass(frozen=True)
class Record:
    """One signature image.

    Attributes
    ----------
    path
        Absolute path of the image file.
    writer
        The person whose signature it is meant to be, as the dataset names them.
    label
        ``"genuine"`` or ``"forged"`` (a skilled forgery of ``writer``).
    dataset
        Dataset name (``cedar``, ``sigcomp2009``, ``bhsig-hindi``, a generic folder's name ...).
    forger
        Who actually wrote a forgery, when the dataset says.
    sample
        The sample number or name within its writer and label, when known.
    """

    path: str
    writer: str
    label: str
    dataset: str
    forger: Optional[str] = None
    sample: Optional[str] = None

    @property
    def writer_key(self) -> str:
        """Globally unique writer id: ``dataset/writer`` (writer ids repeat across datasets)."""
        return f"{self.dataset}/{self.writer}"

    @property
    def is_genuine(self) -> bool:
        return self.label == GENUINE


@dataclass
class Dataset:
    """The records of one dataset folder and what the reader noticed on the way."""

    root: str
    layout: str
    records: list[Record]
    unrecognised: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        names = sorted({r.dataset for r in self.records})
        return "+".join(names) if names else self.layout

    def writers(self) -> list[str]:
        return sorted({r.writer_key for r in self.records}, key=_natural_key)

    def counts(self) -> dict[str, dict[str, int]]:
        """``{writer_key: {"genuine": n, "forged": m}}``."""
        table: dict[str, dict[str, int]] = defaultdict(lambda: {label: 0 for label in LABELS})
        for record in self.records:
            table[record.writer_key][record.label] += 1
        return {w: table[w] for w in sorted(table, key=_natural_key)}


def _natural_key(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def list_images(root: str | os.PathLike) -> list[Path]:
    """Every image file under ``root`` (recursively, sorted, hidden files skipped)."""
    base = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(dirpath) / name)
    return found


def read_dataset(root: str | os.PathLike, layout: str | None = None, name: str | None = None) -> Dataset:
    """Read a dataset folder, detecting its layout unless one is given.

    Parameters
    ----------
    root
        The dataset folder (e.g. ``../shared/data/cedar``).
    layout
        One of :data:`LAYOUTS` to force it; by default the layout that recognises the most files wins.
    name
        Dataset name for the records; by default the layout's name, or the folder's name for the
        generic and kaggle layouts.

    Raises
    ------
    DatasetError
        When the folder does not exist, holds no images, or no layout recognises any of them.
    """
    base = Path(root).resolve()
    if not base.is_dir():
        raise DatasetError(f"{root}: not a folder")
    images = list_images(base)
    if not images:
        raise DatasetError(f"{root}: no image files found")
    relative = [PurePosixPath(p.relative_to(base).as_posix()) for p in images]

    candidates = [layout] if layout else list(LAYOUTS)
    best_layout, best_parsed = None, []
    for candidate in candidates:
        if candidate not in LAYOUTS:
            raise DatasetError(f"unknown layout {candidate!r}; known: {sorted(LAYOUTS)}")
        parser = LAYOUTS[candidate]
        parsed = [parser(rel) for rel in relative]
        if sum(p is not None for p in parsed) > sum(p is not None for p in best_parsed):
            best_layout, best_parsed = candidate, parsed
    if best_layout is None:
        raise DatasetError(
            f"{root}: none of the {len(images)} images matches a known layout "
            f"({', '.join(LAYOUTS)}); see `sigverify data --help` for the generic layout"
        )

    default_name = name or (base.name if best_layout in ("generic", "kaggle") else best_layout)
    records, unrecognised, conflicts = [], [], []
    for path, rel, parsed in zip(images, relative, best_parsed):
        if parsed is None:
            unrecognised.append(str(rel))
            continue
        if parsed.conflict:
            conflicts.append(f"{rel}: {parsed.conflict}")
        records.append(
            Record(
                path=str(path),
                writer=parsed.writer,
                label=parsed.label,
                dataset=name or parsed.dataset or default_name,
                forger=parsed.forger,
                sample=parsed.sample,
            )
        )
    return Dataset(root=str(base), layout=best_layout, records=records, unrecognised=unrecognised, conflicts=conflicts)


def read_datasets(roots: Sequence[str | os.PathLike]) -> list[Record]:
    """The records of several dataset folders, concatenated (writer keys stay unique)."""
    records: list[Record] = []
    for root in roots:
        records.extend(read_dataset(root).records)
    return records


def group_by_writer(records: Iterable[Record]) -> dict[str, list[Record]]:
    """``{writer_key: [records...]}`` in input order."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        groups[record.writer_key].append(record)
    return dict(groups)


def label_counts(records: Iterable[Record]) -> Counter:
    return Counter(r.label for r in records)
