"""Learned local comparison: a head that compares two signatures' convolutional feature maps.

The Siamese twin's embedding throws away *where* strokes are; a skilled forgery often has the right
overall shape with the wrong local detail. :class:`LocalComparator` keeps the last convolutional maps
of the shared trunk (SigNet: ``C x 8 x 12`` for a 150 x 220 canvas), projects them to a few channels
(the per-signature *local descriptor*, stored beside the embedding), and learns a pair score from the
two descriptors side by side (``|a - b|``, ``a * b``, ``(a + b) / 2`` -> two 3x3 convolutions ->
mean and max pooling -> one logit), added to a learned affine function of the embedding distance.
Both orders are averaged, so the score is symmetric. The learned distance is ``softplus(-logit)``
(``-log P(same writer's genuine pair)``): non-negative, small for genuine pairs, so every decision
method that works on Euclidean distances (fusion, voting, writer threshold) works on it unchanged.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from ..methods import Comparator
    from .siamese import SiameseModel


class LocalComparator(nn.Module):
    """Pair score from two projected feature maps and the distance of the two global vectors.

    Parameters
    ----------
    channels
        Channels C of the trunk's last convolutional maps.
    map_size
        (h, w) of those maps.
    projected
        Channels P of the stored local descriptor (``P x h x w`` values per signature).
    hidden
        Channels of the first comparison convolution (the second has half as many).
    """

    def __init__(self, channels: int, map_size: Sequence[int], projected: int = 32, hidden: int = 128) -> None:
        super().__init__()
        self.channels, self.projected, self.hidden = int(channels), int(projected), int(hidden)
        self.map_size = (int(map_size[0]), int(map_size[1]))
        self.project = nn.Sequential(nn.Conv2d(channels, projected, 1), nn.BatchNorm2d(projected))
        self.compare = nn.Sequential(
            nn.Conv2d(3 * projected, hidden, 3, padding=1), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden // 2, 3, padding=1), nn.BatchNorm2d(hidden // 2), nn.ReLU(inplace=True),
        )
        self.score = nn.Linear(hidden, 1)
        # logit = bias - scale * global distance + local term: starts as a plain distance rule.
        self.scale = nn.Parameter(torch.tensor(4.0))
        self.bias = nn.Parameter(torch.tensor(3.0))

    @property
    def descriptor_dim(self) -> int:
        """Length of one flattened local descriptor."""
        return self.projected * self.map_size[0] * self.map_size[1]

    def describe(self, maps: torch.Tensor) -> torch.Tensor:
        """``N x C x h x w`` trunk maps -> ``N x P x h x w`` local descriptors."""
        return self.project(maps)

    def _one_way(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        hidden = self.compare(torch.cat([(first - second).abs(), first * second, (first + second) / 2], dim=1))
        return self.score(torch.cat([hidden.mean(dim=(2, 3)), hidden.amax(dim=(2, 3))], dim=1)).squeeze(1)

    def logit(self, first: torch.Tensor, second: torch.Tensor, global_distance: torch.Tensor) -> torch.Tensor:
        """Pair logits (``N``) from descriptors (``N x P x h x w`` each) and global distances (``N``)."""
        if self.training:
            # Both directions, as this head has always been trained: each pass updates the batch-norm
            # running statistics, so one pass would train a different model.
            local = (self._one_way(first, second) + self._one_way(second, first)) / 2
        else:
            # The three inputs of a pass are symmetric in the two signatures, so both directions give
            # the same numbers bit for bit (and (x + x) / 2 == x): one pass, half the cost.
            local = self._one_way(first, second)
        return self.bias - self.scale * global_distance + local


def batch_pairs(writer: np.ndarray, genuine: np.ndarray, *, random_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of a P x K batch for the comparator's training.

    Parameters
    ----------
    writer
        ``B`` writer ids of the batch images (a forgery carries the id of the writer it imitates).
    genuine
        ``B`` booleans.

    Returns
    -------
    (first, second, target)
        Index arrays and 1/0 targets: every same-writer genuine pair (1), every genuine x skilled
        forgery pair of the same writer (0), and ``random_pairs`` genuine pairs of two writers (0).
    """
    first, second, target = [], [], []
    for i in range(len(writer)):
        if not genuine[i]:
            continue
        for j in range(len(writer)):
            if writer[j] != writer[i] or j == i:
                continue
            if genuine[j] and j > i:
                first.append(i), second.append(j), target.append(1.0)
            elif not genuine[j]:
                first.append(i), second.append(j), target.append(0.0)
    genuine_idx = np.flatnonzero(genuine)
    if random_pairs and len(set(writer[genuine_idx].tolist())) > 1:
        made = 0
        while made < random_pairs:
            i, j = rng.choice(genuine_idx, 2, replace=False)
            if writer[i] != writer[j]:
                first.append(i), second.append(j), target.append(0.0)
                made += 1
    return np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64), np.asarray(target, dtype=np.float32)


