import cv2
import numpy as np
import pytest
import torch

from helpers import toy_signature, write_toy_writers
from sigverify.cleaning import clean, load_cleaner_artifact, run_network, save_cleaner
from sigverify.cleaning.classical import clean_classical
from sigverify.cleaning.networks import PatchDiscriminator, ResnetGenerator, UNet
from sigverify.preprocess import PreprocessConfig
from sigverify.synth.noise import NOISE_KINDS, add_noise, clean_twin, darken_ink


@pytest.fixture
def twin():
    return clean_twin(toy_signature(4, 4))


def test_synthesiser_is_deterministic_and_keeps_the_twin_aligned(twin):
    first = add_noise(twin, 123)
    again = add_noise(twin, 123)
    other = add_noise(twin, 124)
    assert np.array_equal(first.noisy, again.noisy) and first.kinds == again.kinds
    assert not np.array_equal(first.noisy, other.noisy)
    assert first.noisy.shape == first.clean.shape == twin.shape
    assert np.array_equal(first.clean, twin)
    # Aligned: without scanner effects the clutter only darkens, so every clean ink pixel is at
    # least as dark in the noisy copy, at the same position.
    clutter_only = add_noise(twin, 5, kinds=["text", "lines", "stamp", "box"])
    ink = twin < 128
    assert (clutter_only.noisy[ink] <= twin[ink]).all()
    assert (clutter_only.noisy < 128).sum() > ink.sum()


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_each_noise_kind(twin, kind):
    pair = add_noise(twin, 9, kinds=[kind])
    assert pair.kinds == [kind] and pair.noisy.shape == twin.shape
    assert not np.array_equal(pair.noisy, twin)


def test_darkened_ink_keeps_the_paper_and_the_strokes(twin):
    light = np.where(twin < 255, np.maximum(twin, 150), 255).astype(np.uint8)  # a pale pen
    dark = darken_ink(light, np.random.default_rng(0))
    again = darken_ink(light, np.random.default_rng(0))
    assert np.array_equal(dark, again) and dark.shape == light.shape
    ink = light < 255
    assert dark[ink].max() <= 128  # every stroke pixel now at most mid-grey
    assert (dark < 255).sum() >= ink.sum()  # strokes kept (or broadened), paper otherwise untouched
    assert (dark[~ink] == 255).mean() > 0.95


def test_clean_twin_removes_paper_tone():
    gray = toy_signature(2, 2)  # paper 235
    twin = clean_twin(gray)
    assert (twin == 255).mean() > 0.8 and twin.min() < 100


def test_classical_cleaner_removes_a_ruled_line(twin):
    noisy = twin.copy()
    y = int(twin.shape[0] * 0.9)
    noisy[y : y + 2, :] = 0
    cleaned = clean_classical(noisy)
    assert cleaned.shape == noisy.shape
    assert (cleaned[y : y + 2, :] < 128).mean() < 0.2


def test_removed_ink_keeps_only_what_the_cleaner_took_away(twin):
    """The Tobacco control's image: a ruled line the cleaner erased stays, the strokes it kept go."""
    from sigverify.cleaning.evaluate import removed_ink

    noisy = twin.copy()
    y = int(twin.shape[0] * 0.9)
    noisy[y : y + 3, :] = 20
    removed = removed_ink(noisy, twin)
    assert removed.shape == noisy.shape and removed.dtype == np.uint8
    assert (removed[y + 1, :] == 20).mean() > 0.9  # the line, at its own grey level
    strokes = twin < 128
    strokes[y - 3 : y + 6, :] = False
    assert strokes.sum() > 100 and (removed[strokes] == 255).all()  # the kept signature is paper


@pytest.mark.parametrize("method", ["unet", "cyclegan"])
def test_learned_cleaners_keep_the_size(tmp_path, twin, method):
    torch.manual_seed(0)
    network = UNet([4, 8, 16]) if method == "unet" else ResnetGenerator(4, 1)
    path = save_cleaner(tmp_path / f"{method}.safetensors", method, network, {"height": 32})
    artifact = load_cleaner_artifact(path)
    noisy = add_noise(twin, 3).noisy[:61, :97]  # odd sizes on purpose
    cleaned = run_network(artifact, noisy)
    assert cleaned.shape == noisy.shape and cleaned.dtype == np.uint8
    assert clean(noisy, method, cleaner=path).shape == noisy.shape


def test_clean_facade(twin):
    assert clean(twin, "classical").shape == twin.shape
    assert np.array_equal(clean(twin, "none"), twin)
    with pytest.raises(ValueError, match="unknown cleaner"):
        clean(twin, "magic")


