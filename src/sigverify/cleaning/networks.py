"""Cleaner networks in plain torch.

Images are ``N x 1 x H x W`` in 0..1 with ink = 1 (paper 0), H and W multiples of 16.

``UNet``             the supervised noisy -> clean network (skip connections keep stroke detail);
``ResnetGenerator``  the CycleGAN generator (c7s1 - two stride-2 downsamplings - residual blocks -
                     two upsamplings - c7s1), one per direction;
``PatchDiscriminator``  the 70x70-style PatchGAN discriminator (a real/fake score per patch).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, widths: Sequence[int] = (16, 32, 64, 128)) -> None:
        super().__init__()
        self.widths = list(widths)
        self.down = nn.ModuleList()
        cin = 1
        for width in widths:
            self.down.append(_block(cin, width))
            cin = width
        self.up = nn.ModuleList()
        self.reduce = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.reduce.append(nn.Conv2d(cin, width, 1))
            self.up.append(_block(2 * width, width))
            cin = width
        self.out = nn.Conv2d(cin, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the clean ink (apply sigmoid for 0..1)."""
        skips = []
        for index, block in enumerate(self.down):
            x = block(x)
            if index < len(self.down) - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for reduce, block in zip(self.reduce, self.up):
            x = F.interpolate(reduce(x), scale_factor=2, mode="nearest")
            x = block(torch.cat([x, skips.pop()], dim=1))
        return self.out(x)


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN generator: c7s1-f, d2f, d4f, R4f x blocks, u2f, uf, c7s1-1; output logits."""

    def __init__(self, features: int = 16, blocks: int = 4) -> None:
        super().__init__()
        self.features, self.blocks = features, blocks
        f = features
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(1, f, 7), nn.InstanceNorm2d(f), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(f, 2 * f, 3, 2, 1), nn.InstanceNorm2d(2 * f), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(2 * f, 4 * f, 3, 2, 1), nn.InstanceNorm2d(4 * f), nn.ReLU(inplace=True)]
        layers += [_Residual(4 * f) for _ in range(blocks)]
        layers += [nn.ConvTranspose2d(4 * f, 2 * f, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(2 * f), nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(2 * f, f, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(f), nn.ReLU(inplace=True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(f, 1, 7)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """C f - C 2f - C 4f (stride 2, leaky ReLU, instance norm) - C 8f (stride 1) - 1 score map."""

    def __init__(self, features: int = 32) -> None:
        super().__init__()
        f = features
        self.model = nn.Sequential(
            nn.Conv2d(1, f, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(f, 2 * f, 4, 2, 1),
            nn.InstanceNorm2d(2 * f),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * f, 4 * f, 4, 2, 1),
            nn.InstanceNorm2d(4 * f),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * f, 8 * f, 4, 1, 1),
            nn.InstanceNorm2d(8 * f),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(8 * f, 1, 4, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
