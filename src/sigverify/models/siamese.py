"""The Siamese model: one shared backbone, L2-normalised embeddings, an optional pair head."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .backbones import build_backbone
from .local import LocalComparator
from .losses import PairHead


class SiameseModel(nn.Module):
    """Shared-weight twin network.

    Parameters
    ----------
    architecture
        A name in :data:`sigverify.models.backbones.BACKBONES`.
    architecture_args
        Keyword arguments of the backbone (``embedding_dim`` among them).
    pair_head
        Add the L1-distance + sigmoid pair head.
    local_head
        Arguments of a :class:`sigverify.models.local.LocalComparator` on the trunk's last
        convolutional maps (``channels``, ``map_size``, ``projected``, ``hidden``); None: no local head.
    """

    def __init__(
        self,
        architecture: str,
        architecture_args: Optional[dict[str, Any]] = None,
        pair_head: bool = False,
        local_head: Optional[dict[str, Any]] = None,
    ) -> None:
        super().__init__()
        self.architecture = architecture
        self.architecture_args = dict(architecture_args or {})
        self.backbone = build_backbone(architecture, **self.architecture_args)
        self.embedding_dim = int(self.backbone.embedding_dim)
        self.pair_head = PairHead(self.embedding_dim) if pair_head else None
        self.local_head_args = dict(local_head) if local_head else None
        self.local = LocalComparator(**self.local_head_args) if local_head else None

    @property
    def descriptor_dim(self) -> int:
        """Length of the flattened local descriptor (0 without a local head)."""
        return self.local.descriptor_dim if self.local is not None else 0

    def map_shape(self, input_size: tuple[int, int]) -> tuple[int, int, int]:
        """(C, h, w) of the trunk's last convolutional maps for ``input_size`` = (H, W) inputs."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                _, maps = self.backbone.forward_maps(torch.zeros(1, 1, *input_size))
        finally:
            self.train(was_training)
        return tuple(int(v) for v in maps.shape[1:])

    def forward_local(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw embeddings ``N x D``, local descriptors ``N x P x h x w``); needs the local head."""
        if self.local is None:
            raise RuntimeError("this model has no local head")
        raw, maps = self.backbone.forward_maps(x)
        return raw, self.local.describe(maps)

    @staticmethod
    def to_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``N x H x W`` uint8 preprocessed images -> ``N x 1 x H x W`` float in 0..1."""
        tensor = torch.as_tensor(images)
        if tensor.ndim == 2:
            tensor = tensor.unsqueeze(0)
        return tensor.unsqueeze(1).float().div_(255.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw (unnormalised) embeddings, ``N x D``."""
        return self.backbone(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings, ``N x D``."""
        return F.normalize(self.backbone(x).float(), dim=1)

    def embed_with_local(self, x: torch.Tensor) -> torch.Tensor:
        """``N x (D + L)``: the L2-normalised embedding, then the flattened local descriptor."""
        raw, descriptors = self.forward_local(x)
        return torch.cat([F.normalize(raw.float(), dim=1), descriptors.float().flatten(1)], dim=1)

    def pair_probability(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Pair head probability that two normalised embeddings are the same writer's genuine."""
        if self.pair_head is None:
            raise RuntimeError("this model has no pair head")
        return torch.sigmoid(self.pair_head(first, second))


@torch.inference_mode()
def embed_images(
    network: SiameseModel,
    images: np.ndarray,
    *,
    batch_size: int = 64,
    bf16: bool = False,
    tta: bool = False,
    with_local: bool = False,
) -> np.ndarray:
    """Embed preprocessed images in batches.

    Parameters
    ----------
    images
        ``N x H x W`` uint8, as :func:`sigverify.preprocess.preprocess` returns them.
    bf16
        Run the network under bfloat16 autocast (much faster on CPUs with AMX / AVX-512 BF16).
    tta
        Average the embeddings of small rotations and scales of each image (then renormalise).
    with_local
        Append each image's flattened local descriptor (models with a local head only).

    Returns
    -------
    np.ndarray
        ``N x D`` float32 L2-normalised embeddings (``N x (D + L)`` with the local descriptors).
    """
    if with_local and network.local is None:
        raise RuntimeError("this model has no local head")
    dim = network.embedding_dim
    if tta and len(images):
        from ..preprocess import tta_variants

        variants = np.stack([tta_variants(image) for image in images])  # N x V x H x W
        n, v = variants.shape[:2]
        flat = embed_images(network, variants.reshape(n * v, *variants.shape[2:]), batch_size=batch_size, bf16=bf16, with_local=with_local)
        mean = flat.reshape(n, v, -1).mean(axis=1)
        mean[:, :dim] /= np.linalg.norm(mean[:, :dim], axis=1, keepdims=True)
        return mean.astype(np.float32)
    was_training = network.training
    network.eval()
    device = next(network.parameters()).device  # wherever the network lives (a GPU while training there)
    chunks = []
    try:
        for start in range(0, len(images), batch_size):
            batch = SiameseModel.to_input(torch.as_tensor(images[start : start + batch_size]).to(device))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                if with_local:
                    chunks.append(network.embed_with_local(batch).cpu().numpy())
                else:
                    chunks.append(network.embed(batch).float().cpu().numpy())
    finally:
        network.train(was_training)
    if not chunks:
        return np.zeros((0, dim + (network.descriptor_dim if with_local else 0)), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)


def signature_vectors(
    network: SiameseModel,
    images: np.ndarray,
    sizes: Optional[np.ndarray],
    size_weight: float,
    *,
    bf16: bool = False,
    tta: bool = False,
) -> np.ndarray:
    """What every decision method compares: the embedding, plus the measured size scaled by
    ``size_weight`` when the model uses size (``N x (D + 3)``), plus the flattened local descriptor
    when the model has a local head (``N x (D [+ 3] + L)``)."""
    embedded = embed_images(network, images, bf16=bf16, tta=tta, with_local=network.local is not None)
    if not size_weight:
        return embedded
    if sizes is None or len(sizes) != len(images):
        raise ValueError("this model compares signature sizes: give one size vector per image")
    return with_sizes(embedded, np.asarray(sizes, dtype=np.float32), size_weight, network.embedding_dim).astype(np.float32)


def with_sizes(embedded: np.ndarray, sizes: np.ndarray, weight: float, embedding_dim: int) -> np.ndarray:
    """Insert the weighted sizes (``N x 3``) after the embedding, before any local descriptor."""
    if not weight:
        return embedded
    return np.concatenate([embedded[:, :embedding_dim], weight * sizes, embedded[:, embedding_dim:]], axis=1)
