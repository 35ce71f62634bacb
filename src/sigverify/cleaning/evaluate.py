"""``sigverify evaluate-cleaner``: how much each cleaner gives back of what the noise takes away.

On writers never used to train any cleaner (the verifier split's test writers):

* image fidelity against the clean twin: PSNR, SSIM (scikit-image) and ink-pixel F1;
* the verifier on noisy queries against clean references: EER with no cleaning, with each cleaner,
  and on the clean originals (the ceiling); R references per writer, several draws; and the same
  queries as ``verify-document`` compares them by default (``eer_document``: the references through
  the same cleaner, each query's ink levels matched to its trial's references);
* real noise: Tobacco-800 signature crops with ``Overlapped="Yes"``, grouped by ``AuthorID``:
  same-author versus different-author AUC and EER before and after cleaning, and a grid picture;
  with a control for each cleaner: the same AUC on only what it removed (``auc_removed_only``). The
  crops' printed clutter is not random - a letter's typed name and closing sit under its author's
  signature - so a high control AUC says the uncleaned figure is partly read off the print.
"""

from __future__ import annotations

import time
from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from ..methods import EUCLIDEAN, Comparator
from . import CLEANERS, clean_classical, load_cleaner, run_network

INK_THRESHOLD = 160


def apply_cleaner(method: str, gray: np.ndarray, cleaners: dict[str, Any]) -> np.ndarray:
    if method == "none":
        return gray
    if method == "classical":
        return clean_classical(gray)
    return run_network(cleaners[method], gray)


def removed_ink(original: np.ndarray, cleaned: np.ndarray) -> np.ndarray:
    """What a cleaner took away: the original's pixels that are ink (Otsu) in the original and paper
    in the cleaned image, on white paper; ``H x W`` uint8, the images' size."""
    from ..preprocess import ink_mask

    before, _ = ink_mask(original)
    after, _ = ink_mask(cleaned)
    return np.where(before & ~after, original, 255).astype(np.uint8)


def keep_scanned_ink(original: np.ndarray, cleaned: np.ndarray) -> np.ndarray:
    """The scan's own pixels wherever a cleaner left ink, paper everywhere else (a variant measured in
    stop 32 by ``scripts/check_tobacco_cleaner_variants.py`` and ``scripts/check_cleaner_dev.py --mask``,
    not adopted: MODEL_CARD.md).

    A learned cleaner finds the strokes but re-renders them (greyer, thinner, fainter than the pen
    wrote them), and the verifier reads stroke darkness and width. Here the cleaner only decides
    *where* the signature is: its output's Otsu ink mask (computed on a blurred copy, so it carries a
    thin halo) selects the original grey levels.

    Parameters
    ----------
    original
        ``H x W`` uint8, the scanned crop (255 = paper).
    cleaned
        ``H x W`` uint8, a cleaner's output for ``original``.

    Returns
    -------
    np.ndarray
        ``H x W`` uint8.
    """
    if original.shape != cleaned.shape:
        raise ValueError(f"original {original.shape} and cleaned {cleaned.shape} differ in size")
    from ..preprocess import ink_mask

    mask, _ = ink_mask(cleaned)
    return np.where(mask, original, 255).astype(np.uint8)


