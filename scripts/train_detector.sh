#!/usr/bin/env bash
# Rebuild the shipped detector from configs/detector.toml (Tobacco-800 training pages + synthetic pages).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/sigverify train-detector --config configs/detector.toml
.venv/bin/python scripts/export_model.py runs/detector/detector.safetensors src/sigverify/weights/detector.safetensors
