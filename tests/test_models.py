import json
import struct

import numpy as np
import pytest
import torch

from helpers import write_toy_writers
from sigverify import ModelError
from sigverify.models.artifact import load_artifact, read_metadata, save_model
from sigverify.models.augment import AugmentConfig, augment_batch
from sigverify.models.backbones import BACKBONES, build_backbone
from sigverify.models.siamese import SiameseModel, embed_images
from sigverify.preprocess import PreprocessConfig

TINY = {"depth": 10, "base_width": 8, "embedding_dim": 16}


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("signet", {"embedding_dim": 32}),
        ("signet-bn", {"embedding_dim": 32}),
        ("signet-slim", {"embedding_dim": 32}),
        ("resnet-attn", {"depth": 18, "base_width": 8, "embedding_dim": 32}),
        ("resnet-attn", {"depth": 34, "base_width": 8, "embedding_dim": 32}),
        ("resnet-attn", {"depth": 50, "base_width": 8, "embedding_dim": 32}),
    ],
)
def test_backbones_shapes(name, kwargs):
    model = build_backbone(name, **kwargs).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 150, 220))
    assert out.shape == (2, 32)


def test_registry_and_signet_layout():
    assert set(BACKBONES) == {"signet", "signet-bn", "signet-slim", "resnet-attn"}
    with pytest.raises(ValueError, match="unknown model"):
        build_backbone("vgg")
    signet = build_backbone("signet")
    convs = [m for m in signet.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (96, (11, 11), (4, 4)), (256, (5, 5), (1, 1)), (384, (3, 3), (1, 1)), (384, (3, 3), (1, 1)), (256, (3, 3), (1, 1))
    ]
    assert sum(isinstance(m, torch.nn.LocalResponseNorm) for m in signet.features) == 2
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in signet.features) == 3
    resnet = build_backbone("resnet-attn", depth=18)
    assert len(resnet.attentions) == 4


def test_siamese_shares_weights():
    model = SiameseModel("resnet-attn", TINY).eval()
    x = torch.rand(3, 1, 64, 96)
    with torch.no_grad():
        both = model.embed(torch.cat([x, x]))
    assert torch.allclose(both[:3], both[3:], atol=1e-6)
    assert torch.allclose(both.norm(dim=1), torch.ones(6), atol=1e-5)


def test_augment_keeps_shape_range_and_is_seeded():
    x = torch.zeros(4, 1, 150, 220)
    x[:, :, 60:90, 50:170] = 1.0
    a = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(1))
    b = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(1))
    assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, x)
    identity = AugmentConfig(rotation=0, scale=(1, 1), stretch=0, shear=0, shift=0, p_dilate=0, p_erode=0, intensity=(1, 1), p_binarize=0)
    assert torch.allclose(augment_batch(x, identity, torch.Generator().manual_seed(0)), x, atol=1e-5)


def _tiny_artifact(tmp_path, **meta):
    torch.manual_seed(0)
    model = SiameseModel("resnet-attn", TINY, pair_head=True)
    metadata = {"name": "tiny", "preprocess": PreprocessConfig(height=64, width=96).to_dict(), "thresholds": {"distance": 0.7}, **meta}
    return model, save_model(tmp_path / "tiny.safetensors", model, metadata)


def test_save_load_round_trip_identical_embeddings(tmp_path):
    model, path = _tiny_artifact(tmp_path)
    images = np.random.default_rng(0).integers(0, 255, (5, 64, 96), dtype=np.uint8)
    loaded = load_artifact(path)
    first = embed_images(loaded.network, images)
    second = embed_images(load_artifact(path).network, images)
    assert np.array_equal(first, second)
    # fp16 storage: close to the fp32 original
    assert np.abs(first - embed_images(model, images)).max() < 5e-3
    assert loaded.preprocess == PreprocessConfig(height=64, width=96)
    assert loaded.thresholds == {"distance": 0.7}
    assert loaded.metadata["architecture"] == {"name": "resnet-attn", "args": TINY}
    assert path.stat().st_size < 200_000


