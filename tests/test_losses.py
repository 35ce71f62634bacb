"""Losses against brute-force loops on small hand-made batches."""

import itertools

import pytest
import torch

from sigverify.models.losses import (
    PairHead,
    WriterForgeryHead,
    batch_contrastive_loss,
    contrastive_loss,
    pair_bce_loss,
    pairwise_distances,
    triplet_batch_all,
    triplet_hard,
    triplet_semihard,
)

# 1-D embeddings make every distance |x_i - x_j|, computable by hand.
X = torch.tensor([[0.0], [1.0], [3.0], [1.5], [5.0], [0.4], [2.2]])
# writers 0, 0, 1, 1, forgery, 0, forgery (forgeries carry unique negative ids)
LABELS = torch.tensor([0, 0, 1, 1, -5, 0, -7])


def brute_distance(i, j):
    return abs(float(X[i, 0] - X[j, 0]))


def positives(a):
    return [p for p in range(len(X)) if p != a and LABELS[p] == LABELS[a] and LABELS[a] >= 0]


def negatives(a):
    return [n for n in range(len(X)) if LABELS[n] != LABELS[a]]


def test_pairwise_distances():
    distances = pairwise_distances(X)
    for i, j in itertools.product(range(len(X)), repeat=2):
        assert distances[i, j].item() == pytest.approx(brute_distance(i, j), abs=1e-5)


@pytest.mark.parametrize("margin", [0.2, 1.0, 2.5])
def test_semihard_matches_brute_force(margin):
    terms = []
    for a in range(len(X)):
        for p in positives(a):
            d_ap = brute_distance(a, p)
            outside = [brute_distance(a, n) for n in negatives(a) if brute_distance(a, n) > d_ap]
            d_an = min(outside) if outside else max(brute_distance(a, n) for n in negatives(a))
            terms.append(max(0.0, d_ap - d_an + margin))
    assert triplet_semihard(X, LABELS, margin).item() == pytest.approx(sum(terms) / len(terms), abs=1e-5)


def test_semihard_selection_on_a_hand_built_case():
    # Anchor 0 at 0, positive 1 at 1 (d_ap = 1). Negatives at 0.4 (inside: nearer than the positive),
    # 1.5 and 2.2 (outside). Semi-hard picks 1.5, the nearest negative farther than the positive:
    # loss = max(0, 1 - 1.5 + 1) = 0.5. (Batch-hard would pick 0.4: 1 - 0.4 + 1 = 1.6.)
    x = torch.tensor([[0.0], [1.0], [0.4], [1.5], [2.2]])
    labels = torch.tensor([0, 0, -1, -2, -3])
    # Pairs (0,1) and (1,0). For anchor 1 at 1: d_ap = 1, negatives at 0.6, 0.5, 1.2 -> outside 1.2:
    # loss = 1 - 1.2 + 1 = 0.8. Mean = (0.5 + 0.8) / 2.
    assert triplet_semihard(x, labels, 1.0).item() == pytest.approx(0.65, abs=1e-5)
    # No negative farther than the positive: the farthest negative is used.
    x2 = torch.tensor([[0.0], [3.0], [1.0], [2.0]])
    labels2 = torch.tensor([0, 0, -1, -2])
    # anchor 0: d_ap 3, negatives 1, 2 -> farthest 2: 3 - 2 + 0.5 = 1.5; anchor 1: d_ap 3, negs 2, 1 -> 2: 1.5
    assert triplet_semihard(x2, labels2, 0.5).item() == pytest.approx(1.5, abs=1e-5)


@pytest.mark.parametrize("margin", [0.3, 1.0])
def test_batch_hard_matches_brute_force(margin):
    terms = []
    for a in range(len(X)):
        if not positives(a):
            continue
        hardest_p = max(brute_distance(a, p) for p in positives(a))
        hardest_n = min(brute_distance(a, n) for n in negatives(a))
        terms.append(max(0.0, hardest_p - hardest_n + margin))
    assert triplet_hard(X, LABELS, margin).item() == pytest.approx(sum(terms) / len(terms), abs=1e-5)


