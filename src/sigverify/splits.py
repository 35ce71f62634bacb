"""Writer-disjoint splits, pair and triplet generation, and the P x K batch sampler.

Everything here works on writer keys (``dataset/writer``) and on indices into one list of
:class:`~sigverify.datasets.Record`, so the same code serves raw records and a preprocessed cache.
Every split is checked by :func:`assert_writer_disjoint`: a writer in two parts raises, always.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import numpy as np

from .datasets import FORGED, GENUINE, Record


class WriterOverlapError(AssertionError):
    """A writer appears in two parts of a split that must be disjoint."""


def assert_writer_disjoint(**parts: Sequence[str]) -> None:
    """Raise :class:`WriterOverlapError` if any writer key is in two of the named parts."""
    seen: dict[str, str] = {}
    for part_name, writers in parts.items():
        for writer in writers:
            if writer in seen and seen[writer] != part_name:
                raise WriterOverlapError(f"writer {writer!r} is in both {seen[writer]!r} and {part_name!r}")
            seen[writer] = part_name


@dataclass
class WriterSplit:
    """A writer-disjoint train / dev / test split (writer keys)."""

    train: list[str]
    dev: list[str]
    test: list[str]
    seed: int = 0
    description: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert_writer_disjoint(train=self.train, dev=self.dev, test=self.test)

    def part_of(self, writer_key: str) -> Optional[str]:
        for name in ("train", "dev", "test"):
            if writer_key in getattr(self, name):
                return name
        return None

    def to_dict(self) -> dict:
        return {
            "train": list(self.train),
            "dev": list(self.dev),
            "test": list(self.test),
            "seed": self.seed,
            "description": self.description,
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_dict(cls, values: dict) -> "WriterSplit":
        return cls(
            train=list(values["train"]),
            dev=list(values["dev"]),
            test=list(values["test"]),
            seed=int(values.get("seed", 0)),
            description=values.get("description", ""),
            extra=dict(values.get("extra", {})),
        )

    def save(self, path: str) -> None:
        with open(path, "w") as handle:
            json.dump(self.to_dict(), handle, indent=1)

    @classmethod
    def load(cls, path: str) -> "WriterSplit":
        with open(path) as handle:
            return cls.from_dict(json.load(handle))


def _strata(records: Sequence[Record]) -> dict[tuple[str, bool], list[str]]:
    """Writers grouped by (dataset, has skilled forgeries): each split part gets its share of both."""
    has_forgeries: dict[str, bool] = defaultdict(bool)
    dataset_of: dict[str, str] = {}
    for record in records:
        dataset_of[record.writer_key] = record.dataset
        has_forgeries[record.writer_key] |= record.label == FORGED
    strata: dict[tuple[str, bool], list[str]] = defaultdict(list)
    for writer in sorted(dataset_of):
        strata[(dataset_of[writer], has_forgeries[writer])].append(writer)
    return dict(sorted(strata.items()))


def _take_count(n: int, fraction: float) -> int:
    if fraction <= 0 or n == 0:
        return 0
    return max(1, int(round(n * fraction))) if n >= 3 else 0


def split_writers(
    records: Sequence[Record],
    *,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> WriterSplit:
    """Seeded writer-disjoint split, stratified by dataset and by whether a writer has forgeries.

    Parameters
    ----------
    records
        All records of the data to split.
    dev_fraction, test_fraction
        Shares of writers (per stratum, rounded, at least one when a stratum has 3 or more writers).
    seed
        Seed of the shuffle; the same records and seed always give the same split.
    """
    if dev_fraction < 0 or test_fraction < 0 or dev_fraction + test_fraction >= 1:
        raise ValueError("need 0 <= dev_fraction, test_fraction and dev_fraction + test_fraction < 1")
    rng = np.random.default_rng(seed)
    train, dev, test = [], [], []
    for writers in _strata(records).values():
        order = [writers[i] for i in rng.permutation(len(writers))]
        n_test = _take_count(len(order), test_fraction)
        n_dev = _take_count(len(order) - n_test, dev_fraction / max(1e-9, 1 - test_fraction))
        test += order[:n_test]
        dev += order[n_test : n_test + n_dev]
        train += order[n_test + n_dev :]
    return WriterSplit(
        sorted(train),
        sorted(dev),
        sorted(test),
        seed=seed,
        description=f"writer-disjoint, stratified by dataset and forgery availability; dev {dev_fraction}, test {test_fraction}",
    )


def kfold_writers(records: Sequence[Record], k: int, *, seed: int = 0) -> list[list[str]]:
    """Seeded k-fold partition of the writers (stratified like :func:`split_writers`).

    Returns
    -------
    list of k lists of writer keys; every writer is in exactly one fold.
    """
    if k < 2:
        raise ValueError("k must be at least 2")
    rng = np.random.default_rng(seed)
    folds: list[list[str]] = [[] for _ in range(k)]
    offset = 0
    for writers in _strata(records).values():
        order = [writers[i] for i in rng.permutation(len(writers))]
        for position, writer in enumerate(order):
            folds[(position + offset) % k].append(writer)
        offset += len(order)  # keep fold sizes balanced across strata
    n_writers = len({r.writer_key for r in records})
    if min(len(f) for f in folds) == 0:
        raise ValueError(f"{n_writers} writers cannot fill {k} folds")
    return [sorted(f) for f in folds]


def fold_split(
    records: Sequence[Record], k: int, fold: int, *, dev_fraction: float = 0.1, seed: int = 0
) -> WriterSplit:
    """Fold ``fold`` of a k-fold run: its writers are the test part; dev writers come from the rest."""
    folds = kfold_writers(records, k, seed=seed)
    if not 0 <= fold < k:
        raise ValueError(f"fold must be in 0..{k - 1}")
    test = set(folds[fold])
    rest = [r for r in records if r.writer_key not in test]
    inner = split_writers(rest, dev_fraction=dev_fraction, test_fraction=0.0, seed=seed + 1000 + fold)
    return WriterSplit(
        inner.train,
        inner.dev,
        sorted(test),
        seed=seed,
        description=f"fold {fold} of {k} over writers; dev {dev_fraction} of the remaining writers",
        extra={"k": k, "fold": fold},
    )


def indices_for(records: Sequence[Record], writers: Sequence[str]) -> np.ndarray:
    """Indices of the records written for (claimed by) the given writers."""
    wanted = set(writers)
    return np.array([i for i, r in enumerate(records) if r.writer_key in wanted], dtype=np.int64)


# --------------------------------------------------------------------------- pairs and triplets

PAIR_KINDS = ("genuine", "skilled", "random")


@dataclass(frozen=True)
class Pair:
    """Two record indices; ``same`` is 1 when both are genuine signatures of one writer."""

    a: int
    b: int
    same: int
    kind: str  # "genuine", "skilled" (genuine vs its skilled forgery) or "random" (another writer)


def _index_by_writer(records: Sequence[Record], subset: Optional[Sequence[int]]):
    genuine: dict[str, list[int]] = defaultdict(list)
    forged: dict[str, list[int]] = defaultdict(list)
    for i in range(len(records)) if subset is None else subset:
        record = records[int(i)]
        (genuine if record.label == GENUINE else forged)[record.writer_key].append(int(i))
    return genuine, forged


def _distinct(a: int, b: int, hashes: Optional[Sequence[str]]) -> bool:
    # A pair of byte- or pixel-identical files would compare a file with itself.
    return a != b and (hashes is None or hashes[a] != hashes[b])


def make_pairs(
    records: Sequence[Record],
    *,
    subset: Optional[Sequence[int]] = None,
    max_genuine_per_writer: int = 60,
    random_fraction: float = 0.5,
    hashes: Optional[Sequence[str]] = None,
    seed: int = 0,
) -> list[Pair]:
    """Balanced, seeded pairs: genuine-genuine vs genuine-skilled and genuine-random forgeries.

    For each writer up to ``max_genuine_per_writer`` genuine-genuine pairs are drawn; the same number
    of negatives follows, ``random_fraction`` of them random forgeries (another writer's genuine) and
    the rest skilled forgeries (falling back to random ones for writers without forgeries).
    Pairs of identical content (same entry in ``hashes``) are never produced.
    """
    rng = np.random.default_rng(seed)
    genuine, forged = _index_by_writer(records, subset)
    writers = sorted(genuine)
    pairs: list[Pair] = []
    for writer in writers:
        mine = genuine[writer]
        combos = [(a, b) for x, a in enumerate(mine) for b in mine[x + 1 :] if _distinct(a, b, hashes)]
        if not combos:
            continue
        chosen = rng.permutation(len(combos))[:max_genuine_per_writer]
        pairs += [Pair(combos[c][0], combos[c][1], 1, "genuine") for c in chosen]
        n_neg = len(chosen)
        n_skilled = 0 if not forged[writer] else n_neg - int(round(n_neg * random_fraction))
        others = [w for w in writers if w != writer]
        made = 0
        attempts = 0
        while made < n_neg and attempts < 20 * n_neg:
            attempts += 1
            a = int(rng.choice(mine))
            if made < n_skilled:
                b, kind = int(rng.choice(forged[writer])), "skilled"
            elif others:
                b, kind = int(rng.choice(genuine[others[rng.integers(len(others))]])), "random"
            else:
                break
            if _distinct(a, b, hashes):
                pairs.append(Pair(a, b, 0, kind))
                made += 1
    return pairs


@dataclass(frozen=True)
class Triplet:
    """(anchor genuine, positive genuine of the same writer, negative forged or another writer)."""

    anchor: int
    positive: int
    negative: int
    kind: str  # "skilled" or "random"


def make_triplets(
    records: Sequence[Record],
    *,
    subset: Optional[Sequence[int]] = None,
    per_writer: int = 50,
    skilled_fraction: float = 0.5,
    hashes: Optional[Sequence[str]] = None,
    seed: int = 0,
) -> list[Triplet]:
    """Seeded triplets; a ``skilled_fraction`` share use the writer's own skilled forgeries."""
    rng = np.random.default_rng(seed)
    genuine, forged = _index_by_writer(records, subset)
    writers = sorted(w for w in genuine if len(genuine[w]) >= 2)
    triplets: list[Triplet] = []
    for writer in writers:
        mine = genuine[writer]
        others = [w for w in sorted(genuine) if w != writer]
        made = attempts = 0
        while made < per_writer and attempts < 20 * per_writer:
            attempts += 1
            anchor, positive = (int(x) for x in rng.choice(mine, size=2, replace=False))
            if forged[writer] and rng.random() < skilled_fraction:
                negative, kind = int(rng.choice(forged[writer])), "skilled"
            elif others:
                negative, kind = int(rng.choice(genuine[others[rng.integers(len(others))]])), "random"
            else:
                continue
            if _distinct(anchor, positive, hashes) and _distinct(anchor, negative, hashes):
                triplets.append(Triplet(anchor, positive, negative, kind))
                made += 1
    return triplets


class PKSampler:
    """Batches of P writers x (K genuine + F forged) images for online triplet mining.

    Each epoch visits every writer with at least two genuine images about once (in shuffled
    groups of P). Images of a writer are drawn without replacement while they last.

    Parameters
    ----------
    records
        All records; ``subset`` restricts to some indices (e.g. the training writers).
    p, k
        Writers per batch and genuine images per writer.
    forged_per_writer
        Skilled forgeries per writer added to the batch (as negatives only), when it has some.
    """

    def __init__(
        self,
        records: Sequence[Record],
        p: int,
        k: int,
        *,
        forged_per_writer: int = 0,
        subset: Optional[Sequence[int]] = None,
        seed: int = 0,
    ) -> None:
        if p < 2 or k < 2:
            raise ValueError("P x K sampling needs P >= 2 writers and K >= 2 images per writer")
        self.p, self.k, self.f = p, k, forged_per_writer
        self.genuine, self.forged = _index_by_writer(records, subset)
        self.writers = sorted(w for w in self.genuine if len(self.genuine[w]) >= 2)
        if len(self.writers) < p:
            raise ValueError(f"only {len(self.writers)} writers with 2+ genuine images; P = {p}")
        self.rng = np.random.default_rng(seed)
        # The pass in progress: its writer order and where the next batch starts, so that a resumed
        # training run continues this very pass (see state_dict) instead of drawing a new order.
        self._order: list[str] = []
        self._next = 0

    def __len__(self) -> int:
        return len(self.writers) // self.p

    def _draw(self, pool: list[int], n: int) -> list[int]:
        return [int(x) for x in self.rng.choice(pool, size=n, replace=len(pool) < n)]

    def __iter__(self) -> Iterator[list[int]]:
        """One pass over the writers; after :meth:`load_state_dict`, the rest of the saved pass."""
        if not self._order:
            self._order = [self.writers[i] for i in self.rng.permutation(len(self.writers))]
            self._next = 0
        while self._next + self.p <= len(self._order):
            group = self._order[self._next : self._next + self.p]
            self._next += self.p
            batch: list[int] = []
            for writer in group:
                batch += self._draw(self.genuine[writer], self.k)
                if self.f and self.forged[writer]:
                    batch += self._draw(self.forged[writer], self.f)
            yield batch
        self._order = []

    def state_dict(self) -> dict:
        """Plain-JSON state: the random generator, the pass in progress and its position."""
        return {"rng": self.rng.bit_generator.state, "order": list(self._order), "next": self._next}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where :meth:`state_dict` was taken (the batches an uninterrupted run gets)."""
        unknown = sorted(set(state.get("order", [])) - set(self.writers))
        if unknown:
            raise ValueError(f"sampler state names writers this sampler does not have: {', '.join(unknown[:5])}")
        self.rng.bit_generator.state = state["rng"]
        self._order, self._next = list(state.get("order", [])), int(state.get("next", 0))
