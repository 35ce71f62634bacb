"""The Python facade: ``load_model``, ``represent``, ``distances``, ``verify``.

>>> import sigverify
>>> result = sigverify.verify("questioned.png", ["ref1.png", "ref2.png", "ref3.png"])  # doctest: +SKIP
>>> result["decision"], round(result["score"], 3), result["threshold"]                 # doctest: +SKIP
('genuine', 0.912, 0.5)

Models are built once per path and cached (thread-safe); every image goes through the model's own
preprocessing. Results are plain dicts.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import warnings
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from .calibration import inconsistent_references, pick_entry, to_probability
from .errors import InputError, InvalidImage, ModelError, NoSignatureFound, ReferencesError
from .imageio import DEFAULT_MAX_PIXELS, ImageSource, describe_source, read_bytes, read_image
from .methods import METHODS, NEEDS_BACKGROUND, NEEDS_COHORT, NEEDS_TWO_REFERENCES, raw_scores
from .models.artifact import ModelArtifact, load_artifact
from .preprocess import preprocess_with_size

DEFAULT_METHOD = "fusion-mean"
DEFAULT_INCONCLUSIVE_BAND = 0.1
DECISIONS = ("genuine", "forged", "inconclusive")

# resolved path -> ((mtime_ns, size) of the file when loaded, artifact): a model file rewritten in
# place (``sigverify recalibrate``, a new training run) is loaded again, not served stale.
_models: dict[str, tuple[tuple[int, int], ModelArtifact]] = {}
_models_lock = threading.Lock()

ModelLike = Union[None, str, os.PathLike, ModelArtifact]


def default_model_path() -> Path:
    """The model shipped inside the package (``$SIGVERIFY_MODEL`` overrides it)."""
    override = os.environ.get("SIGVERIFY_MODEL")
    if override:
        return Path(override)
    return Path(str(resources.files("sigverify") / "weights" / "default.safetensors"))


def load_model(model: ModelLike = None) -> ModelArtifact:
    """Load (once, then from the cache while the file is unchanged) a model artifact; no argument:
    the shipped default."""
    if isinstance(model, ModelArtifact):
        return model
    path = Path(model) if model is not None else default_model_path()
    key = str(path.resolve())
    with _models_lock:
        if not path.is_file():
            hint = " (the default model ships in the package; rebuild it with scripts/train_default.sh)" if model is None else ""
            raise ModelError(f"{path}: no such model file{hint}")
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if key not in _models or _models[key][0] != stamp:
            _models[key] = (stamp, load_artifact(path))
        return _models[key][1]


class _Prepared:
    """A decoded, preprocessed image with its measured size and content hashes."""

    def __init__(self, source: ImageSource, artifact: ModelArtifact, max_pixels: int) -> None:
        self.name = describe_source(source)
        data = read_bytes(source)  # None for arrays and PIL images; read once, hashed and decoded
        gray, dpi = read_image(data if data is not None else source, max_pixels=max_pixels, name=self.name)
        self.byte_hash: Optional[str] = hashlib.sha256(data).hexdigest() if data is not None else None
        self.pixel_hash = hashlib.sha256(np.asarray(gray.shape).tobytes() + gray.tobytes()).hexdigest()
        self.image, self.size = preprocess_with_size(gray, artifact.preprocess, dpi=dpi, name=self.name)


def _vectors(artifact: ModelArtifact, prepared: Sequence[_Prepared], tta: bool, bf16: bool) -> np.ndarray:
    images = np.stack([p.image for p in prepared])
    sizes = np.stack([p.size for p in prepared])
    return artifact.vectors(images, sizes, bf16=bf16, tta=tta)


def _is_embedding(item: Any, dim: int) -> bool:
    return isinstance(item, np.ndarray) and item.ndim == 1 and np.issubdtype(item.dtype, np.floating) and len(item) == dim


def represent(
    images: Union[ImageSource, Sequence[ImageSource]],
    model: ModelLike = None,
    *,
    tta: bool = False,
    bf16: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Embed signature images with a model (batched).

    Parameters
    ----------
    images
        One image, or a list/tuple of images: paths, bytes, NumPy arrays or PIL images.
    tta
        Average the embeddings of small rotations/scales of each image.
    bf16
        bfloat16 inference (fast on CPUs with AMX); False for bit-exact fp32.

    Returns
    -------
    np.ndarray
        ``N x D`` float32 (``D = load_model().represent_dim``): the L2-normalised embedding, then
        (when the model compares sizes) the weighted measured size and (for a model with a learned
        local head) its local descriptor, laid out so that every vector has the same norm
        (:mod:`sigverify.models.layout`): plain Euclidean and cosine distances on them agree and
        use all three parts.

    Notes
    -----
    :func:`distances` gives the model's own distance between these vectors, the one every
    :func:`verify` method uses; a plain distance is the next best thing (shipped model, the writers
    it never saw, one reference, genuine vs skilled forgeries: EER 16.5 % with :func:`distances`,
    19.5 % Euclidean or cosine; ``scripts/check_represent_distances.py``).
    """
    artifact = load_model(model)
    if not isinstance(images, (list, tuple)):
        images = [images]  # one image (a NumPy array is always one image; pass a list for several)
    if not images:
        return np.zeros((0, artifact.represent_dim), dtype=np.float32)
    return artifact.to_represented(_vectors(artifact, [_Prepared(source, artifact, max_pixels) for source in images], tta, bf16))


