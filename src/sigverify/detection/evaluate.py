"""Detection metrics: COCO AP (pycocotools), precision/recall at an operating score, false
positives per page on pages without signatures, and ``sigverify evaluate-detector``."""

from __future__ import annotations

import contextlib
import io
import time
from typing import Any, Optional, Sequence

import numpy as np

from .boxes import iou_matrix


def coco_ap(predictions: Sequence[Sequence[tuple]], truths: Sequence[np.ndarray], sizes: Optional[Sequence[tuple[int, int]]] = None) -> dict[str, float]:
    """COCO AP at IoU 0.5 and AP 0.5:0.95 (pycocotools), one class, up to 100 detections a page."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, detections = [], [], []
    for index, (found, boxes) in enumerate(zip(predictions, truths)):
        height, width = sizes[index] if sizes else (10_000, 10_000)
        images.append({"id": index, "width": width, "height": height})
        for box in np.asarray(boxes, dtype=float).reshape(-1, 4):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": index, "category_id": 1, "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0})
        for x0, y0, x1, y1, score in found:
            detections.append({"image_id": index, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score)})
    if not annotations:
        return {"ap50": float("nan"), "ap": float("nan")}
    if not detections:
        return {"ap50": 0.0, "ap": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        ground = COCO()
        ground.dataset = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "signature"}]}
        ground.createIndex()
        result = ground.loadRes(detections)
        evaluator = COCOeval(ground, result, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {"ap": float(evaluator.stats[0]), "ap50": float(evaluator.stats[1])}


def match(found: Sequence[tuple], boxes: np.ndarray, score: float, iou_threshold: float = 0.5) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) on one page at a score threshold."""
    kept = sorted([f for f in found if f[4] >= score], key=lambda f: -f[4])
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    if not kept:
        return 0, 0, len(boxes)
    if len(boxes) == 0:
        return 0, len(kept), 0
    overlaps = iou_matrix(np.array([f[:4] for f in kept]), boxes)
    used = np.zeros(len(boxes), dtype=bool)
    tp = 0
    for row in overlaps:
        candidates = np.where(~used & (row >= iou_threshold))[0]
        if len(candidates):
            used[candidates[np.argmax(row[candidates])]] = True
            tp += 1
    return tp, len(kept) - tp, int((~used).sum())


def rates_at(predictions, truths, score: float) -> dict[str, float]:
    tp = fp = fn = 0
    fp_empty, empty_pages = 0, 0
    for found, boxes in zip(predictions, truths):
        t, f, n = match(found, boxes, score)
        tp, fp, fn = tp + t, fp + f, fn + n
        if len(np.asarray(boxes).reshape(-1, 4)) == 0:
            empty_pages += 1
            fp_empty += f
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "fp_per_empty_page": fp_empty / empty_pages if empty_pages else float("nan"),
        "empty_pages": empty_pages,
    }


def choose_operating_score(predictions, truths, target_recall: float = 0.95) -> float:
    """The highest score whose recall reaches ``target_recall``; else the F1-optimal score."""
    scores = sorted({round(f[4], 4) for found in predictions for f in found}, reverse=True)
    best_f1, best_score = -1.0, 0.5
    for score in scores:
        rates = rates_at(predictions, truths, score)
        if rates["recall"] >= target_recall:
            return float(score)
        f1 = 2 * rates["precision"] * rates["recall"] / max(1e-9, rates["precision"] + rates["recall"])
        if f1 > best_f1:
            best_f1, best_score = f1, score
    return float(best_score)


def detection_metrics(predictions, truths, *, operating_score: Optional[float] = None, sizes=None) -> dict[str, Any]:
    """AP figures, plus precision / recall / FP per empty page at ``operating_score`` if given."""
    result: dict[str, Any] = dict(coco_ap(predictions, truths, sizes))
    result["pages"] = len(truths)
    result["pages_with_signatures"] = int(sum(len(np.asarray(b).reshape(-1, 4)) > 0 for b in truths))
    result["signatures"] = int(sum(len(np.asarray(b).reshape(-1, 4)) for b in truths))
    if operating_score is not None:
        result["operating_score"] = operating_score
        result.update(rates_at(predictions, truths, operating_score))
    return result


