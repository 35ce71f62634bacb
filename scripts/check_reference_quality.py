#!/usr/bin/env python
"""How often the reference-consistency warning fires on honest reference sets, and how often it catches
a planted one: `python scripts/check_reference_quality.py MODEL DATA [DATA ...] [--writers dev|test]`.

For each writer of the chosen set, reference sets are drawn as the evaluation protocol draws them
(R = 5 and 12, 3 draws, seed 0). For each set: *false alarm* = any of its genuine references is
flagged; *hit (other writer)* = with one reference replaced by a genuine signature of another writer
of the set, that reference is flagged; *hit (skilled)* = the same with one of the writer's skilled
forgeries planted instead. Two limits on a reference's mean distance to the others are compared:
the model's fitted `thresholds.reference_consistency` (what `verify` uses, stop 23) and the
one-reference decision threshold `thresholds.distance` (what it used before). `--writers test` reads
the writers the model never saw (its metadata lists them); `dev` is in-sample for the fitted limit.
"""

import json
import time

import numpy as np

from sigverify.cache import load_or_build
from sigverify.calibration import inconsistent_references
from sigverify.datasets import read_datasets
from sigverify.protocol import multi_reference_trials

from _model_writers import parse_model_writers


def main() -> None:
    args, artifact, wanted = parse_model_writers(__doc__.splitlines()[0], default_writers="test", json_help="write the rates here")
    wanted = sorted(wanted)
    limits = {"fitted consistency limit": artifact.thresholds.get("reference_consistency"), "one-reference threshold": artifact.thresholds.get("distance")}
    if limits["fitted consistency limit"] is None:
        raise SystemExit(f"{args.model}: no thresholds.reference_consistency; run `sigverify recalibrate` on it first")
    cache = load_or_build(read_datasets(args.data), artifact.preprocess, log=None)
    keys = np.array([r.writer_key for r in cache.records])
    chosen = np.flatnonzero(np.isin(keys, wanted))
    if len(chosen) == 0:
        raise SystemExit(f"none of the model's {args.writers} writers is in {args.data}")
    started = time.time()
    vectors = artifact.vectors(cache.images[chosen], cache.sizes[chosen])
    distances = artifact.comparator.matrix(vectors, vectors)  # computed in row blocks, so memory stays bounded
    records = [cache.records[i] for i in chosen]
    writer_of = keys[chosen]
    genuine = np.array([r.is_genuine for r in records])
    all_ids = cache.content_ids()
    content_ids = [all_ids[i] for i in chosen]
    print(f"{len(chosen)} images of {len(set(writer_of))} {args.writers} writers; distances in {time.time() - started:.0f} s")
    rng = np.random.default_rng(0)
    result: dict = {"model": args.model, "model_version": artifact.version, "writers": args.writers, "limits": limits, "by_refs": {}}
    for n_refs in (5, 12):
        trials = multi_reference_trials(records, n_refs, draws=3, seed=0, content_ids=content_ids).trials
        counts = {name: {"false_alarm": [], "references_flagged": [], "hit_other_writer": [], "hit_skilled": []} for name in limits}
        for trial in trials:
            refs = np.asarray(trial.references)
            position = rng.integers(len(refs))
            other = refs.copy()
            other[position] = rng.choice(np.flatnonzero(genuine & (writer_of != trial.writer)))
            forgeries = np.flatnonzero(~genuine & (writer_of == trial.writer))
            skilled = None
            if len(forgeries):
                skilled = refs.copy()
                skilled[position] = rng.choice(forgeries)
            for name, limit in limits.items():
                honest = inconsistent_references(distances[np.ix_(refs, refs)], limit)
                counts[name]["false_alarm"].append(honest.any())
                counts[name]["references_flagged"].append(honest.mean())
                counts[name]["hit_other_writer"].append(inconsistent_references(distances[np.ix_(other, other)], limit)[position])
                if skilled is not None:
                    counts[name]["hit_skilled"].append(inconsistent_references(distances[np.ix_(skilled, skilled)], limit)[position])
        rates = {name: {k: float(np.mean(v)) if v else None for k, v in c.items()} | {"sets": len(trials)} for name, c in counts.items()}
        result["by_refs"][str(n_refs)] = rates
        for name, r in rates.items():
            skilled_text = "n/a" if r["hit_skilled"] is None else f"{100 * r['hit_skilled']:.1f} %"
            print(f"R={n_refs:2d} {name:25s} ({limits[name]:.3f}): false alarm {100 * r['false_alarm']:5.1f} % of sets "
                  f"({100 * r['references_flagged']:4.1f} % of references), hit other writer {100 * r['hit_other_writer']:5.1f} %, "
                  f"hit skilled {skilled_text} ({r['sets']} sets)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main()