def _vector_rows(vectors: Any, dim: int, name: str) -> np.ndarray:
    array = np.asarray(vectors)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != dim or not np.issubdtype(array.dtype, np.number):
        raise InputError(name, f"expected vectors from represent() of size {dim} (one, or N x {dim}), got shape {array.shape} {array.dtype}")
    if not np.isfinite(array).all():
        raise InputError(name, "vectors hold NaN or infinite values")
    return np.ascontiguousarray(array, dtype=np.float32)


def distances(first: Any, second: Any, model: ModelLike = None) -> np.ndarray:
    """The model's distance between signatures already embedded with :func:`represent`.

    Parameters
    ----------
    first, second
        ``N x D`` and ``M x D`` vectors from ``represent(..., model=model)`` (a single 1-D vector
        counts as one row); both plain or both from ``represent(..., tta=True)``. They are decoded
        back to the vectors the model compares (:meth:`ModelArtifact.from_represented`).

    Returns
    -------
    np.ndarray
        ``N x M`` float32 distances, small for two genuine signatures of one writer: the learned
        local-head distance ``-log P(same writer's genuine pair)`` for a model with a local head,
        else the Euclidean distance. Every decision method of :func:`verify` is built on it.
    """
    artifact = load_model(model)
    rows = artifact.from_represented(_vector_rows(first, artifact.represent_dim, "first"))
    columns = artifact.from_represented(_vector_rows(second, artifact.represent_dim, "second"))
    return np.asarray(artifact.comparator.matrix(rows, columns), dtype=np.float32)


