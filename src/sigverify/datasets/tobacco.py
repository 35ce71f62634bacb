"""Tobacco-800 pages with GEDI XML ground truth (signature and logo boxes).

Layout (``../shared/data/tobacco800_signatures``)::

    train/<name>.tif        1-bit CCITT G4 pages, 150-300 dpi
    train_xml/<name>.xml    GEDI XML: DL_ZONE elements with gedi_type DLSignature or DLLogo,
                            col/row/width/height in pixels of the stored TIFF, AuthorID, Overlapped

Page sizes come from the TIFF itself: on pages without zones the XML's DL_PAGE width/height is a
placeholder. Pages of one original document (``fzf54f00_1.tif``, ``fzf54f00_2.tif``) are kept on one
side of every split, since they share signers and letterheads.
"""

from __future__ import annotations

import hashlib
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from ..errors import DatasetError

GEDI_NS = "{http://lamp.cfar.umd.edu/GEDI}"
SIGNATURE = "signature"
LOGO = "logo"
_KINDS = {"DLSignature": SIGNATURE, "DLLogo": LOGO}


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in page pixels: x right, y down, ``x1``/``y1`` exclusive."""

    x0: float
    y0: float
    x1: float
    y1: float
    kind: str = SIGNATURE
    author: Optional[str] = None
    overlapped: Optional[bool] = None

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def as_list(self) -> list[float]:
        return [self.x0, self.y0, self.x1, self.y1]

    def crop(self, page: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """The box cut from ``page`` (``H x W``), widened by ``margin`` x its width and height on each
        side and clipped to the page."""
        pad_x, pad_y = margin * self.width, margin * self.height
        x0, y0 = int(max(0, self.x0 - pad_x)), int(max(0, self.y0 - pad_y))
        x1, y1 = int(min(page.shape[1], self.x1 + pad_x)), int(min(page.shape[0], self.y1 + pad_y))
        return np.ascontiguousarray(page[y0:y1, x0:x1])


@dataclass
class Page:
    """One scanned page and its ground-truth boxes."""

    path: str
    width: int
    height: int
    dpi: Optional[float]
    original_name: str
    boxes: list[Box] = field(default_factory=list)
    xml_path: Optional[str] = None

    @property
    def signatures(self) -> list[Box]:
        return [b for b in self.boxes if b.kind == SIGNATURE]

    @property
    def document(self) -> str:
        """The original document's id: the page name without its ``_N`` / ``-pageN`` suffixes.

        (``adh36e00_1.tif`` and ``adh36e00-page2_1.tif`` are byte-identical scans in the shared copy.)
        """
        stem = Path(self.original_name).stem
        return re.sub(r"(-page\d+)?(_\d+)?$", "", stem)


def parse_gedi(xml_path: str | os.PathLike) -> tuple[str, list[Box]]:
    """Parse one GEDI XML file into (original page name, boxes).

    Raises
    ------
    DatasetError
        When the file is not GEDI XML or a zone lacks its coordinates.
    """
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DatasetError(f"{xml_path}: not readable GEDI XML ({exc})") from None
    page = root.find(f"{GEDI_NS}DL_DOCUMENT/{GEDI_NS}DL_PAGE")
    if page is None:
        raise DatasetError(f"{xml_path}: no DL_DOCUMENT/DL_PAGE element")
    boxes = []
    for zone in page.iter(f"{GEDI_NS}DL_ZONE"):
        kind = _KINDS.get(zone.get("gedi_type", ""))
        if kind is None:
            continue
        try:
            col, row = float(zone.get("col")), float(zone.get("row"))
            width, height = float(zone.get("width")), float(zone.get("height"))
        except (TypeError, ValueError):
            raise DatasetError(f"{xml_path}: a {zone.get('gedi_type')} zone lacks col/row/width/height") from None
        overlapped = zone.get("Overlapped")
        boxes.append(
            Box(
                col,
                row,
                col + width,
                row + height,
                kind=kind,
                author=(zone.get("AuthorID") or None) if kind == SIGNATURE else None,
                overlapped=None if overlapped is None else overlapped.strip().lower() == "yes",
            )
        )
    return page.get("src", Path(xml_path).stem), boxes


def is_tobacco800(root: str | os.PathLike) -> bool:
    base = Path(root)
    return (base / "train_xml").is_dir() and any((base / "train_xml").glob("*.xml"))


def read_tobacco800(root: str | os.PathLike) -> list[Page]:
    """Every page of a Tobacco-800 folder with its boxes (sorted by file name).

    Raises
    ------
    DatasetError
        When the folder lacks ``train/`` + ``train_xml/`` or a page has no XML.
    """
    base = Path(root)
    image_dir, xml_dir = base / "train", base / "train_xml"
    if not image_dir.is_dir() or not xml_dir.is_dir():
        raise DatasetError(f"{root}: expected train/ and train_xml/ folders (Tobacco-800 GEDI layout)")
    pages = []
    for tif in sorted(image_dir.glob("*.tif")):
        xml_path = xml_dir / (tif.stem + ".xml")
        if not xml_path.is_file():
            raise DatasetError(f"{tif}: no ground truth {xml_path.name}")
        original, boxes = parse_gedi(xml_path)
        with Image.open(tif) as image:  # header only
            width, height = image.size
            dpi = image.info.get("dpi", (None,))[0]
        for box in boxes:
            if box.x0 < 0 or box.y0 < 0 or box.x1 > width or box.y1 > height:
                raise DatasetError(f"{xml_path}: box {box.as_list()} lies outside the {width}x{height} page")
        pages.append(Page(str(tif), width, height, float(dpi) if dpi else None, original, boxes, str(xml_path)))
    if not pages:
        raise DatasetError(f"{image_dir}: no .tif pages")
    return pages


def split_pages(
    pages: Sequence[Page], *, dev_fraction: float = 0.15, test_fraction: float = 0.2, seed: int = 0
) -> dict[str, list[str]]:
    """Seeded document-disjoint split of pages, stratified by whether a page has a signature.

    Returns
    -------
    ``{"train": [...], "dev": [...], "test": [...]}`` of page paths.
    """
    by_document: dict[str, list[Page]] = {}
    for page in pages:
        by_document.setdefault(page.document, []).append(page)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    for has_signature in (True, False):
        documents = sorted(d for d, ps in by_document.items() if any(p.signatures for p in ps) == has_signature)
        order = [documents[i] for i in rng.permutation(len(documents))]
        n_test = int(round(len(order) * test_fraction))
        n_dev = int(round(len(order) * dev_fraction))
        for index, document in enumerate(order):
            part = "test" if index < n_test else "dev" if index < n_test + n_dev else "train"
            parts[part] += [p.path for p in by_document[document]]
    for name in parts:
        parts[name].sort()
    documents_of = {name: {Path(p).name for p in paths} for name, paths in parts.items()}
    assert not (documents_of["train"] & documents_of["test"]) and not (documents_of["dev"] & documents_of["test"])
    return parts


def page_hashes(path: str) -> tuple[str, str]:
    """(sha256 of the file's bytes, sha256 of its decoded pixels)."""
    from ..imageio import load_gray

    data = Path(path).read_bytes()
    gray = load_gray(data)
    return hashlib.sha256(data).hexdigest(), hashlib.sha256(np.asarray(gray.shape).tobytes() + gray.tobytes()).hexdigest()
