"""The Siamese model: one shared backbone, L2-normalised embeddings, an optional pair head."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .backbones import build_backbone
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
    """

    def __init__(self, architecture: str, architecture_args: Optional[dict[str, Any]] = None, pair_head: bool = False) -> None:
        super().__init__()
        self.architecture = architecture
        self.architecture_args = dict(architecture_args or {})
        self.backbone = build_backbone(architecture, **self.architecture_args)
        self.embedding_dim = int(self.backbone.embedding_dim)
        self.pair_head = PairHead(self.embedding_dim) if pair_head else None

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

    def pair_probability(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Pair head probability that two normalised embeddings are the same writer's genuine."""
        if self.pair_head is None:
            raise RuntimeError("this model has no pair head")
        return torch.sigmoid(self.pair_head(first, second))


@torch.inference_mode()
def embed_images(network: SiameseModel, images: np.ndarray, *, batch_size: int = 64, bf16: bool = False, tta: bool = False) -> np.ndarray:
    """Embed preprocessed images in batches.

    Parameters
    ----------
    images
        ``N x H x W`` uint8, as :func:`sigverify.preprocess.preprocess` returns them.
    bf16
        Run the network under bfloat16 autocast (much faster on CPUs with AMX / AVX-512 BF16).
    tta
        Average the embeddings of small rotations and scales of each image (then renormalise).

    Returns
    -------
    np.ndarray
        ``N x D`` float32 L2-normalised embeddings.
    """
    if tta and len(images):
        from ..preprocess import tta_variants

        variants = np.stack([tta_variants(image) for image in images])  # N x V x H x W
        n, v = variants.shape[:2]
        flat = embed_images(network, variants.reshape(n * v, *variants.shape[2:]), batch_size=batch_size, bf16=bf16)
        mean = flat.reshape(n, v, -1).mean(axis=1)
        return (mean / np.linalg.norm(mean, axis=1, keepdims=True)).astype(np.float32)
    was_training = network.training
    network.eval()
    chunks = []
    try:
        for start in range(0, len(images), batch_size):
            batch = SiameseModel.to_input(images[start : start + batch_size])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                chunks.append(network.embed(batch).float().numpy())
    finally:
        network.train(was_training)
    if not chunks:
        return np.zeros((0, network.embedding_dim), dtype=np.float32)
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
    ``size_weight`` when the model uses size (``N x (D + 3)``), else the embedding alone."""
    embeddings = embed_images(network, images, bf16=bf16, tta=tta)
    if not size_weight:
        return embeddings
    if sizes is None or len(sizes) != len(images):
        raise ValueError("this model compares signature sizes: give one size vector per image")
    return np.concatenate([embeddings, size_weight * np.asarray(sizes, dtype=np.float32)], axis=1).astype(np.float32)