def test_patch_discriminator_shape():
    scores = PatchDiscriminator(8)(torch.rand(2, 1, 96, 192))
    assert scores.shape[0] == 2 and scores.shape[1] == 1 and scores.shape[2] > 1


def test_cleaner_config_refuses_a_probability_outside_0_1():
    from sigverify.cleaning.train import CleanerConfig

    with pytest.raises(ValueError, match="darken_probability"):
        CleanerConfig.from_dict({"darken_probability": 1.5})


def test_cleaner_training_can_start_from_a_cleaner_file(tmp_path):
    from sigverify.cleaning.train import CleanerConfig, _initial_weights

    torch.manual_seed(0)
    network = UNet([4, 8, 16])
    path = save_cleaner(tmp_path / "start.safetensors", "unet", network, {"height": 32})
    weights = _initial_weights(str(path), [4, 8, 16])
    restarted = UNet([4, 8, 16])
    restarted.load_state_dict(weights)
    x = torch.rand(1, 1, 32, 48)
    network.eval(), restarted.eval()
    assert torch.allclose(network(x), restarted(x), atol=0.05)  # fp16 storage, same network
    with pytest.raises(ValueError, match="widths"):
        _initial_weights(str(path), [8, 16, 32])
    from sigverify.errors import ModelError

    with pytest.raises(ModelError, match="no such model file"):
        _initial_weights(str(tmp_path / "missing.safetensors"), [4, 8, 16])
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(ModelError, match="truncated or corrupt"):
        _initial_weights(str(tmp_path / "empty.safetensors"), [4, 8, 16])
    with pytest.raises(ValueError, match="only supported for the unet"):
        CleanerConfig.from_dict({"method": "cyclegan", "init": str(path)})


def test_shipped_cleaner_configs_chain_and_match_the_shipped_weights():
    import json

    from conftest import REPO
    from sigverify.cleaning.train import CleanerConfig

    stage1 = CleanerConfig.from_file(REPO / "configs" / "cleaner-unet-96.toml")
    stage2 = CleanerConfig.from_file(REPO / "configs" / "cleaner-unet-192.toml")
    stage3 = CleanerConfig.from_file(REPO / "configs" / "cleaner-unet.toml")
    stage4 = CleanerConfig.from_file(REPO / "configs" / "cleaner-unet-verifier.toml")
    # Each stage starts from the file the one before writes (scripts/train_cleaners.sh runs them in order).
    assert stage2.init == f"{stage1.out}/cleaner-unet.safetensors"
    assert stage3.init == f"{stage2.out}/cleaner-unet.safetensors"
    assert stage4.init == f"{stage3.out}/cleaner-unet.safetensors"
    assert (stage1.height, stage2.height, stage3.height, stage4.height) == (96, 192, 192, 192)
    assert stage1.unet_widths == stage2.unet_widths == stage3.unet_widths == stage4.unet_widths
    assert f"{stage4.out}/cleaner-unet.safetensors" in (REPO / "scripts" / "train_cleaners.sh").read_text()
    shipped = json.loads((REPO / "src" / "sigverify" / "weights" / "cleaner-unet.json").read_text())
    assert shipped["height"] == stage4.height
    recorded = shipped["training"]["config"]
    # Stage 4 run again on the previously shipped cleaner (stop 31, after the verifier was retrained):
    # the same settings, another starting point; the shipped file says which one it started from.
    refit = CleanerConfig.from_file(REPO / "configs" / "cleaner-unet-refit.toml")
    assert recorded["init"] in (stage4.init, refit.init)
    settings = ("steps", "lr", "crop_width", "noisy_per_image", "darken_probability", "seed", "unet_widths", "embedding_weight", "clutter_weight", "height", "batch_size", "max_images")
    for name in settings:
        assert recorded[name] == getattr(stage4, name) == getattr(refit, name), name
    # Stage 4 is fitted to the shipped verifier's embedding: the shipped verifier itself, or the
    # stage-1 network its local head was trained on (training.init_version); a verifier retrained
    # from scratch needs a retrained stage 4.
    verifier = json.loads((REPO / "src" / "sigverify" / "weights" / "default.json").read_text())
    fitted_to = {verifier.get("version") or verifier["name"], verifier["training"].get("init_version")}
    assert shipped["training"]["task_loss"]["verifier"] in fitted_to - {None}
    assert shipped["training"]["task_loss"]["weight"] == stage4.embedding_weight


