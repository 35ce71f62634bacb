"""Backbones in plain torch: each maps a ``N x 1 x H x W`` batch of preprocessed signatures to
``N x D`` embeddings. A Siamese network is one backbone applied to both inputs (shared weights).

Registry: :data:`BACKBONES` maps a name to a constructor taking keyword arguments only; a model
artifact stores the name and the arguments, so :func:`build_backbone` rebuilds it exactly.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F


def _conv_out(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def signet_map_size(input_size: Sequence[int]) -> tuple[int, int]:
    """(h, w) of SigNet's last feature map for an ``H x W`` canvas; a clear error when nothing is left.

    Below 67 px a side the last pooling has no output, so the first FC layer would have no inputs.
    """
    height, width = input_size
    for kernel, stride in ((11, 4), (3, 2), (3, 2), (3, 2)):
        height, width = _conv_out(height, kernel, stride), _conv_out(width, kernel, stride)
    if height < 1 or width < 1:
        raise ValueError(f"SigNet needs a canvas of at least 67 x 67 px; got {input_size[0]} x {input_size[1]}")
    return height, width


class SigNet(nn.Module):
    """SigNet as drawn in the original design (AlexNet-like, for 150 x 220 inputs).

    conv 96 11x11/4 - ReLU - LRN - maxpool 3/2 - conv 256 5x5 - ReLU - LRN - maxpool 3/2 -
    conv 384 3x3 - conv 384 3x3 - conv 256 3x3 - maxpool 3/2 - dropout - FC - FC -> embedding.

    Parameters
    ----------
    embedding_dim
        Size D of the output embedding.
    width
        Channel multiplier: 1.0 is the original (96/256/384/384/256), 0.5 the slim serving variant.
    norm
        ``"lrn"`` (original) or ``"bn"`` (batch norm after every convolution and FC layer).
    fc_dim
        Width of the hidden fully connected layer.
    dropout
        Dropout before each fully connected layer (the original uses 0.3 after conv blocks, 0.5 in FC).
    input_size
        (H, W) of the inputs, to size the first FC layer.
    """

    def __init__(
        self,
        embedding_dim: int = 256,
        width: float = 1.0,
        norm: str = "lrn",
        fc_dim: int = 1024,
        dropout: float = 0.3,
        input_size: Sequence[int] = (150, 220),
    ) -> None:
        super().__init__()
        if norm not in ("lrn", "bn"):
            raise ValueError("norm must be 'lrn' or 'bn'")
        c1, c2, c3, c4, c5 = (max(8, int(round(c * width))) for c in (96, 256, 384, 384, 256))

        def conv(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, padding, bias=norm != "bn")]
            if norm == "bn":
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
            return layers

        def lrn() -> list[nn.Module]:
            # AlexNet's constants (size 5, alpha 1e-4, beta 0.75, k 2); batch norm replaces it.
            return [nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)] if norm == "lrn" else []

        self.features = nn.Sequential(
            *conv(1, c1, 11, stride=4),
            *lrn(),
            nn.MaxPool2d(3, 2),
            *conv(c1, c2, 5, padding=2),
            *lrn(),
            nn.MaxPool2d(3, 2),
            nn.Dropout2d(dropout / 2),
            *conv(c2, c3, 3, padding=1),
            *conv(c3, c4, 3, padding=1),
            *conv(c4, c5, 3, padding=1),
            nn.MaxPool2d(3, 2),
        )
        height, width_px = signet_map_size(input_size)
        flat = c5 * height * width_px
        fc: list[nn.Module] = [nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, fc_dim, bias=norm != "bn")]
        if norm == "bn":
            fc.append(nn.BatchNorm1d(fc_dim))
        fc += [nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(fc_dim, embedding_dim)]
        self.head = nn.Sequential(*fc)
        self.embedding_dim = embedding_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def forward_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw embedding ``N x D``, last convolutional maps before the final pooling ``N x C x h x w``)."""
        maps = self.features[:-1](x)
        return self.head(self.features[-1](maps)), maps


class SpatialAttention(nn.Module):
    """Spatial attention (CBAM style): a 7x7 conv over channel-mean and channel-max maps gives a
    per-pixel gate in (0, 1) that multiplies every channel."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(cin, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x), inplace=True)


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


RESNET_DEPTHS: dict[int, tuple[type, tuple[int, ...]]] = {
    10: (BasicBlock, (1, 1, 1, 1)),
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


class ResNetAttention(nn.Module):
    """ResNet with a spatial-attention module after each stage, global average pooling and a
    linear embedding layer.

    Parameters
    ----------
    depth
        10, 18 or 34 (basic blocks) or 50 (bottlenecks, the ResNet-50 design).
    base_width
        Channels of the first stage (64 in the ImageNet ResNets; 32 serves well on CPU).
    embedding_dim
        Size D of the output embedding.
    dropout
        Dropout before the embedding layer.
    """

    def __init__(self, depth: int = 18, base_width: int = 32, embedding_dim: int = 256, dropout: float = 0.2) -> None:
        super().__init__()
        if depth not in RESNET_DEPTHS:
            raise ValueError(f"depth must be one of {sorted(RESNET_DEPTHS)}")
        block, counts = RESNET_DEPTHS[depth]
        self.stem = nn.Sequential(
            nn.Conv2d(1, base_width, 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(base_width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages, attentions = [], []
        cin = base_width
        for index, count in enumerate(counts):
            planes = base_width * 2**index
            blocks = []
            for position in range(count):
                blocks.append(block(cin, planes, stride=2 if position == 0 and index > 0 else 1))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
            attentions.append(SpatialAttention())
        self.stages = nn.ModuleList(stages)
        self.attentions = nn.ModuleList(attentions)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, embedding_dim)
        self.embedding_dim = embedding_dim
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage, attention in zip(self.stages, self.attentions):
            x = attention(stage(x))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(self.dropout(x))

    def forward_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw embedding ``N x D``, the last stage's maps ``N x C x h x w``)."""
        x = self.stem(x)
        for stage, attention in zip(self.stages, self.attentions):
            x = attention(stage(x))
        return self.fc(self.dropout(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))), x


def _signet(**kwargs) -> nn.Module:
    return SigNet(**kwargs)


def _signet_bn(**kwargs) -> nn.Module:
    return SigNet(norm="bn", **kwargs)


def _signet_slim(**kwargs) -> nn.Module:
    kwargs.setdefault("width", 0.5)
    kwargs.setdefault("fc_dim", 512)
    return SigNet(norm="bn", **kwargs)


def _resnet_attn(**kwargs) -> nn.Module:
    return ResNetAttention(**kwargs)


BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "signet": _signet,
    "signet-bn": _signet_bn,
    "signet-slim": _signet_slim,
    "resnet-attn": _resnet_attn,
}


# Backbones whose first fully connected layer is sized for one input (H, W); the others pool globally.
FIXED_INPUT_BACKBONES = frozenset({"signet", "signet-bn", "signet-slim"})


def build_backbone(name: str, **kwargs) -> nn.Module:
    """Build a registered backbone by name (see :data:`BACKBONES`)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(BACKBONES)}")
    return BACKBONES[name](**kwargs)
