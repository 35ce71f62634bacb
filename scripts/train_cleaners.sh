#!/usr/bin/env bash
# Rebuild the shipped U-Net and CycleGAN cleaners from their committed configs (about 27 + 34 + 36 + 21
# + 14 minutes on the 2-core CPU). The U-Net is trained in four stages: 96 px canvas height from
# scratch, fine-tuned twice at 192 px (configs/cleaner-unet-96.toml, -192.toml, cleaner-unet.toml),
# then fine-tuned on whole signatures with the shipped verifier's embedding distance added to its loss
# (configs/cleaner-unet-verifier.toml): rebuild the verifier first (scripts/train_default.sh) when it
# changes, since stage 4 is fitted to it.
set -euo pipefail
cd "$(dirname "$0")/.."
for stage in cleaner-unet-96 cleaner-unet-192 cleaner-unet cleaner-unet-verifier cleaner-cyclegan; do
  .venv/bin/sigverify train-cleaner --config "configs/$stage.toml"
done
.venv/bin/python scripts/export_model.py runs/cleaner-unet-verifier/cleaner-unet.safetensors src/sigverify/weights/cleaner-unet.safetensors
.venv/bin/python scripts/export_model.py runs/cleaner-cyclegan/cleaner-cyclegan.safetensors src/sigverify/weights/cleaner-cyclegan.safetensors
# The document path's calibration is valid for one verifier and one cleaner file: refit it.
for cleaner in unet cyclegan classical; do
  .venv/bin/python scripts/calibrate_document.py --cleaner "$cleaner"
done