def test_clutter_views_are_seeded_cached_and_keyed_by_their_inputs(tmp_path):
    from sigverify.datasets import read_dataset
    from sigverify.synth.views import build_clutter_views

    write_toy_writers(tmp_path / "toy", n_writers=2, n_genuine=2)
    records = read_dataset(tmp_path / "toy").records
    config = PreprocessConfig(height=64, width=96)
    lines = []
    views = build_clutter_views(records, config, views=2, cleaners=["none", "classical"], seed=3, cache_dir=tmp_path / "cache", log=lines.append)
    assert views.shape == (len(records), 2, 64, 96) and views.dtype == np.uint8
    assert (views.reshape(len(records) * 2, -1).max(1) > 0).all()  # ink on every view (inverted: ink > 0)
    again = build_clutter_views(records, config, views=2, cleaners=["none", "classical"], seed=3, cache_dir=tmp_path / "cache", log=lines.append)
    assert np.array_equal(views, again) and len(list((tmp_path / "cache").glob("clutter-*.npz"))) == 1
    other = build_clutter_views(records, config, views=2, cleaners=["none", "classical"], seed=4, cache_dir=tmp_path / "cache", log=lines.append)
    assert not np.array_equal(views, other) and len(list((tmp_path / "cache").glob("clutter-*.npz"))) == 2
    with pytest.raises(ValueError):
        build_clutter_views(records, config, views=0, cleaners=["none"], seed=3, cache_dir=tmp_path / "cache")


def test_training_swaps_in_clutter_at_the_asked_rate():
    import torch

    from sigverify.train import TrainConfig, _swap_in_clutter

    batch = torch.zeros(400, 4, 4, dtype=torch.int16)
    clutter = torch.stack([torch.full((2, 4, 4), 10 + row, dtype=torch.int16) for row in range(400)])
    rows = np.arange(400)
    rows[:100] = -1  # images without views (not training images) are never swapped
    out = _swap_in_clutter(batch, clutter, rows, 0.5, torch.Generator().manual_seed(0))
    swapped = out.flatten(1).amax(1) > 0
    assert not swapped[:100].any() and 0.4 < swapped[100:].float().mean() < 0.6
    assert all(int(out[i, 0, 0]) == 10 + i for i in np.flatnonzero(swapped.numpy()))  # each image gets its own views
    assert torch.equal(_swap_in_clutter(batch, clutter, rows, 0.0, torch.Generator()), batch)
    with pytest.raises(ValueError):
        TrainConfig(clutter_probability=1.5)
    with pytest.raises(ValueError):
        TrainConfig(clutter_cleaners=["bleach"])


def test_task_loss_copies_the_preprocessing_and_sees_the_clutter(tiny_model):
    from sigverify.api import load_model
    from sigverify.cleaning.task_loss import EmbeddingLoss, placement, to_canvas
    from sigverify.preprocess import preprocess_with_size

    artifact = load_model(str(tiny_model))
    twin = clean_twin(toy_signature(4, 4))
    where = placement(twin, artifact.preprocess)
    clean_ink = torch.from_numpy(1.0 - twin.astype(np.float32) / 255.0)
    # The differentiable copy puts the ink where the real preprocessing puts it.
    real, _ = preprocess_with_size(twin, artifact.preprocess)
    assert np.abs(to_canvas(clean_ink, where, artifact.preprocess).numpy() * 255 - real).mean() < 2.0

    loss = EmbeddingLoss(artifact, bf16=False)
    assert float(loss(clean_ink[None, None], clean_ink[None, None], [where])) < 1e-3
    noisy = add_noise(twin, 3, kinds=["text", "lines"]).noisy
    noisy_ink = torch.from_numpy(1.0 - noisy.astype(np.float32) / 255.0)[None, None].requires_grad_(True)
    value = loss(noisy_ink, clean_ink[None, None], [where])
    value.backward()
    assert float(value.detach()) > 0.01 and float(noisy_ink.grad.abs().sum()) > 0
    # The verifier is frozen, and the cached model everyone else uses is left alone.
    assert all(not p.requires_grad for p in loss.network.parameters())
    assert all(p.requires_grad for p in artifact.network.parameters())


def test_cleaner_training_with_the_task_loss_records_its_verifier(tmp_path, toy_data, tiny_model):
    import json

    from sigverify.api import load_model
    from sigverify.cleaning.train import CleanerConfig, train_cleaner

    config = CleanerConfig(
        method="unet", data=[str(toy_data)], out=str(tmp_path / "run"), height=32, noisy_per_image=1, max_images=6,
        steps=2, batch_size=2, unet_widths=[4, 8], embedding_weight=0.5, verifier=str(tiny_model), threads=2,
    )
    path = train_cleaner(config, log=lambda *_: None)
    metadata = load_cleaner_artifact(path).metadata
    assert metadata["training"]["task_loss"] == {"verifier": load_model(str(tiny_model)).version, "weight": 0.5}
    history = json.loads((tmp_path / "run" / "log.json").read_text())
    assert history and all(entry["embedding"] > 0 for entry in history)
    for bad, message in (({"embedding_weight": -1.0}, ">= 0"), ({"method": "cyclegan", "embedding_weight": 1.0}, "only supported for the unet")):
        with pytest.raises(ValueError, match=message):
            CleanerConfig.from_dict(bad)