@pytest.mark.parametrize("margin", [0.3, 1.0])
def test_batch_all_matches_brute_force(margin):
    active = []
    for a in range(len(X)):
        for p in positives(a):
            for n in negatives(a):
                value = brute_distance(a, p) - brute_distance(a, n) + margin
                if value > 1e-12:
                    active.append(value)
    assert triplet_batch_all(X, LABELS, margin).item() == pytest.approx(sum(active) / len(active), abs=1e-5)


def test_contrastive_matches_brute_force():
    margin = 2.0
    terms = []
    for i, j in itertools.combinations(range(len(X)), 2):
        d = brute_distance(i, j)
        if LABELS[i] == LABELS[j] and LABELS[i] >= 0:
            terms.append(d**2)
        elif LABELS[i] != LABELS[j]:
            terms.append(max(0.0, margin - d) ** 2)
    assert batch_contrastive_loss(X, LABELS, margin).item() == pytest.approx(0.5 * sum(terms) / len(terms), abs=1e-5)
    d = torch.tensor([0.5, 0.5, 3.0])
    same = torch.tensor([1, 0, 0])
    expected = 0.5 * (0.25 + (2 - 0.5) ** 2 + 0) / 3
    assert contrastive_loss(d, same, margin).item() == pytest.approx(expected)


def test_pair_head_l1_sigmoid_and_bce():
    torch.manual_seed(0)
    head = PairHead(1)
    with torch.no_grad():
        head.linear.weight.fill_(-2.0)
        head.linear.bias.fill_(1.0)
    # logit = 1 - 2 |x_i - x_j|
    assert head(X[:1], X[1:2]).item() == pytest.approx(1 - 2 * 1.0)
    pos, neg = [], []
    for i, j in itertools.combinations(range(len(X)), 2):
        logit = torch.tensor(1 - 2 * brute_distance(i, j))
        if LABELS[i] == LABELS[j] and LABELS[i] >= 0:
            pos.append(torch.nn.functional.softplus(-logit).item())
        elif LABELS[i] != LABELS[j] and LABELS[i] >= 0:
            neg.append(torch.nn.functional.softplus(logit).item())
    expected = 0.5 * (sum(pos) / len(pos) + sum(neg) / len(neg))
    assert pair_bce_loss(head, X, LABELS).item() == pytest.approx(expected, abs=1e-5)


def test_writer_forgery_head_ignores_forgeries_for_writer_loss():
    torch.manual_seed(0)
    head = WriterForgeryHead(4, 3)
    features = torch.randn(5, 4)
    writers = torch.tensor([0, 1, 2, 0, 0])
    forged = torch.tensor([False, False, False, True, True])
    loss = head.loss(features, writers, forged, forgery_weight=0.5)
    ce = torch.nn.functional.cross_entropy(head.writer(features[:3]), writers[:3])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(head.forgery(features).squeeze(-1), forged.float())
    assert loss.item() == pytest.approx((0.5 * ce + 0.5 * bce).item(), abs=1e-6)


def test_losses_have_gradients_and_handle_degenerate_batches():
    x = X.clone().requires_grad_(True)
    for loss_fn in (triplet_semihard, triplet_hard, triplet_batch_all):
        loss = loss_fn(x, LABELS, 1.0)
        loss.backward()
        assert torch.isfinite(x.grad).all()
        x.grad = None
    only_forgeries = torch.tensor([-1, -2, -3, -4, -5, -6, -7])
    for loss_fn in (triplet_semihard, triplet_hard, triplet_batch_all, batch_contrastive_loss):
        assert loss_fn(X, only_forgeries, 1.0).item() == 0.0 or loss_fn is batch_contrastive_loss