def detect(
    image: ImageSource,
    *,
    detector: Any = None,
    min_score: Optional[float] = None,
    page: int = 0,
    dpi: float = 200,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[dict[str, Any]]:
    """Find handwritten signatures on a page.

    Parameters
    ----------
    image
        A page: image path/bytes/array/PIL image, a multi-page TIFF or a PDF (``page`` picks one,
        PDFs are rendered at ``dpi``).
    min_score
        Keep boxes scoring at least this; default: the detector's operating score (fixed on dev pages).

    Returns
    -------
    list of dict
        ``{"box": [x0, y0, x1, y1], "score": s}`` in the page's pixels (x right, y down), best first;
        empty when the page has no signature.
    """
    from .detection.detector import detect_gray, load_detector
    from .documents import load_pages

    artifact = load_detector(detector)
    pages = load_pages(image, dpi=dpi, max_pixels=max_pixels)
    if not 0 <= page < len(pages):
        raise InvalidImage(describe_source(image), f"has {len(pages)} page(s); page {page} does not exist")
    return detect_gray(pages[page].image, artifact, min_score=min_score)


def document_decision(signatures: Sequence[dict[str, Any]]) -> str:
    """One answer for a document: genuine if any found signature is, forged if all are, else
    inconclusive (also when no signature was found: a person must look)."""
    decisions = [s["decision"] for s in signatures]
    if "genuine" in decisions:
        return "genuine"
    if decisions and all(d == "forged" for d in decisions):
        return "forged"
    return "inconclusive"


def verify_document(
    page: ImageSource,
    references: Optional[Sequence[Any]] = None,
    *,
    verifier: Any = None,
    model: ModelLike = None,
    detector: Any = None,
    cleaner: str = "unet",
    reference_mode: str = "matched",
    method: str = DEFAULT_METHOD,
    threshold: Optional[float] = None,
    inconclusive_band: float = DEFAULT_INCONCLUSIVE_BAND,
    min_score: Optional[float] = None,
    dpi: float = 200,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> dict[str, Any]:
    """From a scanned page (image, multi-page TIFF or PDF) to decisions: detect every signature,
    crop it, clean it, verify it against ``references`` (or with ``verifier``, a callable taking
    the cleaned crop, an ``H x W`` uint8 array, and the page's DPI or ``None``: e.g. an enrolled
    writer in the store).

    ``reference_mode`` ``"matched"`` (default): the references go through the same cleaner and each
    crop's ink levels are matched to theirs, scored with the document calibration
    (:mod:`sigverify.cleaning.document`); ``"plain"``: the cleaned crop against the references as
    they are, with the model's clean-pair calibration.

    Returns
    -------
    dict
        ``decision`` for the document (see :func:`document_decision`), ``found`` (number of
        signatures), ``message``, ``pages`` and ``signatures``: per signature ``page``, ``box``
        ``[x0, y0, x1, y1]`` (page pixels), ``detection_score``, ``cleaned`` (the cleaned crop,
        an ``H x W`` uint8 array) and the keys of :func:`verify`.
    """
    from .cleaning import clean
    from .cleaning.document import REFERENCE_MODES, encode_png, prepare_document_references
    from .detection.detector import detect_gray, load_detector
    from .documents import load_pages

    started = time.perf_counter()
    if reference_mode not in REFERENCE_MODES:
        raise ValueError(f"unknown reference_mode {reference_mode!r}; choose one of {', '.join(REFERENCE_MODES)}")
    if verifier is None:
        if not references:
            raise ReferencesError("references", "give reference signatures (or an enrolled writer)")
        refs = list(references)
        artifact = load_model(model)
        if reference_mode == "matched":
            document_refs = prepare_document_references(refs, artifact, cleaner, max_pixels=max_pixels)

            def verifier(cleaned: np.ndarray, page_dpi: Optional[float]) -> dict[str, Any]:
                return document_refs.add_warnings(verify(
                    document_refs.render_query(cleaned, page_dpi), document_refs.images, model=artifact, method=method, threshold=threshold,
                    inconclusive_band=inconclusive_band, max_pixels=max_pixels, calibration=document_refs.calibration,
                ))

        else:

            def verifier(cleaned: np.ndarray, page_dpi: Optional[float]) -> dict[str, Any]:
                return verify(encode_png(cleaned, page_dpi), refs, model=artifact, method=method, threshold=threshold, inconclusive_band=inconclusive_band, max_pixels=max_pixels)

    detector_artifact = load_detector(detector)
    pages = load_pages(page, dpi=dpi, max_pixels=max_pixels)
    signatures = []
    for page_image in pages:
        for found in detect_gray(page_image.image, detector_artifact, min_score=min_score):
            x0, y0, x1, y1 = (int(round(v)) for v in found["box"])
            crop = page_image.image[y0:y1, x0:x1]
            cleaned = clean(crop, cleaner)
            try:
                result = verifier(cleaned, page_image.dpi)
            except NoSignatureFound:
                result = {"decision": "inconclusive", "verified": False, "score": None, "warnings": ["the cleaner left no ink in this box"]}
            signatures.append({"page": page_image.index, "box": found["box"], "detection_score": found["score"], "cleaned": cleaned, **result})
    decision = document_decision(signatures)
    message = (
        f"{len(signatures)} signature(s) found on {len(pages)} page(s)"
        if signatures
        else f"no signature found on {len(pages)} page(s)"
    )
    return {
        "decision": decision,
        "verified": decision == "genuine",
        "found": len(signatures),
        "message": message,
        "pages": len(pages),
        "cleaner": cleaner,
        "reference_mode": reference_mode,
        "signatures": signatures,
        "time_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def _decide(score: float, threshold: float, band: float) -> str:
    if abs(score - threshold) < band / 2:
        return "inconclusive"
    return "genuine" if score >= threshold else "forged"


def _consistency_limit(artifact: ModelArtifact) -> tuple[Optional[float], str]:
    """The reference-consistency warning's limit and how to name it. Models calibrated before stop 23,
    or whose dev writers had too few signatures, have no fitted limit; they keep the one-reference
    threshold, which flags many genuine sets, and the warning says so."""
    thresholds = artifact.thresholds
    if "reference_consistency" in thresholds:
        return float(thresholds["reference_consistency"]), "the dev-fitted consistency limit"
    if "distance" in thresholds:
        return float(thresholds["distance"]), "the one-reference threshold (this model has no fitted consistency limit: `sigverify recalibrate` fits one when its dev writers have 6 or more genuine signatures)"
    return None, ""


def verify(
    query: ImageSource,
    references: Sequence[Any],
    *,
    model: ModelLike = None,
    threshold: Optional[float] = None,
    method: str = DEFAULT_METHOD,
    inconclusive_band: float = DEFAULT_INCONCLUSIVE_BAND,
    tta: bool = False,
    bf16: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    reference_hashes: Optional[Sequence[tuple[str, str]]] = None,
    calibration: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """Does the query signature come from the writer of the references?

    Parameters
    ----------
    query
        The questioned signature: path, bytes, NumPy array or PIL image.
    references
        The writer's genuine references: images as above, or precomputed embeddings (1-D float
        arrays of the model's size, e.g. from :func:`represent`; with ``tta`` from ``represent(..., tta=True)``),
        or a ``R x D`` float array of them.
    threshold
        Decision threshold on the calibrated score (0..1); default: the model's, fixed on dev writers
        for this method and the nearest reference count.
    method
        One of :data:`sigverify.methods.METHODS`.
    inconclusive_band
        Width of the band around the threshold whose scores are ``"inconclusive"`` (0 disables it).
    reference_hashes
        (sha256 of bytes, sha256 of pixels) of each reference, for references given as embeddings,
        so that a query identical to one of them is still flagged.
    calibration
        ``{method: {R: entry}}`` to use instead of the model's clean-pair calibration (the document
        path's, fitted on cleaned crops).

    Returns
    -------
    dict
        ``verified``, ``decision`` (genuine | forged | inconclusive), ``score`` (calibrated
        probability of genuine), ``threshold``, ``method``, ``model``, ``n_references``,
        ``per_reference`` (calibrated single-pair score per reference), ``warnings``, ``flags``, ``tta``,
        ``time_ms``.
    """
    started = time.perf_counter()
    artifact = load_model(model)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not 0 <= inconclusive_band < 1:
        raise ValueError("inconclusive_band must be in [0, 1)")
    if threshold is not None and not 0 <= threshold <= 1:
        raise ValueError("threshold is a calibrated probability, in [0, 1]")
    dim = artifact.represent_dim
    if isinstance(references, np.ndarray) and references.ndim == 2 and np.issubdtype(references.dtype, np.floating) and references.shape[1] == dim:
        references = list(references)
    if isinstance(references, (str, os.PathLike, bytes)) or references is None:
        raise ReferencesError("references", "pass a list of reference images or embeddings")
    references = list(references)
    if not references:
        raise ReferencesError("references", "no references given")

    warnings_out: list[str] = []
    flags: list[str] = []
    query_prepared = _Prepared(query, artifact, max_pixels)
    ref_embeddings, ref_prepared, ref_positions = {}, [], []
    for position, item in enumerate(references):
        if _is_embedding(item, dim):
            ref_embeddings[position] = artifact.from_represented(item[None])[0]
        elif isinstance(item, np.ndarray) and item.ndim == 1:
            raise ReferencesError(f"reference {position}", f"a 1-D array must be an embedding of size {dim}, got {item.shape} {item.dtype}")
        else:
            ref_prepared.append(_Prepared(item, artifact, max_pixels))
            ref_positions.append(position)

    if tta and ref_embeddings:
        warnings_out.append(
            f"{len(ref_embeddings)} reference(s) given as embeddings are compared as they are: with test-time augmentation they must come from represent(..., tta=True)"
        )
    embedded = _vectors(artifact, [query_prepared] + ref_prepared, tta, bf16)
    query_embedding = embedded[:1]
    for position, embedding in zip(ref_positions, embedded[1:]):
        ref_embeddings[position] = embedding
    refs = np.stack([ref_embeddings[i] for i in range(len(references))])
    n_refs = len(refs)

    # Reference quality.
    if n_refs < 3:
        warnings_out.append(f"only {n_refs} reference(s): 3 or more give far more reliable decisions")
    seen: dict[str, int] = {}
    for index, prepared in enumerate(ref_prepared):
        if prepared.pixel_hash in seen:
            warnings_out.append(f"references {prepared.name} and {ref_prepared[seen[prepared.pixel_hash]].name} are identical")
        seen.setdefault(prepared.pixel_hash, index)
    distance_threshold = artifact.thresholds.get("distance")
    consistency_limit, limit_name = _consistency_limit(artifact)
    if n_refs >= 3 and consistency_limit is not None:
        outliers = np.flatnonzero(inconsistent_references(artifact.comparator.matrix(refs, refs), consistency_limit)).tolist()
        if outliers:
            warnings_out.append(
                f"references {outliers} are inconsistent with the others (mean distance to them above {limit_name} "
                f"{consistency_limit:.3f}): are they all the same writer's genuine signatures?"
            )
    known = [(p.name, p.byte_hash, p.pixel_hash) for p in ref_prepared]
    known += [(f"reference {i}", b, px) for i, (b, px) in enumerate(reference_hashes or [])]
    copies = [name for name, byte_hash, pixel_hash in known if pixel_hash == query_prepared.pixel_hash or (byte_hash and byte_hash == query_prepared.byte_hash)]
    if copies:
        flags.append("query_identical_to_reference")
        warnings_out.append(f"the query is identical to reference {copies[0]}: a copy, not a new signature")

    # Score.
    effective_method = method
    if method in NEEDS_TWO_REFERENCES and n_refs < 2:
        raise ReferencesError("references", f"method {method} needs at least 2 references")
    background = artifact.background if method in NEEDS_BACKGROUND else None
    if method in NEEDS_BACKGROUND and background is None:
        raise ModelError(f"model {artifact.name} has no background set for {method}")
    # Augmented vectors sit at other distances: score them with the calibration (and cohort) fitted
    # for them when the model has one for this method, and say so when it has not.
    tta_calibration = artifact.calibration_for(True) if tta and calibration is None and artifact.has_tta_calibration() else {}
    augmented = method in tta_calibration
    if tta and calibration is None and not augmented:
        warnings_out.append(f"model {artifact.name} has no test-time-augmentation calibration for {method}: scored with the plain one, so the threshold may not fit")
    cohort = artifact.cohort_for(augmented) if method in NEEDS_COHORT else None
    if method in NEEDS_COHORT and cohort is None:
        raise ModelError(f"model {artifact.name} has no cohort for {method}: recalibrate it with `sigverify recalibrate`")
    raw = raw_scores(method, refs, query_embedding, background=background, vote_distance=distance_threshold or 0.0, comparator=artifact.comparator, cohort=cohort)
    if calibration is None:
        calibration = tta_calibration if augmented else artifact.calibration
    entry = pick_entry(calibration, effective_method, n_refs)
    score = float(to_probability(entry, raw)[0])
    decision_threshold = float(entry["threshold"] if threshold is None else threshold)
    single_entry = pick_entry(calibration, "single", 1)
    per_reference = [float(p) for p in to_probability(single_entry, -artifact.comparator.matrix(query_embedding, refs)[0])]

    decision = _decide(score, decision_threshold, inconclusive_band)
    if flags:
        decision = "inconclusive"  # a copied reference must go to a person
    return {
        "verified": decision == "genuine",
        "decision": decision,
        "score": score,
        "threshold": decision_threshold,
        "method": method,
        "model": artifact.name,
        "model_version": artifact.version,
        "n_references": n_refs,
        "per_reference": per_reference,
        "inconclusive_band": inconclusive_band,
        "warnings": warnings_out,
        "flags": flags,
        "tta": tta,
        "time_ms": round((time.perf_counter() - started) * 1000, 1),
    }
