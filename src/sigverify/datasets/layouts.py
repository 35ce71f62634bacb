"""Readers for the signature-dataset layouts sigverify knows.

Each layout is a function ``parse(rel_path) -> Record fields | None`` that recognises one file from
its path relative to the dataset root; :func:`sigverify.datasets.read_dataset` runs every parser over
every image file and keeps the layout that claims the most files. Unclaimed images are reported,
never silently dropped.

Layouts
-------
``cedar``
    ``original_<W>_<N>.png`` (genuine) and ``forgeries_<W>_<N>.png`` (skilled forgery of writer W), in
    any folder structure: one flat folder, the canonical ``full_org/`` + ``full_forg/``, or one folder
    per writer.
``sigcomp2009``
    ``<NNN>/genuine|forgery/`` holding NFI names ``NFI-XXXYYZZZ.png`` (XXX wrote it, ZZZ is the
    reference writer) and NISDCC names ``NISDCC-SSS_RRR_NNN_6g.PNG`` (SSS signed, RRR is the reference).
``kaggle``
    ``<NNN>/`` (genuine) and ``<NNN>_forg/`` (forgeries of NNN).
``bhsig``
    ``B-S-<W>-G-<NN>.tif`` / ``H-S-<W>-F-<NN>.tif`` (Bengali / Hindi, genuine / forged).
``generic``
    ``ROOT/<writer>/genuine/*`` and ``ROOT/<writer>/forged/*`` (``forgery``/``forgeries`` accepted).
    This is the layout to use for your own data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Callable, Optional

GENUINE = "genuine"
FORGED = "forged"
LABELS = (GENUINE, FORGED)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"}


@dataclass(frozen=True)
class Parsed:
    """What a layout parser learns from one file's relative path."""

    writer: str
    label: str
    forger: Optional[str] = None
    sample: Optional[str] = None
    dataset: Optional[str] = None  # overrides the layout name (e.g. bhsig-bengali)
    # A label implied by the folder that disagrees with the file name; reported by inspect.
    conflict: Optional[str] = None


Parser = Callable[[PurePosixPath], Optional[Parsed]]

_CEDAR = re.compile(r"^(original|forgeries)_(\d+)_(\d+)\.png$", re.IGNORECASE)
_NFI = re.compile(r"^NFI-(\d{3})(\d{2})(\d{3})\.png$", re.IGNORECASE)
_NISDCC = re.compile(r"^NISDCC-(\d{3})_(\d{3})_(\d{3})_6g\.png$", re.IGNORECASE)
_BHSIG = re.compile(r"^([BH])-S-(\d+)-([GF])-(\d+)\.tif{1,2}$", re.IGNORECASE)
_GENUINE_DIRS = {"genuine", "genuines", "real", "original", "originals"}
_FORGED_DIRS = {"forged", "forgery", "forgeries", "forge", "fake", "skilled"}


def parse_cedar(rel: PurePosixPath) -> Optional[Parsed]:
    match = _CEDAR.match(rel.name)
    if not match:
        return None
    kind, writer, sample = match.groups()
    label = GENUINE if kind.lower() == "original" else FORGED
    conflict = None
    folders = {p.lower() for p in rel.parts[:-1]}
    if label == GENUINE and "full_forg" in folders or label == FORGED and "full_org" in folders:
        conflict = f"file name says {label} but it lies in {rel.parent}"
    return Parsed(writer=str(int(writer)), label=label, sample=str(int(sample)), conflict=conflict)


def _folder_label(rel: PurePosixPath) -> Optional[str]:
    for part in reversed(rel.parts[:-1]):
        low = part.lower()
        if low in _GENUINE_DIRS:
            return GENUINE
        if low in _FORGED_DIRS:
            return FORGED
    return None


def parse_sigcomp2009(rel: PurePosixPath) -> Optional[Parsed]:
    name = rel.name
    match = _NFI.match(name)
    if match:
        author, sample, reference = match.groups()
        corpus, writer, forger_id = "nfi", reference, author
    else:
        match = _NISDCC.match(name)
        if not match:
            return None
        author, reference, sample = match.groups()
        corpus, writer, forger_id = "nisdcc", reference, author
    label = GENUINE if author == reference else FORGED
    folder_label = _folder_label(rel)
    conflict = None
    if folder_label is not None and folder_label != label:
        conflict = f"file name says {label} but it lies in a {folder_label} folder"
    return Parsed(
        writer=f"{corpus}-{writer}",
        label=label,
        forger=None if label == GENUINE else f"{corpus}-{forger_id}",
        sample=sample,
    )


def parse_kaggle(rel: PurePosixPath) -> Optional[Parsed]:
    if len(rel.parts) < 2:
        return None
    folder = rel.parts[-2]
    match = re.fullmatch(r"(\d+)(_forg)?", folder, flags=re.IGNORECASE)
    if not match:
        return None
    return Parsed(writer=str(int(match.group(1))), label=FORGED if match.group(2) else GENUINE, sample=rel.stem)


def parse_bhsig(rel: PurePosixPath) -> Optional[Parsed]:
    match = _BHSIG.match(rel.name)
    if not match:
        return None
    script, writer, kind, sample = match.groups()
    language = "bengali" if script.upper() == "B" else "hindi"
    return Parsed(
        writer=f"{script.upper()}-{int(writer)}",
        label=GENUINE if kind.upper() == "G" else FORGED,
        sample=str(int(sample)),
        dataset=f"bhsig-{language}",
    )


def parse_generic(rel: PurePosixPath) -> Optional[Parsed]:
    if len(rel.parts) < 3:
        return None
    label_dir = rel.parts[-2].lower()
    if label_dir in _GENUINE_DIRS:
        label = GENUINE
    elif label_dir in _FORGED_DIRS:
        label = FORGED
    else:
        return None
    return Parsed(writer=rel.parts[-3], label=label, sample=rel.stem)


# Order matters only for ties: specific file-name conventions before folder conventions.
LAYOUTS: dict[str, Parser] = {
    "cedar": parse_cedar,
    "sigcomp2009": parse_sigcomp2009,
    "bhsig": parse_bhsig,
    "kaggle": parse_kaggle,
    "generic": parse_generic,
}