def test_truncated_artifact(tmp_path):
    _, path = _tiny_artifact(tmp_path)
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 7):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelError, match="truncated or corrupt"):
            load_artifact(bad)


def test_missing_and_garbage_artifacts(tmp_path):
    with pytest.raises(ModelError, match="no such model file"):
        load_artifact(tmp_path / "nothing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelError):
        load_artifact(garbage)
    pickle_file = tmp_path / "model.pt"
    torch.save({"a": torch.zeros(1)}, pickle_file)
    with pytest.raises(ModelError):
        load_artifact(pickle_file)


def _rewrite_metadata(path, out, change):
    """Rewrite a safetensors file's JSON header (keeps the tensor bytes)."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    meta = json.loads(header["__metadata__"]["sigverify"])
    change(meta)
    header["__metadata__"]["sigverify"] = json.dumps(meta)
    blob = json.dumps(header).encode()
    blob += b" " * ((8 - len(blob) % 8) % 8)
    out.write_bytes(struct.pack("<Q", len(blob)) + blob + data[8 + length :])
    return out


def test_architecture_mismatch_refused(tmp_path):
    _, path = _tiny_artifact(tmp_path)
    wider = _rewrite_metadata(path, tmp_path / "wider.safetensors", lambda m: m["architecture"]["args"].update(base_width=16))
    with pytest.raises(ModelError, match="do not match the declared architecture"):
        load_artifact(wider)
    other = _rewrite_metadata(path, tmp_path / "other.safetensors", lambda m: m.update(architecture={"name": "signet", "args": {"embedding_dim": 16}}))
    with pytest.raises(ModelError, match="do not match"):
        load_artifact(other)
    unknown = _rewrite_metadata(path, tmp_path / "unknown.safetensors", lambda m: m.update(architecture={"name": "vgg99", "args": {}}))
    with pytest.raises(ModelError, match="cannot build declared architecture"):
        load_artifact(unknown)
    no_pre = _rewrite_metadata(path, tmp_path / "nopre.safetensors", lambda m: m.pop("preprocess"))
    with pytest.raises(ModelError, match="metadata lacks preprocess"):
        read_metadata(no_pre)


@pytest.mark.slow
def test_tiny_training_run_learns_and_separates(tmp_path):
    from sigverify.train import TrainConfig, train

    write_toy_writers(tmp_path / "toy", n_writers=14, n_genuine=8)
    config = TrainConfig(
        data=[str(tmp_path / "toy")],
        out=str(tmp_path / "run"),
        model="resnet-attn",
        model_args={"depth": 10, "base_width": 8},
        embedding_dim=16,
        loss="triplet-semihard",
        margin=0.5,
        lr=3e-3,
        warmup_steps=5,
        decay_steps=1000,
        epochs=5,
        steps_per_epoch=10,
        batch_writers=4,
        per_writer=4,
        forged_per_writer=0,
        dev_fraction=0.2,
        test_fraction=0.2,
        preprocess={"height": 64, "width": 96},
        threads=2,
    )
    lines = []
    path = train(config, log=lines.append, progress=False)
    history = json.loads((tmp_path / "run" / "log.json").read_text())
    assert history[-1]["loss"] < history[0]["loss"]
    artifact = load_artifact(path)
    assert artifact.metadata["dev_metrics"]["auc"] > 0.8
    assert set(artifact.metadata["training"]["test_writers"]) and "distance" in artifact.thresholds
    for name in ("log.csv", "curves.png", "split.json", "checkpoint.pt", "model.safetensors"):
        assert (tmp_path / "run" / name).exists()
    # Resume: a finished run continues from its checkpoint instead of starting over.
    with pytest.raises(FileExistsError):
        train(config, log=lines.append, progress=False)
    config.epochs = 6
    train(config, resume=True, log=lines.append, progress=False)
    assert any("resumed" in line for line in lines)
    assert len(json.loads((tmp_path / "run" / "log.json").read_text())) == 6


@pytest.mark.slow
def test_resumed_training_equals_an_uninterrupted_one(tmp_path):
    """Interrupting a run and resuming it must not change the weights (stop 26: the writer sampler
    used to redraw its order after a resume, so a resumed run trained on other batches). Three steps
    an epoch against two batches a pass: the interruption falls in the middle of a pass."""
    from sigverify.train import TrainConfig, train

    write_toy_writers(tmp_path / "toy", n_writers=14, n_genuine=8)

    def config(out: str, epochs: int) -> TrainConfig:
        return TrainConfig(
            data=[str(tmp_path / "toy")], out=str(tmp_path / out), model="resnet-attn",
            model_args={"depth": 10, "base_width": 8}, embedding_dim=16,
            loss="triplet-hard", margin=0.3, warmup_steps=2, epochs=epochs, steps_per_epoch=3,
            batch_writers=4, per_writer=4, forged_per_writer=0, dev_fraction=0.2, test_fraction=0.2,
            preprocess={"height": 64, "width": 96}, threads=2, use_size=False,
        )

    lines: list[str] = []
    train(config("whole", 2), log=lines.append, progress=False)
    train(config("split", 1), log=lines.append, progress=False)
    train(config("split", 2), resume=True, log=lines.append, progress=False)
    whole = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)["model"]
    split = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)["model"]
    assert whole.keys() == split.keys()
    assert all(torch.equal(whole[name], split[name]) for name in whole)
    assert not any("predates exact resuming" in line for line in lines)
    # A checkpoint written before exact resuming (generator state only) still resumes, and says so.
    checkpoint = tmp_path / "split" / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=True)
    state["sampler_rng"] = json.dumps(json.loads(state.pop("sampler"))["rng"])
    torch.save(state, checkpoint)
    train(config("split", 3), resume=True, log=lines.append, progress=False)
    assert any("predates exact resuming" in line for line in lines)


def test_every_committed_config_loads():
    """A config in configs/ that no longer parses (a renamed or removed setting) fails here, not in a long run."""
    import tomllib
    from pathlib import Path

    from sigverify.cleaning.train import CleanerConfig
    from sigverify.detection.train import DetectorConfig
    from sigverify.train import TrainConfig

    classes = {c.SECTION: c for c in (TrainConfig, CleanerConfig, DetectorConfig)}
    paths = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))
    assert len(paths) >= 8
    for path in paths:
        (section,) = tomllib.loads(path.read_text())
        assert classes[section].from_file(path).to_dict()


def test_signet_is_sized_for_the_configured_canvas(tmp_path, toy_data):
    """SigNet's first FC layer follows the training canvas (not the 150 x 220 default), and the
    artifact rebuilds it from its metadata."""
    from sigverify.train import TrainConfig, train

    config = TrainConfig(
        data=[str(toy_data)], out=str(tmp_path / "run"), model="signet-slim", embedding_dim=16, loss="triplet-semihard",
        epochs=1, steps_per_epoch=2, batch_writers=4, per_writer=4, forged_per_writer=1, dev_fraction=0.25, test_fraction=0.25,
        preprocess={"height": 80, "width": 120}, threads=2, cache_dir=str(tmp_path / "cache"), use_size=False,
    )
    artifact = load_artifact(train(config, log=lambda _: None, progress=False))
    assert artifact.metadata["architecture"]["args"]["input_size"] == [80, 120]
    assert artifact.preprocess.shape == (80, 120)
    with torch.no_grad():
        assert artifact.network(torch.zeros(2, 1, 80, 120)).shape == (2, 16)


@pytest.mark.parametrize("uses_size,descriptor_dim", [(True, 24), (True, 0), (False, 24), (False, 0)])
def test_represent_layout_round_trip_and_constant_norm(uses_size, descriptor_dim):
    from sigverify.models.layout import RepresentLayout

    rng = np.random.default_rng(0)

    def internal(n: int, spread: float = 1.0) -> np.ndarray:
        embedding = rng.normal(size=(n, 8))
        embedding /= np.linalg.norm(embedding, axis=1, keepdims=True)
        size = rng.normal(loc=[1.5, -1.6, -9.4], scale=1.5 * spread, size=(n, 3)) if uses_size else np.zeros((n, 0))
        local = rng.normal(scale=rng.uniform(0.5, 3.0, size=(n, 1)) * spread, size=(n, descriptor_dim))
        return np.hstack([embedding, size, local]).astype(np.float32)

    cohort = internal(40)
    layout = RepresentLayout.fit(cohort, 8, uses_size, descriptor_dim)
    vectors = internal(30, spread=2.0)  # wider than the cohort the layout was fitted on
    assert layout.internal_dim == vectors.shape[1]
    encoded = layout.encode(vectors)
    assert encoded.shape == (30, layout.dim) and encoded.dtype == np.float32
    np.testing.assert_allclose(layout.decode(encoded), vectors, rtol=1e-4, atol=1e-4)
    norms = np.linalg.norm(encoded, axis=1)
    np.testing.assert_allclose(norms, norms[0], rtol=1e-5)
    # Constant norm: Euclidean distance is a monotone function of cosine similarity.
    euclidean = np.linalg.norm(encoded[:, None] - encoded[None], axis=2)
    cosine = 1 - (encoded @ encoded.T) / np.outer(norms, norms)
    np.testing.assert_allclose(euclidean**2, 2 * norms[0] ** 2 * cosine, rtol=1e-3, atol=1e-3)
    if uses_size:
        # The size block keeps distances: a chord on a wide circle is close to the difference itself.
        e = 8
        chord = np.linalg.norm(encoded[0, e : e + 6].reshape(2, 3).T - encoded[1, e : e + 6].reshape(2, 3).T, axis=1)
        np.testing.assert_allclose(chord, np.abs(vectors[0, e : e + 3] - vectors[1, e : e + 3]), rtol=0.1, atol=1e-3)
    with pytest.raises(ValueError, match="non-empty"):
        RepresentLayout.fit(np.zeros((0, 8)), 8, uses_size, descriptor_dim)
    # Per-model block weights: the local block and the size chords scale, decoding does not change.
    weighted = RepresentLayout.fit(cohort, 8, uses_size, descriptor_dim, local_weight=0.5, size_scale=2.0)
    reweighted = weighted.encode(vectors)
    np.testing.assert_allclose(weighted.decode(reweighted), vectors, rtol=1e-4, atol=1e-4)
    if descriptor_dim:
        at = 8 + (6 if uses_size else 0)
        np.testing.assert_allclose(np.linalg.norm(reweighted[:, at : at + descriptor_dim], axis=1), 0.5, rtol=1e-5)
    if uses_size:
        np.testing.assert_allclose(reweighted[:, 8:14], 2.0 * layout.encode(vectors)[:, 8:14], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        RepresentLayout.fit(cohort, 8, uses_size, descriptor_dim, local_weight=0.0)


def test_represent_weights_are_chosen_on_dev_pairs_and_read_from_the_metadata(tmp_path):
    """choose_weights takes the grid's lowest plain-distance EER (ties: nearest the defaults); a
    model's ``represent`` metadata sets its layout."""
    from sigverify.models.layout import LOCAL_WEIGHT, choose_weights, one_reference_pair_eer

    rng = np.random.default_rng(1)
    writers, per_writer = 6, 8
    keys = np.repeat(np.arange(writers), 2 * per_writer)
    genuine = np.tile(np.r_[np.ones(per_writer, bool), np.zeros(per_writer, bool)], writers)
    # Embedding and size are noise; only the local descriptor moves (a little) with a forgery: the
    # heaviest local block and the lightest size block must win.
    embedding = rng.normal(size=(len(keys), 8))
    embedding /= np.linalg.norm(embedding, axis=1, keepdims=True)
    size = rng.normal(scale=1.0, size=(len(keys), 3))
    centres, shift = rng.normal(size=(writers, 16)), rng.normal(size=(writers, 16))
    local = centres[keys] + np.where(genuine, 0.0, 0.6)[:, None] * shift[keys] + 0.35 * rng.normal(size=(len(keys), 16))
    vectors = np.hstack([embedding, size, local])
    chosen = choose_weights(vectors, vectors, keys, genuine, 8, True, 16)
    assert (chosen["local_weight"], chosen["size_scale"]) == (4.0, 0.5)
    assert chosen["dev_eer"] == min(chosen["dev_table"].values()) < chosen["dev_table"]["2.0 x 1.0"]
    assert len(chosen["dev_table"]) == 15
    # Nothing to tell the candidates apart: the defaults.
    flat = np.hstack([embedding, np.zeros((len(keys), 3)), np.ones((len(keys), 16))])
    same = choose_weights(flat, flat, keys, genuine, 8, True, 16)
    assert (same["local_weight"], same["size_scale"]) == (LOCAL_WEIGHT, 1.0)
    with pytest.raises(ValueError, match="skilled forgeries"):
        one_reference_pair_eer(vectors[genuine], keys[genuine], genuine[genuine])


@pytest.mark.slow
def test_weight_average_is_selected_saved_and_resumed(tmp_path):
    """With ``ema_decay`` the dev selection and the saved model use the averaged weights (batch-norm
    statistics averaged too), not the last step's, and an interrupted run resumes the average exactly."""
    from safetensors.torch import load_file

    from sigverify.train import TrainConfig, train

    write_toy_writers(tmp_path / "toy", n_writers=14, n_genuine=8)

    def config(out: str, epochs: int, **extra) -> TrainConfig:
        return TrainConfig(
            data=[str(tmp_path / "toy")], out=str(tmp_path / out), model="resnet-attn",
            model_args={"depth": 10, "base_width": 8}, embedding_dim=16, loss="triplet-hard", margin=0.3,
            warmup_steps=2, epochs=epochs, steps_per_epoch=3, batch_writers=4, per_writer=4, forged_per_writer=0,
            dev_fraction=0.2, test_fraction=0.2, preprocess={"height": 64, "width": 96}, threads=2, use_size=False,
            ema_decay=0.9, **extra,
        )

    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)
    train(config("whole", 2), log=lambda _: None, progress=False)
    train(config("split", 1), log=lambda _: None, progress=False)
    train(config("split", 2), resume=True, log=lambda _: None, progress=False)
    states = {name: torch.load(tmp_path / name / "checkpoint.pt", weights_only=True) for name in ("whole", "split")}
    for key in ("model", "ema"):
        assert all(torch.equal(states["whole"][key][k], states["split"][key][k]) for k in states["whole"][key])
    # after one epoch, that epoch is the best one: best.safetensors holds its averaged weights
    train(config("one", 1), log=lambda _: None, progress=False)
    state = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    average = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    raw = state["model"]
    best = load_file(tmp_path / "one" / "best.safetensors")
    floating = [k for k in raw if raw[k].is_floating_point()]
    assert any(not torch.equal(average[k], raw[k]) for k in floating)  # the average is not the last step
    stored = [k for k in floating if k in best]
    assert stored and any("running_mean" in k for k in stored)
    # best.safetensors stores fp16: it matches the average to fp16 precision, and not the raw weights
    assert all(torch.allclose(best[k].float(), average[k].float(), atol=2e-3, rtol=1e-2) for k in stored)
    assert not all(torch.allclose(best[k].float(), raw[k].float(), atol=2e-3, rtol=1e-2) for k in stored)
    # a checkpoint without an average cannot resume a run that asks for one
    train(TrainConfig(**{**config("plain", 1).to_dict(), "ema_decay": 0.0}), log=lambda _: None, progress=False)
    with pytest.raises(ValueError, match="no weight average"):
        train(config("plain", 2), resume=True, log=lambda _: None, progress=False)
