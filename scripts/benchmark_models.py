#!/usr/bin/env python
"""Training and embedding throughput of every backbone on this CPU, printed as JSON.

Usage: python scripts/benchmark_models.py [--out benchmarks/models.json] [--seconds 6] [--local-head-only]

For each backbone: training images/s (forward + backward + AdamW step, batch 64, fp32 and bf16
autocast) and embedding images/s at batch 1 and batch 64 (inference mode, fp32 and bf16); then the
shipped verifier's local head (descriptor and learned-distance throughput). Inputs are random
150 x 220 images (the speed does not depend on their content).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from sigverify.machine import machine_description
from sigverify.models.siamese import SiameseModel

BACKBONES = [
    ("signet", {}),
    ("signet-bn", {}),
    ("signet-slim", {}),
    ("resnet-attn", {"depth": 18, "base_width": 32}),
    ("resnet-attn", {"depth": 50, "base_width": 16}),
]


def _rate(step, images_per_step: int, seconds: float) -> float:
    step()  # warm-up (allocations, oneDNN kernel selection)
    step()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        count += 1
    return round(count * images_per_step / (time.perf_counter() - started), 1)


def benchmark(name: str, args: dict, seconds: float) -> dict:
    torch.manual_seed(0)
    model = SiameseModel(name, {"embedding_dim": 256, **args})
    result = {"model": name, "args": args, "parameters": sum(p.numel() for p in model.parameters())}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = torch.rand(64, 1, 150, 220)
    for dtype in ("fp32", "bf16"):
        def train_step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                out = model(batch)
            loss = out.float().pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        model.train()
        result[f"train_{dtype}_images_per_s"] = _rate(train_step, 64, seconds)
    model.eval()
    for size in (1, 64):
        x = torch.rand(size, 1, 150, 220)
        for dtype in ("fp32", "bf16"):
            def embed_step():
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                    model.embed(x)

            result[f"embed_b{size}_{dtype}_images_per_s"] = _rate(embed_step, size, seconds / 2)
    return result


def benchmark_local_head(seconds: float) -> dict:
    """The shipped verifier's learned local comparison: images/s for embedding + local descriptor
    (bf16, batch 1 and 64) and pairs/s for the learned distance (the head, fp32) on 12 pairs (one
    query against 12 references) and on 512 pairs (an evaluation batch)."""
    import numpy as np

    from sigverify import load_model
    from sigverify.models.siamese import embed_images

    artifact = load_model()
    network = artifact.network
    if network.local is None:
        return {"model": artifact.name, "local_head": False}
    result = {"model": artifact.name, "local_head_parameters": sum(p.numel() for p in network.local.parameters())}
    for size in (1, 64):
        images = np.random.default_rng(0).integers(0, 256, size=(size, 150, 220), dtype=np.uint8)
        result[f"embed_with_descriptor_b{size}_bf16_images_per_s"] = _rate(lambda: embed_images(network, images, bf16=True, with_local=True), size, seconds / 2)
    vectors = np.random.default_rng(1).normal(size=(513, artifact.vector_dim)).astype(np.float32)
    comparator = artifact.comparator
    for pairs in (12, 512):
        result[f"learned_distance_{pairs}_pairs_per_s"] = _rate(lambda: comparator.paired(vectors[:pairs], vectors[1 : pairs + 1]), pairs, seconds / 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--seconds", type=float, default=6.0, help="measuring time per figure")
    parser.add_argument("--local-head-only", action="store_true", help="only the shipped verifier's local head (no backbones)")
    args = parser.parse_args()
    report = {
        "machine": machine_description(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "batch_train": 64,
        "input": [150, 220],
        "results": [],
    }
    for name, backbone_args in [] if args.local_head_only else BACKBONES:
        report["results"].append(benchmark(name, backbone_args, args.seconds))
        print(json.dumps(report["results"][-1]), file=sys.stderr)
    report["local_head"] = benchmark_local_head(args.seconds)
    print(json.dumps(report["local_head"]), file=sys.stderr)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
