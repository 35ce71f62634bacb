import numpy as np
import pytest

from sigverify.metrics import auc, confusion, eer, rates_at, verification_metrics


def test_eer_exact_crossing():
    labels = [1, 1, 1, 1, 0, 0, 0, 0]
    scores = [0.9, 0.8, 0.7, 0.3, 0.6, 0.4, 0.2, 0.1]
    rate, threshold = eer(labels, scores)
    assert rate == pytest.approx(0.25)
    assert threshold == pytest.approx(0.6)
    assert rates_at(labels, scores, threshold) == {"far": 0.25, "frr": 0.25, "accuracy": 0.75}


def test_eer_interpolated():
    # FRR stays 1/3 while FAR jumps from 0 to 1/2: the curves cross at 1/3.
    labels = [1, 1, 1, 0, 0]
    scores = [0.9, 0.8, 0.7, 0.75, 0.1]
    rate, threshold = eer(labels, scores)
    assert rate == pytest.approx(1 / 3)
    assert threshold == pytest.approx(0.75)


def test_perfect_and_inverted():
    assert eer([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1])[0] == 0.0
    assert eer([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9])[0] == 1.0
    assert auc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == 1.0


def test_rates_and_confusion_at_threshold():
    labels = [1, 1, 1, 0, 0]
    scores = [0.9, 0.8, 0.7, 0.75, 0.1]
    assert rates_at(labels, scores, 0.75) == pytest.approx({"far": 0.5, "frr": 1 / 3, "accuracy": 0.6})
    assert confusion(labels, scores, 0.75) == {"tp": 2, "fn": 1, "fp": 1, "tn": 1}


def test_verification_metrics_per_kind():
    labels = np.array([1, 1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.6, 0.7, 0.3, 0.2, 0.1])
    kinds = np.array(["genuine"] * 3 + ["skilled", "skilled", "random", "random"])
    result = verification_metrics(labels, scores, kinds=kinds, threshold=0.5)
    assert result["far_skilled"] == 0.5 and result["far_random"] == 0.0
    assert result["frr"] == 0.0
    assert result["eer_random"] == 0.0
    assert result["eer_skilled"] == pytest.approx(eer([1, 1, 1, 0, 0], [0.9, 0.8, 0.6, 0.7, 0.3])[0])


def test_bad_metric_inputs():
    with pytest.raises(ValueError, match="both genuine"):
        eer([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        eer([1, 0], [np.nan, 0.2])
    with pytest.raises(ValueError, match="one length"):
        eer([1, 0, 1], [0.1, 0.2])


def test_reference_consistency_limit_on_hand_built_writers():
    from sigverify.calibration import mean_distance_to_others, reference_consistency_distance
    from sigverify.datasets import FORGED, GENUINE, Record

    # Each writer's genuine signatures are the corners of a regular simplex: every pair of them is
    # `side` apart, so every reference's mean distance to the others is exactly its writer's side.
    sides = {"a": 1.0, "b": 1.0, "c": 3.0}
    records, vectors = [], []
    for offset, (writer, side) in enumerate(sides.items()):
        for i in range(6):
            corner = np.zeros(30)
            corner[offset * 10 + i] = side / np.sqrt(2)
            records.append(Record(f"/{writer}/g{i}.png", writer, GENUINE, "toy"))
            vectors.append(corner)
        records.append(Record(f"/{writer}/f0.png", writer, FORGED, "toy"))  # forgeries are never references
        vectors.append(np.full(30, 50.0))
    vectors = np.array(vectors)
    pairwise = np.array([[0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [3.0, 2.0, 0.0]])
    np.testing.assert_allclose(mean_distance_to_others(pairwise), [2.0, 1.5, 2.5])
    # A third of all references belong to writer c, so the 99th percentile is c's side; the median a's.
    assert reference_consistency_distance(vectors, records, refs=(3, 5)) == pytest.approx(3.0)
    assert reference_consistency_distance(vectors, records, refs=(3, 5), quantile=0.5) == pytest.approx(1.0)
    assert reference_consistency_distance(vectors, records, refs=(6,)) is None  # no writer has 7: nothing to fit
