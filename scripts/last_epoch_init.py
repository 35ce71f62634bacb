#!/usr/bin/env python
"""Write a training run's LAST-epoch weights (from its checkpoint.pt) as a model file, for `train --init`.

Usage: python scripts/last_epoch_init.py RUN_DIR OUT.safetensors

`sigverify train` keeps the epoch with the best dev EER (`best.safetensors`) and the latest state
(`checkpoint.pt`). Stop 26 asked whether stage 2 of the default verifier does better on a stage-1
network trained to its last epoch than on the early epoch its dev EER selects; this script makes that
init without retraining stage 1. The weights are stored as `save_model` stores every verifier (fp16).
"""

import sys
from pathlib import Path

import torch

from sigverify.models.artifact import load_artifact, save_model


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.splitlines()[2])
    run, out = Path(sys.argv[1]), Path(sys.argv[2])
    selected = load_artifact(run / "best.safetensors")
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    selected.network.load_state_dict(state["model"])
    metadata = {key: selected.metadata[key] for key in ("name", "preprocess") if key in selected.metadata}
    save_model(out, selected.network, {**metadata, "epoch": int(state["epoch"]), "dev_metrics": {}})
    print(f"{out}: epoch {int(state['epoch'])} weights of {run} (dev-selected epoch {selected.metadata.get('epoch')})")


if __name__ == "__main__":
    main()
