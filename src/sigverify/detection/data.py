"""Detector data: pages resized to the network's input, their boxes, augmentation, caches.

A page is resized so that its long side is ``long_side`` pixels (aspect kept), then padded with
white to ``canvas`` (multiples of 32). Boxes follow the same scale. Resized pages are cached in one
compressed ``.npz`` per source (Tobacco-800 split part, or a synthetic set and its seeds).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import torch

from ..cache import default_cache_dir
from .boxes import rotate_boxes


@dataclass
class PageSet:
    """Resized pages (list of H x W uint8, long side = ``long_side``) and their boxes (N x 4)."""

    images: list[np.ndarray]
    boxes: list[np.ndarray]
    names: list[str]
    scales: list[float]

    def __len__(self) -> int:
        return len(self.images)

    def extend(self, other: "PageSet") -> "PageSet":
        return PageSet(self.images + other.images, self.boxes + other.boxes, self.names + other.names, self.scales + other.scales)


LETTER_ASPECT = 11 / 8.5  # height / width of the pages the detector is trained on


def detection_scale(height: int, width: int, long_side: int) -> float:
    """The scale a page is detected at: a portrait page gets its height on ``long_side``; a landscape
    or short page (cheque, receipt) is scaled as if it lay on a portrait letter sheet, its width on
    the sheet's width, so its writing keeps the size of writing on a letter."""
    return long_side / (height if height >= width else width * LETTER_ASPECT)


def resize_for_detection(image: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    """Resize a page to :func:`detection_scale`; returns (image, scale applied)."""
    scale = detection_scale(*image.shape[:2], long_side)
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR), scale


def resize_long_side(image: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    """Resize so the longer side is ``long_side``; returns (image, scale applied)."""
    scale = long_side / max(image.shape)
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _load_tobacco_page(args: tuple[str, list, int]) -> tuple[np.ndarray, np.ndarray, float]:
    from ..imageio import load_gray

    cv2.setNumThreads(1)
    path, boxes, long_side = args
    gray = load_gray(path)
    small, scale = resize_long_side(gray, long_side)
    return small, np.asarray(boxes, dtype=float).reshape(-1, 4) * scale, scale


def _save(path: Path, pages: PageSet, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"image_{i}": image for i, image in enumerate(pages.images)}
    arrays.update({f"boxes_{i}": boxes for i, boxes in enumerate(pages.boxes)})
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, meta=np.array(json.dumps({**meta, "names": pages.names, "scales": pages.scales})), **arrays)
    os.replace(tmp, path)


def _load(path: Path) -> PageSet:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        n = len(meta["names"])
        return PageSet([data[f"image_{i}"] for i in range(n)], [data[f"boxes_{i}"] for i in range(n)], meta["names"], meta["scales"])


def tobacco_pages(pages, long_side: int, cache_dir: Optional[str] = None, workers: int | None = None) -> PageSet:
    """Resized Tobacco-800 pages with their *signature* boxes (logos are not targets)."""
    key = hashlib.sha256(json.dumps([[p.path, os.path.getsize(p.path)] for p in pages] + [long_side]).encode()).hexdigest()[:16]
    path = Path(cache_dir or default_cache_dir()) / f"tobacco800-pages-{long_side}-{key}.npz"
    if path.exists():
        return _load(path)
    jobs = [(p.path, [b.as_list() for b in p.signatures], long_side) for p in pages]
    with multiprocessing.get_context("spawn").Pool(workers or os.cpu_count() or 1) as pool:
        loaded = pool.map(_load_tobacco_page, jobs, chunksize=8)
    result = PageSet([l[0] for l in loaded], [l[1] for l in loaded], [p.path for p in pages], [l[2] for l in loaded])
    _save(path, result, {"source": "tobacco800", "long_side": long_side})
    return result


def _make_synthetic(args) -> tuple[np.ndarray, np.ndarray, float]:
    from ..synth.cheque import make_cheque
    from ..synth.pages import make_page

    cv2.setNumThreads(1)
    signatures, seed, long_side, kind = args
    page = make_cheque(signatures, seed) if kind == "cheque" else make_page(signatures, seed)
    small, scale = resize_for_detection(page.image, long_side)  # as detect_gray scales real pages
    return small, page.boxes * scale, scale


SYNTHETIC_KINDS = ("page", "cheque")


