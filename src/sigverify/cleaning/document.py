"""The document path's reference side: a writer's references rendered the way a cleaned crop is.

A signature cut from a scanned page is compared with the writer's references only after both sides
went through the same cleaner (so they share its rendering of strokes) and the crop's ink levels
were matched to the references' (:mod:`sigverify.cleaning.ink`; no cleaner can know the pen). Scores
of such pairs sit lower than clean pairs, so the decision threshold and the probability map come
from their own calibration: ``weights/document-<cleaner>.json``, fitted on the verifier's dev
writers under synthetic clutter by ``scripts/calibrate_document.py`` and valid for one verifier
version and one cleaner file (checked when loaded).
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from PIL import Image

from ..errors import ModelError, ReferencesError
from ..imageio import DEFAULT_MAX_PIXELS, ImageSource, describe_source, read_image
from . import clean, default_cleaner_path
from .ink import match_ink_levels, reference_ink_levels

REFERENCE_MODES = ("matched", "plain")
WEAK_DEV_EER = 0.35  # a method whose document-path dev EER is this high gets a warning


def cleaner_fingerprint(cleaner: str) -> str:
    """What a document calibration is valid for on the cleaner side: the weights file's sha256
    for learned cleaners, the name for ``classical`` and ``none``."""
    if cleaner in ("classical", "none"):
        return cleaner
    path = default_cleaner_path(cleaner)
    if not path.is_file():
        raise ModelError(f"{path}: no such cleaner file (rebuild it with scripts/train_cleaners.sh)")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def document_calibration_path(cleaner: str) -> Path:
    return Path(str(resources.files("sigverify") / "weights" / f"document-{cleaner}.json"))


_calibrations: dict[tuple[str, str], Optional[dict[str, Any]]] = {}
_calibrations_lock = threading.Lock()


def load_document_calibration(artifact, cleaner: str) -> Optional[dict[str, Any]]:
    """The shipped document calibration for this verifier and cleaner, or ``None`` when there is
    none for this pair (another verifier version, another cleaner file); cached."""
    key = (artifact.version, cleaner)
    with _calibrations_lock:
        if key not in _calibrations:
            path = document_calibration_path(cleaner)
            found = None
            if path.is_file():
                stored = json.loads(path.read_text())
                if stored.get("verifier_version") == artifact.version and stored.get("cleaner_fingerprint") == cleaner_fingerprint(cleaner):
                    found = stored
            _calibrations[key] = found
        return _calibrations[key]


def encode_png(gray: np.ndarray, dpi: Optional[float] = None) -> bytes:
    """PNG bytes of a greyscale image, declaring ``dpi`` when known (the verifier measures size)."""
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="PNG", **({"dpi": (dpi, dpi)} if dpi else {}))
    return buffer.getvalue()


@dataclass
class DocumentReferences:
    """A writer's references as the document path compares them.

    Attributes
    ----------
    images
        The cleaned references, each ``H x W`` uint8 PNG bytes (declaring the source's DPI).
    ink_levels
        ``(101,)`` mean ink-level quantiles of the cleaned references: the crops' target.
    calibration
        ``{method: {R: entry}}`` fitted for this verifier and cleaner, or ``None`` (see ``warnings``).
    warnings
        Said in every answer that uses these references.
    """

    images: list[bytes]
    ink_levels: np.ndarray
    calibration: Optional[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    def method_warnings(self, method: str, n_refs: int) -> list[str]:
        """This answer's warnings: the calibration's, and a method that is weak on cleaned crops
        (the writer-dependent classifiers' background is clean signatures)."""
        from ..calibration import pick_entry

        if self.calibration is None or method not in self.calibration:
            return list(self.warnings)
        dev_eer = pick_entry(self.calibration, method, n_refs)["dev_eer"]
        if dev_eer < WEAK_DEV_EER:
            return list(self.warnings)
        return self.warnings + [f"method {method} is weak on cleaned crops: dev EER {100 * dev_eer:.0f} % on the document path; prefer fusion-mean"]

    def add_warnings(self, result: dict[str, Any]) -> dict[str, Any]:
        """Put :meth:`method_warnings` in front of a :func:`sigverify.verify` answer's own."""
        result["warnings"] = self.method_warnings(result["method"], result["n_references"]) + result["warnings"]
        return result

    def render_query(self, cleaned_crop: np.ndarray, dpi: Optional[float] = None) -> bytes:
        """The cleaned crop with its ink levels matched to the references, as PNG bytes."""
        return encode_png(match_ink_levels(cleaned_crop, self.ink_levels), dpi)


def prepare_document_references(
    references: Sequence[ImageSource], artifact, cleaner: str, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> DocumentReferences:
    """Clean each reference image with ``cleaner`` and collect the ink-level target.

    Raises
    ------
    ReferencesError
        When a reference is an embedding: the document path needs the images.
    """
    images, grays = [], []
    for position, item in enumerate(references):
        if isinstance(item, np.ndarray) and np.issubdtype(item.dtype, np.floating):
            raise ReferencesError(
                f"reference {position}",
                "an embedding: the document path cleans the references too, so it needs their images (or use reference_mode='plain')",
            )
        gray, dpi = read_image(item, max_pixels=max_pixels, name=describe_source(item))
        cleaned = clean(gray, cleaner)
        grays.append(cleaned)
        images.append(encode_png(cleaned, dpi))
    calibration = load_document_calibration(artifact, cleaner)
    warnings = []
    if calibration is None:
        warnings.append(
            f"no document calibration for model {artifact.version} with the {cleaner} cleaner: the threshold and "
            "score are the clean-pair ones, which run low on cleaned crops (run scripts/calibrate_document.py)"
        )
    return DocumentReferences(images, reference_ink_levels(grays), calibration["calibration"] if calibration else None, warnings)
