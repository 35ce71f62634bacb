#!/usr/bin/env bash
# Rebuild the shipped verifier from its committed config (about 15 minutes on the 2-core CPU).
# The split (seed 0), the data and the command are recorded in the artifact and in
# src/sigverify/weights/default.json. OUT=runs/x EXPORT=0 trains elsewhere without replacing it.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/default}
EXPORT=${EXPORT:-1}
rm -rf "$OUT"
.venv/bin/sigverify train --config configs/default.toml --out "$OUT" --no-progress
if [ "$EXPORT" = 1 ]; then
  .venv/bin/python scripts/export_model.py "$OUT/model.safetensors" src/sigverify/weights/default.safetensors
  # The document path's calibration is valid for one verifier and one cleaner file: refit it.
  for cleaner in unet cyclegan classical; do
    .venv/bin/python scripts/calibrate_document.py --cleaner "$cleaner"
  done
fi
