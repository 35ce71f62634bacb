#!/usr/bin/env python
"""How represent()'s layout was chosen (stop 25): plain distances on rescaled blocks, on DEV writers.

Usage: python scripts/check_represent_layouts_dev.py [MODEL] [--writers dev|test]

The model's internal vectors ([embedding | weighted size | local descriptor], what its methods
compare) of every image of its dev writers (CEDAR + SigComp2009), all one-reference pairs (genuine vs
skilled forgery), pooled EER under plain Euclidean and cosine distances for each candidate layout:
round 1, block rescalings (local block raw at mean norm 1 / unit-L2 / signed-sqrt unit-L2, times
0.25-4; size block times 0, 1, 3); round 2, the same with the size block centred on the training
writers' mean; round 3, the constant-norm encoding that shipped (`sigverify.models.layout`, constants
from the training writers' genuine images here, from the stored cohort in the product); round 4 (stop 32), that
layout's local-block weight x size-chord scale, now per model (``represent`` in its metadata). The
rules and the figures are in MODEL_CARD.md. `--writers test` prints only the raw vector and round 3.
"""

import argparse
import itertools

import numpy as np
import torch

import sigverify
from sigverify.datasets import read_datasets
from sigverify.metrics import eer
from sigverify.models.layout import RepresentLayout, choose_weights

DATA = ["../shared/data/cedar", "../shared/data/sigcomp2009"]


def internal_vectors(artifact, records) -> np.ndarray:
    """What the model compares, through the public facade: ``represent`` decoded."""
    paths = [r.path for r in records]
    return np.vstack([artifact.from_represented(sigverify.represent(paths[i : i + 64], model=artifact)) for i in range(0, len(paths), 64)])


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return 1 - a @ b.T


def euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(0, (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T))


def pooled_eer(vectors: np.ndarray, keys: np.ndarray, genuine: np.ndarray, distance) -> float:
    labels, scores = [], []
    for writer in sorted(set(keys)):
        g = np.flatnonzero((keys == writer) & genuine)
        f = np.flatnonzero((keys == writer) & ~genuine)
        upper = np.triu_indices(len(g), 1)
        scores.append(-np.concatenate([distance(vectors[g], vectors[g])[upper], distance(vectors[g], vectors[f]).ravel()]))
        labels.append(np.concatenate([np.ones(len(upper[0])), np.zeros(len(g) * len(f))]))
    return 100 * eer(np.concatenate(labels), np.concatenate(scores))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=None, help="default: the shipped model")
    parser.add_argument("--writers", choices=["dev", "test"], default="dev")
    args = parser.parse_args()
    torch.set_num_threads(2)
    artifact = sigverify.load_model(args.model)
    e, d = artifact.network.embedding_dim, artifact.network.descriptor_dim
    if not artifact.size_weight or not d:
        raise SystemExit("this check is for a model that uses size and has a local head")
    records = read_datasets(DATA)
    train = internal_vectors(artifact, [r for r in records if r.writer_key in set(artifact.writers("train")) and r.is_genuine])
    chosen = [r for r in records if r.writer_key in set(artifact.writers(args.writers))]
    vectors = internal_vectors(artifact, chosen)
    keys = np.array([r.writer_key for r in chosen])
    genuine = np.array([r.is_genuine for r in chosen])

    def report(name: str, candidate: np.ndarray) -> None:
        print(f"{name:34s} Euclidean {pooled_eer(candidate, keys, genuine, euclidean):6.2f} %  cosine {pooled_eer(candidate, keys, genuine, cosine):6.2f} %", flush=True)

    print(f"{len(chosen)} images of {len(set(keys))} {args.writers} writers; {len(train)} training genuine images")
    report("raw vector", vectors)
    embedding, size, local = vectors[:, :e], vectors[:, e : e + 3], vectors[:, e + 3 :]
    if args.writers == "dev":
        signed_sqrt = np.sign(local) * np.sqrt(np.abs(local))
        forms = {
            "raw": local / np.linalg.norm(local, axis=1).mean(),
            "l2": local / np.linalg.norm(local, axis=1, keepdims=True),
            "ssqrt-l2": signed_sqrt / np.linalg.norm(signed_sqrt, axis=1, keepdims=True),
        }
        for form, w_local, w_size in itertools.product(forms, [0.25, 0.5, 1, 2, 4], [0, 1, 3]):
            report(f"round 1: {form} x{w_local}, size x{w_size}", np.hstack([embedding, w_size * size, w_local * forms[form]]))
        centred = size - train[:, e : e + 3].mean(axis=0)
        forms["raw"] = local / np.linalg.norm(train[:, e + 3 :], axis=1).mean()
        for form, w_local, w_size in itertools.product(["raw", "l2"], [1, 2, 4], [0.5, 1, 2, 3]):
            report(f"round 2: {form} x{w_local}, centred size x{w_size}", np.hstack([embedding, w_size * centred, w_local * forms[form]]))
    layout = RepresentLayout.fit(train, e, True, d)
    report("round 3: constant norm (2, 1)", layout.encode(vectors))
    if args.writers == "dev":  # stop 32: the constant-norm layout's two block weights, as training chooses them
        chosen = choose_weights(train, vectors, keys, genuine, e, True, d)
        for name, value in chosen["dev_table"].items():
            print(f"round 4: local x size chord {name:11s} Euclidean = cosine {100 * value:6.2f} %")
        print(f"round 4 choice: local {chosen['local_weight']}, size chord {chosen['size_scale']}")
    chosen_weights = artifact.metadata.get("represent")
    if chosen_weights:
        report(f"the model's layout {chosen_weights['local_weight']} x {chosen_weights['size_scale']}", artifact.to_represented(vectors))


if __name__ == "__main__":
    main()
