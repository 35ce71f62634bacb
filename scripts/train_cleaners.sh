#!/usr/bin/env bash
# Rebuild the shipped U-Net and CycleGAN cleaners from their committed configs (about 27 + 34 + 36 + 14
# minutes on the 2-core CPU). The U-Net is trained in three stages: 96 px canvas height from scratch,
# then fine-tuned twice at 192 px (configs/cleaner-unet-96.toml, -192.toml, then cleaner-unet.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/sigverify train-cleaner --config configs/cleaner-unet-96.toml
.venv/bin/sigverify train-cleaner --config configs/cleaner-unet-192.toml
for method in unet cyclegan; do
  .venv/bin/sigverify train-cleaner --config "configs/cleaner-$method.toml"
  .venv/bin/python scripts/export_model.py "runs/cleaner-$method/cleaner-$method.safetensors" "src/sigverify/weights/cleaner-$method.safetensors"
done
# The document path's calibration is valid for one verifier and one cleaner file: refit it.
for cleaner in unet cyclegan classical; do
  .venv/bin/python scripts/calibrate_document.py --cleaner "$cleaner"
done
