#!/usr/bin/env python
"""Choose a trained model's `sigverify.represent` block weights on its dev writers and record them in the file.

Usage: python scripts/set_represent_layout.py MODEL [DATA ...]   (DATA: default, the data its metadata records)

Training does this itself since stop 32 (`calibrate_network` -> metadata `represent`); this script does
the same for a model trained before, without touching its weights, calibration or version: the dev
writers' internal vectors (the model's own, as `sigverify.represent` decodes them) are laid out with
every candidate of `models.layout.choose_weights` (constants from the stored cohort), the lowest
pooled plain-distance EER wins, and the metadata key `represent` is rewritten in the safetensors
header (and in the `.json` record beside it, when there is one). Vectors stored by the service are
the model's internal vectors, so they stay valid.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

import sigverify
from sigverify.datasets import read_datasets
from sigverify.models.artifact import read_artifact, write_artifact
from sigverify.models.layout import choose_weights


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__.split("\n\n")[1])
    path = Path(sys.argv[1])
    torch.set_num_threads(2)
    artifact = sigverify.load_model(str(path))
    data = sys.argv[2:] or artifact.metadata["training"]["data"]
    dev = set(artifact.writers("dev"))
    records = [r for r in read_datasets(list(data)) if r.writer_key in dev]
    if not records:
        raise SystemExit(f"{path}: none of its dev writers are in {data}")
    paths = [r.path for r in records]
    vectors = np.vstack([artifact.from_represented(sigverify.represent(paths[i : i + 64], model=artifact)) for i in range(0, len(paths), 64)])
    cohort = artifact.cohort_for(False)
    chosen = choose_weights(
        cohort.vectors, vectors, np.array([r.writer_key for r in records]), np.array([r.is_genuine for r in records]),
        artifact.network.embedding_dim, bool(artifact.size_weight), artifact.network.descriptor_dim,
    )
    print(f"{len(records)} images of {len(dev)} dev writers; plain-distance EER by local weight x size scale:")
    for name, value in chosen["dev_table"].items():
        print(f"  {name:12s} {100 * value:6.2f} %")
    print(f"chosen: local weight {chosen['local_weight']}, size scale {chosen['size_scale']} ({100 * chosen['dev_eer']:.2f} %)")
    metadata, tensors = read_artifact(path)
    # the tensors as stored: fp16 files stay fp16, fp32 files are not halved
    write_artifact(path, tensors, {**metadata, "represent": chosen}, half=metadata.get("weights_dtype") == "float16")
    record = path.with_suffix(".json")
    if record.is_file():
        values = json.loads(record.read_text())
        values["represent"] = chosen
        record.write_text(json.dumps(values, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}" + (f" and {record}" if record.is_file() else ""))


if __name__ == "__main__":
    main()
