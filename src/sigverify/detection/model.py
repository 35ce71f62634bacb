"""The signature detector network (plain torch) and its target encoding / decoding.

Design: anchor-free, CenterNet-style. A light convolutional backbone with a small top-down path
gives stride-8 features; three heads predict a centre heat-map (one class: signature), the box size
(log width and height, in stride units) and the sub-cell offset of the centre. Decoding keeps the
local maxima of the heat-map above a score, so any number of signatures (none included) is found.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

STRIDE = 8


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Block(nn.Module):
    """Residual pair of 3x3 convolutions."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x), inplace=True)


class SignatureDetector(nn.Module):
    """Page (``N x 1 x H x W``, ink = 1, H and W multiples of 32) -> heat-map, size, offset at stride 8.

    Parameters
    ----------
    widths
        Channels at strides 4, 8, 16, 32.
    """

    def __init__(self, widths: Sequence[int] = (24, 48, 96, 128), head: int = 64) -> None:
        super().__init__()
        w4, w8, w16, w32 = widths
        self.widths = list(widths)
        self.head_width = head
        # Space-to-depth stem: 4x4 pixel blocks become 16 channels, so no convolution runs at full
        # page resolution (the costliest place on a CPU).
        self.stem = nn.Sequential(nn.PixelUnshuffle(4), _conv(16, w4))  # stride 4
        self.down8 = nn.Sequential(_conv(w4, w8, 2), _Block(w8))
        self.down16 = nn.Sequential(_conv(w8, w16, 2), _Block(w16))
        self.down32 = nn.Sequential(_conv(w16, w32, 2), _Block(w32), _Block(w32))
        # Top-down path to stride 8, kept narrow: at stride 8 every channel costs the most.
        self.lateral32 = nn.Conv2d(w32, head, 1)
        self.lateral16 = nn.Conv2d(w16, head, 1)
        self.lateral8 = nn.Conv2d(w8, head, 1)
        self.trunk = nn.Sequential(_conv(head, head), _conv(head, head))
        self.out = nn.Conv2d(head, 5, 1)  # heat-map logit, log w, log h, offset x, offset y
        # Start the heat-map near 0.01 (CenterNet): most cells are background.
        nn.init.constant_(self.out.bias, 0.0)
        with torch.no_grad():
            self.out.bias[0] = -4.6

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c4 = self.stem(x)
        c8 = self.down8(c4)
        c16 = self.down16(c8)
        c32 = self.down32(c16)
        p16 = self.lateral16(c16) + F.interpolate(self.lateral32(c32), size=c16.shape[-2:], mode="nearest")
        p8 = self.lateral8(c8) + F.interpolate(p16, size=c8.shape[-2:], mode="nearest")
        out = self.out(self.trunk(p8))
        return out[:, :1], out[:, 1:3], out[:, 3:5]


def gaussian_radius(width: float, height: float) -> tuple[float, float]:
    """Per-axis Gaussian sigma (in cells) of a box's centre peak: a sixth of its size, at least 0.7."""
    return max(0.7, width / 6.0), max(0.7, height / 6.0)


def encode_targets(boxes: np.ndarray, out_h: int, out_w: int) -> dict[str, np.ndarray]:
    """Training targets for one page from its boxes in *input* pixels.

    Returns ``heatmap`` (out_h x out_w), ``size`` and ``offset`` (2 x out_h x out_w) and ``mask``
    (out_h x out_w, 1 at box centres).
    """
    heatmap = np.zeros((out_h, out_w), dtype=np.float32)
    size = np.zeros((2, out_h, out_w), dtype=np.float32)
    offset = np.zeros((2, out_h, out_w), dtype=np.float32)
    mask = np.zeros((out_h, out_w), dtype=np.float32)
    ys, xs = np.mgrid[0:out_h, 0:out_w]
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=float).reshape(-1, 4):
        w, h = (x1 - x0) / STRIDE, (y1 - y0) / STRIDE
        if w <= 0 or h <= 0:
            continue
        cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
        ix, iy = int(min(out_w - 1, max(0, math.floor(cx)))), int(min(out_h - 1, max(0, math.floor(cy))))
        sx, sy = gaussian_radius(w, h)
        peak = np.exp(-((xs - ix) ** 2) / (2 * sx * sx) - ((ys - iy) ** 2) / (2 * sy * sy))
        np.maximum(heatmap, peak, out=heatmap)
        size[:, iy, ix] = (math.log(w), math.log(h))
        offset[:, iy, ix] = (cx - ix, cy - iy)
        mask[iy, ix] = 1.0
    return {"heatmap": heatmap, "size": size, "offset": offset, "mask": mask}


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of centres."""
    prob = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1).float()
    negative = 1 - positive
    pos_loss = torch.log(prob) * (1 - prob) ** alpha * positive
    neg_loss = torch.log(1 - prob) * prob**alpha * (1 - target) ** beta * negative
    n = positive.sum().clamp_min(1.0)
    return -(pos_loss.sum() + neg_loss.sum()) / n


def detection_loss(outputs, targets: dict[str, torch.Tensor], size_weight: float = 0.1, offset_weight: float = 1.0) -> torch.Tensor:
    heat, size, offset = outputs
    mask = targets["mask"].unsqueeze(1)
    n = mask.sum().clamp_min(1.0)
    size_loss = (F.l1_loss(size, targets["size"], reduction="none") * mask).sum() / n
    offset_loss = (F.l1_loss(offset, targets["offset"], reduction="none") * mask).sum() / n
    return focal_loss(heat[:, 0], targets["heatmap"]) + size_weight * size_loss + offset_weight * offset_loss


@torch.inference_mode()
def decode(outputs, *, min_score: float = 0.1, max_boxes: int = 20) -> list[list[tuple[float, float, float, float, float]]]:
    """Boxes (input pixels) and scores per image: local maxima of the heat-map above ``min_score``."""
    heat, size, offset = outputs
    prob = torch.sigmoid(heat.float())
    peaks = prob * (F.max_pool2d(prob, 3, 1, 1) == prob)
    results = []
    for b in range(prob.shape[0]):
        flat = peaks[b, 0].flatten()
        k = min(max_boxes, flat.numel())
        scores, indices = flat.topk(k)
        found = []
        width = prob.shape[-1]
        for score, index in zip(scores.tolist(), indices.tolist()):
            if score < min_score:
                break
            iy, ix = divmod(index, width)
            w = math.exp(float(size[b, 0, iy, ix])) * STRIDE
            h = math.exp(float(size[b, 1, iy, ix])) * STRIDE
            cx = (ix + float(offset[b, 0, iy, ix])) * STRIDE
            cy = (iy + float(offset[b, 1, iy, ix])) * STRIDE
            found.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score))
        results.append(found)
    return results
