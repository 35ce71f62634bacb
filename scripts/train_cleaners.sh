#!/usr/bin/env bash
# Rebuild the shipped U-Net and CycleGAN cleaners from their committed configs.
set -euo pipefail
cd "$(dirname "$0")/.."
for method in unet cyclegan; do
  .venv/bin/sigverify train-cleaner --config "configs/cleaner-$method.toml"
  .venv/bin/python scripts/export_model.py "runs/cleaner-$method/cleaner-$method.safetensors" "src/sigverify/weights/cleaner-$method.safetensors"
done
