"""What a training run or benchmark ran on, recorded beside its results.

The CPU model and its bf16 instruction sets are part of it: bf16 autocast runs different kernels on
a CPU with AMX, with AVX-512 BF16 only, or with neither, so the same seed and code can follow another
training trajectory on another CPU (stop 24: the very code that trained the shipped stage-1 network
does not re-create it on an AMD EPYC without AMX; the CPU it ran on was not recorded).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def _cpu_info() -> tuple[str, set[str]]:
    """(model name, flags) from ``/proc/cpuinfo``; (``platform.processor()``, empty) elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "cpu", set()
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model or platform.processor() or "cpu", flags


def machine_description() -> str:
    """e.g. ``x86_64 AMD EPYC (avx512_bf16), 2 cores, torch 2.13.0+cpu, 2 threads``."""
    model, flags = _cpu_info()
    bf16 = [flag for flag in BF16_FLAGS if flag in flags]
    isa = f" ({', '.join(bf16)})" if bf16 else (" (no bf16 instructions)" if flags else "")
    return f"{platform.machine()} {model}{isa}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