def fidelity(cleaned: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ink_out, ink_ref = cleaned < INK_THRESHOLD, clean < INK_THRESHOLD
    tp = float((ink_out & ink_ref).sum())
    precision = tp / max(1.0, float(ink_out.sum()))
    recall = tp / max(1.0, float(ink_ref.sum()))
    return {
        "psnr": float(peak_signal_noise_ratio(clean, cleaned, data_range=255)),
        "ssim": float(structural_similarity(clean, cleaned, data_range=255)),
        "ink_f1": 2 * precision * recall / max(1e-9, precision + recall),
    }


def _vectors(artifact, grays: Sequence[np.ndarray]) -> np.ndarray:
    from ..errors import NoSignatureFound
    from ..preprocess import preprocess_with_size

    images, sizes = [], []
    for gray in grays:
        try:
            image, size = preprocess_with_size(gray, artifact.preprocess)
        except NoSignatureFound:  # a cleaner erased everything: an empty signature
            image, size = np.zeros(artifact.preprocess.shape, dtype=np.uint8), np.zeros(3, dtype=np.float32)
        images.append(image)
        sizes.append(size)
    return artifact.vectors(np.stack(images), np.stack(sizes))


def _eer_noisy_queries(artifact, reference_vectors, query_vectors, records, method: str, n_refs: int, draws: int, seed: int) -> float:
    """EER (genuine vs skilled) with clean references and the given query vectors.

    ``query_vectors`` is an N x D array, or a callable ``(trial, query_indices) -> vectors`` for
    queries that depend on the trial's references (a dev-writer check matches ink levels to them)."""
    from ..metrics import eer
    from ..methods import raw_scores
    from ..protocol import multi_reference_trials

    trials = multi_reference_trials(records, n_refs, draws=draws, seed=seed)
    labels, scores = [], []
    for trial in trials.trials:
        keep = trial.kinds != "random"
        queries = trial.queries[keep]
        vectors = query_vectors(trial, queries) if callable(query_vectors) else query_vectors[queries]
        scores.append(raw_scores(method, reference_vectors[trial.references], vectors, vote_distance=artifact.thresholds.get("distance", 0.0), background=artifact.background, comparator=artifact.comparator, cohort=artifact.cohort))
        labels.append(trial.labels[keep])
    return float(eer(np.concatenate(labels), np.concatenate(scores))[0])


def matched_query_vectors(artifact, reference_images: Sequence[np.ndarray], query_images: Sequence[np.ndarray]):
    """Per-trial query vectors for the document path: each trial's queries with their ink levels
    matched to the mean ink levels of that trial's references (:mod:`sigverify.cleaning.ink`).

    Returns a callable ``(trial, query_indices) -> len(query_indices) x D`` for
    ``_eer_noisy_queries`` or :func:`sigverify.calibration.calibrate_methods`; each is computed once."""
    from .ink import ink_quantiles, match_ink_levels

    levels = [ink_quantiles(r) for r in reference_images]
    memo: dict[tuple, np.ndarray] = {}

    def vectors(trial, indices: np.ndarray) -> np.ndarray:
        key = (tuple(trial.references.tolist()), tuple(np.asarray(indices).tolist()))
        if key not in memo:
            target = np.mean([levels[r] for r in trial.references], axis=0)
            memo[key] = _vectors(artifact, [match_ink_levels(query_images[q], target) for q in indices])
        return memo[key]

    return vectors


def dev_clean_twins(data: Sequence[str], seed: int = 0) -> tuple[list, list[np.ndarray]]:
    """The verifier split's development writers' records and their clean twins: the material the
    dev-writer checks (``scripts/check_*_dev.py``) choose cleaners and preprocessing on."""
    from ..datasets import read_datasets
    from ..imageio import load_gray
    from ..splits import split_writers
    from ..synth.noise import clean_twin

    records = read_datasets(list(data))
    dev = set(split_writers(records, seed=seed).dev)
    chosen = [r for r in records if r.writer_key in dev]
    return chosen, [clean_twin(load_gray(r.path)) for r in chosen]


def evaluate_synthetic(artifact, records, methods: Sequence[str], cleaners: dict, *, n_refs: int = 5, draws: int = 2, seed: int = 0, verifier_method: str = "writer-threshold", log=print) -> dict[str, Any]:
    from ..imageio import load_gray
    from ..synth.noise import add_noise, clean_twin

    started = time.perf_counter()
    clean_images, noisy_images = [], []
    for index, record in enumerate(records):
        twin = clean_twin(load_gray(record.path))
        clean_images.append(twin)
        noisy_images.append(add_noise(twin, 7_000_000 + seed * 100_003 + index).noisy)
    log(f"synthetic: {len(records)} signatures of {len({r.writer_key for r in records})} held-out writers ({time.perf_counter() - started:.0f} s)")
    reference_vectors = _vectors(artifact, clean_images)
    result: dict[str, Any] = {"n_images": len(records), "n_writers": len({r.writer_key for r in records}), "n_refs": n_refs, "verifier_method": verifier_method}
    result["eer_clean"] = _eer_noisy_queries(artifact, reference_vectors, reference_vectors, records, verifier_method, n_refs, draws, seed)
    for method in methods:
        started = time.perf_counter()
        cleaned = [apply_cleaner(method, noisy, cleaners) for noisy in noisy_images]
        seconds = time.perf_counter() - started
        scores = [fidelity(c, t) for c, t in zip(cleaned, clean_images)]
        entry = {k: float(np.mean([s[k] for s in scores])) for k in ("psnr", "ssim", "ink_f1")}
        entry["ms_per_image"] = round(1000 * seconds / len(cleaned), 1)
        entry["eer"] = _eer_noisy_queries(artifact, reference_vectors, _vectors(artifact, cleaned), records, verifier_method, n_refs, draws, seed)
        # The document path (verify-document's default): references through the same cleaner,
        # queries' ink levels matched to the trial's references.
        cleaned_references = [apply_cleaner(method, clean, cleaners) for clean in clean_images]
        entry["eer_document"] = _eer_noisy_queries(
            artifact, _vectors(artifact, cleaned_references), matched_query_vectors(artifact, cleaned_references, cleaned), records, verifier_method, n_refs, draws, seed
        )
        result[method] = entry
        log(f"synthetic {method:9s}: PSNR {entry['psnr']:.2f}  SSIM {entry['ssim']:.4f}  ink F1 {entry['ink_f1']:.4f}  EER {entry['eer'] * 100:.2f}%"
            f"  (document path {entry['eer_document'] * 100:.2f}%)")
    noisy_eer = result["none"]["eer"] if "none" in result else None
    if noisy_eer is not None:
        gap = noisy_eer - result["eer_clean"]
        for method in methods:
            if method != "none":
                for key in ("eer", "eer_document"):
                    result[method][f"{key}_gap_removed"] = float((noisy_eer - result[method][key]) / gap) if gap > 0 else float("nan")
    return result


def tobacco_crops(root: str, margin: float = 0.05, *, overlapped: bool = True) -> list[tuple[np.ndarray, str]]:
    """Signature crops with an AuthorID and Overlapped="Yes" (``overlapped=False``: "No"), as (grey crop, author)."""
    from ..datasets.tobacco import read_tobacco800
    from ..imageio import load_gray

    crops = []
    for page in read_tobacco800(root):
        boxes = [b for b in page.signatures if b.overlapped is overlapped and b.author]
        if not boxes:
            continue
        gray = load_gray(page.path)
        for box in boxes:
            crops.append((box.crop(gray, margin), box.author.strip()))
    return crops


def author_pairs(authors: Sequence[str], *, max_negatives: int = 4000, seed: int = 0) -> tuple[list[int], list[tuple[int, int]], np.ndarray]:
    """Same-author versus different-author pairs over crops labelled with their authors.

    Returns
    -------
    kept : indices of the crops whose author has at least two
    pairs : every same-author pair of kept crops, then different-author pairs drawn at random
        (seeded; at most ``max_negatives`` and at most 4 per same-author pair)
    labels : ``len(pairs)`` array, 1 = same author
    """
    counts = Counter(authors)
    kept = [i for i, a in enumerate(authors) if counts[a] >= 2]
    same = [(i, j) for i, j in combinations(kept, 2) if authors[i] == authors[j]]
    if len({authors[i] for i in kept}) < 2:
        raise ValueError("same- vs different-author pairs need two authors with at least two crops each")
    rng = np.random.default_rng(seed)
    different = []
    while len(different) < min(max_negatives, 4 * len(same)):
        i, j = (int(x) for x in rng.choice(kept, size=2, replace=False))
        if authors[i] != authors[j]:
            different.append((i, j))
    return kept, same + different, np.array([1] * len(same) + [0] * len(different))


def pair_scores(vectors: dict[int, np.ndarray], pairs: Sequence[tuple[int, int]], comparator: Comparator = EUCLIDEAN) -> np.ndarray:
    """Minus the distance between the two crops' vectors of each pair (higher = more alike), by the
    model's ``comparator``."""
    first = np.stack([vectors[i] for i, _ in pairs])
    second = np.stack([vectors[j] for _, j in pairs])
    return -comparator.paired(first, second)


def cleaned_pair_scores(artifact, crops, kept: Sequence[int], pairs: Sequence[tuple[int, int]], methods: Sequence[str], cleaners: dict) -> tuple[dict[str, np.ndarray], dict[str, dict[int, np.ndarray]]]:
    """Per cleaner: the pair scores (:func:`pair_scores`) of the ``kept`` crops after cleaning, and the
    cleaned crops (by crop index)."""
    scores: dict[str, np.ndarray] = {}
    cleaned_by: dict[str, dict[int, np.ndarray]] = {}
    for method in methods:
        cleaned = {i: apply_cleaner(method, crops[i][0], cleaners) for i in kept}
        cleaned_by[method] = cleaned
        scores[method] = pair_scores(dict(zip(kept, _vectors(artifact, [cleaned[i] for i in kept]))), pairs, artifact.comparator)
    return scores, cleaned_by


def evaluate_real(artifact, root: str, methods: Sequence[str], cleaners: dict, *, max_negatives: int = 4000, seed: int = 0, grid: Optional[str] = None, log=print) -> dict[str, Any]:
    from ..metrics import auc, eer

    crops = tobacco_crops(root)
    authors = [a for _, a in crops]
    kept, pairs, labels = author_pairs(authors, max_negatives=max_negatives, seed=seed)
    result: dict[str, Any] = {
        "n_crops": len(kept),
        "n_authors": len({authors[i] for i in kept}),
        "same_author_pairs": int(labels.sum()),
        "different_author_pairs": int(len(labels) - labels.sum()),
        "score": "minus the distance between the two crops' vectors (one reference)",
    }
    scores_by, cleaned_by = cleaned_pair_scores(artifact, crops, kept, pairs, methods, cleaners)
    for method in methods:
        scores, cleaned = scores_by[method], cleaned_by[method]
        result[method] = {"auc": float(auc(labels, scores)), "eer": float(eer(labels, scores)[0])}
        control = ""
        if method != "none":
            removed = dict(zip(kept, _vectors(artifact, [removed_ink(crops[i][0], cleaned[i]) for i in kept])))
            result[method]["auc_removed_only"] = float(auc(labels, pair_scores(removed, pairs, artifact.comparator)))
            control = f"  (control, only what it removed: AUC {result[method]['auc_removed_only']:.4f})"
        log(f"Tobacco-800 overlapped ({method:9s}): same-author AUC {result[method]['auc']:.4f}  EER {result[method]['eer'] * 100:.2f}%{control}")
    if grid:
        _grid(crops, sorted(kept)[:: max(1, len(kept) // 8)][:8], cleaned_by, methods, grid)
        result["grid"] = grid
    return result


def clean_reference_pair_scores(artifact, root: str, methods: Sequence[str], cleaners: dict) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray, np.ndarray]:
    """The product's case on real noise: Tobacco-800 overlapped crops as questioned signatures against
    one clean reference each - the crops annotated Overlapped="No" - of the authors that have both.
    Every (query, reference) pair is scored, same author or not; the references carry no print, so the
    typed name under a signature cannot match anything.

    Returns
    -------
    scores : ``{"query_cleaned" | "document_path": {method: (P,) scores}}``, minus the model's distance;
        ``query_cleaned``: only the query through the cleaner; ``document_path``: the reference through
        the same cleaner and the query's ink levels matched onto the reference's, as ``verify-document``
    labels : ``(P,)``, 1 = same author
    pair_authors : ``P x 2`` (query author, reference author)
    """
    from .ink import ink_quantiles, match_ink_levels

    queries, references = tobacco_crops(root), tobacco_crops(root, overlapped=False)
    both = {a for _, a in queries} & {a for _, a in references}
    queries = [(g, a) for g, a in queries if a in both]
    references = [(g, a) for g, a in references if a in both]
    if len(both) < 2:
        raise ValueError(f"{root}: fewer than two authors have both overlapped and clean signature crops")
    pairs = [(q, r) for q in range(len(queries)) for r in range(len(references))]
    labels = np.array([int(queries[q][1] == references[r][1]) for q, r in pairs])
    pair_authors = np.array([(queries[q][1], references[r][1]) for q, r in pairs])
    plain_references = _vectors(artifact, [g for g, _ in references])
    scores: dict[str, dict[str, np.ndarray]] = {"query_cleaned": {}, "document_path": {}}
    first, second = np.array([q for q, _ in pairs]), np.array([r for _, r in pairs])
    for method in methods:
        cleaned_queries = [apply_cleaner(method, g, cleaners) for g, _ in queries]
        scores["query_cleaned"][method] = -artifact.comparator.paired(_vectors(artifact, cleaned_queries)[first], plain_references[second])
        cleaned_references = [apply_cleaner(method, g, cleaners) for g, _ in references]
        levels = [ink_quantiles(g) for g in cleaned_references]
        matched = _vectors(artifact, [match_ink_levels(cleaned_queries[q], levels[r]) for q, r in pairs])
        scores["document_path"][method] = -artifact.comparator.paired(matched, _vectors(artifact, cleaned_references)[second])
    return scores, labels, pair_authors


def evaluate_clean_references(artifact, root: str, methods: Sequence[str], cleaners: dict, *, log=print) -> dict[str, Any]:
    """Same-author AUC and EER of :func:`clean_reference_pair_scores`, per protocol and cleaner."""
    from ..metrics import auc, eer

    scores, labels, pair_authors = clean_reference_pair_scores(artifact, root, methods, cleaners)
    result: dict[str, Any] = {
        "n_authors": len(set(pair_authors[:, 0].tolist())),
        "same_author_pairs": int(labels.sum()),
        "different_author_pairs": int(len(labels) - labels.sum()),
        "score": "minus the distance between an overlapped crop and one clean (Overlapped=No) crop",
    }
    for protocol, by_method in scores.items():
        result[protocol] = {}
        for method, values in by_method.items():
            result[protocol][method] = {"auc": float(auc(labels, values)), "eer": float(eer(labels, values)[0])}
            log(f"Tobacco-800 overlapped vs clean references, {protocol} ({method:9s}): same-author AUC {result[protocol][method]['auc']:.4f}  EER {result[protocol][method]['eer'] * 100:.2f}%")
    return result


def _grid(crops, chosen, cleaned_by, methods, path: str) -> None:
    height, width = 110, 300
    rows = []
    for i in chosen:
        cells = []
        for method in methods:
            image = cleaned_by[method][i]
            scale = min(height / image.shape[0], width / image.shape[1])
            small = cv2.resize(image, (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale))), interpolation=cv2.INTER_AREA)
            cell = np.full((height, width), 255, dtype=np.uint8)
            cell[: small.shape[0], : small.shape[1]] = small
            cells.append(cv2.copyMakeBorder(cell, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=128))
        rows.append(np.hstack(cells))
    header = np.full((28, rows[0].shape[1]), 255, dtype=np.uint8)
    for k, method in enumerate(methods):
        cv2.putText(header, "original" if method == "none" else method, (k * (width + 4) + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 0, 1, cv2.LINE_AA)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(path, np.vstack([header] + rows))


def run_cleaner_evaluation(data: Sequence[str], tobacco: Optional[str], *, model=None, methods: Sequence[str] = ("none", "classical", "unet", "cyclegan"), cleaner_paths: Optional[dict] = None, grid: Optional[str] = None, max_images: int = 0, seed: int = 0, log=print) -> dict[str, Any]:
    """The whole report: synthetic noise on held-out writers and real Tobacco-800 noise."""
    from ..api import load_model
    from ..datasets import read_datasets
    from ..splits import split_writers

    artifact = load_model(model)
    cleaners = {}
    for method in methods:
        if method in ("unet", "cyclegan"):
            cleaners[method] = load_cleaner(method, (cleaner_paths or {}).get(method))
    trained_on = set()
    for cleaner in cleaners.values():
        trained_on |= set(cleaner.metadata.get("training", {}).get("train_writers", []))
    records = read_datasets(list(data))
    held_out = set(split_writers(records, seed=0).test) - trained_on
    held_out -= set(artifact.writers("train"))
    chosen = [r for r in records if r.writer_key in held_out]
    if max_images and len(chosen) > max_images:
        # Whole writers, never a thinned-out writer: the protocol needs R + 1 genuine per writer.
        writers = sorted({r.writer_key for r in chosen})
        rng = np.random.default_rng(seed)
        kept_writers, total = set(), 0
        for writer in [writers[i] for i in rng.permutation(len(writers))]:
            count = sum(1 for r in chosen if r.writer_key == writer)
            if total + count > max_images and kept_writers:
                continue
            kept_writers.add(writer)
            total += count
        chosen = [r for r in chosen if r.writer_key in kept_writers]
    report: dict[str, Any] = {"model": artifact.name, "methods": list(methods), "held_out_writers": sorted({r.writer_key for r in chosen})}
    report["synthetic"] = evaluate_synthetic(artifact, chosen, methods, cleaners, seed=seed, log=log)
    if tobacco:
        report["tobacco800_overlapped"] = evaluate_real(artifact, tobacco, methods, cleaners, grid=grid, log=log)
        report["tobacco800_overlapped_vs_clean_references"] = evaluate_clean_references(artifact, tobacco, methods, cleaners, log=log)
    return report


__all__ = ["run_cleaner_evaluation", "fidelity", "removed_ink", "author_pairs", "pair_scores", "cleaned_pair_scores", "clean_reference_pair_scores", "tobacco_crops", "dev_clean_twins", "CLEANERS"]
