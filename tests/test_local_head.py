"""The learned local comparison head: batch pairs, the learned distance, training it from a
trained embedding, and every decision method and the facade on a model that has one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import LOCAL_HEAD_SETTINGS
from sigverify.calibration import pick_entry, to_probability
from sigverify.models.artifact import load_artifact
from sigverify.models.local import LearnedDistance, LocalComparator, batch_pairs

SETTINGS = LOCAL_HEAD_SETTINGS


def test_batch_pairs_are_the_same_writer_pairs_and_some_random_ones():
    writer = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    genuine = np.array([True, True, True, True, True, True, False, False])
    first, second, target = batch_pairs(writer, genuine, random_pairs=5, rng=np.random.default_rng(0))
    pairs = list(zip(first.tolist(), second.tolist(), target.tolist()))
    positives = sorted((a, b) for a, b, t in pairs if t == 1)
    assert positives == [(0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5)]
    skilled = sorted((a, b) for a, b, t in pairs if t == 0 and not genuine[b])
    assert skilled == [(0, 6), (1, 6), (2, 6), (3, 7), (4, 7), (5, 7)]
    random = [(a, b) for a, b, t in pairs if t == 0 and genuine[b]]
    assert len(random) == 5 and all(writer[a] != writer[b] and genuine[a] for a, b in random)


def _distance(size_dims: int = 0) -> LearnedDistance:
    torch.manual_seed(0)
    comparator = LocalComparator(channels=6, map_size=(3, 4), projected=2, hidden=8)
    with torch.no_grad():  # non-trivial batch-norm statistics, as after training
        comparator.train()
        comparator.compare(torch.randn(16, 6, 3, 4))
    return LearnedDistance(comparator, embedding_dim=5, size_dims=size_dims)


def test_learned_distance_is_symmetric_non_negative_and_its_matrix_matches_the_pairs():
    distance = _distance(size_dims=3)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 5 + 3 + 24)).astype(np.float32), rng.normal(size=(3, 5 + 3 + 24)).astype(np.float32)
    matrix = distance.matrix(a, b)
    assert matrix.shape == (4, 3) and (matrix >= 0).all()
    np.testing.assert_allclose(matrix, distance.matrix(b, a).T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(matrix[2, 1], distance.paired(a[2:3], b[1:2])[0], rtol=1e-5)
    matrix[:] = -1  # the remembered matrix is a copy: changing the answer cannot change the next one
    assert (distance.matrix(a, b) >= 0).all()
    matrix = distance.matrix(a, b)
    # a larger size difference can only make the pair less likely the same writer's
    far = b.copy()
    far[:, 5:8] += 3.0
    assert (distance.matrix(a, far) > matrix).all()
    assert distance.global_part(a).shape == (4, 8)
    # Large matrices are computed in row blocks (batch size 1: 16 // 3 = 5 rows of 3 pairs a block): same answer.
    many = rng.normal(size=(12, 5 + 3 + 24)).astype(np.float32)
    blocked = _distance(size_dims=3)
    blocked.comparator.load_state_dict(distance.comparator.state_dict())
    blocked.batch_size = 1
    np.testing.assert_allclose(blocked.matrix(many, b), distance.matrix(many, b), rtol=1e-5)
    assert blocked.matrix(many[:0], b).shape == (0, 3)
    with pytest.raises(ValueError, match="vectors of size"):
        distance.matrix(a[:, :10], b)


def test_comparator_serves_with_one_pass_and_trains_with_both_directions():
    """Both directions of a pair give the same numbers (the inputs are symmetric), so serving runs one
    pass - bit for bit the trained two-pass mean; training keeps both passes (each updates batch-norm)."""
    torch.manual_seed(0)
    comparator = LocalComparator(8, (3, 4), projected=4, hidden=8)
    first, second, global_distance = torch.randn(6, 4, 3, 4), torch.randn(6, 4, 3, 4), torch.rand(6)
    comparator.train()
    tracked = comparator.compare[1].num_batches_tracked.item()
    comparator.logit(first, second, global_distance)
    assert comparator.compare[1].num_batches_tracked.item() == tracked + 2
    comparator.eval()
    with torch.inference_mode():
        two_way = comparator.bias - comparator.scale * global_distance + (comparator._one_way(first, second) + comparator._one_way(second, first)) / 2
        assert torch.equal(comparator.logit(first, second, global_distance), two_way)
        assert torch.equal(comparator.logit(second, first, global_distance), two_way)


def test_local_head_settings_are_checked():
    from sigverify.train import TrainConfig

    with pytest.raises(ValueError, match="projected and hidden"):
        TrainConfig(loss="local-pair", local_head={"width": 3})
    with pytest.raises(ValueError, match="local-pair"):
        TrainConfig(loss="triplet-hard", local_head={"projected": 4})


def test_reference_episode_scores_are_cohort_multi_k_on_the_batch():
    """The training episode's statistic is the decision method's, computed on the same distances:
    each writer's 3 references, the other writers' references as the cohort."""
    from sigverify.methods import EUCLIDEAN, Cohort, raw_scores
    from sigverify.models.local import episode_loss, episode_scores, reference_episode

    writer = np.repeat(np.arange(4), 6)  # 4 writers x (5 genuine + 1 forgery), a P x K batch
    genuine = np.tile([True] * 5 + [False], 4)
    episode = reference_episode(writer, genuine, rng=np.random.default_rng(3))
    assert episode.references.shape == (4, 3)
    assert all((writer[row] == writer[episode.references[w, 0]]) for row, w in zip(episode.query_rows, episode.query_writer))
    assert sorted(episode.query_genuine.tolist()) == [False] * 4 + [True] * 8  # 2 genuine + 1 forgery each
    assert not set(episode.references.ravel()) & set(episode.query_rows.tolist())

    vectors = np.random.default_rng(4).normal(size=(len(writer), 7))
    distances = torch.tensor(np.linalg.norm(vectors[episode.pair_first] - vectors[episode.pair_second], axis=1), requires_grad=True)
    scores = episode_scores(distances, episode)
    flat = episode.references.ravel()
    for w, refs in enumerate(episode.references):
        cohort = Cohort(vectors[[r for r in flat if r not in refs]])
        queries = episode.query_rows[episode.query_writer == w]
        expected = raw_scores("cohort-multi-k", vectors[refs], vectors[queries], comparator=EUCLIDEAN, cohort=cohort)
        np.testing.assert_allclose(scores.detach().numpy()[episode.query_writer == w], expected, rtol=1e-6)

    loss = episode_loss(scores, episode.query_genuine)
    loss.backward()
    assert loss.item() > 0 and distances.grad.abs().sum() > 0
    # In units of the batch's own spread: forgeries far below every genuine query cost little (two tight
    # classes sit about 2 spreads apart: softplus(-2) = 0.13), the reverse a lot, and scale does not matter.
    separated = torch.where(torch.as_tensor(episode.query_genuine), 10.0, -10.0) + torch.linspace(0, 1, len(scores))
    assert episode_loss(separated, episode.query_genuine) < 0.15 and episode_loss(-separated, episode.query_genuine) > 2.0
    assert episode_loss(separated * 7, episode.query_genuine).item() == pytest.approx(episode_loss(separated, episode.query_genuine).item(), rel=1e-5)
    # A writer without enough genuine images or without a forgery is left out; one writer left is no episode.
    no_forgery = np.tile([True] * 5 + [False], 2)
    no_forgery[11] = True  # writer 1 without a forgery
    assert reference_episode(writer[:12], no_forgery, rng=np.random.default_rng(0)) is None
    too_few = np.tile([True] * 5 + [False], 2)
    too_few[7:10] = False  # writer 1 with 3 genuine rows
    assert reference_episode(writer[:12], too_few, rng=np.random.default_rng(0)) is None
    assert reference_episode(writer[:12], np.tile([True] * 5 + [False], 2), rng=np.random.default_rng(0)) is not None


def test_episode_settings_are_checked():
    from sigverify.train import TrainConfig

    with pytest.raises(ValueError, match="episode_weight"):
        TrainConfig(loss="triplet-hard", episode_weight=1.0)
    with pytest.raises(ValueError, match="episode_weight"):
        TrainConfig(loss="local-pair", episode_weight=-1.0)
    with pytest.raises(ValueError, match="selection"):
        TrainConfig(loss="local-pair", selection="best")


def test_local_head_trains_from_an_embedding_and_serves_every_method(tmp_path, toy_data, monkeypatch):
    import sigverify
    from sigverify.methods import METHODS
    from sigverify.train import TrainConfig, train

    cache = str(tmp_path / "cache")
    start = train(TrainConfig(data=[str(toy_data)], out=str(tmp_path / "start"), loss="triplet-hard", epochs=1, cache_dir=cache, **SETTINGS),
                  log=lambda _: None, progress=False)
    local = train(
        TrainConfig(data=[str(toy_data)], out=str(tmp_path / "local"), loss="local-pair", init=str(start), epochs=2, cache_dir=cache,
                    local_head={"projected": 4, "hidden": 8}, trunk_lr_scale=0.1, local_random_pairs=8, **SETTINGS),
        log=lambda _: None, progress=False,
    )
    artifact = load_artifact(local)
    assert artifact.metadata["local_head"]["projected"] == 4
    assert artifact.metadata["local_head"]["map_size"] == [3, 6]  # 80 x 120 canvas: 18x28 -> 8x13 -> 3x6
    assert artifact.vector_dim == artifact.global_dim + 4 * 3 * 6
    assert isinstance(artifact.comparator, LearnedDistance)
    assert artifact.background.shape[1] == artifact.global_dim  # no local descriptors stored for WD
    assert artifact.cohort.vectors.shape[1] == artifact.vector_dim  # the cohort is compared with the learned distance

    # The embedding part starts from the init file: same tensors before any step changes them.
    assert set(load_artifact(start).network.state_dict()) < set(artifact.network.state_dict())

    # A file whose declared head does not match its tensors is refused, not half-loaded.
    from sigverify.errors import ModelError
    from sigverify.models.artifact import read_artifact, write_artifact

    metadata, tensors = read_artifact(local)
    write_artifact(tmp_path / "wrong-head.safetensors", tensors, {**metadata, "local_head": {**metadata["local_head"], "projected": 5}})
    with pytest.raises(ModelError, match="do not match"):
        load_artifact(tmp_path / "wrong-head.safetensors")

    images = sorted(Path(toy_data).rglob("*.png"))
    paths = [str(p) for p in images[:5]]
    vectors = sigverify.represent(paths, model=str(local))
    assert vectors.shape == (5, artifact.represent_dim) and artifact.represent_dim == artifact.vector_dim + (3 if artifact.size_weight else 0) + 2
    norms = np.linalg.norm(vectors, axis=1)
    assert np.allclose(norms, norms[0], rtol=1e-5)  # one norm for all: cosine and Euclidean rank pairs alike
    for method in METHODS:
        result = sigverify.verify(paths[0], paths[1:], model=str(local), method=method)
        assert 0.0 <= result["score"] <= 1.0 and result["decision"] in ("genuine", "forged", "inconclusive")
    by_vectors = sigverify.verify(paths[0], list(vectors[1:]), model=str(local), method="writer-threshold")
    by_images = sigverify.verify(paths[0], paths[1:], model=str(local), method="writer-threshold")
    assert by_vectors["score"] == pytest.approx(by_images["score"], abs=1e-6)
    # sigverify.distances is the learned distance the methods use, not a plain distance on the vectors.
    learned = sigverify.distances(vectors[:1], vectors[1:], model=str(local))
    internal = artifact.from_represented(vectors)
    np.testing.assert_allclose(learned, artifact.comparator.matrix(internal[:1], internal[1:]), rtol=1e-5, atol=1e-6)
    assert not np.allclose(learned[0], np.linalg.norm(vectors[1:] - vectors[0], axis=1), rtol=1e-2)
    one = sigverify.verify(paths[0], [vectors[1]], model=str(local), method="single")
    entry = pick_entry(artifact.calibration, "single", 1)
    assert one["score"] == pytest.approx(float(to_probability(entry, -learned[0, :1])[0]), abs=1e-5)

    # The pooled multi-reference term trains on top of the pair loss, and "last" keeps the last epoch
    # whatever the dev EER says.
    episode = train(
        TrainConfig(data=[str(toy_data)], out=str(tmp_path / "episode"), loss="local-pair", init=str(local), epochs=2, cache_dir=cache,
                    local_head={"projected": 4, "hidden": 8}, trunk_lr_scale=0.1, local_random_pairs=8, episode_weight=1.0,
                    selection="last", **SETTINGS),
        log=lambda _: None, progress=False,
    )
    assert load_artifact(episode).metadata["selected_epoch"] == 2
    history = json.loads((tmp_path / "episode" / "log.json").read_text())
    assert all(np.isfinite(row["loss"]) for row in history)

    # Recalibration refits what training fitted on the dev writers, without touching the weights.
    from sigverify.train import recalibrate

    metadata, tensors = read_artifact(local)
    write_artifact(local, tensors, {**metadata, "training": {**metadata["training"], "machine": "the machine it trained on"}})
    before = load_artifact(local)
    # within the same second as training (the version's clock): the version must still change
    monkeypatch.setattr("sigverify.train.time.strftime", lambda *_: before.version.rsplit("-", 1)[1])
    again = load_artifact(recalibrate(Path(local).parent, log=lambda _: None, command="test"))
    monkeypatch.undo()
    assert again.version == before.version + "-recalibrated"
    assert again.size_weight == before.size_weight and again.metadata["size_weight_dev_table"] == before.metadata["size_weight_dev_table"]
    # represent()'s block weights are chosen on the same dev writers, recorded, and laid out with
    chosen = again.metadata["represent"]
    assert chosen["dev_eer"] == min(chosen["dev_table"].values()) and chosen == before.metadata["represent"]
    assert (again.represent_layout.local_weight, again.represent_layout.size_scale) == (chosen["local_weight"], chosen["size_scale"])
    assert again.metadata["calibration"].keys() == before.metadata["calibration"].keys()
    recorded = again.metadata["training"]
    assert recorded["recalibrated"]["command"] == "test" and recorded["command"] == before.metadata["training"]["command"]
    assert recorded["init_version"] == before.metadata["training"]["init_version"]
    from sigverify.machine import machine_description  # the CPU and its bf16 instructions: bf16 runs depend on them

    assert recorded["machine"] == "the machine it trained on"  # kept; the refit's own machine is in its record
    assert recorded["recalibrated"]["machine"] == machine_description() and torch.__version__ in machine_description()
    for name, tensor in before.network.state_dict().items():
        assert torch.equal(tensor, again.network.state_dict()[name])
    assert sigverify.load_model(str(local)).version == again.version  # the facade does not serve the old file
    assert sigverify.represent(paths[:2], model=str(local)).shape == (2, again.represent_dim)
    with pytest.raises(FileNotFoundError, match="not a finished training run"):
        recalibrate(tmp_path, log=lambda _: None)

    # A model file with no run folder (a shipped or exported model, here one from before the cohort)
    # is refitted in place from the config, data and split it records.
    from sigverify.models.artifact import read_artifact, write_artifact

    metadata, tensors = read_artifact(again.path)
    exported = tmp_path / "exported.safetensors"
    write_artifact(exported, {k: v for k, v in tensors.items() if k != "extra.cohort"}, {**metadata, "extras": [e for e in metadata["extras"] if e != "cohort"]})
    assert load_artifact(exported).cohort is None
    refitted = load_artifact(recalibrate(exported, log=lambda _: None, command="file"))
    assert refitted.path == str(exported) and refitted.cohort.vectors.shape == again.cohort.vectors.shape
    assert refitted.metadata["calibration"] == again.metadata["calibration"]
    for key in ("epochs_run", "command", "init_version", "split"):
        assert refitted.metadata["training"][key] == recorded[key]
    assert refitted.metadata["selected_epoch"] == again.metadata["selected_epoch"]
    assert refitted.metadata["training"]["recalibrated"]["command"] == "file"
    for name, tensor in again.network.state_dict().items():
        assert torch.equal(tensor, refitted.network.state_dict()[name])
    bare = tmp_path / "bare.safetensors"
    write_artifact(bare, tensors, {**metadata, "training": {}})
    with pytest.raises(ValueError, match="does not record its training config and split"):
        recalibrate(bare, log=lambda _: None)
    with pytest.raises(FileNotFoundError, match="no such training run folder or model file"):
        recalibrate(tmp_path / "typo.safetensors", log=lambda _: None)
    # Weights a script put in the run folder (scripts/last_epoch_init.py: another epoch, no dev metrics)
    # are calibrated like any others, and the run says which epoch it holds.
    best_metadata, best_tensors = read_artifact(Path(local).parent / "best.safetensors")
    write_artifact(Path(local).parent / "best.safetensors", best_tensors, {**best_metadata, "epoch": 99, "dev_metrics": {}})
    lines: list[str] = []
    last = load_artifact(recalibrate(Path(local).parent, log=lines.append, command="last epoch"))
    assert last.metadata["selected_epoch"] == 99 and last.metadata["dev_metrics"] == {}
    assert "epoch 99, no dev EER recorded" in lines[-1]
