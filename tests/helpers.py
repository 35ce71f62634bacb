"""Small builders for synthetic datasets used by several test modules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from conftest import FORMATS


def scribble(seed: int, height: int = 120, width: int = 260) -> np.ndarray:
    """A distinct signature-like greyscale image per seed (dark strokes on light paper)."""
    import cv2

    rng = np.random.default_rng(seed)
    image = np.full((height, width), 235, dtype=np.uint8)
    points = np.cumsum(rng.normal(0, 12, (12, 2)), axis=0) + [width / 2, height / 2]
    points = np.clip(points, 5, [width - 5, height - 5]).astype(np.int32)
    cv2.polylines(image, [points], False, 30, thickness=2, lineType=cv2.LINE_AA)
    return image


def write_generic(root: Path, writers: dict[str, tuple[int, int]], seed: int = 0) -> Path:
    """ROOT/<writer>/genuine/*.png and ROOT/<writer>/forged/*.png with distinct images."""
    counter = seed * 10_000
    for writer, (n_genuine, n_forged) in writers.items():
        for label, count in (("genuine", n_genuine), ("forged", n_forged)):
            folder = root / writer / label
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                counter += 1
                Image.fromarray(scribble(counter)).save(folder / f"{index + 1:02d}.png")
    return root


def touch_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((FORMATS / "gray.png").read_bytes())


def toy_signature(writer_seed: int, sample_seed: int, height: int = 120, width: int = 260) -> np.ndarray:
    """A writer's template stroke (fixed by writer_seed) drawn with per-sample jitter."""
    import cv2

    template = np.random.default_rng(writer_seed)
    points = np.cumsum(template.normal(0, 14, (10, 2)), axis=0)
    points -= points.mean(axis=0)
    jitter = np.random.default_rng(10_000 + sample_seed)
    points = points * jitter.uniform(0.9, 1.1) + jitter.normal(0, 2.0, points.shape) + [width / 2, height / 2]
    points = np.clip(points, 5, [width - 5, height - 5]).astype(np.int32)
    image = np.full((height, width), 235, dtype=np.uint8)
    cv2.polylines(image, [points], False, 30, thickness=2, lineType=cv2.LINE_AA)
    return image


def write_toy_writers(root: Path, n_writers: int, n_genuine: int, n_forged: int = 0) -> Path:
    """Generic layout; forgeries of writer w are another template loosely resembling w's."""
    sample = 0
    for w in range(n_writers):
        for label, count in (("genuine", n_genuine), ("forged", n_forged)):
            folder = root / f"w{w:02d}" / label
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                sample += 1
                writer_seed = w if label == "genuine" else 5000 + w * 7 + index
                Image.fromarray(toy_signature(writer_seed, sample)).save(folder / f"{index + 1:02d}.png")
    return root


# A tiny per-fold training config for `evaluate --train` tests (seconds on the toy data).
TINY_FOLD_CONFIG = """[train]
model = "resnet-attn"
model_args = {depth = 10, base_width = 8}
embedding_dim = 16
loss = "triplet-hard"
margin = 0.3
lr = 3e-3
warmup_steps = 5
epochs = 2
steps_per_epoch = 4
batch_writers = 4
per_writer = 4
forged_per_writer = 1
dev_fraction = 0.25
preprocess = {height = 64, width = 96}
threads = 2
"""

# Tiny signet-slim training settings (an 80 x 120 canvas) for the local-head and ensemble tests.
LOCAL_HEAD_SETTINGS = dict(
    model="signet-slim", embedding_dim=16, lr=3e-3, warmup_steps=2, steps_per_epoch=2, batch_writers=4, per_writer=4,
    forged_per_writer=1, dev_fraction=0.25, test_fraction=0.25, preprocess={"height": 80, "width": 120}, threads=2,
)
