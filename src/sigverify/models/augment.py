"""Batched training augmentation for preprocessed signatures (ink bright on 0), in torch.

Geometry: small rotations, scale, horizontal stretch, shear and shifts (random crops of the canvas);
strokes: width jitter (dilation / erosion); ink: intensity jitter and occasional binarisation, so
grey-level scans and bilevel scans look alike to the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class AugmentConfig:
    rotation: float = 8.0  # degrees, uniform in [-rotation, rotation]
    scale: tuple[float, float] = (0.85, 1.1)
    stretch: float = 0.1  # horizontal stretch factor in [1 - stretch, 1 + stretch]
    shear: float = 0.1
    shift: float = 0.06  # fraction of the canvas
    p_dilate: float = 0.25
    p_erode: float = 0.15
    intensity: tuple[float, float] = (0.6, 1.3)
    p_binarize: float = 0.2


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def augment_batch(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Augment ``N x 1 x H x W`` images in 0..1; returns a new tensor of the same shape.

    ``generator`` is a CPU generator: every random number is drawn on the CPU, whatever device ``x``
    is on, so a run draws the same augmentations on a GPU as on the CPU."""
    n, _, height, width = x.shape
    angle = _uniform(n, -config.rotation, config.rotation, generator) * math.pi / 180
    scale = torch.exp(_uniform(n, math.log(config.scale[0]), math.log(config.scale[1]), generator))
    stretch = _uniform(n, 1 - config.stretch, 1 + config.stretch, generator)
    shear = _uniform(n, -config.shear, config.shear, generator)
    shift_x = _uniform(n, -config.shift, config.shift, generator) * 2
    shift_y = _uniform(n, -config.shift, config.shift, generator) * 2

    # Forward transform in pixel units (about the centre): rotation @ shear @ scale.
    cos, sin = torch.cos(angle), torch.sin(angle)
    forward = torch.zeros(n, 2, 2)
    sx, sy = scale * stretch, scale
    forward[:, 0, 0] = cos * sx
    forward[:, 0, 1] = cos * shear * sy - sin * sy
    forward[:, 1, 0] = sin * sx
    forward[:, 1, 1] = sin * shear * sy + cos * sy
    # affine_grid maps output -> input in normalised coordinates: theta = D^-1 forward^-1 D.
    d = torch.tensor([width / 2, height / 2])
    inverse = torch.linalg.inv(forward)
    theta = torch.zeros(n, 2, 3)
    theta[:, :, :2] = inverse * d.view(1, 1, 2) / d.view(1, 2, 1)
    theta[:, 0, 2] = -shift_x
    theta[:, 1, 2] = -shift_y
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    choice = torch.rand(n, generator=generator).view(n, 1, 1, 1).to(x.device)
    dilated = F.max_pool2d(out, 3, 1, 1)
    eroded = -F.max_pool2d(-out, 3, 1, 1)
    out = torch.where(choice < config.p_dilate, dilated, out)
    out = torch.where((choice >= config.p_dilate) & (choice < config.p_dilate + config.p_erode), eroded, out)

    gain = _uniform(n, config.intensity[0], config.intensity[1], generator).view(n, 1, 1, 1).to(x.device)
    out = (out * gain).clamp_(0, 1)
    binarize = (torch.rand(n, generator=generator) < config.p_binarize).view(n, 1, 1, 1).to(x.device)
    return torch.where(binarize, (out > 0.15).float(), out)
