from collections import Counter

import pytest

from sigverify.datasets import FORGED, GENUINE, Record
from sigverify.splits import (
    PKSampler,
    WriterOverlapError,
    WriterSplit,
    assert_writer_disjoint,
    fold_split,
    kfold_writers,
    make_pairs,
    make_triplets,
)
from sigverify.splits import split_writers


def fake_records(n_writers=20, genuine=6, forged=3, datasets=("d1", "d2")):
    records = []
    for dataset in datasets:
        for w in range(n_writers):
            for i in range(genuine):
                records.append(Record(f"/{dataset}/{w}/g{i}.png", str(w), GENUINE, dataset))
            for i in range(forged if w % 2 == 0 else 0):
                records.append(Record(f"/{dataset}/{w}/f{i}.png", str(w), FORGED, dataset))
    return records


def test_split_is_writer_disjoint_seeded_and_stratified():
    records = fake_records()
    split = split_writers(records, dev_fraction=0.1, test_fraction=0.2, seed=3)
    assert_writer_disjoint(train=split.train, dev=split.dev, test=split.test)
    assert sorted(split.train + split.dev + split.test) == sorted({r.writer_key for r in records})
    assert split.to_dict() == split_writers(records, dev_fraction=0.1, test_fraction=0.2, seed=3).to_dict()
    assert split.test != split_writers(records, seed=4).test
    # Each dataset and each forgery stratum is represented in test.
    assert {w.split("/")[0] for w in split.test} == {"d1", "d2"}
    with_forgeries = {r.writer_key for r in records if r.label == FORGED}
    assert any(w in with_forgeries for w in split.test) and any(w not in with_forgeries for w in split.test)
    assert len(split.test) == 8 and len(split.dev) == 4


def test_overlap_is_impossible():
    with pytest.raises(WriterOverlapError, match="'d/1' is in both 'train' and 'test'"):
        WriterSplit(train=["d/1", "d/2"], dev=["d/3"], test=["d/1"])
    with pytest.raises(WriterOverlapError):
        assert_writer_disjoint(a=["x"], b=["y", "x"])


def test_split_round_trip(tmp_path):
    split = split_writers(fake_records(), seed=0)
    split.save(tmp_path / "split.json")
    assert WriterSplit.load(tmp_path / "split.json").to_dict() == split.to_dict()


def test_kfold_covers_every_writer_once():
    records = fake_records()
    folds = kfold_writers(records, 5, seed=0)
    everyone = sorted(w for fold in folds for w in fold)
    assert everyone == sorted({r.writer_key for r in records})
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    for k in range(5):
        split = fold_split(records, 5, k, seed=0)
        assert split.test == folds[k]
        assert_writer_disjoint(train=split.train, dev=split.dev, test=split.test)
        assert len(split.dev) > 0
    with pytest.raises(ValueError):
        kfold_writers(records, 1)


def test_pairs_balanced_and_labelled():
    records = fake_records()
    pairs = make_pairs(records, seed=0)
    kinds = Counter(p.kind for p in pairs)
    assert kinds["genuine"] == sum(p.same for p in pairs)
    assert kinds["skilled"] + kinds["random"] == kinds["genuine"]
    for p in pairs:
        a, b = records[p.a], records[p.b]
        if p.kind == "genuine":
            assert a.writer_key == b.writer_key and a.label == b.label == GENUINE and p.a != p.b
        elif p.kind == "skilled":
            assert a.writer_key == b.writer_key and a.label == GENUINE and b.label == FORGED
        else:
            assert a.writer_key != b.writer_key and a.label == b.label == GENUINE
    assert pairs == make_pairs(records, seed=0)


def test_pairs_restricted_to_subset():
    records = fake_records()
    subset = [i for i, r in enumerate(records) if r.dataset == "d1"]
    assert all(records[p.a].dataset == records[p.b].dataset == "d1" for p in make_pairs(records, subset=subset))


def test_triplets():
    records = fake_records()
    triplets = make_triplets(records, per_writer=10, seed=0)
    assert len(triplets) == 10 * 40
    for t in triplets:
        a, p, n = records[t.anchor], records[t.positive], records[t.negative]
        assert a.writer_key == p.writer_key and a.label == p.label == GENUINE and t.anchor != t.positive
        if t.kind == "skilled":
            assert n.writer_key == a.writer_key and n.label == FORGED
        else:
            assert n.writer_key != a.writer_key
    assert Counter(t.kind for t in triplets)["skilled"] > 50


def test_pk_sampler():
    records = fake_records()
    sampler = PKSampler(records, p=4, k=3, forged_per_writer=2, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 10
    for batch in batches:
        writers = Counter(records[i].writer_key for i in batch if records[i].label == GENUINE)
        assert len(writers) == 4 and set(writers.values()) == {3}
        for i in batch:
            if records[i].label == FORGED:
                assert records[i].writer_key in writers
    with pytest.raises(ValueError):
        PKSampler(records, p=1, k=3)


def test_pk_sampler_resumes_mid_pass_exactly():
    """A training run resumed from a checkpoint gets the batches an uninterrupted run gets, even when
    it stopped in the middle of a pass over the writers (stop 26: the order used to be redrawn)."""
    import json

    records = fake_records()

    def stream(sampler):
        while True:
            yield from sampler

    uninterrupted = stream(PKSampler(records, p=4, k=3, forged_per_writer=2, seed=7))
    expected = [next(uninterrupted) for _ in range(23)]  # 2.3 passes of 10 batches
    first = PKSampler(records, p=4, k=3, forged_per_writer=2, seed=7)
    before = stream(first)
    got = [next(before) for _ in range(13)]  # stop 3 batches into the second pass
    saved = json.loads(json.dumps(first.state_dict()))  # as the checkpoint stores it
    resumed = PKSampler(records, p=4, k=3, forged_per_writer=2, seed=0)
    resumed.load_state_dict(saved)
    after = stream(resumed)
    got += [next(after) for _ in range(10)]
    assert got == expected
    # Without the pass in progress (what checkpoints kept before) the batches differ.
    legacy = PKSampler(records, p=4, k=3, forged_per_writer=2, seed=0)
    legacy.rng.bit_generator.state = saved["rng"]
    assert [next(stream(legacy)) for _ in range(1)] != expected[13:14]
    # A state from another training set is refused, not half-applied.
    with pytest.raises(ValueError, match="does not have"):
        resumed.load_state_dict({**saved, "order": ["nobody"] * 4})
