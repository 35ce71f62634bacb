"""The evaluation protocol: writer-disjoint by construction, every method, controls, k-fold retraining."""

import json
import shutil

import pytest

from helpers import TINY_FOLD_CONFIG
from sigverify.cache import load_or_build
from sigverify.cli import main
from sigverify.datasets import DatasetError, read_dataset
from sigverify.methods import METHODS, NEEDS_TWO_REFERENCES
from sigverify.models.artifact import load_artifact
from sigverify.report import evaluate_split, run_evaluation, seen_writers
from sigverify.splits import WriterOverlapError


def test_a_seen_writer_can_never_be_a_test_writer(tiny_model, toy_data):
    artifact = load_artifact(tiny_model)
    cache = load_or_build(read_dataset(toy_data).records, artifact.preprocess, log=None)
    split = artifact.metadata["training"]["split"]
    for sneaky in (split["train"][0], split["dev"][0]):
        with pytest.raises(WriterOverlapError):
            evaluate_split(artifact, cache, split["test"] + [sneaky], refs=(3,), draws=1)


def test_fixed_model_report(tiny_model, toy_data, tmp_path):
    report = run_evaluation([str(toy_data)], model=str(tiny_model), refs=(1, 3), draws=2, plots=str(tmp_path / "plots"), log=lambda _: None)
    artifact = load_artifact(tiny_model)
    tested = set(report["folds_detail"][0]["test_writers"])
    assert tested and not tested & seen_writers(artifact)
    assert tested == set(artifact.metadata["training"]["split"]["test"])
    assert set(artifact.writers("test")) == tested and set(artifact.writers("dev")) == set(artifact.metadata["training"]["split"]["dev"])
    with pytest.raises(ValueError, match="role must be"):
        artifact.writers("everyone")
    for method in METHODS:
        if method in NEEDS_TWO_REFERENCES:
            assert "1" not in report["summary"][method] and "3" in report["summary"][method]
        else:
            assert set(report["summary"][method]) == {"1", "3"}
    row = report["summary"]["fusion-mean"]["3"]
    for figure in ("eer", "eer_random", "eer_user_thresholds", "far_skilled", "far_random", "frr", "accuracy", "auc_mean"):
        assert 0 <= row[figure]["mean"] <= 1 and row[figure]["std"] >= 0
    assert row["runs"] == 2 and sum(row["confusion"].values()) > 0
    assert {"probe_pixels_auc", "probe_embedding_auc", "probe_size_auc", "shuffled_references.eer"} <= set(report["controls"])
    assert "skilled" in report["one_reference"][0]
    assert len(report["plots"]) >= 3 and all(p.endswith(".png") for p in report["plots"])


def test_fixed_model_report_with_test_time_augmentation(tiny_model, toy_data):
    plain = run_evaluation([str(toy_data)], model=str(tiny_model), refs=(3,), draws=1, controls=False, log=lambda _: None)
    augmented = run_evaluation([str(toy_data)], model=str(tiny_model), refs=(3,), draws=1, controls=False, tta=True, log=lambda _: None)
    assert augmented["protocol"]["tta"] is True and plain["protocol"]["tta"] is False
    assert "cohort-multi-k" in augmented["summary"] and "wd-svm" not in augmented["summary"]  # only what has an augmented calibration
    # thresholds from the augmented calibration, not the plain one
    assert augmented["one_reference"][0]["threshold"] == load_artifact(tiny_model).calibration_for(True)["single"]["1"]["threshold"]
    assert augmented["one_reference"][0]["threshold"] != plain["one_reference"][0]["threshold"]


def test_kfold_retraining_tests_every_writer_once(toy_data, tmp_path, capsys):
    config = tmp_path / "fold.toml"
    config.write_text(TINY_FOLD_CONFIG)
    out = tmp_path / "report.json"
    code = main(["evaluate", str(toy_data), "--train", str(config), "--folds", "2", "--refs", "3", "--draws", "1",
                 "--runs-dir", str(tmp_path / "runs"), "--json", str(out), "--methods", "fusion-mean,writer-threshold"])
    assert code == 0
    report = json.loads(out.read_text())
    folds = report["folds_detail"]
    tested = [w for fold in folds for w in fold["test_writers"]]
    assert sorted(tested) == sorted({r.writer_key for r in read_dataset(toy_data).records})  # each once
    for fold in folds:
        model = load_artifact(fold["model"])
        assert not set(fold["test_writers"]) & seen_writers(model)
    assert report["summary"]["writer-threshold"]["3"]["runs"] == 2
    assert "best method: R=3:" in capsys.readouterr().out