def pair_logits(comparator: LocalComparator, descriptors: torch.Tensor, vectors: torch.Tensor, first: np.ndarray, second: np.ndarray) -> torch.Tensor:
    """The comparator's logits (``N``) of the pairs ``(first[i], second[i])`` of batch rows."""
    a, b = torch.as_tensor(first, device=descriptors.device), torch.as_tensor(second, device=descriptors.device)
    return comparator.logit(descriptors[a], descriptors[b], (vectors[a] - vectors[b]).norm(dim=1))


def balanced_bce(logits: torch.Tensor, target: np.ndarray) -> torch.Tensor:
    """Mean binary cross-entropy of pair logits, positives and negatives weighted equally."""
    targets = torch.as_tensor(target, device=logits.device)
    positive = targets.sum().clamp_min(1.0)
    negative = (1 - targets).sum().clamp_min(1.0)
    weights = targets / positive + (1 - targets) / negative
    return (F.binary_cross_entropy_with_logits(logits, targets, reduction="none") * weights).sum() / 2


def comparator_loss(comparator: LocalComparator, descriptors: torch.Tensor, vectors: torch.Tensor, first: np.ndarray, second: np.ndarray, target: np.ndarray) -> torch.Tensor:
    """Mean binary cross-entropy of the pair logits (positives and negatives weighted equally)."""
    return balanced_bce(pair_logits(comparator, descriptors, vectors, first, second), target)


EPISODE_REFERENCES = 3


@dataclass(frozen=True)
class ReferenceEpisode:
    """A batch seen the way ``cohort-multi-k`` sees a test writer: per writer, some genuine images are
    its references, its other genuine images and its skilled forgeries are questioned against them,
    and the other writers' references are the cohort.

    ``references``: ``W x R`` batch rows; ``query_rows``, ``query_writer`` (row of ``references``) and
    ``query_genuine``: ``Q`` each; ``pair_first``/``pair_second``: the pairs whose distances
    :func:`episode_loss` needs, first every reference pair (upper triangle of the ``WR x WR``
    matrix of the flattened references), then each query against its writer's ``R`` references.
    """

    references: np.ndarray
    query_rows: np.ndarray
    query_writer: np.ndarray
    query_genuine: np.ndarray
    pair_first: np.ndarray
    pair_second: np.ndarray


def reference_episode(writer: np.ndarray, genuine: np.ndarray, *, rng: np.random.Generator, references: int = EPISODE_REFERENCES) -> Optional[ReferenceEpisode]:
    """Draw a :class:`ReferenceEpisode` from a batch (``B`` writer ids and genuine flags, a forgery
    carrying the id of the writer it imitates). Writers with fewer than ``references + 1`` distinct
    genuine rows, or with no skilled forgery in the batch, are left out; None when fewer than two
    writers remain (no cohort) - the caller then trains on the pair loss alone."""
    kept, queries, query_writer, query_genuine = [], [], [], []
    for w in np.unique(writer):
        own_genuine = np.flatnonzero((writer == w) & genuine)
        forged = np.flatnonzero((writer == w) & ~genuine)
        if len(own_genuine) < references + 1 or len(forged) == 0:
            continue
        own_genuine = rng.permutation(own_genuine)
        kept.append(own_genuine[:references])
        rest = own_genuine[references:]
        queries += [*rest, *forged]
        query_writer += [len(kept) - 1] * (len(rest) + len(forged))
        query_genuine += [True] * len(rest) + [False] * len(forged)
    if len(kept) < 2:
        return None
    refs = np.stack(kept)
    flat = refs.ravel()
    upper_i, upper_j = np.triu_indices(len(flat), k=1)
    query_rows, query_writer = np.asarray(queries, dtype=np.int64), np.asarray(query_writer, dtype=np.int64)
    return ReferenceEpisode(
        references=refs,
        query_rows=query_rows,
        query_writer=query_writer,
        query_genuine=np.asarray(query_genuine, dtype=bool),
        pair_first=np.concatenate([flat[upper_i], np.repeat(query_rows, references)]).astype(np.int64),
        pair_second=np.concatenate([flat[upper_j], refs[query_writer].ravel()]).astype(np.int64),
    )


