"""Procedural signatures (synthetic writers for pretraining) and starting a training from weights."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sigverify.datasets import FORGED, GENUINE, read_dataset
from sigverify.errors import ModelError
from sigverify.models.artifact import load_artifact
from sigverify.synth.signatures import synthetic_writer

ROOT = Path(__file__).resolve().parents[1]


def test_synthetic_writer_is_seeded_and_varies():
    genuine, forged = synthetic_writer(7, n_genuine=3, n_forged=2)
    again_genuine, again_forged = synthetic_writer(7, n_genuine=3, n_forged=2)
    assert len(genuine) == 3 and len(forged) == 2
    for first, second in zip(genuine + forged, again_genuine + again_forged):
        assert first.dtype == np.uint8 and first.ndim == 2
        np.testing.assert_array_equal(first, second)
    for image in genuine + forged:
        assert (image < 200).sum() > 100, "every sample has ink (the lightest pens are about 140 grey)"
        assert np.median(image) > 200, "mostly paper"
    assert not np.array_equal(genuine[0], genuine[1]), "a writer never signs twice alike"
    other, _ = synthetic_writer(8, n_genuine=1, n_forged=0)
    assert genuine[0].shape != other[0].shape or not np.array_equal(genuine[0], other[0])


def test_make_synthetic_signatures_writes_a_generic_dataset(tmp_path):
    out = tmp_path / "synth"
    command = [sys.executable, str(ROOT / "scripts" / "make_synthetic_signatures.py"), str(out), "--writers", "3", "--genuine", "2", "--forged", "1", "--workers", "1"]
    subprocess.run(command, check=True, capture_output=True)
    records = read_dataset(out).records
    assert len(records) == 9
    assert len({r.writer_key for r in records}) == 3
    assert sorted(r.label for r in records).count(GENUINE) == 6 and sum(r.label == FORGED for r in records) == 3
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode != 0 and "not empty" in refused.stderr
    for flag, value in (("--writers", "0"), ("--genuine", "1"), ("--forged", "-1")):
        bad = subprocess.run([*command[:2], str(tmp_path / "synth2"), "--writers", "3", "--genuine", "2", "--workers", "1", flag, value], capture_output=True, text=True)
        assert bad.returncode == 2 and "need --writers" in bad.stderr
    assert not (tmp_path / "synth2").exists()


def _signet_config(toy_data, out: Path, **overrides):
    from sigverify.train import TrainConfig

    settings = dict(
        data=[str(toy_data)], out=str(out), model="signet-slim", embedding_dim=16, loss="triplet-semihard",
        epochs=1, steps_per_epoch=2, batch_writers=4, per_writer=4, forged_per_writer=1, dev_fraction=0.25, test_fraction=0.25,
        preprocess={"height": 80, "width": 120}, threads=2, cache_dir=str(out.parent / "cache"), use_size=False,
    )
    return TrainConfig(**{**settings, **overrides})


def test_training_starts_from_init_weights_and_refuses_a_mismatch(tmp_path, toy_data, tiny_model):
    from sigverify.train import train

    start = train(_signet_config(toy_data, tmp_path / "start"), log=lambda _: None, progress=False)
    # lr 0: the convolutions must stay exactly the initial ones (batch-norm statistics may move)
    messages: list[str] = []
    continued = train(_signet_config(toy_data, tmp_path / "continued", init=str(start), lr=0.0), log=messages.append, progress=False)
    assert any("initial weights from" in m for m in messages)
    before, after = load_artifact(start).network.state_dict(), load_artifact(continued).network.state_dict()
    convolutions = [k for k in before if k.endswith("weight") and before[k].ndim == 4]
    assert convolutions and all(torch.equal(before[k], after[k]) for k in convolutions)

    with pytest.raises(ModelError, match="does not match"):  # depth-10 resnet-attn weights for a depth-18 one
        wrong_net = dict(model="resnet-attn", model_args={"depth": 18, "base_width": 8}, preprocess={"height": 64, "width": 96})
        train(_signet_config(toy_data, tmp_path / "wrong-net", init=str(tiny_model), **wrong_net), log=lambda _: None, progress=False)
    # Refused by the config itself, before any data is read or any folder made.
    with pytest.raises(ValueError, match="at least 67 x 67 px"):  # SigNet's pooling leaves nothing of a 64 px canvas
        _signet_config(toy_data, tmp_path / "small-canvas", preprocess={"height": 64, "width": 96})
    with pytest.raises(ValueError, match="unknown model 'signet-xl'"):
        _signet_config(toy_data, tmp_path / "unknown", model="signet-xl")
    with pytest.raises(ValueError, match="unknown preprocessing parameters"):
        _signet_config(toy_data, tmp_path / "typo", preprocess={"hieght": 150})
    with pytest.raises(ModelError, match="preprocessing"):
        train(_signet_config(toy_data, tmp_path / "wrong-canvas", init=str(tiny_model)), log=lambda _: None, progress=False)
    with pytest.raises(ModelError):
        train(_signet_config(toy_data, tmp_path / "missing", init=str(tmp_path / "nope.safetensors")), log=lambda _: None, progress=False)


def test_cli_fine_tunes_the_shipped_model_and_refuses_a_mismatched_init(tmp_path, toy_data, tiny_model, capsys):
    from sigverify.cli import main
    from sigverify.models.artifact import read_metadata

    # The shipped model has a local head: its recipe for fine-tuning is the stage-2 config.
    common = [str(toy_data), "--config", str(ROOT / "configs" / "default-local.toml"), "--epochs", "1", "--steps-per-epoch", "1",
              "--threads", "2", "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main(["train", *common, "--init", "default", "--out", str(tmp_path / "mine")]) == 0
    metadata = read_metadata(tmp_path / "mine" / "model.safetensors")
    assert metadata["training"]["config"]["init"] == "default"
    capsys.readouterr()
    assert main(["train", *common, "--init", str(tiny_model), "--out", str(tmp_path / "bad")]) == 2
    assert "init" in capsys.readouterr().err