def test_extra_training_writers_join_every_fold_but_are_never_tested(toy_data, tmp_path):
    from helpers import write_toy_writers

    other = write_toy_writers(tmp_path / "other", n_writers=5, n_genuine=6, n_forged=2)
    extra = {r.writer_key for r in read_dataset(other).records}
    config = tmp_path / "fold.toml"
    config.write_text(TINY_FOLD_CONFIG)
    quiet = {"folds": 2, "refs": (3,), "draws": 1, "methods": ("fusion-mean",), "controls": False, "log": lambda _: None}
    report = run_evaluation([str(toy_data)], train_config=str(config), extra_train=[str(other)], runs_dir=str(tmp_path / "runs"), **quiet)
    assert report["protocol"]["extra_train"] == [str(other)]
    for fold in report["folds_detail"]:
        split = load_artifact(fold["model"]).metadata["training"]["split"]
        assert extra <= set(split["train"]) and not extra & (set(split["dev"]) | set(split["test"]))
        assert not extra & set(fold["test_writers"])
    # The same runs folder without the extra data: its models were trained on other writers.
    with pytest.raises(ValueError, match="other writers"):
        run_evaluation([str(toy_data)], train_config=str(config), runs_dir=str(tmp_path / "runs"), **quiet)
    # ... nor a runs folder trained with other settings.
    config.write_text(TINY_FOLD_CONFIG.replace("epochs = 2", "epochs = 3"))
    with pytest.raises(ValueError, match=r"other settings \(epochs\)"):
        run_evaluation([str(toy_data)], train_config=str(config), extra_train=[str(other)], runs_dir=str(tmp_path / "runs"), **quiet)
    with pytest.raises(ValueError, match="shares writers"):
        run_evaluation([str(toy_data)], train_config=str(config), extra_train=[str(toy_data)], runs_dir=str(tmp_path / "clash"), **quiet)
    with pytest.raises(DatasetError, match="not a folder"):
        run_evaluation([str(toy_data)], train_config=str(config), extra_train=[str(tmp_path / "missing")], runs_dir=str(tmp_path / "missing-runs"), **quiet)
    assert not (tmp_path / "missing-runs").exists()  # refused before any training
    with pytest.raises(ValueError, match="needs --train"):
        run_evaluation([str(toy_data)], extra_train=[str(other)], **quiet)


def test_staged_fold_training_starts_each_stage_from_the_previous_fold_model(toy_data, tmp_path):
    first, second = tmp_path / "fold.toml", tmp_path / "fold-local.toml"
    first.write_text(TINY_FOLD_CONFIG)
    second.write_text(TINY_FOLD_CONFIG.replace('loss = "triplet-hard"', 'loss = "local-pair"\nlocal_head = {projected = 4, hidden = 8}\ntrunk_lr_scale = 0.1')
                      .replace("epochs = 2", "epochs = 1"))
    quiet = {"folds": 2, "refs": (3,), "draws": 1, "methods": ("fusion-mean", "writer-threshold"), "controls": False, "log": lambda _: None}
    report = run_evaluation([str(toy_data)], train_config=[str(first), str(second)], runs_dir=str(tmp_path / "runs"), **quiet)
    for fold, detail in enumerate(report["folds_detail"]):
        assert detail["model"] == str(tmp_path / "runs" / f"fold-{fold}" / "stage-2" / "model.safetensors")
        metadata = load_artifact(detail["model"]).metadata
        assert metadata["local_head"]["projected"] == 4
        assert metadata["training"]["config"]["init"] == str(tmp_path / "runs" / f"fold-{fold}" / "model.safetensors")
        assert not set(detail["test_writers"]) & seen_writers(load_artifact(detail["model"]))
    assert report["summary"]["writer-threshold"]["3"]["runs"] == 2
    # A runs folder can move: a found later stage is held to the weights it started from (init_version),
    # not to the path it read them from; a stage 1 trained again is other weights.
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "runs", moved)
    stage_two = moved / "fold-0" / "stage-2" / "model.safetensors"
    before = stage_two.stat().st_mtime_ns
    run_evaluation([str(toy_data)], train_config=[str(first), str(second)], runs_dir=str(moved), only_folds=[0], train_only=True, **quiet)
    assert stage_two.stat().st_mtime_ns == before  # reused, not retrained
    for name in ("model.safetensors", "best.safetensors", "checkpoint.pt"):
        (moved / "fold-0" / name).unlink(missing_ok=True)
    with pytest.raises(ValueError, match="started from other weights"):
        run_evaluation([str(toy_data)], train_config=[str(first), str(second)], runs_dir=str(moved), only_folds=[0], train_only=True, **quiet)
    second.write_text(TINY_FOLD_CONFIG.replace("dev_fraction = 0.25", "dev_fraction = 0.3"))
    with pytest.raises(ValueError, match="dev_fraction"):
        run_evaluation([str(toy_data)], train_config=[str(first), str(second)], runs_dir=str(tmp_path / "other"), **quiet)