def episode_scores(distances: torch.Tensor, episode: ReferenceEpisode) -> torch.Tensor:
    """``cohort-multi-k``'s score (:func:`sigverify.methods.raw_scores`) of each episode query, from
    the learned distances of ``episode.pair_first/pair_second`` (in that order), differentiably:
    per k, the mean distance to the k nearest references over the square root of (the references'
    mean distance to their k nearest fellow references) x (their mean distance to the nearest
    :data:`~sigverify.methods.COHORT_NEAREST_SHARE` of the other writers' references); averaged over
    k, negated (higher = genuine)."""
    from ..methods import COHORT_NEAREST_SHARE, MULTI_K_NEIGHBOURS

    writers, per_writer = episode.references.shape
    n_refs = writers * per_writer
    upper_i, upper_j = np.triu_indices(n_refs, k=1)
    n_upper = len(upper_i)
    among = distances.new_zeros(n_refs, n_refs)
    device = distances.device
    among = among.index_put((torch.as_tensor(upper_i, device=device), torch.as_tensor(upper_j, device=device)), distances[:n_upper])
    among = among + among.T
    owner = torch.arange(writers, device=device).repeat_interleave(per_writer)
    same = owner[:, None] == owner[None, :]
    fellows = among[same & ~torch.eye(n_refs, dtype=torch.bool, device=device)].view(n_refs, per_writer - 1).sort(dim=1).values
    others = among[~same].view(n_refs, n_refs - per_writer)
    nearest = max(1, int(round(COHORT_NEAREST_SHARE * others.shape[1])))
    to_cohort = others.topk(nearest, dim=1, largest=False).values.mean(dim=1).view(writers, per_writer).mean(dim=1)
    to_refs = distances[n_upper:].view(-1, per_writer).sort(dim=1).values
    wq = torch.as_tensor(episode.query_writer, device=device)
    ratios = []
    for k in MULTI_K_NEIGHBOURS:
        spread = fellows[:, : min(k, per_writer - 1)].mean(dim=1).view(writers, per_writer).mean(dim=1)
        scale = (spread * to_cohort).clamp_min(1e-12).sqrt()
        ratios.append(to_refs[:, : min(k, per_writer)].mean(dim=1) / scale[wq])
    return -torch.stack(ratios).mean(dim=0)


def episode_loss(scores: torch.Tensor, genuine: np.ndarray) -> torch.Tensor:
    """Pooled ranking loss over the batch: every genuine query's score against every skilled
    forgery's, across writers (what one pooled threshold needs), ``softplus((forged - genuine) /
    sigma)`` with sigma the batch's score spread (detached), so the term does not depend on the
    statistic's units."""
    mask = torch.as_tensor(genuine, device=scores.device)
    positive, negative = scores[mask], scores[~mask]
    if len(positive) == 0 or len(negative) == 0:
        return scores.sum() * 0.0
    sigma = scores.detach().std().clamp_min(1e-6)
    return F.softplus((negative[None, :] - positive[:, None]) / sigma).mean()


