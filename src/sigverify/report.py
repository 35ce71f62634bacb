"""``sigverify evaluate``: the honest evaluation report.

Protocol (see :mod:`sigverify.protocol`): writer-disjoint; for each test writer, R references drawn
at random from its genuine signatures (``draws`` times); queries are its remaining genuine
signatures, all its skilled forgeries and random forgeries (other test writers' genuine). Every
decision threshold and probability map comes from the model's calibration, fitted on development
writers before any test writer is touched. Figures are reported as mean and std over folds x draws.

Two ways to run it:

* with a model (``--model``): the test writers are the dataset's writers the model never saw (all of
  them for a dataset it was not trained on: the cross-dataset setting);
* with ``--train CONFIG``: k folds over the dataset's writers; each fold trains a model from the
  config on the fold's training writers, calibrates on its dev writers and is tested on the fold's
  writers, so every writer is tested exactly once by a model that never saw it. ``--extra-train
  OTHER...`` adds every writer of other datasets to each fold's training writers (never to dev or
  test), as a model meant for DATA would be trained on whatever else is at hand.

Controls, in the same report:

* reference-blind probes: logistic regressions that see only the query (its pixels and ink
  histogram; or its embedding), trained on training writers' genuine vs skilled forgeries, scored by
  AUC on the test writers. Near 0.5 means the images alone do not give the answer away.
* shuffled references: the references come from another test writer; the EER must be far worse.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import numpy as np

from .cache import Cache, load_or_build
from .calibration import pick_entry, to_probability
from .datasets import FORGED, GENUINE, read_dataset
from .evaluation import summarise, trial_metrics
from .methods import METHODS, lacks_inputs
from .models.artifact import ModelArtifact, load_artifact, read_metadata
from .models.siamese import embed_images
from .protocol import multi_reference_trials, score_trials
from .splits import WriterSplit, assert_writer_disjoint, fold_split

if TYPE_CHECKING:
    from .train import TrainConfig


def seen_writers(artifact: ModelArtifact) -> set[str]:
    """Writers whose images influenced the model: its training and its calibration (dev) writers."""
    return set(artifact.writers("train")) | set(artifact.writers("dev"))


def extra_training_writers(records: Sequence, extra_train: Sequence[str]) -> list[str]:
    """Writer keys of the ``extra_train`` datasets; an error if any is also a writer of ``records``."""
    extra: set[str] = set()
    for root in extra_train:
        extra |= {r.writer_key for r in read_dataset(root).records}
    clash = extra & {r.writer_key for r in records}
    if clash:
        raise ValueError(f"extra training data shares writers with the evaluated data: {', '.join(sorted(clash)[:5])}")
    return sorted(extra)


# Settings that say where a fold's run lives or how many cores it used, not what it learned. A later
# stage's ``init`` is a path too: which weights it started from is held to its ``init_version`` instead,
# so that a runs folder (or a fold's stages) can move without retraining.
_RUN_PLACE_KEYS = {"out", "name", "data", "split_file", "threads", "cache_dir", "max_minutes", "device", "init"}


def check_fold_ensemble(metadata: dict[str, Any], path: Path, members: Sequence[Path]) -> None:
    """A fold ensemble found in the runs folder must join exactly these member models, as they are now."""
    from .models.artifact import read_metadata

    recorded = [m.get("version") for m in metadata.get("training", {}).get("ensemble_of", [])]
    if recorded != [read_metadata(m).get("version") for m in members]:
        raise ValueError(f"{path} joins other models than this fold's seeds; use another --runs-dir")


def check_fold_model(
    metadata: dict[str, Any], path: Path, config: "TrainConfig", training_split: WriterSplit, fold: int, initial: Optional[Path] = None,
) -> None:
    """A fold model (``metadata`` of the file at ``path``) found in the runs folder must have been
    trained on this fold's training writers with this config, and (a later stage) from the weights of
    ``initial``, the fold's previous stage as it is now, or the report would silently mix runs."""
    from .models.artifact import read_metadata, weights_version

    training = metadata.get("training", {})
    if initial is not None:
        if training.get("init_version") != weights_version(read_metadata(initial)):
            raise ValueError(f"{path} started from other weights than {initial}; use another --runs-dir")
    if sorted(training.get("split", {}).get("train", [])) != sorted(training_split.train):
        raise ValueError(f"{path} was trained on other writers than fold {fold} asks for; use another --runs-dir")
    recorded, wanted = training.get("config", {}), config.to_dict()
    differing = sorted(k for k in wanted if k not in _RUN_PLACE_KEYS and k in recorded and recorded[k] != wanted[k])
    if differing:
        raise ValueError(f"{path} was trained with other settings ({', '.join(differing)}) than the config asks for; use another --runs-dir")


