"""Metric-learning losses and heads for Siamese signature verification.

Conventions
-----------
Embeddings are ``N x D``; distances are Euclidean between L2-normalised embeddings (0..2).
Batch labels are integers: genuine signatures carry their writer's id (>= 0); a skilled forgery
carries a unique negative id, so it is never anyone's positive and never an anchor, only a negative
(a forgery of writer w is a negative for w's anchors, as it is for everyone else's).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def pairwise_distances(embeddings: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``N x N`` Euclidean distances (numerically safe gradient at 0)."""
    squared = (embeddings.unsqueeze(1) - embeddings.unsqueeze(0)).pow(2).sum(-1)
    return torch.sqrt(squared.clamp_min(eps)) * (squared > eps)


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive mask: same label, not self, anchors genuine; negative mask: different label)."""
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    genuine = (labels >= 0).unsqueeze(1)
    return same & ~eye & genuine, ~same


def contrastive_loss(distance: torch.Tensor, same: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Hadsell et al.: ``same * d^2 + (1 - same) * max(0, margin - d)^2``, averaged, halved.

    Parameters
    ----------
    distance
        ``N`` pair distances.
    same
        ``N`` targets, 1 for a genuine-genuine pair of one writer, 0 otherwise.
    """
    same = same.float()
    return 0.5 * (same * distance.pow(2) + (1 - same) * F.relu(margin - distance).pow(2)).mean()


def batch_contrastive_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Contrastive loss over every valid pair of a batch (positives: same genuine writer)."""
    distances = pairwise_distances(embeddings)
    positive, negative = _masks(labels)
    upper = torch.triu(torch.ones_like(positive), diagonal=1)
    pos = distances[positive & upper]
    neg = distances[negative & upper]
    terms = torch.cat([pos.pow(2), F.relu(margin - neg).pow(2)])
    return 0.5 * terms.mean() if len(terms) else embeddings.sum() * 0


def triplet_batch_all(embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean of ``max(0, d_ap - d_an + margin)`` over the triplets where it is positive."""
    distances = pairwise_distances(embeddings)
    positive, negative = _masks(labels)
    losses = distances.unsqueeze(2) - distances.unsqueeze(1) + margin  # [a, p, n]
    valid = positive.unsqueeze(2) & negative.unsqueeze(1)
    losses = F.relu(losses) * valid
    active = (losses > 1e-12).sum()
    return losses.sum() / active.clamp_min(1)


def triplet_hard(embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Batch-hard (Hermans et al.): per anchor, its farthest positive and nearest negative."""
    distances = pairwise_distances(embeddings)
    positive, negative = _masks(labels)
    anchors = positive.any(1) & negative.any(1)
    if not anchors.any():
        return embeddings.sum() * 0
    hardest_positive = (distances * positive).amax(1)
    hardest_negative = distances.masked_fill(~negative, float("inf")).amin(1)
    return F.relu(hardest_positive - hardest_negative + margin)[anchors].mean()


def triplet_semihard(embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Semi-hard mining (FaceNet; TensorFlow Addons' definition).

    For every anchor-positive pair, the negative is the nearest one *farther* than the positive
    (``d_an > d_ap``); when there is none, the farthest negative. Loss ``max(0, d_ap - d_an + margin)``
    averaged over anchor-positive pairs.
    """
    distances = pairwise_distances(embeddings)
    positive, negative = _masks(labels)
    if not positive.any():
        return embeddings.sum() * 0
    d_ap = distances.unsqueeze(2)  # [a, p, 1]
    d_an = distances.unsqueeze(1)  # [a, 1, n]
    neg = negative.unsqueeze(1)  # [a, 1, n]
    outside = neg & (d_an > d_ap)  # [a, p, n]
    nearest_outside = d_an.expand_as(outside).masked_fill(~outside, float("inf")).amin(2)
    farthest = distances.masked_fill(~negative, float("-inf")).amax(1, keepdim=True).expand_as(nearest_outside)
    chosen = torch.where(outside.any(2), nearest_outside, farthest)
    losses = F.relu(distances - chosen + margin)
    valid = positive & negative.any(1, keepdim=True)
    return losses[valid].mean() if valid.any() else embeddings.sum() * 0


class PairHead(nn.Module):
    """The L1 + sigmoid pair head: ``sigmoid(w . |e1 - e2| + b)`` = probability the pair is genuine-genuine."""

    def __init__(self, embedding_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(embedding_dim, 1)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Logits (apply ``torch.sigmoid`` for probabilities), shape ``N``."""
        return self.linear((first - second).abs()).squeeze(-1)


def pair_bce_loss(head: PairHead, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the pair head over every valid pair of a batch, classes balanced."""
    positive, negative = _masks(labels)
    upper = torch.triu(torch.ones_like(positive), diagonal=1)
    pos_i, pos_j = torch.nonzero(positive & upper, as_tuple=True)
    neg_i, neg_j = torch.nonzero(negative & upper & (labels >= 0).unsqueeze(1), as_tuple=True)
    if len(pos_i) == 0 or len(neg_i) == 0:
        return embeddings.sum() * 0
    pos_logits = head(embeddings[pos_i], embeddings[pos_j])
    neg_logits = head(embeddings[neg_i], embeddings[neg_j])
    return 0.5 * (
        F.binary_cross_entropy_with_logits(pos_logits, torch.ones_like(pos_logits))
        + F.binary_cross_entropy_with_logits(neg_logits, torch.zeros_like(neg_logits))
    )


class WriterForgeryHead(nn.Module):
    """SigNet-F style feature learning: writer classification plus a genuine/forgery output."""

    def __init__(self, embedding_dim: int, n_writers: int) -> None:
        super().__init__()
        self.writer = nn.Linear(embedding_dim, n_writers)
        self.forgery = nn.Linear(embedding_dim, 1)

    def loss(self, features: torch.Tensor, writer_ids: torch.Tensor, forged: torch.Tensor, forgery_weight: float = 0.95) -> torch.Tensor:
        """``(1 - w) * CE(writer | genuine) + w * BCE(forgery)`` (Hafemann et al.'s lambda = w).

        Writer classification uses only genuine samples: a forgery is not its target writer's hand.
        """
        genuine = ~forged
        writer_loss = (
            F.cross_entropy(self.writer(features[genuine]), writer_ids[genuine]) if genuine.any() else features.sum() * 0
        )
        forgery_loss = F.binary_cross_entropy_with_logits(self.forgery(features).squeeze(-1), forged.float())
        return (1 - forgery_weight) * writer_loss + forgery_weight * forgery_loss


TRIPLET_LOSSES = {
    "triplet-all": triplet_batch_all,
    "triplet-semihard": triplet_semihard,
    "triplet-hard": triplet_hard,
}
# "local-pair": binary cross-entropy of a learned local comparison head (models.local) on the pairs of
# each batch; the embedding is trained through it (usually fine-tuned from a trained one, ``init``).
LOSSES = ("contrastive", *TRIPLET_LOSSES, "pair-bce", "signet-f", "local-pair")