def synthetic_pages(
    signature_records,
    seeds: Sequence[int],
    long_side: int,
    cache_dir: Optional[str] = None,
    pool_size: int = 300,
    workers: int | None = None,
    kind: str = "page",
) -> PageSet:
    """Generated letters (``kind="page"``) or cheques (``"cheque"``), seeded, with real signatures of
    the given records on them, scaled as :func:`detection_scale` scales pages for detection."""
    from ..synth.pages import signature_pool

    if kind not in SYNTHETIC_KINDS:
        raise ValueError(f"kind must be one of {', '.join(SYNTHETIC_KINDS)}, not {kind!r}")
    # (letters keep their original cache key)
    key_parts = [sorted(r.path for r in signature_records), list(seeds), long_side, pool_size] + ([kind] if kind != "page" else [])
    key = hashlib.sha256(json.dumps(key_parts).encode()).hexdigest()[:16]
    prefix = "synthetic-pages" if kind == "page" else f"synthetic-{kind}s"
    path = Path(cache_dir or default_cache_dir()) / f"{prefix}-{long_side}-{key}.npz"
    if path.exists():
        return _load(path)
    signatures = signature_pool(signature_records, limit=pool_size, seed=0)
    jobs = [(signatures, int(seed), long_side, kind) for seed in seeds]
    with multiprocessing.get_context("spawn").Pool(workers or os.cpu_count() or 1) as pool:
        made = pool.map(_make_synthetic, jobs, chunksize=4)
    name = "synthetic" if kind == "page" else kind
    result = PageSet([m[0] for m in made], [m[1] for m in made], [f"{name}-{s}" for s in seeds], [m[2] for m in made])
    _save(path, result, {"source": "synthetic", "kind": kind, "long_side": long_side, "seeds": [int(s) for s in seeds]})
    return result


def to_canvas(image: np.ndarray, canvas: tuple[int, int]) -> np.ndarray:
    """Pad (white) or crop a resized page to the fixed canvas (H, W), anchored top-left."""
    out = np.full(canvas, 255, dtype=np.uint8)
    h, w = min(canvas[0], image.shape[0]), min(canvas[1], image.shape[1])
    out[:h, :w] = image[:h, :w]
    return out


def canvas_for(long_side: int) -> tuple[int, int]:
    """Portrait canvas for pages up to letter aspect (11 x 8.5), multiples of 32."""
    height = int(np.ceil(long_side / 32) * 32)
    width = int(np.ceil(long_side * 0.82 / 32) * 32)
    return height, width


def augment_page(image: np.ndarray, boxes: np.ndarray, canvas: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scale jitter, small rotation, shift, stroke and noise changes; returns canvas-sized page + boxes."""
    scale = rng.uniform(0.8, 1.15)
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    boxes = boxes * scale
    if rng.random() < 0.5:
        angle = rng.uniform(-2.0, 2.0)
        h, w = image.shape
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        image = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
        boxes = rotate_boxes(boxes, angle, (w / 2, h / 2))
    # Random placement of the page on the canvas (a crop when it is larger).
    dy = int(rng.integers(min(0, canvas[0] - image.shape[0]), max(0, canvas[0] - image.shape[0]) + 1))
    dx = int(rng.integers(min(0, canvas[1] - image.shape[1]), max(0, canvas[1] - image.shape[1]) + 1))
    out = np.full(canvas, 255, dtype=np.uint8)
    sy0, sx0 = max(0, -dy), max(0, -dx)
    ty0, tx0 = max(0, dy), max(0, dx)
    h = min(image.shape[0] - sy0, canvas[0] - ty0)
    w = min(image.shape[1] - sx0, canvas[1] - tx0)
    out[ty0 : ty0 + h, tx0 : tx0 + w] = image[sy0 : sy0 + h, sx0 : sx0 + w]
    boxes = boxes + [dx, dy, dx, dy]
    if len(boxes):
        # Keep boxes mostly inside; clip them to the canvas.
        clipped = boxes.copy()
        clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, canvas[1])
        clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, canvas[0])
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        kept = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
        boxes = clipped[kept > 0.6 * np.maximum(area, 1e-6)]
    choice = rng.random()
    if choice < 0.15:
        out = cv2.erode(out, np.ones((2, 2), np.uint8))  # thicker ink
    elif choice < 0.25:
        out = cv2.dilate(out, np.ones((2, 2), np.uint8))  # thinner ink
    if rng.random() < 0.3:
        noise = rng.random(out.shape) < rng.uniform(0, 0.002)
        out[noise] = 0
    return out, boxes.reshape(-1, 4)


def to_tensor(pages: Sequence[np.ndarray]) -> torch.Tensor:
    """Pages (255 = paper) -> ``N x 1 x H x W`` float with ink = 1."""
    array = np.stack(pages).astype(np.float32)
    return torch.from_numpy(1.0 - array / 255.0).unsqueeze(1)