def _probe_features(images: np.ndarray) -> np.ndarray:
    """What a reference-blind probe sees of an image: a 30 x 44 thumbnail and a 16-bin ink histogram."""
    import cv2

    thumbs = np.stack([cv2.resize(image, (44, 30), interpolation=cv2.INTER_AREA) for image in images]).reshape(len(images), -1) / 255.0
    histograms = np.stack([np.histogram(image[image > 0], bins=16, range=(1, 256))[0] for image in images]).astype(float)
    histograms /= np.maximum(histograms.sum(1, keepdims=True), 1)
    return np.concatenate([thumbs, histograms], axis=1)


def reference_blind_probes(cache: Cache, train_idx: np.ndarray, test_idx: np.ndarray, embeddings_train: np.ndarray, embeddings_test: np.ndarray) -> dict[str, float]:
    """AUC on test writers of query-only classifiers (genuine vs skilled) trained on training writers."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y_train = np.array([cache.records[i].label == GENUINE for i in train_idx], dtype=int)
    y_test = np.array([cache.records[i].label == GENUINE for i in test_idx], dtype=int)
    if len(set(y_train)) < 2 or len(set(y_test)) < 2:
        return {}
    result = {}
    # Both probes also see the measured size: a query-only cue as much as the pixels are.
    size_train, size_test = cache.sizes[train_idx], cache.sizes[test_idx]
    for name, x_train, x_test in (
        ("probe_pixels_auc", np.hstack([_probe_features(cache.images[train_idx]), size_train]), np.hstack([_probe_features(cache.images[test_idx]), size_test])),
        ("probe_embedding_auc", np.hstack([embeddings_train, size_train]), np.hstack([embeddings_test, size_test])),
        # the measured size alone: how much a model weighing it could learn without any reference
        ("probe_size_auc", size_train, size_test),
    ):
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced"))
        probe.fit(x_train, y_train)
        result[name] = float(roc_auc_score(y_test, probe.predict_proba(x_test)[:, 1]))
    return result


def evaluate_split(
    artifact: ModelArtifact,
    cache: Cache,
    test_writers: Sequence[str],
    *,
    train_writers: Sequence[str] = (),
    refs: Sequence[int] = (12,),
    draws: int = 3,
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    controls: bool = True,
    bf16: bool = True,
    collect_scores: bool = False,
    tta: bool = False,
) -> dict[str, Any]:
    """Run the protocol for one model on its test writers (``tta``: test-time-augmented vectors,
    scored with the calibration and cohort fitted for them).

    Returns
    -------
    dict
        ``{"runs": {method: {str(R): [per-draw figures]}}, "controls": {...}, "scores": ...}``.
    """
    seen = seen_writers(artifact)
    assert_writer_disjoint(seen=sorted(seen), test=sorted(test_writers))
    writer_keys = np.array([r.writer_key for r in cache.records])
    test_idx = np.flatnonzero(np.isin(writer_keys, list(test_writers)))
    if len(test_idx) == 0:
        raise ValueError("no test images")
    records = [cache.records[i] for i in test_idx]
    all_ids = cache.content_ids()
    ids = [all_ids[i] for i in test_idx]
    calibration = artifact.calibration_for(tta)  # first: a model without a TTA calibration fails before any work
    embeddings = artifact.vectors(cache.images[test_idx], cache.sizes[test_idx], bf16=bf16, tta=tta)
    background, cohort = artifact.background, artifact.cohort_for(tta)
    vote_distance = artifact.thresholds.get("distance", 0.0)

    runs: dict[str, dict[str, list]] = {}
    scores_out: dict[str, dict[str, dict]] = {}
    skipped: dict[str, list[str]] = {}
    for n_refs in refs:
        trial_set = multi_reference_trials(records, n_refs, draws=draws, seed=seed, content_ids=ids)
        skipped[str(n_refs)] = trial_set.skipped_writers
        if not trial_set.trials:
            continue
        for method in methods:
            if lacks_inputs(method, background, cohort):
                continue
            scored = score_trials(trial_set, embeddings, method, background=background, vote_distance=vote_distance, comparator=artifact.comparator, cohort=cohort)
            if scored is None or method not in calibration:
                continue
            entry = pick_entry(calibration, method, n_refs)
            probabilities = to_probability(entry, scored.scores)
            per_draw = []
            for draw in range(draws):
                mask = scored.draws == draw
                if not mask.any():
                    continue
                subset = type(scored)(scored.labels[mask], scored.kinds[mask], scored.scores[mask], scored.writers[mask], scored.draws[mask])
                per_draw.append(trial_metrics(subset, probabilities[mask], entry["threshold"]))
            runs.setdefault(method, {})[str(n_refs)] = per_draw
            if collect_scores:
                scores_out.setdefault(method, {})[str(n_refs)] = {
                    "labels": scored.labels.tolist(),
                    "kinds": scored.kinds.tolist(),
                    "probabilities": probabilities.tolist(),
                    "threshold": entry["threshold"],
                }

    result: dict[str, Any] = {"runs": runs, "skipped_writers": skipped, "n_test_writers": len(set(test_writers))}
    result["one_reference"] = one_reference_figures(artifact, embeddings, records, ids, calibration)
    if controls:
        control: dict[str, Any] = {}
        train_idx = np.flatnonzero(np.isin(writer_keys, list(train_writers))) if len(train_writers) else np.array([], dtype=int)
        if len(train_idx):
            embeddings_train = embed_images(artifact.network, cache.images[train_idx], bf16=bf16)
            embeddings_test = embed_images(artifact.network, cache.images[test_idx], bf16=bf16)
            control.update(reference_blind_probes(cache, train_idx, test_idx, embeddings_train, embeddings_test))
        shuffle_refs = max(refs)
        shuffled = multi_reference_trials(records, shuffle_refs, draws=draws, seed=seed + 1, content_ids=ids, shuffle_references=True)
        if shuffled.trials and "fusion-mean" in calibration:
            scored = score_trials(shuffled, embeddings, "fusion-mean", comparator=artifact.comparator)
            entry = pick_entry(calibration, "fusion-mean", shuffle_refs)
            probabilities = to_probability(entry, scored.scores)
            control["shuffled_references"] = {
                "method": "fusion-mean",
                "refs": shuffle_refs,
                **{k: v for k, v in trial_metrics(scored, probabilities, entry["threshold"]).items() if k in ("eer", "eer_random", "frr")},
            }
        result["controls"] = control
    if collect_scores:
        result["scores"] = scores_out
    return result


def one_reference_figures(artifact: ModelArtifact, vectors: np.ndarray, records, content_ids, calibration: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Every one-reference pair of the test writers (genuine-genuine, genuine-skilled forgery,
    genuine-random forgery), scored by the Siamese distance, at the dev-fixed threshold
    (``calibration``: the one that fits ``vectors``, default the model's plain one)."""
    from .evaluation import distance_scores, single_reference_pairs
    from .metrics import verification_metrics

    entry = pick_entry(artifact.calibration if calibration is None else calibration, "single", 1)
    pairs = single_reference_pairs(records, content_ids=content_ids, seed=0)
    scores = to_probability(entry, distance_scores(vectors, pairs, artifact.comparator))
    figures: dict[str, Any] = {"threshold": entry["threshold"], "pairs": {k: int((pairs.kinds == k).sum()) for k in ("genuine", "skilled", "random")}}
    for kind in ("skilled", "random"):
        mask = (pairs.kinds == "genuine") | (pairs.kinds == kind)
        if (pairs.kinds == kind).any():
            metrics = verification_metrics(pairs.labels[mask], scores[mask], threshold=entry["threshold"])
            figures[kind] = {k: metrics[k] for k in ("eer", "auc", "far", "frr", "accuracy", "confusion")}
    return figures


