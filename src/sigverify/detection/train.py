"""``sigverify train-detector``: train the signature detector on Tobacco-800 training pages plus
synthetic pages, choose the epoch and the operating score on Tobacco-800 dev pages, and write one
artifact. Test pages are never read here.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..config import TomlConfig
from ..machine import machine_description
from .data import PageSet, augment_page, canvas_for, synthetic_pages, tobacco_pages, to_tensor
from .detector import DetectorArtifact, save_detector
from .model import SignatureDetector, decode, detection_loss, encode_targets, STRIDE


@dataclass
class DetectorConfig(TomlConfig):
    SECTION = "detector"
    LABEL = "detector"

    tobacco: str = "../shared/data/tobacco800_signatures"
    synthetic_data: list[str] = field(default_factory=lambda: ["../shared/data/cedar", "../shared/data/sigcomp2009"])
    synthetic_pages: int = 300
    synthetic_seed: int = 1000
    # Generated cheques (landscape slips, scaled as on a letter sheet) with training writers' signatures;
    # scripts/evaluate_cheques.py measures on other seeds and on test writers' signatures.
    cheque_pages: int = 0
    cheque_seed: int = 5000
    out: str = "runs/detector"
    long_side: int = 768
    widths: list[int] = field(default_factory=lambda: [24, 48, 96, 128])
    epochs: int = 30
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    split_seed: int = 0
    dev_fraction: float = 0.15
    test_fraction: float = 0.2
    bf16: bool = True
    size_weight: float = 1.0  # weight of the log-size L1 loss (boxes must fit, not only be found)
    target_recall: float = 0.92  # the operating score: the highest with this dev recall at IoU 0.5
    threads: int = 0
    max_minutes: float = 0.0
    max_train_pages: int = 0  # 0: all (tests use a few)
    cache_dir: Optional[str] = None
    name: str = "detector"

    def __post_init__(self) -> None:
        for setting in ("synthetic_pages", "cheque_pages"):
            if getattr(self, setting) < 0:
                raise ValueError(f"{setting} must be 0 or more, not {getattr(self, setting)}")


def _targets(boxes_list, canvas: tuple[int, int]) -> dict[str, torch.Tensor]:
    out_h, out_w = canvas[0] // STRIDE, canvas[1] // STRIDE
    encoded = [encode_targets(b, out_h, out_w) for b in boxes_list]
    return {k: torch.from_numpy(np.stack([e[k] for e in encoded])) for k in encoded[0]}


def predict_pages(network: SignatureDetector, pages: PageSet, canvas: tuple[int, int], *, bf16: bool, min_score: float = 0.02, batch: int = 8) -> list[list[tuple]]:
    """Raw detections (resized-page pixels, score) for every page."""
    from .data import to_canvas

    network.eval()
    results = []
    with torch.inference_mode():
        for start in range(0, len(pages), batch):
            x = to_tensor([to_canvas(image, canvas) for image in pages.images[start : start + batch]])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                outputs = network(x)
            results += decode(tuple(o.float() for o in outputs), min_score=min_score)
    return results


def fit_detector(train_set: PageSet, dev_set: PageSet, config: DetectorConfig, out: Path, *, log=print, started: Optional[float] = None) -> tuple[SignatureDetector, list[dict]]:
    """Train on ``train_set`` (augmented), keep the epoch with the best dev AP50 (weights in
    ``out/best.pt``); returns the network with those weights and the per-epoch history."""
    from .evaluate import detection_metrics

    started = started or time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    network = SignatureDetector(config.widths)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    canvas = canvas_for(config.long_side)
    steps_per_epoch = max(1, len(train_set) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    history, best, step = [], -1.0, 0
    (out / "best.pt").unlink(missing_ok=True)
    for epoch in range(1, config.epochs + 1):
        network.train()
        order = rng.permutation(len(train_set))
        losses = []
        epoch_started = time.perf_counter()
        for batch_index in range(steps_per_epoch):
            chosen = order[batch_index * config.batch_size : (batch_index + 1) * config.batch_size]
            images, boxes = [], []
            for i in chosen:
                image, page_boxes = augment_page(train_set.images[i], train_set.boxes[i], canvas, rng)
                images.append(image)
                boxes.append(page_boxes)
            lr = config.lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))  # cosine decay
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                outputs = network(to_tensor(images))
            loss = detection_loss(tuple(o.float() for o in outputs), _targets(boxes, canvas), size_weight=config.size_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), 10.0)
            optimizer.step()
            losses.append(float(loss.detach()))
            step += 1
        predictions = predict_pages(network, dev_set, canvas, bf16=config.bf16)
        metrics = detection_metrics(predictions, dev_set.boxes)
        row = {"epoch": epoch, "loss": float(np.mean(losses)), "seconds": round(time.perf_counter() - epoch_started, 1), "dev_ap50": metrics["ap50"], "dev_ap": metrics["ap"]}
        history.append(row)
        improved = metrics["ap50"] > best or not (out / "best.pt").exists()
        if improved:
            best = metrics["ap50"]
            torch.save(network.state_dict(), out / "best.pt")
        log(f"epoch {epoch:3d}  loss {row['loss']:.4f}  dev AP50 {metrics['ap50']:.4f}  AP {metrics['ap']:.4f}  {row['seconds']:.0f} s{'  *best' if improved else ''}")
        with open(out / "log.json", "w") as handle:
            json.dump(history, handle, indent=1)
        if config.max_minutes and time.perf_counter() - started > config.max_minutes * 60:
            log(f"stopping after {config.max_minutes} minutes")
            break

    network.load_state_dict(torch.load(out / "best.pt", weights_only=True))
    network.eval()
    return network, history


def train_detector(config: DetectorConfig, *, log=print, command: Optional[str] = None) -> Path:
    from ..datasets import read_datasets
    from ..datasets.tobacco import read_tobacco800, split_pages
    from ..splits import split_writers
    from .evaluate import choose_operating_score, detection_metrics

    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    pages = read_tobacco800(config.tobacco)
    split = split_pages(pages, dev_fraction=config.dev_fraction, test_fraction=config.test_fraction, seed=config.split_seed)
    with open(out / "page_split.json", "w") as handle:
        json.dump({**split, "seed": config.split_seed, "note": "document-disjoint; test pages are never read by training"}, handle, indent=1)
    by_path = {p.path: p for p in pages}
    train_list = [by_path[p] for p in split["train"]]
    if config.max_train_pages:
        train_list = train_list[: config.max_train_pages]
    dev_list = [by_path[p] for p in split["dev"]]
    if config.max_train_pages:
        dev_list = dev_list[: max(4, config.max_train_pages // 2)]
    train_set = tobacco_pages(train_list, config.long_side, config.cache_dir)
    dev_set = tobacco_pages(dev_list, config.long_side, config.cache_dir)
    if (config.synthetic_pages or config.cheque_pages) and config.synthetic_data:
        # Only training writers' signatures go onto synthetic pages (the verifier's split).
        records = read_datasets(config.synthetic_data)
        writer_split = split_writers(records, seed=0)
        train_writers = set(writer_split.train)
        signature_records = [r for r in records if r.writer_key in train_writers]
        made = {}
        for kind, count, first_seed in (("page", config.synthetic_pages, config.synthetic_seed), ("cheque", config.cheque_pages, config.cheque_seed)):
            if count:
                made[kind] = synthetic_pages(signature_records, range(first_seed, first_seed + count), config.long_side, config.cache_dir, kind=kind)
                train_set = train_set.extend(made[kind])
        log(f"training pages: {len(train_list)} Tobacco-800 + {len(made.get('page', []))} synthetic letters + "
            f"{len(made.get('cheque', []))} cheques; dev pages: {len(dev_set)}")
    else:
        log(f"training pages: {len(train_set)}; dev pages: {len(dev_set)}")

    network, history = fit_detector(train_set, dev_set, config, out, log=log, started=started)
    canvas = canvas_for(config.long_side)
    predictions = predict_pages(network, dev_set, canvas, bf16=config.bf16)
    operating = choose_operating_score(predictions, dev_set.boxes, target_recall=config.target_recall)
    dev = detection_metrics(predictions, dev_set.boxes, operating_score=operating)
    metadata = {
        "name": config.name,
        "long_side": config.long_side,
        "operating_score": operating,
        "operating_rule": f"the highest score with dev recall >= {config.target_recall} at IoU 0.5, else the dev F1 optimum",
        "dev_metrics": dev,
        "training": {
            "config": config.to_dict(),
            "page_split": "page_split.json beside the run; document-disjoint, seeded",
            "n_train_pages": len(train_set),
            "n_dev_pages": len(dev_set),
            "history": history,
            "command": command,
            "wall_seconds": round(time.perf_counter() - started, 1),
            "machine": machine_description(),
            "test_pages": split["test"],
        },
    }
    path = save_detector(out / "detector.safetensors", network, metadata)
    log(f"detector: {path} (dev AP50 {dev['ap50']:.4f}, operating score {operating:.3f}, recall {dev.get('recall', float('nan')):.3f})")
    return path


def as_artifact(network: SignatureDetector, long_side: int, operating_score: float) -> DetectorArtifact:
    return DetectorArtifact(network, {"long_side": long_side, "operating_score": operating_score, "name": "in-memory"})
