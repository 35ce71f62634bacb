#!/usr/bin/env python
"""Does an interrupted-and-resumed stage-1 run re-create the recorded stage-1 weights? (stop 26, issue 3)

Usage: python scripts/check_stage1_resume.py [K ...] [--upto 7] [--runs runs/s26-resume]

The shipped verifier's stage 2 was trained from the stage-1 network of commit 6d83430, whose metadata
records `sigverify train --config configs/default.toml --resume`: that run was interrupted once.
Until stop 26, `--resume` restored every random state but the writer sampler drew a fresh writer order
on the first batch after it, so a resumed run left the uninterrupted trajectory (checkpoints now keep
the pass in progress and resume exactly). To replay the old behaviour, this script strips the pass
from the checkpoint, as a checkpoint written before stop 26 lacked it. For each K it trains
`configs/default.toml` for K epochs, resumes it up to epoch `--upto` (the recorded selected epoch, 7),
and compares the selected weights with the recorded ones (largest absolute difference over all
tensors, both stored in fp16) and their dev EER with the recorded 23.61 %. Needs the git history.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from sigverify.models.artifact import load_artifact

RECORDED = "6d83430:src/sigverify/weights/default.safetensors"


def train(out: Path, *extra: str) -> None:
    command = [str(Path(sys.executable).parent / "sigverify"), "train", "--config", "configs/default.toml", "--out", str(out), "--no-progress", *extra]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ks", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--upto", type=int, default=7)
    parser.add_argument("--runs", default="runs/s26-resume")
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile(suffix=".safetensors") as handle:
        handle.write(subprocess.run(["git", "show", RECORDED], check=True, capture_output=True).stdout)
        handle.flush()
        recorded = load_artifact(handle.name)
    reference = recorded.network.state_dict()
    print(f"recorded stage 1 {recorded.version}: selected epoch {recorded.metadata.get('selected_epoch')}, "
          f"dev EER {100 * recorded.metadata['dev_metrics']['eer_skilled']:.2f} %", flush=True)
    for k in args.ks:
        out = Path(f"{args.runs}-k{k}")
        if out.exists():
            raise SystemExit(f"{out} exists; remove it first")
        train(out, "--epochs", str(k))
        checkpoint = out / "checkpoint.pt"
        state = torch.load(checkpoint, weights_only=True)
        state["sampler_rng"] = json.dumps(json.loads(state.pop("sampler"))["rng"])  # a pre-stop-26 checkpoint
        torch.save(state, checkpoint)
        train(out, "--epochs", str(args.upto), "--resume")
        selected = load_artifact(out / "best.safetensors")
        state = selected.network.state_dict()
        largest = max(float((state[name].float() - reference[name].float()).abs().max()) for name in reference)
        print(f"interrupted after epoch {k}: selected epoch {selected.metadata['epoch']}, dev EER "
              f"{100 * selected.metadata['dev_metrics']['eer_skilled']:.2f} %, largest weight difference from the recorded {largest:.3g}", flush=True)


if __name__ == "__main__":
    main()