def test_folds_train_one_at_a_time_and_a_later_run_tests_them(toy_data, tmp_path, capsys):
    """`--fold K --train-only` trains fold K's models and scores nothing (one process per fold, e.g. on
    a GPU); a later run finds them, checks them and tests; `--device` records where a model trained
    but the fold check does not hold it against the config."""
    import torch

    config = tmp_path / "fold.toml"
    config.write_text(TINY_FOLD_CONFIG)
    runs = tmp_path / "runs"
    common = ["evaluate", str(toy_data), "--train", str(config), "--folds", "2", "--runs-dir", str(runs)]
    assert main(common + ["--fold", "1", "--train-only", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.strip() == f"fold 1: {runs / 'fold-1' / 'model.safetensors'}"
    assert (runs / "fold-1" / "model.safetensors").exists() and not (runs / "fold-0").exists()
    assert load_artifact(runs / "fold-1" / "model.safetensors").metadata["training"]["config"]["device"] == "cpu"
    quiet = {"folds": 2, "refs": (3,), "draws": 1, "methods": ("fusion-mean",), "controls": False, "log": lambda _: None}
    report = run_evaluation([str(toy_data)], train_config=str(config), runs_dir=str(runs), only_folds=[1], **quiet)
    assert report["protocol"]["only_folds"] == [1] and [f["fold"] for f in report["folds_detail"]] == [1]
    assert not (runs / "fold-0").exists()  # fold 1's model was reused, nothing else trained
    with pytest.raises(ValueError, match="folds among 0..1"):
        run_evaluation([str(toy_data)], train_config=str(config), runs_dir=str(runs), only_folds=[2], **quiet)
    with pytest.raises(ValueError, match="need --train"):
        run_evaluation([str(toy_data)], train_only=True, **quiet)
    with pytest.raises(ValueError, match="CUDA device"):
        run_evaluation([str(toy_data)], train_config=str(config), runs_dir=str(tmp_path / "gpu"), device="tpu", **quiet)
    with pytest.raises(ValueError, match="need --train"):
        run_evaluation([str(toy_data)], bf16=False, **quiet)
    # --bf16 / --no-bf16 replaces the configs' bf16 (false here) and is part of the recipe a found model is held to
    assert main(common + ["--fold", "0", "--train-only", "--bf16"]) == 0
    assert load_artifact(runs / "fold-0" / "model.safetensors").metadata["training"]["config"]["bf16"] is True
    capsys.readouterr()
    with pytest.raises(ValueError, match=r"other settings \(bf16\)"):
        run_evaluation([str(toy_data)], train_config=str(config), runs_dir=str(runs), only_folds=[0], **quiet)
    if not torch.cuda.is_available():  # asking for a GPU that is not there is an error, not a CPU run
        assert main(common[:-1] + [str(tmp_path / "cuda"), "--fold", "0", "--train-only", "--device", "cuda"]) == 3
        assert "sees no CUDA GPU" in capsys.readouterr().err
