"""Cluttered training views: the verifier's training signatures as they look when cut from a document.

Each training image gets ``views`` copies: its clean twin (:func:`~sigverify.synth.noise.clean_twin`)
with document clutter drawn over it (:func:`~sigverify.synth.noise.add_noise`), optionally passed
through a cleaner (what ``verify-document`` does before verifying), then preprocessed exactly like
the clean image. ``sigverify train`` swaps a share of each batch for these views
(``clutter_probability``) so that the embedding does not depend on a white page or on the
cleaner's rendering. Views are built once and cached beside the preprocessing cache.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..datasets import Record
from ..preprocess import PreprocessConfig

# Noise seeds of their own: never the seeds of the dev checks (5,000,000+) or evaluate-cleaner (7,000,000+).
SEED_BASE = 11_000_000


def _cleaner_identity(name: str) -> str:
    """What a cached view depends on: the cleaner's name and, for a learned one, its file's bytes."""
    if name in ("none", "classical"):
        return name
    from ..cleaning import load_cleaner

    return f"{name}:{hashlib.sha256(Path(load_cleaner(name).path).read_bytes()).hexdigest()[:16]}"


def clutter_view(gray: np.ndarray, seed: int, cleaner: str, config: PreprocessConfig) -> np.ndarray:
    """One preprocessed view (H x W uint8, the model's canvas) of a raw greyscale scan."""
    from ..cleaning import clean
    from ..errors import NoSignatureFound
    from ..preprocess import preprocess_with_size
    from .noise import add_noise, clean_twin

    noisy = add_noise(clean_twin(gray), seed).noisy
    if cleaner != "none":
        noisy = clean(noisy, cleaner)
    try:
        image, _ = preprocess_with_size(noisy, config)
    except NoSignatureFound:  # the cleaner erased everything: the model sees an empty canvas, as it would in use
        image = np.zeros(config.shape, dtype=np.uint8)
    return image


def build_clutter_views(
    records: Sequence[Record],
    config: PreprocessConfig,
    *,
    views: int,
    cleaners: Sequence[str],
    seed: int,
    cache_dir: Optional[str | Path] = None,
    log=print,
) -> np.ndarray:
    """Cluttered views of ``records``: N x views x H x W uint8; view ``k`` uses ``cleaners[k % len]``.

    Cached as ``clutter-<digest>.npz`` in the preprocessing cache folder (the digest covers the
    records, the preprocessing, the view count, the cleaners' files and the seed).
    """
    from ..cache import default_cache_dir, records_digest
    from ..imageio import load_gray

    if views < 1 or not cleaners:
        raise ValueError("clutter views need views >= 1 and at least one cleaner")
    key = "|".join([records_digest(records), config.digest(), str(views), ",".join(_cleaner_identity(c) for c in cleaners), str(seed)])
    path = Path(cache_dir or default_cache_dir()) / f"clutter-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.exists():
        with np.load(path) as data:
            log(f"clutter views: {path} ({len(records)} x {views})")
            return data["views"]
    started = time.perf_counter()
    out = np.zeros((len(records), views, *config.shape), dtype=np.uint8)
    for index, record in enumerate(records):
        gray = load_gray(record.path)
        for view in range(views):
            view_seed = SEED_BASE + seed * 100_003 + index * views + view
            out[index, view] = clutter_view(gray, view_seed, cleaners[view % len(cleaners)], config)
        if index % 500 == 0:
            log(f"clutter views: {index}/{len(records)} images ({time.perf_counter() - started:.0f} s)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, views=out)
    tmp.replace(path)
    log(f"clutter views: {len(records)} x {views} built in {time.perf_counter() - started:.0f} s -> {path}")
    return out
