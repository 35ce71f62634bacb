#!/usr/bin/env python
"""What an outside scorer gets from `sigverify.represent` alone: plain distances vs `sigverify.distances`.

Usage: python scripts/check_represent_distances.py MODEL DATA [DATA ...] [--writers dev|test] [--tta] [--json OUT]

Every image of the chosen writers (the model's development writers, or the writers it never saw, as
its metadata lists them) is embedded with `sigverify.represent` from its file, exactly as a caller
would; all one-reference pairs of a writer (genuine-genuine and genuine-skilled forgery) are then
scored four ways, and the pooled EER (genuine vs skilled) printed for each: the model's own distance
(`sigverify.distances`, what every decision method uses), and plain Euclidean and cosine distances
on the whole vector and on its embedding part alone. A model with a learned local head compares its
vectors with that head; plain distances on the same vectors do not, which is what this measures.
"""

import json
import time

import numpy as np

import sigverify
from sigverify.datasets import read_datasets
from sigverify.metrics import eer

from _model_writers import parse_model_writers


def cosine_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``len(first) x len(second)`` cosine distances."""
    a = first / np.linalg.norm(first, axis=1, keepdims=True)
    b = second / np.linalg.norm(second, axis=1, keepdims=True)
    return 1.0 - a @ b.T


def euclidean_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    return np.linalg.norm(first[:, None, :] - second[None, :, :], axis=2)


def main() -> None:
    args, artifact, wanted = parse_model_writers(__doc__.splitlines()[0], default_writers="dev", json_help="write the EERs here", tta_help="represent(..., tta=True): each vector from the image and its small rotations/scales")
    records = [r for r in read_datasets(args.data) if r.writer_key in wanted]
    if not records:
        raise SystemExit(f"none of the model's {args.writers} writers is in {args.data}")
    started = time.time()
    vectors = np.vstack([sigverify.represent([r.path for r in records[i : i + 64]], model=artifact, tta=args.tta) for i in range(0, len(records), 64)])
    embedding = slice(0, artifact.network.embedding_dim)
    ways = {
        "sigverify.distances": lambda a, b: sigverify.distances(a, b, model=artifact),
        "euclidean, whole vector": euclidean_distance,
        "cosine, whole vector": cosine_distance,
        "euclidean, embedding part": lambda a, b: euclidean_distance(a[:, embedding], b[:, embedding]),
        "cosine, embedding part": lambda a, b: cosine_distance(a[:, embedding], b[:, embedding]),
    }
    labels, scores = [], {name: [] for name in ways}
    keys = np.array([r.writer_key for r in records])
    genuine = np.array([r.is_genuine for r in records])
    for writer in sorted(set(keys)):
        mine_genuine = np.flatnonzero((keys == writer) & genuine)
        mine_forged = np.flatnonzero((keys == writer) & ~genuine)
        upper = np.triu_indices(len(mine_genuine), 1)
        for name, distance in ways.items():
            d_genuine = distance(vectors[mine_genuine], vectors[mine_genuine])[upper]
            d_forged = distance(vectors[mine_genuine], vectors[mine_forged]).ravel() if len(mine_forged) else np.zeros(0)
            scores[name].append(-np.concatenate([d_genuine, d_forged]))
        labels.append(np.concatenate([np.ones(len(upper[0])), np.zeros(len(mine_genuine) * len(mine_forged))]))
    y = np.concatenate(labels)
    print(f"{len(records)} images of {len(set(keys))} {args.writers} writers, {int(y.sum())} genuine and {int((y == 0).sum())} skilled pairs, {time.time() - started:.0f} s")
    result = {"model": artifact.version, "writers": args.writers, "tta": args.tta, "n_writers": len(set(keys)), "pairs": {"genuine": int(y.sum()), "skilled": int((y == 0).sum())}, "eer": {}}
    for name in ways:
        result["eer"][name] = float(eer(y, np.concatenate(scores[name]))[0])
        print(f"{name:28s} EER {100 * result['eer'][name]:6.2f} %")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main()
