"""``sigverify train-cleaner``: train the U-Net (supervised, noisy -> clean pairs) or the CycleGAN
(unpaired clean <-> noisy, the original design) on synthetic noise over the *training* writers of
the verifier's split, so that cleaners are always measured on writers they never saw.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from ..config import TomlConfig
from ..machine import machine_description
from . import save_cleaner
from .networks import PatchDiscriminator, ResnetGenerator, UNet


@dataclass
class CleanerConfig(TomlConfig):
    SECTION = "cleaner"
    LABEL = "cleaner"

    method: str = "unet"  # or "cyclegan"
    data: list[str] = field(default_factory=lambda: ["../shared/data/cedar", "../shared/data/sigcomp2009"])
    out: str = "runs/cleaner"
    height: int = 96
    crop_width: int = 192
    noisy_per_image: int = 2
    max_images: int = 1200
    steps: int = 1500
    batch_size: int = 8
    lr: float = 2e-3
    seed: int = 0
    split_seed: int = 0
    unet_widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    generator_features: int = 16
    generator_blocks: int = 4
    discriminator_features: int = 32
    cycle_weight: float = 10.0
    identity_weight: float = 5.0
    threads: int = 0
    max_minutes: float = 0.0
    # Share of training signatures redrawn with a dark / broad pen before the clutter (see
    # synth.noise.darken_ink): real documents' signatures are often as black as their print.
    darken_probability: float = 0.0
    bf16: bool = False  # bfloat16 autocast for the U-Net's forward pass (about twice as fast on AMX CPUs)
    # A U-Net cleaner artifact whose weights start the training (same widths): fine-tuning, e.g. at
    # a higher resolution, costs far fewer steps than training from scratch.
    init: str = ""
    # Weight of the verifier's own view in the U-Net's loss (sigverify.cleaning.task_loss): each step
    # then cleans whole signatures (not crops), and the embedding of the output is pulled towards the
    # clean twin's. 0 = pixel loss only. ``verifier``: its artifact (empty: the shipped model).
    embedding_weight: float = 0.0
    verifier: str = ""
    # Extra pixel-loss weight of clutter on paper (pixels the noise made darker than mid-light grey
    # where the clean twin is paper); ink pixels weigh 5, everything else 1. 0 = stages 1 to 3's loss.
    clutter_weight: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.darken_probability <= 1.0:
            raise ValueError(f"darken_probability must be between 0 and 1, not {self.darken_probability}")
        if self.init and self.method != "unet":
            raise ValueError("init (starting weights) is only supported for the unet cleaner")
        for name in ("embedding_weight", "clutter_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")
        if self.embedding_weight and self.method != "unet":
            raise ValueError("embedding_weight (the verifier's loss) is only supported for the unet cleaner")


def _resize_height(gray: np.ndarray, height: int) -> np.ndarray:
    scale = height / gray.shape[0]
    width = max(8, int(round(gray.shape[1] * scale)))
    return cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def training_pairs(config: CleanerConfig, log=print) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """(noisy, clean) pairs at the network's height from the verifier split's training writers."""
    from ..datasets import read_datasets
    from ..splits import split_writers
    from ..synth.noise import noisy_dataset

    records = read_datasets(config.data)
    split = split_writers(records, seed=config.split_seed)
    train_writers = set(split.train)
    chosen = [r for r in records if r.writer_key in train_writers and r.is_genuine]
    rng = np.random.default_rng(config.seed)
    if len(chosen) > config.max_images:
        chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), size=config.max_images, replace=False))]
    started = time.perf_counter()
    pairs = noisy_dataset(chosen, per_image=config.noisy_per_image, seed=config.seed, darken_probability=config.darken_probability)
    noisy = [_resize_height(p.noisy, config.height) for p, _ in pairs]
    clean = [_resize_height(p.clean, config.height) for p, _ in pairs]
    log(f"{len(pairs)} noisy/clean pairs from {len(chosen)} signatures of {len({r.writer_key for r in chosen})} training writers ({time.perf_counter() - started:.0f} s)")
    return noisy, clean, sorted(train_writers)


def _crop_batch(images_a, images_b, indices, width: int, rng: np.random.Generator, paired: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Random same-position crops (paired) or independent crops, padded with paper to ``width``."""
    batch_a, batch_b = [], []
    for i, j in indices:
        a, b = images_a[i], images_b[j]
        offset_a = int(rng.integers(0, max(1, a.shape[1] - width + 1)))
        offset_b = offset_a if paired else int(rng.integers(0, max(1, b.shape[1] - width + 1)))
        batch_a.append(_take(a, offset_a, width))
        batch_b.append(_take(b, offset_b, width))
    return _ink_tensor(batch_a), _ink_tensor(batch_b)


