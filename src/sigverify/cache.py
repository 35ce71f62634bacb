"""Preprocess a dataset once into one compact array file, and reuse it.

The cache is a compressed ``.npz`` (no pickled objects) holding:

``images``   N x H x W uint8, the preprocessed signatures;
``sizes``    N x 3 float32, each signature's measured size (see :func:`sigverify.preprocess.preprocess_with_size`);
``paths``, ``writers``, ``labels``, ``datasets``, ``forgers``, ``samples``   per-image strings;
``sha256``   hash of each file's bytes; ``pixel_hash``: hash of its decoded pixels; ``phash``: 256-bit
             perceptual hash (hex) of the decoded image, for near-duplicate checks;
``header``   JSON: the preprocessing parameters, their digest, the records' digest, the sigverify
             version, the build time and any files that failed (with the reason).

Its file name carries the digests, so a change of parameters or of the files builds a new cache and
an existing one is reused only when both match.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .datasets import Record
from .errors import SigverifyError
from .preprocess import DEFAULT_CONFIG, PreprocessConfig

CACHE_FORMAT = 3
# 256-bit perceptual hashes: at 64 bits distinct signatures of one writer collide (measured on CEDAR).
PHASH_SIZE = 16


def default_cache_dir() -> Path:
    """``$SIGVERIFY_CACHE`` or ``~/.cache/sigverify``."""
    return Path(os.environ.get("SIGVERIFY_CACHE", Path.home() / ".cache" / "sigverify"))


def records_digest(records: Sequence[Record]) -> str:
    """Hash of the records (path, size, writer, label): changes when files are added or relabelled."""
    digest = hashlib.sha256()
    for record in records:
        size = os.path.getsize(record.path) if os.path.exists(record.path) else -1
        digest.update(f"{record.path}\0{size}\0{record.writer_key}\0{record.label}\n".encode())
    return digest.hexdigest()[:16]


@dataclass
class ImageFacts:
    """What one worker learns from one file."""

    image: Optional[np.ndarray]
    sha256: str
    pixel_hash: str
    phash: str
    error: Optional[str] = None
    size: Optional[np.ndarray] = None


def examine(path: str, config: PreprocessConfig) -> ImageFacts:
    """Hash, perceptually hash and preprocess one file; errors are returned, not raised."""
    import cv2
    import imagehash
    from PIL import Image

    from .imageio import read_image
    from .preprocess import preprocess_with_size

    cv2.setNumThreads(1)  # one process per core already
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return ImageFacts(None, "", "", "", f"cannot read: {exc}")
    sha = hashlib.sha256(data).hexdigest()
    pixel_hash = phash = ""
    try:
        gray, dpi = read_image(data)
        pixel_hash = hashlib.sha256(np.asarray(gray.shape).tobytes() + gray.tobytes()).hexdigest()
        phash = str(imagehash.phash(Image.fromarray(gray), hash_size=PHASH_SIZE))
        image, size = preprocess_with_size(gray, config, dpi=dpi, name=path)
    except SigverifyError as exc:
        return ImageFacts(None, sha, pixel_hash, phash, str(exc))
    return ImageFacts(image, sha, pixel_hash, phash, size=size)


def _examine_star(args: tuple[str, PreprocessConfig]) -> ImageFacts:
    return examine(*args)


@dataclass
class Cache:
    """A preprocessed dataset: images aligned with their records and hashes."""

    images: np.ndarray
    sizes: np.ndarray
    records: list[Record]
    sha256: list[str]
    pixel_hash: list[str]
    phash: list[str]
    config: PreprocessConfig
    header: dict = field(default_factory=dict)
    path: Optional[str] = None

    def __len__(self) -> int:
        return len(self.records)

    def content_ids(self) -> list[str]:
        """One id per image, equal for byte- or pixel-identical files (pixel hash wins)."""
        return [p or s for p, s in zip(self.pixel_hash, self.sha256)]

    def subset(self, indices: Sequence[int]) -> "Cache":
        idx = [int(i) for i in indices]
        return Cache(
            images=self.images[idx],
            sizes=self.sizes[idx],
            records=[self.records[i] for i in idx],
            sha256=[self.sha256[i] for i in idx],
            pixel_hash=[self.pixel_hash[i] for i in idx],
            phash=[self.phash[i] for i in idx],
            config=self.config,
            header=dict(self.header),
            path=self.path,
        )

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")

        def column(name: str) -> np.ndarray:
            return np.array([getattr(r, name) or "" for r in self.records], dtype=str)

        np.savez_compressed(
            tmp,
            images=self.images,
            sizes=self.sizes,
            paths=column("path"),
            writers=column("writer"),
            labels=column("label"),
            datasets=column("dataset"),
            forgers=column("forger"),
            samples=column("sample"),
            sha256=np.array(self.sha256, dtype=str),
            pixel_hash=np.array(self.pixel_hash, dtype=str),
            phash=np.array(self.phash, dtype=str),
            header=np.array(json.dumps(self.header)),
        )
        os.replace(tmp, path)  # never leave a half-written cache under the real name
        self.path = str(path)

    @classmethod
    def load(cls, path: str | Path) -> "Cache":
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            if header.get("format") != CACHE_FORMAT:
                raise SigverifyError(f"{path}: cache format {header.get('format')} is not {CACHE_FORMAT}")
            columns = {k: data[k].tolist() for k in ("paths", "writers", "labels", "datasets", "forgers", "samples")}
            records = [
                Record(path=p, writer=w, label=l, dataset=d, forger=f or None, sample=s or None)
                for p, w, l, d, f, s in zip(*columns.values())
            ]
            return cls(
                images=data["images"],
                sizes=data["sizes"],
                records=records,
                sha256=data["sha256"].tolist(),
                pixel_hash=data["pixel_hash"].tolist(),
                phash=data["phash"].tolist(),
                config=PreprocessConfig.from_dict(header["preprocess"]),
                header=header,
                path=str(path),
            )


def cache_path(records: Sequence[Record], config: PreprocessConfig, cache_dir: str | Path | None = None) -> Path:
    name = "+".join(sorted({r.dataset for r in records})) or "empty"
    safe = "".join(c if c.isalnum() or c in "-_+" else "_" for c in name)[:80]
    return Path(cache_dir or default_cache_dir()) / f"{safe}-{config.digest()}-{records_digest(records)}.npz"


def build_cache(
    records: Sequence[Record],
    config: PreprocessConfig = DEFAULT_CONFIG,
    *,
    workers: int | None = None,
    progress: bool = False,
) -> Cache:
    """Preprocess every record in parallel. Files that fail are left out and listed in the header."""
    from tqdm import tqdm

    started = time.perf_counter()
    workers = workers or os.cpu_count() or 1
    jobs = [(r.path, config) for r in records]
    if workers > 1 and len(jobs) > 1:
        # spawn, not fork: forking a process whose OpenCV/OpenMP thread pools already run deadlocks
        # the children (seen in the test suite); threads would be GIL-bound (measured: 3.7x slower).
        # Like any spawn pool, scripts calling this need the `if __name__ == "__main__":` guard.
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            iterator = pool.imap(_examine_star, jobs, chunksize=16)
            facts = list(tqdm(iterator, total=len(jobs), disable=not progress, desc="preprocess", unit="img"))
    else:
        facts = [examine(*job) for job in tqdm(jobs, disable=not progress, desc="preprocess", unit="img")]

    kept = [i for i, f in enumerate(facts) if f.error is None]
    failures = [{"path": records[i].path, "error": f.error} for i, f in enumerate(facts) if f.error is not None]
    images = (
        np.stack([facts[i].image for i in kept])
        if kept
        else np.zeros((0, config.height, config.width), dtype=np.uint8)
    )
    from . import __version__

    header = {
        "format": CACHE_FORMAT,
        "preprocess": config.to_dict(),
        "preprocess_digest": config.digest(),
        "records_digest": records_digest(records),
        "sigverify_version": __version__,
        "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": round(time.perf_counter() - started, 2),
        "workers": workers,
        "failures": failures,
    }
    sizes = np.stack([facts[i].size for i in kept]).astype(np.float32) if kept else np.zeros((0, 3), dtype=np.float32)
    return Cache(
        images=images,
        sizes=sizes,
        records=[records[i] for i in kept],
        sha256=[facts[i].sha256 for i in kept],
        pixel_hash=[facts[i].pixel_hash for i in kept],
        phash=[facts[i].phash for i in kept],
        config=config,
        header=header,
    )


def load_or_build(
    records: Sequence[Record],
    config: PreprocessConfig = DEFAULT_CONFIG,
    *,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    progress: bool = False,
    log=print,
) -> Cache:
    """Reuse the cache for these records and parameters, or build and save it.

    ``log`` receives one line saying which happened and how long it took (``None`` for silence).
    """
    path = cache_path(records, config, cache_dir)
    if path.exists():
        started = time.perf_counter()
        try:
            cache = Cache.load(path)
        except (OSError, ValueError, KeyError, SigverifyError) as exc:
            if log:
                log(f"cache {path} unreadable ({exc}); rebuilding")
        else:
            if cache.header.get("preprocess_digest") == config.digest():
                if log:
                    log(f"cache: reused {path} ({len(cache)} images, {time.perf_counter() - started:.2f} s)")
                return cache
    cache = build_cache(records, config, workers=workers, progress=progress)
    cache.save(path)
    if log:
        failed = len(cache.header["failures"])
        log(
            f"cache: preprocessed {len(cache)} images in {cache.header['seconds']:.1f} s "
            f"on {cache.header['workers']} workers -> {path}" + (f" ({failed} failed)" if failed else "")
        )
    return cache
