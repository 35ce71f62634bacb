"""Several trainings of one recipe compared as one model.

Trainings of the same recipe with other seeds disagree a lot on unseen writers' skilled forgeries
(stop 27, GPU trainings of the CEDAR fold recipe: the fold dev EER at 12 references moved 1.4 points
between seeds), and averaging their distances removes part of that: on the five folds' dev writers,
three seeds' distances averaged gave 5.71 % against 7.00 % for one seed on average
(``scripts/check_ensemble_dev.py``). An :class:`EnsembleModel` holds the members
(:class:`~sigverify.models.siamese.SiameseModel`, same preprocessing, all with a local head or none).
Its vectors are ``[embedding_1 | ... | embedding_M | weighted size | descriptor_1 | ... | descriptor_M]``
and its distance is the mean of the members' distances (:class:`EnsembleDistance`); every decision
method, the calibration and the artifact file work on it as on one network.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .local import LearnedDistance, LocalComparator, PairDistance
from .siamese import SiameseModel

ENSEMBLE = "ensemble"


def member_spec(network: SiameseModel) -> dict[str, Any]:
    """What rebuilds one member: its architecture, arguments and local head."""
    if network.pair_head is not None:
        raise ValueError("a network with a pair head cannot be an ensemble member (the methods do not use the head)")
    return {"name": network.architecture, "args": network.architecture_args, "local_head": network.local_head_args}


class EnsembleModel(nn.Module):
    """Members' embeddings side by side (each L2-normalised), then their local descriptors.

    Parameters
    ----------
    members
        Two or more networks, all with a local head or all without.
    """

    architecture = ENSEMBLE
    pair_head = None
    local_head_args = None

    def __init__(self, members: Sequence[SiameseModel]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        if len({m.local is None for m in members}) > 1:
            raise ValueError("ensemble members must all have a local head, or none")
        self.architecture_args = {"members": [member_spec(m) for m in members]}
        self.members = nn.ModuleList(members)
        self.embedding_dims = [m.embedding_dim for m in members]
        self.descriptor_dims = [m.descriptor_dim for m in members]
        self.embedding_dim = sum(self.embedding_dims)
        # Not registered as a module (the members own these weights): what tells the rest of the code
        # that the vectors carry local descriptors.
        object.__setattr__(self, "local", None if members[0].local is None else tuple(m.local for m in members))

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> "EnsembleModel":
        """Rebuild from ``architecture_args`` (the members untrained)."""
        specs = args.get("members")
        if not isinstance(specs, list):
            raise ValueError("ensemble arguments need a list of members")
        return cls([SiameseModel(spec["name"], spec.get("args", {}), local_head=spec.get("local_head")) for spec in specs])

    @property
    def descriptor_dim(self) -> int:
        return sum(self.descriptor_dims)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``N x sum(D_m)``: each member's L2-normalised embedding, side by side."""
        return torch.cat([member.embed(x) for member in self.members], dim=1)

    def embed_with_local(self, x: torch.Tensor) -> torch.Tensor:
        """``N x (sum(D_m) + sum(L_m))``: the members' embeddings, then their flattened descriptors."""
        parts = [member.embed_with_local(x) for member in self.members]
        embeddings = [part[:, :dim] for part, dim in zip(parts, self.embedding_dims)]
        descriptors = [part[:, dim:] for part, dim in zip(parts, self.embedding_dims)]
        return torch.cat(embeddings + descriptors, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)


def build_network(name: str, args: dict[str, Any], *, pair_head: bool = False, local_head: dict[str, Any] | None = None) -> nn.Module:
    """The network an artifact's metadata declares: an ensemble, or one Siamese network."""
    if name == ENSEMBLE:
        if pair_head or local_head:
            raise ValueError("an ensemble declares its members' heads, not its own")
        return EnsembleModel.from_args(args)
    return SiameseModel(name, args, pair_head=pair_head, local_head=local_head)


class EnsembleDistance(PairDistance):
    """The mean of the members' learned distances (:class:`~sigverify.models.local.LearnedDistance`),
    each on its own slices of the ensemble's vectors and the shared weighted size."""

    def __init__(self, comparators: Sequence[LocalComparator], embedding_dims: Sequence[int], size_dims: int = 0, *, batch_size: int = 512) -> None:
        total_embedding = sum(embedding_dims)
        descriptor_dims = [c.descriptor_dim for c in comparators]
        super().__init__(total_embedding + size_dims, total_embedding + size_dims + sum(descriptor_dims), batch_size=batch_size)
        self.parts = [LearnedDistance(c, d, size_dims, batch_size=batch_size) for c, d in zip(comparators, embedding_dims)]
        # Column indices of each member's own vector [embedding | size | descriptor] in the ensemble's.
        embedding_starts = np.cumsum([0, *embedding_dims])
        descriptor_starts = self.global_dim + np.cumsum([0, *descriptor_dims])
        size = np.arange(total_embedding, total_embedding + size_dims)
        self.columns = [
            np.concatenate([np.arange(embedding_starts[i], embedding_starts[i + 1]), size, np.arange(descriptor_starts[i], descriptor_starts[i + 1])])
            for i in range(len(comparators))
        ]

    def paired(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        self._check(first), self._check(second)
        return np.mean([part.paired(first[:, columns], second[:, columns]) for part, columns in zip(self.parts, self.columns)], axis=0)