class PairDistance:
    """A distance computed pair by pair (:meth:`paired`, by the subclass), with :meth:`matrix` built
    from it in blocks and recent matrices remembered. ``global_dim``: the length of the part of the
    vectors a writer-dependent classifier sees; ``vector_dim``: the whole vector's length."""

    def __init__(self, global_dim: int, vector_dim: int, *, batch_size: int = 512, cache_size: int = 4096) -> None:
        self.global_dim = int(global_dim)
        self.vector_dim = int(vector_dim)
        self.batch_size = batch_size
        # Evaluation and calibration score the same trial with every method: remember recent matrices.
        self._matrices: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self.cache_size = cache_size

    def _check(self, vectors: np.ndarray) -> None:
        if vectors.ndim != 2 or vectors.shape[1] != self.vector_dim:
            raise ValueError(f"vectors of size {self.vector_dim} expected, got shape {vectors.shape}")

    def paired(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def matrix(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        first, second = np.ascontiguousarray(first, dtype=np.float32), np.ascontiguousarray(second, dtype=np.float32)
        key = (_fingerprint(first), _fingerprint(second))
        if key in self._matrices:
            self._matrices.move_to_end(key)
            return self._matrices[key].copy()
        # In row blocks of about 16 batches of pairs: every pair's two vectors are materialised, and a
        # 1,000 x 1,000 matrix of 3,331-value vectors at once would need about 27 GB.
        rows_per_block = max(1, 16 * self.batch_size // max(1, len(second)))
        blocks = [np.zeros((0, len(second)), dtype=np.float32)]
        for start in range(0, len(first), rows_per_block):
            part = first[start : start + rows_per_block]
            rows, cols = np.meshgrid(np.arange(len(part)), np.arange(len(second)), indexing="ij")
            blocks.append(self.paired(part[rows.ravel()], second[cols.ravel()]).reshape(len(part), len(second)))
        result = np.vstack(blocks)
        self._matrices[key] = result
        if len(self._matrices) > self.cache_size:
            self._matrices.popitem(last=False)
        return result.copy()

    def global_part(self, vectors: np.ndarray) -> np.ndarray:
        return vectors[:, : self.global_dim]


class LearnedDistance(PairDistance):
    """A model's learned distance between signature vectors ``[embedding | size | local descriptor]``.

    The L2-normalised embeddings' Euclidean distance and the two local descriptors go through the
    comparator; the weighted sizes (3 values, present when the model uses size) lower the logit by
    their Euclidean distance, so the size weight is in logit units. Distance = ``softplus(-logit)`` =
    ``-log P(same writer's genuine pair)``. Implements :class:`sigverify.methods.Comparator`.
    """

    def __init__(self, comparator: LocalComparator, embedding_dim: int, size_dims: int = 0, *, batch_size: int = 512, cache_size: int = 4096) -> None:
        global_dim = int(embedding_dim) + int(size_dims)
        super().__init__(global_dim, global_dim + comparator.descriptor_dim, batch_size=batch_size, cache_size=cache_size)
        self.comparator = comparator.eval()
        self.embedding_dim = int(embedding_dim)

    @torch.inference_mode()
    def paired(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        self._check(first), self._check(second)
        if len(first) != len(second):
            raise ValueError("paired distances need as many rows on both sides")
        # Always with the running batch-norm statistics: embedding the images restores the network's
        # own mode afterwards, which may be training mode (and would update those statistics here).
        self.comparator.eval()
        shape = (self.comparator.projected, *self.comparator.map_size)
        device = next(self.comparator.parameters()).device
        out = []
        for start in range(0, len(first), self.batch_size):
            a = torch.from_numpy(np.ascontiguousarray(first[start : start + self.batch_size], dtype=np.float32)).to(device)
            b = torch.from_numpy(np.ascontiguousarray(second[start : start + self.batch_size], dtype=np.float32)).to(device)
            e, g = self.embedding_dim, self.global_dim
            logits = self.comparator.logit(a[:, g:].reshape(-1, *shape), b[:, g:].reshape(-1, *shape), (a[:, :e] - b[:, :e]).norm(dim=1))
            logits = logits - (a[:, e:g] - b[:, e:g]).norm(dim=1)
            out.append(F.softplus(-logits).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def comparator_for(network: "SiameseModel", size_weight: float) -> "Comparator":
    """How the decision methods compare this network's vectors: Euclidean, or the learned distance
    of its local head (the vectors carrying the weighted size when ``size_weight`` is not 0), or
    for an ensemble of networks with local heads the mean of the members' learned distances."""
    from ..methods import EUCLIDEAN
    from .ensemble import EnsembleDistance, EnsembleModel

    if network.local is None:
        return EUCLIDEAN
    if isinstance(network, EnsembleModel):
        return EnsembleDistance(network.local, network.embedding_dims, 3 if size_weight else 0)
    return LearnedDistance(network.local, network.embedding_dim, 3 if size_weight else 0)


def _fingerprint(array: np.ndarray) -> str:
    return hashlib.sha1(np.asarray(array.shape).tobytes() + array.tobytes()).hexdigest()
