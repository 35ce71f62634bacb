#!/usr/bin/env python
"""Copy a trained artifact into the package and write its record beside it.

Usage: python scripts/export_model.py RUN/model.safetensors src/sigverify/weights/default.safetensors

The record (same name, .json) holds the artifact's metadata without the bulky calibration tables:
data, split, seed, command, wall time, machine and dev figures; everything needed to rebuild it.
"""

import json
import shutil
import sys
from pathlib import Path

from sigverify.models.artifact import read_metadata


def main() -> None:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    metadata = read_metadata(source, required=("format",))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    record = {k: v for k, v in metadata.items() if k not in ("calibration",)}
    if "calibration" in metadata:
        record["calibrated_methods"] = sorted(metadata["calibration"])
    training = record.get("training", {})
    if "history" in training:
        training["history"] = training["history"][-3:]
    target.with_suffix(".json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"{target} ({target.stat().st_size / 1e6:.2f} MB) and {target.with_suffix('.json')}")


if __name__ == "__main__":
    main()
