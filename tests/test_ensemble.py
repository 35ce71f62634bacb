"""Ensembles of trainings of one recipe: vectors side by side, the mean of the members' distances,
their own calibration, the model file round trip, and k-fold evaluation of seed ensembles."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from helpers import LOCAL_HEAD_SETTINGS, TINY_FOLD_CONFIG
from sigverify.cache import load_or_build
from sigverify.cli import main
from sigverify.datasets import read_dataset
from sigverify.models.artifact import load_artifact, read_metadata
from sigverify.models.ensemble import EnsembleDistance, EnsembleModel
from sigverify.models.local import comparator_for
from sigverify.models.siamese import embed_images, with_sizes

SETTINGS = LOCAL_HEAD_SETTINGS


@pytest.fixture(scope="module")
def members(tmp_path_factory, toy_data):
    """Two local-head trainings of one recipe (seeds 0 and 1, one split), and one on another split."""
    from sigverify.train import TrainConfig, train

    root = tmp_path_factory.mktemp("members")
    cache = str(root / "cache")
    quiet = {"log": lambda _: None, "progress": False}
    start = train(TrainConfig(data=[str(toy_data)], out=str(root / "start"), loss="triplet-hard", epochs=1, cache_dir=cache, **SETTINGS), **quiet)
    local = dict(loss="local-pair", init=str(start), epochs=1, cache_dir=cache, local_head={"projected": 4, "hidden": 8}, local_random_pairs=8, **SETTINGS)
    seeds = [train(TrainConfig(data=[str(toy_data)], out=str(root / f"seed-{s}"), seed=s, **local), **quiet) for s in (0, 1)]
    other_split = train(TrainConfig(data=[str(toy_data)], out=str(root / "other"), split_seed=5, **local), **quiet)
    return seeds, other_split, root


def test_an_ensemble_compares_with_the_mean_of_its_members_distances(members, toy_data, tmp_path):
    from sigverify.train import build_ensemble

    (first, second), _, _ = members
    path = build_ensemble([first, second], tmp_path / "ensemble.safetensors", log=lambda _: None)
    artifact = load_artifact(path)
    parts = [load_artifact(first).network, load_artifact(second).network]
    assert isinstance(artifact.network, EnsembleModel) and isinstance(artifact.comparator, EnsembleDistance)
    assert artifact.metadata["embedding_dim"] == 32 and artifact.vector_dim == artifact.global_dim + 2 * parts[0].descriptor_dim
    recorded = artifact.metadata["training"]["ensemble_of"]
    assert [m["seed"] for m in recorded] == [0, 1] and [m["version"] for m in recorded] == [read_metadata(p)["version"] for p in (first, second)]
    assert artifact.metadata["training"]["split"] == load_artifact(first).metadata["training"]["split"]
    # The first member's recipe, but the ensemble's own place (not the folder the member was trained in).
    assert artifact.metadata["training"]["config"]["out"] == str(tmp_path) and artifact.metadata["training"]["config"]["name"] == "ensemble"
    assert "cohort" in artifact.extras and artifact.calibration and "distance" in artifact.thresholds

    cache = load_or_build(read_dataset(toy_data).records, artifact.preprocess, cache_dir=str(tmp_path / "cache"), log=None)
    images, sizes = cache.images[:6], cache.sizes[:6]
    vectors = artifact.vectors(images, sizes, bf16=False)
    assert vectors.shape == (6, artifact.vector_dim)
    # Each member on its own: its embedding and descriptor (the ensemble's size weight), its own learned distance.
    weight = artifact.size_weight
    own = [with_sizes(embed_images(net, images, with_local=True), sizes, weight, net.embedding_dim) for net in parts]
    expected = np.mean([comparator_for(net, weight).matrix(v, v) for net, v in zip(parts, own)], axis=0)
    np.testing.assert_allclose(artifact.comparator.matrix(vectors, vectors), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(vectors[:, :16], own[0][:, :16], atol=1e-5)  # embeddings first, side by side
    np.testing.assert_allclose(vectors[:, 16:32], own[1][:, :16], atol=1e-5)
    # The file round trip gives the same vectors.
    np.testing.assert_allclose(load_artifact(path).vectors(images, sizes, bf16=False), vectors, atol=1e-6)


def test_an_ensemble_verifies_like_any_model(members, toy_data, tmp_path, capsys):
    import sigverify

    (first, second), _, _ = members
    path = tmp_path / "e.safetensors"
    assert main(["ensemble", str(first), str(second), "--out", str(path)]) == 0
    assert capsys.readouterr().out.strip() == str(path)
    writer = next(r.writer_key for r in read_dataset(toy_data).records)
    genuine = [r.path for r in read_dataset(toy_data).records if r.writer_key == writer and r.label == "genuine"][:4]
    result = sigverify.verify(genuine[0], genuine[1:], model=str(path))
    assert result["decision"] in ("genuine", "forged", "inconclusive") and len(result["per_reference"]) == 3
    assert result["model"] == load_artifact(path).name
    vectors = sigverify.represent(genuine, model=str(path))
    assert vectors.shape == (4, load_artifact(path).represent_dim) and np.isfinite(vectors).all()


def test_members_that_cannot_be_joined_are_refused(members, tmp_path, capsys):
    from sigverify.train import build_ensemble

    (first, _), other_split, _ = members
    with pytest.raises(ValueError, match="at least two"):
        build_ensemble([first], tmp_path / "one.safetensors", log=lambda _: None)
    with pytest.raises(ValueError, match="another writer split"):
        build_ensemble([first, other_split], tmp_path / "mixed.safetensors", log=lambda _: None)
    assert main(["ensemble", str(first), str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()


# One epoch of three steps per fold and seed: four trainings, then two ensembles.
TINY_SEED_CONFIG = TINY_FOLD_CONFIG.replace("epochs = 2", "epochs = 1").replace("steps_per_epoch = 4", "steps_per_epoch = 3")


def test_kfold_evaluation_of_seed_ensembles(toy_data, tmp_path):
    from sigverify.report import run_evaluation

    config = tmp_path / "fold.toml"
    config.write_text(TINY_SEED_CONFIG)
    runs = tmp_path / "runs"
    quiet = {"folds": 2, "refs": (3,), "draws": 1, "methods": ("fusion-mean",), "controls": False, "log": lambda _: None}
    # One seed of one fold alone (as one process of several would), then everything else.
    run_evaluation([str(toy_data)], train_config=str(config), runs_dir=str(runs), seeds=[0, 1], only_folds=[0], only_seed=1, train_only=True, **quiet)
    assert (runs / "fold-0" / "seed-1" / "model.safetensors").exists() and not (runs / "fold-0" / "seed-0").exists()
    assert not list((runs / "fold-0").glob("ensemble*"))
    report = run_evaluation([str(toy_data)], train_config=str(config), runs_dir=str(runs), seeds=[0, 1], **quiet)
    assert report["protocol"]["ensemble_seeds"] == [0, 1]
    for fold, detail in enumerate(report["folds_detail"]):
        assert detail["model"] == str(runs / f"fold-{fold}" / "ensemble-seeds-0-1.safetensors")
        metadata = read_metadata(detail["model"])
        assert [m["seed"] for m in metadata["training"]["ensemble_of"]] == [0, 1]
        assert read_metadata(runs / f"fold-{fold}" / "seed-1" / "model.safetensors")["training"]["config"]["seed"] == 1
        assert not set(detail["test_writers"]) & set(metadata["training"]["split"]["train"] + metadata["training"]["split"]["dev"])
    tested = [w for fold in report["folds_detail"] for w in fold["test_writers"]]
    assert sorted(tested) == sorted({r.writer_key for r in read_dataset(toy_data).records})
    # The ensemble found in the runs folder must join these seeds' models, as they are now.
    shutil.copy(runs / "fold-1" / "ensemble-seeds-0-1.safetensors", runs / "fold-0" / "ensemble-seeds-0-1.safetensors")
    with pytest.raises(ValueError, match="joins other models"):
        run_evaluation([str(toy_data)], train_config=str(config), runs_dir=str(runs), seeds=[0, 1], only_folds=[0], **quiet)
    with pytest.raises(ValueError, match="two or more different seeds"):
        run_evaluation([str(toy_data)], train_config=str(config), runs_dir=str(runs), seeds=[3], **quiet)
    with pytest.raises(ValueError, match="--only-seed"):
        run_evaluation([str(toy_data)], train_config=str(config), runs_dir=str(runs), seeds=[0, 1], only_seed=1, **quiet)