def evaluate_detector(data: str, *, detector=None, part: str = "test", synthetic: int = 0, synthetic_seed: int = 900_000, log=print) -> dict[str, Any]:
    """Evaluate on Tobacco-800 pages of one split part (default: the detector's recorded test pages)
    read from their files (latency includes reading), and optionally on fresh synthetic pages."""
    from ..datasets.tobacco import read_tobacco800, split_pages
    from ..imageio import load_gray
    from .detector import detect_gray, load_detector

    artifact = load_detector(detector)
    pages = read_tobacco800(data)
    recorded = artifact.metadata.get("training", {}).get("test_pages")
    if part == "test" and recorded:
        # Matched by file name, so the data may live elsewhere than where the detector was trained.
        names = {w.rsplit("/", 1)[-1] for w in recorded}
        chosen = [p for p in pages if p.path.rsplit("/", 1)[-1] in names]
    else:
        split = split_pages(pages, seed=artifact.metadata.get("training", {}).get("config", {}).get("split_seed", 0))
        chosen_paths = set(split[part]) if part != "all" else {p.path for p in pages}
        chosen = [p for p in pages if p.path in chosen_paths]
    predictions, truths, sizes, latencies = [], [], [], []
    for page in chosen:
        started = time.perf_counter()
        gray = load_gray(page.path)
        found = detect_gray(gray, artifact, min_score=0.02)
        latencies.append(time.perf_counter() - started)
        predictions.append([(*f["box"], f["score"]) for f in found])
        truths.append(np.array([b.as_list() for b in page.signatures]).reshape(-1, 4))
        sizes.append((page.height, page.width))
    operating = artifact.operating_score
    report: dict[str, Any] = {
        "detector": artifact.name,
        "operating_score": operating,
        "tobacco800": {
            "part": part,
            "all": detection_metrics(predictions, truths, operating_score=operating, sizes=sizes),
        },
        "latency_ms": {
            "median": round(1000 * float(np.median(latencies)), 1),
            "p95": round(1000 * float(np.percentile(latencies, 95)), 1),
            "includes": "reading and decoding the TIFF, resizing, the network, decoding boxes",
        },
    }
    with_sig = [i for i, t in enumerate(truths) if len(t)]
    without = [i for i, t in enumerate(truths) if not len(t)]
    report["tobacco800"]["with_signatures"] = detection_metrics([predictions[i] for i in with_sig], [truths[i] for i in with_sig], operating_score=operating, sizes=[sizes[i] for i in with_sig])
    report["tobacco800"]["without_signatures"] = {
        "pages": len(without),
        "fp_per_page": rates_at([predictions[i] for i in without], [truths[i] for i in without], operating)["fp_per_empty_page"],
    }
    log(f"Tobacco-800 {part}: {len(chosen)} pages, AP50 {report['tobacco800']['all']['ap50']:.4f}")
    if synthetic:
        from ..datasets import read_datasets
        from ..splits import split_writers
        from ..synth.pages import make_page, signature_pool

        records = read_datasets([str(p) for p in _sibling_datasets(data)])
        held_out = set(split_writers(records, seed=0).test)
        pool = signature_pool([r for r in records if r.writer_key in held_out], limit=200, seed=1)
        s_pred, s_true, s_sizes = [], [], []
        for seed in range(synthetic_seed, synthetic_seed + synthetic):
            page = make_page(pool, seed)
            found = detect_gray(page.image, artifact, min_score=0.02)
            s_pred.append([(*f["box"], f["score"]) for f in found])
            s_true.append(page.boxes)
            s_sizes.append(page.image.shape)
        report["synthetic"] = detection_metrics(s_pred, s_true, operating_score=operating, sizes=s_sizes)
        report["synthetic"]["note"] = f"{synthetic} fresh pages (seeds {synthetic_seed}+), signatures of the verifier's held-out test writers"
    return report


def _sibling_datasets(tobacco_root: str) -> list:
    from pathlib import Path

    parent = Path(tobacco_root).resolve().parent
    return [parent / name for name in ("cedar", "sigcomp2009") if (parent / name).is_dir()]