def merge_runs(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate per-draw figures of several folds and summarise (mean, std)."""
    table: dict[str, dict[str, list]] = {}
    for part in parts:
        for method, by_refs in part["runs"].items():
            for n_refs, runs in by_refs.items():
                table.setdefault(method, {}).setdefault(n_refs, []).extend(runs)
    return {method: {n: summarise(runs) for n, runs in by_refs.items()} for method, by_refs in table.items()}


def merge_controls(parts: list[dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, list[float]] = {}
    for part in parts:
        for key, value in part.get("controls", {}).items():
            if isinstance(value, dict):
                for sub, number in value.items():
                    if isinstance(number, float):
                        values.setdefault(f"{key}.{sub}", []).append(number)
            else:
                values.setdefault(key, []).append(value)
    return {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)} for k, v in values.items()}


def best_method(summary: dict[str, Any], n_refs: str) -> Optional[str]:
    candidates = [(v[n_refs]["eer"]["mean"], m) for m, v in summary.items() if n_refs in v and "eer" in v[n_refs]]
    return min(candidates)[1] if candidates else None


def format_table(summary: dict[str, Any], refs: Sequence[int]) -> list[str]:
    """One line per method and R: figures as mean +- std, in percent."""
    header = f"{'method':<18}{'R':>3}  " + "  ".join(f"{f:>17}" for f in ("eer", "eer_random", "eer_user_thr", "far_skilled", "far_random", "frr", "accuracy", "auc_mean"))
    lines = [header]
    for method in METHODS:
        for n_refs in refs:
            row = summary.get(method, {}).get(str(n_refs))
            if not row:
                continue
            cells = []
            for figure in ("eer", "eer_random", "eer_user_thresholds", "far_skilled", "far_random", "frr", "accuracy", "auc_mean"):
                value = row.get(figure)
                scale = 1 if figure == "auc_mean" else 100
                cells.append(f"{value['mean'] * scale:8.2f} +- {value['std'] * scale:5.2f}" if value else f"{'-':>17}")
            lines.append(f"{method:<18}{n_refs:>3}  " + "  ".join(cells))
    return lines


def plot_report(scores: dict[str, Any], method: str, n_refs: str, out_dir: Path, title: str) -> list[str]:
    """ROC, DET, score histograms per class and the confusion matrix of one method at one R."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm
    from sklearn.metrics import roc_curve

    out_dir.mkdir(parents=True, exist_ok=True)
    data = scores[method][n_refs]
    labels = np.array(data["labels"])
    kinds = np.array(data["kinds"])
    probs = np.array(data["probabilities"])
    threshold = data["threshold"]
    written = []

    fig, (ax_roc, ax_det) = plt.subplots(1, 2, figsize=(10, 4.2))
    for kind, colour in (("skilled", "C3"), ("random", "C0")):
        mask = (kinds == "genuine") | (kinds == kind)
        if (kinds == kind).any():
            fpr, tpr, _ = roc_curve(labels[mask], probs[mask])
            ax_roc.plot(fpr, tpr, color=colour, label=f"genuine vs {kind}")
            fnr = 1 - tpr
            keep = (fpr > 0) & (fpr < 1) & (fnr > 0) & (fnr < 1)
            ax_det.plot(norm.ppf(fpr[keep]), norm.ppf(fnr[keep]), color=colour, label=f"genuine vs {kind}")
    ax_roc.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax_roc.set(xlabel="false acceptance rate", ylabel="true acceptance rate", title=f"ROC, {method}, R={n_refs}")
    ax_roc.legend(loc="lower right")
    ticks = [0.01, 0.02, 0.05, 0.1, 0.2, 0.4]
    ax_det.set_xticks(norm.ppf(ticks), [f"{t:.0%}" for t in ticks])
    ax_det.set_yticks(norm.ppf(ticks), [f"{t:.0%}" for t in ticks])
    ax_det.set(xlabel="FAR", ylabel="FRR", title="DET (normal deviate axes)")
    ax_det.legend(loc="upper right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = out_dir / f"roc_det_{method}_R{n_refs}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(str(path))

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for kind, colour in (("genuine", "C2"), ("skilled", "C3"), ("random", "C0")):
        if (kinds == kind).any():
            ax.hist(probs[kinds == kind], bins=40, range=(0, 1), alpha=0.55, color=colour, label=kind, density=True)
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"dev threshold {threshold:.2f}")
    ax.set(xlabel="calibrated score (probability genuine)", ylabel="density", title=f"scores per class, {method}, R={n_refs}")
    ax.legend()
    fig.tight_layout()
    path = out_dir / f"histogram_{method}_R{n_refs}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(str(path))

    accept = probs >= threshold
    rows = [("genuine", kinds == "genuine"), ("skilled", kinds == "skilled"), ("random", kinds == "random")]
    matrix = np.array([[int((accept & m).sum()), int((~accept & m).sum())] for _, m in rows])
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    ax.imshow(matrix / np.maximum(matrix.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    for i in range(3):
        for j in range(2):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center")
    ax.set_xticks([0, 1], ["accepted", "rejected"])
    ax.set_yticks([0, 1, 2], [r[0] for r in rows])
    ax.set_title(f"confusion at dev threshold, {method}, R={n_refs}", fontsize=9)
    fig.tight_layout()
    path = out_dir / f"confusion_{method}_R{n_refs}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(str(path))
    return written


def _train_fold_stages(
    stage_configs: Sequence["TrainConfig"], base: Path, fold: int, member_seed: Optional[int], training_split: WriterSplit, *,
    n_dev: int, n_test: int, n_extra: int, data: list[str], device: Optional[str], bf16: Optional[bool], log,
) -> Path:
    """Train (or find and check) one fold's chain of stages under ``base``: stage 1 in ``base``, stage
    k in ``base/stage-k``, each started from the previous one; ``member_seed`` replaces the configs'
    seed and ``bf16`` (unless None) their ``bf16``. Returns the last stage's model file."""
    from .train import train

    previous: Optional[Path] = None
    for stage, stage_config in enumerate(stage_configs):
        config = copy.deepcopy(stage_config)  # filled in per fold below
        if member_seed is not None:
            config.seed = member_seed
        if bf16 is not None:  # part of the recipe: a model found in the runs folder is held to it too
            config.bf16 = bf16
        out = base / (f"stage-{stage + 1}" if stage else "")
        model_path = out / "model.safetensors"
        if previous is not None:
            config.init = str(previous)
        if not model_path.exists():
            config.data = data
            config.out = str(out)
            out.mkdir(parents=True, exist_ok=True)
            training_split.save(str(out / "fold_split.json"))
            config.split_file = str(out / "fold_split.json")
            config.name = f"fold-{fold}" + (f"-seed-{member_seed}" if member_seed is not None else "") + (f"-stage-{stage + 1}" if stage else "")
            if device:
                config.device = device
            log(f"fold {fold}{f' seed {member_seed}' if member_seed is not None else ''}{f' stage {stage + 1}' if stage else ''}: "
                f"training on {len(training_split.train)} writers ({n_extra} of them from extra data), dev {n_dev}, test {n_test}")
            train(config, resume=(out / "checkpoint.pt").exists(), log=log, progress=False)
        check_fold_model(read_metadata(model_path), model_path, config, training_split, fold, initial=previous)
        previous = model_path
    assert previous is not None
    return previous


def run_evaluation(
    data: Sequence[str],
    *,
    model: Optional[str] = None,
    train_config: Optional[Union[str, Sequence[str]]] = None,
    folds: int = 5,
    refs: Sequence[int] = (12,),
    draws: int = 3,
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    runs_dir: str = "runs/evaluate",
    plots: Optional[str] = None,
    controls: bool = True,
    extra_train: Sequence[str] = (),
    tta: bool = False,
    only_folds: Optional[Sequence[int]] = None,
    train_only: bool = False,
    device: Optional[str] = None,
    seeds: Optional[Sequence[int]] = None,
    only_seed: Optional[int] = None,
    bf16: Optional[bool] = None,
    log=print,
) -> dict[str, Any]:
    """Evaluate a model (or train one per fold) on ``data``; returns the JSON-ready report.

    ``tta``: score test-time-augmented vectors with the model's calibration for them.

    ``train_config``: one TOML config, or several = stages: stage k starts from stage k-1's model of
    the same fold (its ``init``), and the last stage's model is evaluated. Stage 1 lives in
    ``runs_dir/fold-F``, stage k in ``runs_dir/fold-F/stage-k``.
    ``extra_train`` (only with ``train_config``): datasets whose writers all join every fold's
    training writers; none of them is ever a dev or test writer.
    ``only_folds``: train and test these folds alone (the report says which). ``train_only``: train
    the fold models and stop (``folds_detail`` lists them; no figures), so that folds can train in
    parallel, e.g. one process per fold on a GPU, and one later run tests every fold with the models
    it finds. ``device``: where the fold models train and are scored (the fold check ignores it).
    ``seeds``: train the stages once per seed (``runs_dir/fold-F/seed-S/...``, the configs' ``seed``
    replaced) and evaluate the ensemble of the seeds' last-stage models (``runs_dir/fold-F/ensemble-seeds-S1-S2....safetensors``,
    see :func:`sigverify.train.build_ensemble`); ``only_seed`` (with ``train_only``): train that
    seed's models alone, so that seeds can train in parallel too. ``bf16`` (unless None) replaces
    the configs' ``bf16`` (on a GPU, train with ``bf16=False``: see :class:`sigverify.train.TrainConfig`).
    """
    started = time.perf_counter()
    records = []
    for root in data:
        records += read_dataset(root).records
    if extra_train and not train_config:
        raise ValueError("extra training data needs --train CONFIG: a fixed model is not retrained")
    if (train_only or device or only_folds is not None or bf16 is not None) and not train_config:
        raise ValueError("--train-only, --device, --bf16 and --fold are about fold models: they need --train CONFIG")
    if device:
        from .train import training_device

        training_device(device)  # refused before any fold trains
    if seeds is not None and (len(seeds) < 2 or len(set(seeds)) != len(seeds)):
        raise ValueError(f"--seeds needs two or more different seeds, not {list(seeds)}")
    if only_seed is not None and (not train_only or seeds is None or only_seed not in seeds):
        raise ValueError("--only-seed goes with --train-only and names one of --seeds")
    if only_folds is not None and not set(only_folds) <= set(range(folds)):
        raise ValueError(f"--fold must name folds among 0..{folds - 1}, not {sorted(only_folds)}")
    extra_writers = extra_training_writers(records, extra_train)
    parts: list[dict[str, Any]] = []
    fold_info = []
    collected_scores: list[dict] = []
    if train_config:
        from .train import TrainConfig

        stages = [train_config] if isinstance(train_config, str) else list(train_config)
        stage_configs = [TrainConfig.from_file(path) for path in stages]
        dev_fractions = {config.dev_fraction for config in stage_configs}
        if len(dev_fractions) > 1:
            raise ValueError(f"the training stages {stages} ask for different dev_fraction values: one fold split serves them all")
        dev_fraction = dev_fractions.pop()
        for fold in range(folds):
            if only_folds is not None and fold not in only_folds:
                continue
            split = fold_split(records, folds, fold, dev_fraction=dev_fraction, seed=seed)
            training_split = WriterSplit(
                split.train + extra_writers, split.dev, split.test, seed=split.seed,
                description=split.description + (f"; every writer of {', '.join(extra_train)} added to train" if extra_writers else ""),
                extra={**split.extra, **({"extra_train": list(extra_train)} if extra_writers else {})},
            )
            fold_dir = Path(runs_dir) / f"fold-{fold}"
            members: list[Path] = []
            for member_seed in seeds or [None]:
                if only_seed is not None and member_seed != only_seed:
                    continue
                base = fold_dir if member_seed is None else fold_dir / f"seed-{member_seed}"
                previous = _train_fold_stages(stage_configs, base, fold, member_seed, training_split, n_dev=len(split.dev), n_test=len(split.test),
                                              n_extra=len(extra_writers), data=list(data) + list(extra_train), device=device, bf16=bf16, log=log)
                members.append(previous)
            if seeds and only_seed is None:  # the fold's model is the ensemble of its seeds' last stages
                previous = fold_dir / f"ensemble-seeds-{'-'.join(map(str, seeds))}.safetensors"  # a fold can hold ensembles of other seeds beside it
                if not previous.exists():
                    from .train import build_ensemble

                    build_ensemble(members, previous, device=device or "cpu", log=log)
                check_fold_ensemble(read_metadata(previous), previous, members)
            if train_only:
                fold_info.append({"fold": fold, "model": str(previous), "test_writers": split.test})
                continue
            artifact = load_artifact(previous)
            if device:
                artifact.network.to(device)  # embedding and the learned distance run there too
            cache = load_or_build(records, artifact.preprocess, log=None)
            part = evaluate_split(artifact, cache, split.test, train_writers=split.train, refs=refs, draws=draws, methods=methods, seed=seed, controls=controls, collect_scores=plots is not None, tta=tta)
            parts.append(part)
            fold_info.append({"fold": fold, "model": str(previous), "test_writers": split.test, "skipped_writers": part["skipped_writers"]})
            if plots is not None:
                collected_scores.append(part.pop("scores"))
            log(f"fold {fold}: done ({(time.perf_counter() - started) / 60:.1f} min so far)")
    else:
        from .api import load_model

        artifact = load_model(model)
        cache = load_or_build(records, artifact.preprocess, log=None)
        seen = seen_writers(artifact)
        test_writers = sorted({r.writer_key for r in cache.records} - seen)
        train_writers = sorted(set(artifact.writers("train")) & {r.writer_key for r in cache.records})
        if not test_writers:
            raise ValueError("the model has seen every writer of this data: nothing left to test on")
        log(f"testing {artifact.name} on {len(test_writers)} writers it never saw")
        part = evaluate_split(artifact, cache, test_writers, train_writers=train_writers, refs=refs, draws=draws, methods=methods, seed=seed, controls=controls, collect_scores=plots is not None, tta=tta)
        parts.append(part)
        fold_info.append({"model": artifact.path, "test_writers": test_writers, "skipped_writers": part["skipped_writers"]})
        if plots is not None:
            collected_scores.append(part.pop("scores"))

    if train_only:
        return {"data": list(data), "train_config": train_config, "runs_dir": runs_dir, "folds_detail": fold_info, "seconds": round(time.perf_counter() - started, 1)}
    summary = merge_runs(parts)
    report: dict[str, Any] = {
        "data": list(data),
        "protocol": {
            "refs": list(refs),
            "draws": draws,
            "folds": folds if train_config else None,
            **({"only_folds": sorted(only_folds)} if only_folds is not None else {}),
            **({"ensemble_seeds": list(seeds)} if seeds else {}),
            **({"bf16": bf16} if bf16 is not None else {}),
            "extra_train": list(extra_train),
            "seed": seed,
            "tta": tta,
            "mode": "k-fold retraining" if train_config else "fixed model on unseen writers",
            "threshold": "fixed on development writers (model calibration), never on test writers",
            "eer": "pooled over test writers, genuine vs skilled forgeries (vs random when a writer set has none)",
        },
        "model": model,
        "train_config": train_config,
        "folds_detail": fold_info,
        "summary": summary,
        "one_reference": [part["one_reference"] for part in parts],
        "controls": merge_controls(parts) if controls else {},
        "seconds": round(time.perf_counter() - started, 1),
    }
    best = {str(r): best_method(summary, str(r)) for r in refs}
    report["best_method"] = best
    if plots is not None and collected_scores:
        merged: dict[str, dict[str, dict]] = {}
        for scores in collected_scores:
            for method, by_refs in scores.items():
                for n_refs, values in by_refs.items():
                    target = merged.setdefault(method, {}).setdefault(n_refs, {"labels": [], "kinds": [], "probabilities": [], "threshold": values["threshold"]})
                    for key in ("labels", "kinds", "probabilities"):
                        target[key] += values[key]
        written = []
        for n_refs in refs:
            method = best[str(n_refs)]
            if method and method in merged and str(n_refs) in merged[method]:
                written += plot_report(merged, method, str(n_refs), Path(plots), f"{', '.join(Path(d).name for d in data)}: {report['protocol']['mode']}")
        report["plots"] = written
    return report
