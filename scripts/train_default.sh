#!/usr/bin/env bash
# Rebuild the shipped verifier from its committed config (about 20 minutes on the 2-core CPU).
# The split (seed 0), the data and the command are recorded in the artifact and in
# src/sigverify/weights/default.json.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/default}
rm -rf "$OUT"
.venv/bin/sigverify train --config configs/default.toml --out "$OUT" --no-progress
.venv/bin/python scripts/export_model.py "$OUT/model.safetensors" src/sigverify/weights/default.safetensors