def test_clutter_weight_makes_residue_on_paper_cost_more():
    from sigverify.cleaning.train import _pixel_loss

    target = torch.zeros(1, 1, 8, 8)
    target[..., 2, :] = 1.0  # a stroke
    noisy = target.clone()
    noisy[..., 5, :] = 1.0  # a ruled line across the paper
    noisy[..., 7, :] = 0.15  # grey paper tone: not clutter
    keeps_line = torch.where(noisy > 0.5, 6.0, -6.0)  # logits of a cleaner that leaves the line
    erases_line = torch.where(target > 0.5, 6.0, -6.0)
    extra_keep = float(_pixel_loss(keeps_line, target, noisy, 4.0) - _pixel_loss(keeps_line, target, noisy))
    extra_erase = float(_pixel_loss(erases_line, target, noisy, 4.0) - _pixel_loss(erases_line, target, noisy))
    assert extra_keep > 100 * extra_erase > 0


def test_author_pairs_need_two_authors_with_two_crops():
    from sigverify.cleaning.evaluate import author_pairs

    kept, pairs, labels = author_pairs(["a", "b", "a", "c", "b"], seed=0)
    assert kept == [0, 1, 2, 4] and pairs[:2] == [(0, 2), (1, 4)] and labels.tolist()[:2] == [1, 1]
    assert all(labels[k] == 0 for k in range(2, len(pairs))) and len(pairs) == 2 + 8
    with pytest.raises(ValueError, match="two authors"):
        author_pairs(["a", "a", "b"])  # only one author repeats: no different-author pair among kept crops


def test_keep_scanned_ink_keeps_the_scan_where_the_cleaner_left_ink(twin):
    """The stop-32 mask variant: the cleaner decides where, the scan keeps its own grey levels."""
    from sigverify.cleaning.evaluate import keep_scanned_ink

    scan = np.where(twin < 128, 90, 255).astype(np.uint8)  # the pen as scanned: a mid grey
    y = int(twin.shape[0] * 0.9)
    scan[y : y + 3, :] = 20  # a ruled line the cleaner removed
    cleaner_output = np.where(twin < 128, 170, 255).astype(np.uint8)  # strokes found, re-rendered faint
    kept = keep_scanned_ink(scan, cleaner_output)
    assert kept.shape == scan.shape and kept.dtype == np.uint8
    strokes = (twin < 128) & (np.arange(twin.shape[0])[:, None] < y - 3)
    assert strokes.sum() > 100 and (kept[strokes] == 90).all()
    line_only = np.zeros_like(strokes)
    line_only[y + 1, :] = True
    line_only &= cv2.dilate((twin < 128).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
    assert line_only.sum() > 10 and (kept[line_only] == 255).all()
    with pytest.raises(ValueError, match="differ in size"):
        keep_scanned_ink(scan, cleaner_output[:-1])


def test_clean_reference_pairs_pair_every_overlapped_crop_with_every_clean_one(tiny_model, monkeypatch, twin):
    """Tobacco overlapped crops against clean references: only authors with both kinds, every pair,
    labels by author, both protocols for every method."""
    import sigverify
    from sigverify.cleaning import evaluate

    crops = {True: [(twin, "a"), (twin, "a"), (255 - twin // 2, "b"), (twin, "c")], False: [(twin, "a"), (255 - twin // 2, "b"), (twin, "d")]}
    monkeypatch.setattr(evaluate, "tobacco_crops", lambda root, margin=0.05, overlapped=True: crops[overlapped])
    artifact = sigverify.load_model(tiny_model)
    scores, labels, pair_authors = evaluate.clean_reference_pair_scores(artifact, "unused", ["none", "classical"], {})
    assert pair_authors.tolist() == [["a", "a"], ["a", "b"], ["a", "a"], ["a", "b"], ["b", "a"], ["b", "b"]]
    assert labels.tolist() == [1, 0, 1, 0, 0, 1]
    for protocol in ("query_cleaned", "document_path"):
        assert set(scores[protocol]) == {"none", "classical"} and all(v.shape == (6,) for v in scores[protocol].values())
    # "none" with plain references: the identical images are at distance zero
    assert scores["query_cleaned"]["none"][0] == pytest.approx(0.0, abs=1e-4)
    crops[False] = [(twin, "a")]
    with pytest.raises(ValueError, match="fewer than two authors"):
        evaluate.clean_reference_pair_scores(artifact, "unused", ["none"], {})