def _full_batch(images_a, images_b, indices) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole images, padded with paper on the right to a common width (a multiple of 16)."""
    width = int(np.ceil(max(images_a[i].shape[1] for i in indices) / 16) * 16)
    return _ink_tensor([_take(images_a[i], 0, width) for i in indices]), _ink_tensor([_take(images_b[i], 0, width) for i in indices])


def _pixel_loss(logits: torch.Tensor, target: torch.Tensor, noisy: torch.Tensor, clutter_weight: float = 0.0) -> torch.Tensor:
    # Ink pixels are few: weight them up so the network cannot win by erasing everything.
    weight = 1.0 + 4.0 * (target > 0.1).float()
    if clutter_weight:
        # Clutter left on the paper is what costs the verifier most: weight it up too.
        # (A scanner's grey paper tone stays below 0.25 ink and keeps weight 1.)
        weight = weight + clutter_weight * ((noisy > 0.25) & (target <= 0.1)).float()
    return (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).mean() + F.l1_loss(torch.sigmoid(logits), target)


def _ink_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(1.0 - np.stack(images).astype(np.float32) / 255.0).unsqueeze(1)


def _take(image: np.ndarray, offset: int, width: int) -> np.ndarray:
    out = np.full((image.shape[0], width), 255, dtype=np.uint8)
    piece = image[:, offset : offset + width]
    out[:, : piece.shape[1]] = piece
    return out


def _initial_weights(path: str, widths: list[int]) -> dict[str, torch.Tensor]:
    from . import load_cleaner_artifact

    artifact = load_cleaner_artifact(path)
    if artifact.method != "unet" or list(artifact.network.widths) != list(widths):
        raise ValueError(f"{path}: init needs a unet cleaner with widths {list(widths)}, not a {artifact.method} {getattr(artifact.network, 'widths', '')}")
    return {k: v.float() for k, v in artifact.network.state_dict().items()}


def train_cleaner(config: CleanerConfig, *, log=print, command: Optional[str] = None) -> Path:
    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    noisy, clean, train_writers = training_pairs(config, log)
    history = []
    task_loss = None
    if config.method == "unet":
        network = UNet(config.unet_widths)
        if config.init:
            network.load_state_dict(_initial_weights(config.init, config.unet_widths))
            log(f"starting from the weights of {config.init}")
        if config.embedding_weight:
            from ..api import load_model
            from .task_loss import EmbeddingLoss, placement

            verifier = load_model(config.verifier or None)
            task_loss = EmbeddingLoss(verifier, bf16=config.bf16)
            placements = [placement(c, verifier.preprocess) for c in clean]
            by_width = np.argsort([c.shape[1] for c in clean], kind="stable")
            log(f"task loss: verifier {verifier.version}, weight {config.embedding_weight}")
        optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=1e-4)
        for step in range(config.steps):
            lr = config.lr * 0.5 * (1 + math.cos(math.pi * step / config.steps))
            for group in optimizer.param_groups:
                group["lr"] = lr
            if task_loss is None:
                chosen = [int(i) for i in rng.integers(0, len(noisy), size=config.batch_size)]
                x, y = _crop_batch(noisy, clean, [(i, i) for i in chosen], config.crop_width, rng, paired=True)
            else:
                # Neighbours in width share a batch: padding every image to the widest would cost
                # about twice the compute.
                start = int(rng.integers(0, max(1, len(by_width) - config.batch_size + 1)))
                chosen = [int(i) for i in by_width[start : start + config.batch_size]]
                x, y = _full_batch(noisy, clean, chosen)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                logits = network(x)
            logits = logits.float()
            pixel = _pixel_loss(logits, y, x, config.clutter_weight)
            entry = {"step": step, "pixel": float(pixel.detach())}
            loss = pixel
            if task_loss is not None:
                embedding = task_loss(torch.sigmoid(logits), y, [placements[i] for i in chosen])
                loss = pixel + config.embedding_weight * embedding
                entry["embedding"] = float(embedding.detach())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step % 50 == 0 or step == config.steps - 1:
                entry["loss"] = float(loss.detach())
                history.append(entry)
                log("step {:5d}  ".format(step) + "  ".join(f"{k} {v:.4f}" for k, v in entry.items() if k != "step"))
            if config.max_minutes and time.perf_counter() - started > config.max_minutes * 60:
                log(f"stopping after {config.max_minutes} minutes at step {step}")
                break
        generator = network
    elif config.method == "cyclegan":
        to_clean = ResnetGenerator(config.generator_features, config.generator_blocks)
        to_noisy = ResnetGenerator(config.generator_features, config.generator_blocks)
        judge_clean = PatchDiscriminator(config.discriminator_features)
        judge_noisy = PatchDiscriminator(config.discriminator_features)
        g_opt = torch.optim.Adam(list(to_clean.parameters()) + list(to_noisy.parameters()), lr=config.lr, betas=(0.5, 0.999))
        d_opt = torch.optim.Adam(list(judge_clean.parameters()) + list(judge_noisy.parameters()), lr=config.lr, betas=(0.5, 0.999))
        mse = torch.nn.MSELoss()
        for step in range(config.steps):
            decay = min(1.0, 2.0 * (1 - step / config.steps))  # constant, then linear decay (CycleGAN)
            for group in g_opt.param_groups + d_opt.param_groups:
                group["lr"] = config.lr * decay
            # Unpaired: the clean images come from other signatures than the noisy ones.
            a_idx = rng.integers(0, len(noisy), size=config.batch_size)
            b_idx = rng.integers(0, len(clean), size=config.batch_size)
            real_noisy, real_clean = _crop_batch(noisy, clean, list(zip(a_idx.tolist(), b_idx.tolist())), config.crop_width, rng, paired=False)
            fake_clean = torch.sigmoid(to_clean(real_noisy))
            fake_noisy = torch.sigmoid(to_noisy(real_clean))
            back_noisy = torch.sigmoid(to_noisy(fake_clean))
            back_clean = torch.sigmoid(to_clean(fake_noisy))
            same_clean = torch.sigmoid(to_clean(real_clean))
            same_noisy = torch.sigmoid(to_noisy(real_noisy))
            pred_clean = judge_clean(fake_clean)
            pred_noisy = judge_noisy(fake_noisy)
            g_loss = (
                mse(pred_clean, torch.ones_like(pred_clean))
                + mse(pred_noisy, torch.ones_like(pred_noisy))
                + config.cycle_weight * (F.l1_loss(back_noisy, real_noisy) + F.l1_loss(back_clean, real_clean))
                + config.identity_weight * (F.l1_loss(same_clean, real_clean) + F.l1_loss(same_noisy, real_noisy))
            )
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            g_opt.step()
            d_loss = 0.0
            for judge, real, fake in ((judge_clean, real_clean, fake_clean.detach()), (judge_noisy, real_noisy, fake_noisy.detach())):
                p_real, p_fake = judge(real), judge(fake)
                d_loss = d_loss + 0.5 * (mse(p_real, torch.ones_like(p_real)) + mse(p_fake, torch.zeros_like(p_fake)))
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
            if step % 50 == 0 or step == config.steps - 1:
                history.append({"step": step, "g_loss": float(g_loss.detach()), "d_loss": float(d_loss.detach())})
                log(f"step {step:5d}  G {float(g_loss.detach()):.4f}  D {float(d_loss.detach()):.4f}")
            if config.max_minutes and time.perf_counter() - started > config.max_minutes * 60:
                log(f"stopping after {config.max_minutes} minutes at step {step}")
                break
        generator = to_clean
    else:
        raise ValueError(f"method must be unet or cyclegan, not {config.method!r}")
    generator.eval()
    metadata = {
        "name": f"cleaner-{config.method}",
        "height": config.height,
        "training": {
            "config": config.to_dict(),
            "train_writers": train_writers,
            "note": "synthetic noise (sigverify.synth.noise) over genuine signatures of the verifier split's training writers",
            "task_loss": {"verifier": task_loss.version, "weight": config.embedding_weight} if task_loss is not None else None,
            "history": history,
            "command": command,
            "wall_seconds": round(time.perf_counter() - started, 1),
            "machine": machine_description(),
        },
    }
    path = save_cleaner(out / f"cleaner-{config.method}.safetensors", config.method, generator, metadata)
    with open(out / "log.json", "w") as handle:
        json.dump(history, handle, indent=1)
    log(f"cleaner: {path} ({(time.perf_counter() - started) / 60:.1f} min)")
    return path
