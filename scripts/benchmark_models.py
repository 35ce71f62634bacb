#!/usr/bin/env python
"""Training and embedding throughput of every backbone on this CPU, printed as JSON.

Usage: python scripts/benchmark_models.py [--out benchmarks/models.json] [--seconds 6]

For each backbone: training images/s (forward + backward + AdamW step, batch 64, fp32 and bf16
autocast) and embedding images/s at batch 1 and batch 64 (inference mode, fp32 and bf16). Inputs
are random 150 x 220 images (the speed does not depend on their content).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--seconds", type=float, default=6.0, help="measuring time per figure")
    args = parser.parse_args()
    report = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "batch_train": 64,
        "input": [150, 220],
        "results": [],
    }
    for name, backbone_args in BACKBONES:
        report["results"].append(benchmark(name, backbone_args, args.seconds))
        print(json.dumps(report["results"][-1]), file=sys.stderr)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
