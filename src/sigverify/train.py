"""``sigverify train``: metric learning on any folder-per-writer dataset, writer-disjoint dev set for
model selection, resumable, logged, and ending in one model artifact.

Outputs in ``--out``:

``model.safetensors``   the selected (best dev EER) weights with full metadata and calibration
``checkpoint.pt``       the latest state, for ``--resume`` (tensors and plain values only; a resumed run
                        gets the same batches, and so the same weights, as an uninterrupted one)
``log.csv``, ``log.json``  per-epoch loss, learning rate, speed and dev metrics
``curves.png``          loss and dev EER per epoch
``split.json``, ``config.json``  the writer split and the full resolved configuration
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
import torch

from .config import TomlConfig
from .cache import Cache, load_or_build
from .datasets import FORGED, GENUINE, read_dataset
from .evaluation import distance_scores, single_reference_pairs
from .machine import machine_description
from .metrics import eer, verification_metrics
from .models.artifact import save_model
from .models.augment import AugmentConfig, augment_batch
from .models.backbones import BACKBONES, FIXED_INPUT_BACKBONES, signet_map_size
from .models.losses import (
    LOSSES,
    TRIPLET_LOSSES,
    WriterForgeryHead,
    batch_contrastive_loss,
    pair_bce_loss,
)
from .models.local import comparator_for
from .models.siamese import SiameseModel, embed_images, with_sizes
from .preprocess import PreprocessConfig
from .splits import PKSampler, WriterSplit, split_writers

if TYPE_CHECKING:
    from .models.artifact import ModelArtifact


@dataclass
class TrainConfig(TomlConfig):
    SECTION = "train"
    LABEL = "training"

    """Every training setting; a TOML config file's ``[train]`` table uses the same names."""

    data: list[str] = field(default_factory=list)
    out: str = "runs/default"
    model: str = "signet-bn"
    model_args: dict[str, Any] = field(default_factory=dict)
    embedding_dim: int = 256
    loss: str = "triplet-semihard"
    margin: float = 0.5
    forgery_weight: float = 0.95  # signet-f only
    lr: float = 1e-3
    weight_decay: float = 1e-4
    decay_steps: int = 2000
    decay_rate: float = 0.1
    staircase: bool = False
    warmup_steps: int = 100
    epochs: int = 30
    steps_per_epoch: int = 0  # 0: one pass over the training images
    batch_writers: int = 8
    per_writer: int = 6
    forged_per_writer: int = 2
    seed: int = 0
    split_seed: int = 0
    dev_fraction: float = 0.1
    test_fraction: float = 0.2
    split_file: Optional[str] = None
    augment: bool = True
    augment_args: dict[str, Any] = field(default_factory=dict)  # AugmentConfig fields to override
    bf16: bool = False
    threads: int = 0  # 0: all cores
    # Where the network trains: "cpu", or a torch CUDA device ("cuda", "cuda:1"). Augmentation's random
    # numbers are drawn on the CPU either way; the batches and the network live on the device. Stop 27:
    # bf16 autocast on a GPU cost the fold recipe 1.7 points of fold dev EER that the CPU's bf16 does
    # not (bf16 = false on the GPU: 5.87 vs 5.71 % on the CPU), so on a GPU train with bf16 = false.
    device: str = "cpu"
    preprocess: dict[str, Any] = field(default_factory=dict)
    max_minutes: float = 0.0  # stop after this much wall time (0: no limit)
    cache_dir: Optional[str] = None
    name: Optional[str] = None
    use_size: bool = True  # compare measured signature sizes too (weight chosen on dev writers)
    # A verifier file (same architecture and preprocessing) whose weights start the training: "default"
    # for the shipped model (fine-tuning on your own writers), or e.g. a network pretrained on
    # synthetic writers (scripts/make_synthetic_signatures.py); None: random initialisation.
    init: Optional[str] = None
    # Document clutter (synth.views): this share of each batch is swapped for a copy of the same
    # signature with synthetic text, lines, stamps and scanner effects, passed through the cleaners
    # named (view k uses clutter_cleaners[k % len]); 0 trains on clean scans only.
    clutter_probability: float = 0.0
    clutter_views: int = 2
    clutter_cleaners: list[str] = field(default_factory=lambda: ["unet"])
    # loss "local-pair" only: the local comparison head's arguments (projected, hidden; see
    # models.local.LocalComparator), the learning rate of the network under it relative to ``lr``,
    # and the genuine pairs of two writers added to each batch's same-writer pairs.
    local_head: dict[str, Any] = field(default_factory=dict)
    trunk_lr_scale: float = 1.0
    local_random_pairs: int = 64
    # loss "local-pair" only: weight of a second term that scores each batch the way cohort-multi-k
    # scores test writers (per writer 3 genuine references, the rest of its genuine images and its
    # forgeries questioned, the other writers' references as cohort) and ranks every genuine query
    # above every forgery across writers, i.e. for one pooled threshold (models.local.episode_loss).
    episode_weight: float = 0.0
    # Which epoch's weights become the model: "dev" the lowest one-reference dev EER, "last" the last.
    selection: str = "dev"
    # Exponential moving average of the weights (and batch-norm statistics), decay per step; 0: off.
    # When on, dev selection, the checkpoints' "best" and the saved model use the averaged weights.
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if not 0.0 <= self.clutter_probability <= 1.0:
            raise ValueError(f"clutter_probability must be between 0 and 1, not {self.clutter_probability}")
        from .cleaning import CLEANERS

        unknown = [c for c in self.clutter_cleaners if c not in CLEANERS]
        if unknown or not self.clutter_cleaners:
            raise ValueError(f"clutter_cleaners must name cleaners among {', '.join(CLEANERS)}, not {self.clutter_cleaners}")
        unknown = sorted(set(self.local_head) - {"projected", "hidden"})
        if unknown:
            raise ValueError(f"local_head takes projected and hidden, not {', '.join(unknown)}")
        if self.local_head and self.loss != "local-pair":
            raise ValueError('local_head is used by loss "local-pair" only')
        if self.trunk_lr_scale < 0 or self.local_random_pairs < 0:
            raise ValueError("trunk_lr_scale and local_random_pairs must not be negative")
        if self.episode_weight < 0 or (self.episode_weight and self.loss != "local-pair"):
            raise ValueError('episode_weight must not be negative, and is used by loss "local-pair" only')
        if self.selection not in ("dev", "last"):
            raise ValueError(f'selection must be "dev" or "last", not {self.selection!r}')
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), not {self.ema_decay}")
        check_device_name(self.device)
        # Checked here, before any data is read: an unknown network or preprocessing key, or a canvas
        # too small for a fixed-input network, fails at once rather than after the cache is built.
        if self.model not in BACKBONES:
            raise ValueError(f"unknown model {self.model!r}; known: {', '.join(BACKBONES)}")
        canvas = PreprocessConfig.from_dict(self.preprocess) if self.preprocess else PreprocessConfig()
        if self.model in FIXED_INPUT_BACKBONES:
            signet_map_size((canvas.height, canvas.width))

    @property
    def batch_size(self) -> int:
        return self.batch_writers * (self.per_writer + self.forged_per_writer)


def _swap_in_clutter(x: torch.Tensor, clutter: torch.Tensor, rows: np.ndarray, probability: float, generator: torch.Generator) -> torch.Tensor:
    """Replace each image of the batch (B x H x W uint8) by one of its cluttered views with ``probability``."""
    chosen = (torch.rand(len(rows), generator=generator) < probability).numpy() & (rows >= 0)
    which = torch.randint(0, clutter.shape[1], (len(rows),), generator=generator).numpy()
    if not chosen.any():
        return x
    x = x.clone()
    positions = np.flatnonzero(chosen)
    x[positions] = clutter[rows[positions], which[positions]]
    return x


def _initial_artifact(path: str, preprocess_config: PreprocessConfig) -> "ModelArtifact":
    """The verifier file a training starts from (``"default"``: the shipped one), read before any data
    so that a wrong path or preprocessing fails at once."""
    from .api import default_model_path
    from .errors import ModelError
    from .models.artifact import load_artifact

    artifact = load_artifact(default_model_path() if path == "default" else path)
    if artifact.preprocess != preprocess_config:
        raise ModelError(f"init {path}: its preprocessing {artifact.preprocess.to_dict()} differs from this training's")
    return artifact


def _load_initial_weights(network: SiameseModel, initial: "ModelArtifact", path: str) -> None:
    """Copy the initial artifact's weights into ``network``; every tensor must match (a silent
    partial load would train something else than asked). The one exception: a local comparison head
    that the initial model lacks starts fresh on top of its weights."""
    from .errors import ModelError
    from .models.artifact import check_state_dict

    given = initial.network.state_dict()
    expected = network.state_dict()
    fresh_local = network.local is not None and initial.network.local is None
    if fresh_local:
        expected = {k: v for k, v in expected.items() if not k.startswith("local.")}
    try:
        check_state_dict(path, expected, given, network.architecture)
    except ModelError as exc:
        raise ModelError(f"init: its network does not match this training's model - {exc}") from None
    network.load_state_dict(given, strict=not fresh_local)


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then exponential decay ``lr * rate ** (step / decay_steps)`` (floored with
    ``staircase``)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    exponent = (step - config.warmup_steps) / max(1, config.decay_steps)
    if config.staircase:
        exponent = math.floor(exponent)
    return config.lr * config.decay_rate**exponent


def _labels_for(cache: Cache, indices: Sequence[int], writer_ids: dict[str, int]) -> torch.Tensor:
    """Writer id for genuine images, a unique negative id per forgery (negatives only)."""
    labels = []
    for index in indices:
        record = cache.records[index]
        labels.append(writer_ids[record.writer_key] if record.label == GENUINE else -1 - int(index))
    return torch.tensor(labels, dtype=torch.long)


def _local_pair_loss(network: SiameseModel, cache: Cache, batch, writer_ids: dict[str, int], descriptors: torch.Tensor, embeddings: torch.Tensor, random_pairs: int, generator: torch.Generator, episode_weight: float = 0.0) -> torch.Tensor:
    """The local head's loss on the batch's pairs; a forgery belongs to the writer it imitates. With
    ``episode_weight``, plus that times the pooled multi-reference ranking term (``episode_loss``)."""
    from .models.local import balanced_bce, batch_pairs, comparator_loss, episode_loss, episode_scores, pair_logits, reference_episode

    writer = np.array([writer_ids[cache.records[i].writer_key] for i in batch])
    genuine = np.array([cache.records[i].label == GENUINE for i in batch])
    # Drawn from the saved torch generator, so a resumed run picks the same pairs.
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    first, second, target = batch_pairs(writer, genuine, random_pairs=random_pairs, rng=rng)
    episode = reference_episode(writer, genuine, rng=rng) if episode_weight else None
    if episode is None:
        return comparator_loss(network.local, descriptors, embeddings, first, second, target)
    # One pass of the head over both sets of pairs: its batch norm sees one batch, as without the term.
    logits = pair_logits(network.local, descriptors, embeddings, np.concatenate([first, episode.pair_first]), np.concatenate([second, episode.pair_second]))
    scores = episode_scores(torch.nn.functional.softplus(-logits[len(first):]), episode)
    return balanced_bce(logits[: len(first)], target) + episode_weight * episode_loss(scores, episode.query_genuine)


def dev_metrics(network: SiameseModel, cache: Cache, dev_indices: np.ndarray, *, bf16: bool, seed: int = 0) -> dict[str, float]:
    """One-reference dev metrics: EER genuine vs skilled, genuine vs random, AUC (with the learned
    distance for a model with a local head)."""
    records = [cache.records[i] for i in dev_indices]
    all_ids = cache.content_ids()
    ids = [all_ids[i] for i in dev_indices]
    embeddings = embed_images(network, cache.images[dev_indices], bf16=bf16, with_local=network.local is not None)
    pairs = single_reference_pairs(records, content_ids=ids, seed=seed)
    scores = distance_scores(embeddings, pairs, comparator_for(network, 0.0))
    result = verification_metrics(pairs.labels, scores, kinds=pairs.kinds)
    result.pop("confusion", None)
    return result


def selection_key(metrics: dict[str, float]) -> float:
    """Model selection: skilled-forgery EER when dev writers have forgeries, else the random one."""
    return metrics.get("eer_skilled", metrics.get("eer_random", metrics["eer"]))


SIZE_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
# With a learned local head the size distance is subtracted from the pair logit: weights in logit units.
SIZE_WEIGHTS_LOCAL = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)


def choose_size_weight(embeddings: np.ndarray, sizes: np.ndarray, records, content_ids, weights=None, network: Optional[SiameseModel] = None) -> tuple[float, dict]:
    """Weight of the measured size in the compared vectors, chosen on dev writers: the one with the
    lowest mean of the one-reference EER and the five-reference writer-threshold EER (skilled).
    ``network``: needed when ``embeddings`` carry local descriptors (its learned distance)."""
    from .methods import EUCLIDEAN
    from .protocol import multi_reference_trials, score_trials

    pairs = single_reference_pairs(records, content_ids=content_ids, seed=0)
    trials = multi_reference_trials(records, 5, draws=2, seed=0, content_ids=content_ids)
    table = {}
    local = network is not None and network.local is not None
    if weights is None:
        weights = SIZE_WEIGHTS_LOCAL if local else SIZE_WEIGHTS
    embedding_dim = network.embedding_dim if network is not None else embeddings.shape[1]
    for weight in weights:
        vectors = with_sizes(embeddings, sizes, weight, embedding_dim)
        comparator = comparator_for(network, weight) if network is not None else EUCLIDEAN
        chosen = (pairs.kinds == "genuine") | (pairs.kinds == ("skilled" if (pairs.kinds == "skilled").any() else "random"))
        one = eer(pairs.labels[chosen], distance_scores(vectors, pairs, comparator)[chosen])[0]
        scored = score_trials(trials, vectors, "writer-threshold", comparator=comparator)
        if scored is not None:
            mask = (scored.kinds == "genuine") | (scored.kinds == ("skilled" if (scored.kinds == "skilled").any() else "random"))
            five = eer(scored.labels[mask], scored.scores[mask])[0]
        else:
            five = one
        table[str(weight)] = {"eer_1ref": one, "eer_5ref_writer_threshold": five}
    best = min(weights, key=lambda w: (table[str(w)]["eer_1ref"] + table[str(w)]["eer_5ref_writer_threshold"]) / 2)
    return float(best), table


def calibrate_network(
    network: SiameseModel,
    cache: Cache,
    dev_idx: np.ndarray,
    train_idx: np.ndarray,
    *,
    bf16: bool = False,
    kind: str = "logistic",
    use_size: bool = True,
    log=print,
) -> dict[str, Any]:
    """Size weight, thresholds, per-method calibration (dev writers only), the WD background and the
    cohort (training writers).

    Returns
    -------
    dict
        ``thresholds`` (``["distance"]``: accept a one-reference pair when the distance is at most
        this; ``["reference_consistency"]``: the limit of the reference-consistency warning, see
        :func:`sigverify.calibration.reference_consistency_distance`), ``calibration`` (``{method: {str(R): entry}}``), ``background`` (``B x D`` vectors),
        ``cohort`` (``K x V`` full vectors: embedding [+ size] [+ local descriptor]),
        ``calibration_tta`` and ``cohort_tta`` (the same with test-time-augmented vectors; no
        writer-dependent methods), ``size_weight``, ``size_weight_dev_table``, ``represent`` (the
        block weights of :func:`sigverify.represent`'s layout, :func:`sigverify.models.layout.choose_weights`;
        ``None`` for a model without size or local head).
    """
    from .calibration import COHORT_SAMPLE, background_sample, calibrate_methods, reference_consistency_distance
    from .methods import METHODS, NEEDS_BACKGROUND, Cohort

    all_ids = cache.content_ids()
    dev_records = [cache.records[i] for i in dev_idx]
    dev_ids = [all_ids[i] for i in dev_idx]
    dev_embeddings = embed_images(network, cache.images[dev_idx], bf16=bf16, with_local=network.local is not None)
    size_weight, size_table = (0.0, {})
    if use_size:
        size_weight, size_table = choose_size_weight(dev_embeddings, cache.sizes[dev_idx], dev_records, dev_ids, network=network)
    dev_vectors = with_sizes(dev_embeddings, cache.sizes[dev_idx], size_weight, network.embedding_dim)
    comparator = comparator_for(network, size_weight)
    single = calibrate_methods(dev_vectors, dev_records, background=None, vote_distance=0.0, methods=["single"], refs=[1], kind=kind, content_ids=dev_ids, comparator=comparator)
    distance_threshold = -single["single"]["1"]["threshold_raw"]
    consistency = reference_consistency_distance(dev_vectors, dev_records, comparator=comparator, content_ids=dev_ids)
    consistency_text = "none (too few dev signatures)" if consistency is None else f"{consistency:.4f}"
    train_records = [cache.records[i] for i in train_idx]
    background_idx = train_idx[background_sample(train_records)]
    # The writer-dependent classifiers see the global part only: no local descriptors computed or stored.
    background = with_sizes(embed_images(network, cache.images[background_idx], bf16=bf16), cache.sizes[background_idx], size_weight, network.embedding_dim)
    # The cohort is compared with the model's own distance, so it keeps the local descriptors.
    cohort_idx = train_idx[background_sample(train_records, **COHORT_SAMPLE)]
    def full_vectors(indices: np.ndarray, tta: bool = False) -> np.ndarray:
        """Embedding [+ weighted size] [+ local descriptor] of the cache's images at ``indices``."""
        embedded = embed_images(network, cache.images[indices], bf16=bf16, tta=tta, with_local=network.local is not None)
        return with_sizes(embedded, cache.sizes[indices], size_weight, network.embedding_dim)

    cohort_vectors = full_vectors(cohort_idx).astype(np.float16).astype(np.float32)  # as the artifact stores it, so dev calibration sees what serving will
    calibration = calibrate_methods(
        dev_vectors, dev_records, background=background, vote_distance=distance_threshold, methods=METHODS, kind=kind, content_ids=dev_ids,
        comparator=comparator, cohort=Cohort(cohort_vectors),
    )
    # Test-time augmentation moves every distance, so `--tta` gets calibrations of its own, fitted on the
    # same dev writers with augmented vectors (dev images and cohort alike). The writer-dependent
    # classifiers are left out: their background set is not augmented, and they are far behind anyway.
    cohort_tta = full_vectors(cohort_idx, tta=True).astype(np.float16).astype(np.float32)
    calibration_tta = calibrate_methods(
        full_vectors(dev_idx, tta=True), dev_records, background=None, vote_distance=distance_threshold, methods=[m for m in METHODS if m not in NEEDS_BACKGROUND], kind=kind,
        content_ids=dev_ids, comparator=comparator, cohort=Cohort(cohort_tta),
    )
    represent = None
    if size_weight or network.descriptor_dim:
        from .models.layout import choose_weights

        # sigverify.represent's block weights for plain-distance scorers, on the same dev writers
        try:
            represent = choose_weights(
                cohort_vectors, dev_vectors, np.array([r.writer_key for r in dev_records]), np.array([r.is_genuine for r in dev_records]),
                network.embedding_dim, bool(size_weight), network.descriptor_dim,
            )
            log(f"represent layout: local weight {represent['local_weight']}, size scale {represent['size_scale']} (dev plain-distance EER {100 * represent['dev_eer']:.2f} %)")
        except ValueError as exc:  # e.g. dev writers without skilled forgeries: keep the default weights
            log(f"represent layout: default weights ({exc})")
    log(f"calibrated {len(calibration)} methods ({len(calibration_tta)} with test-time augmentation) on {len({r.writer_key for r in dev_records})} dev writers; "
        f"size weight {size_weight}; one-reference distance threshold {distance_threshold:.4f}; reference-consistency limit {consistency_text}; background {len(background)} signatures, cohort {len(cohort_vectors)}")
    return {
        "thresholds": {"distance": float(distance_threshold), **({} if consistency is None else {"reference_consistency": consistency})},
        "calibration": calibration,
        "calibration_tta": calibration_tta,
        "background": background,
        "cohort": cohort_vectors,
        "cohort_tta": cohort_tta,
        "size_weight": size_weight,
        "size_weight_dev_table": size_table,
        "represent": represent,
    }


def _plot(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_eer) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax_loss.plot(epochs, [h["loss"] for h in history], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="loss")
    for key, label in (("dev_eer_skilled", "skilled"), ("dev_eer_random", "random")):
        values = [h.get(key) for h in history]
        if any(v is not None for v in values):
            ax_eer.plot(epochs, [v * 100 if v is not None else np.nan for v in values], marker="o", label=label)
    ax_eer.set(xlabel="epoch", ylabel="dev EER (%)", title="dev EER, one reference")
    ax_eer.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _write_logs(history: list[dict], out: Path) -> None:
    with open(out / "log.json", "w") as handle:
        json.dump(history, handle, indent=1)
    keys = sorted({k for h in history for k in h}, key=lambda k: (k != "epoch", k))
    with open(out / "log.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    _plot(history, out / "curves.png")


def _data_cache(config: TrainConfig, preprocess_config: PreprocessConfig, log) -> Cache:
    """Every image of the config's datasets, preprocessed with ``preprocess_config`` (cached)."""
    records = []
    for root in config.data:
        records += read_dataset(root).records
    return load_or_build(records, preprocess_config, cache_dir=config.cache_dir, log=log)


def writer_indices(cache: Cache, writers: Sequence[str]) -> np.ndarray:
    """Indices of the cache's images whose writer key is among ``writers``."""
    return np.flatnonzero(np.isin([r.writer_key for r in cache.records], list(writers)))


def _command_line() -> str:
    """The process's command line, when the caller gave none to record."""
    return " ".join(shlex.quote(a) for a in sys.argv)


def check_device_name(name: str) -> None:
    """Refuse a device name training cannot use."""
    if name != "cpu" and not re.fullmatch(r"cuda(:\d+)?", name):
        raise ValueError(f'device must be "cpu" or a CUDA device ("cuda", "cuda:N"), not {name!r}')


def training_device(name: str) -> torch.device:
    """The torch device a run asks for; an error, not a silent CPU run, when it is not there."""
    check_device_name(name)
    device = torch.device(name)
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"device {name!r} asked for, but this torch sees {torch.cuda.device_count() if torch.cuda.is_available() else 'no'} CUDA GPU(s)")
    return device


def train(config: TrainConfig, *, resume: bool = False, log=print, progress: bool = True, command: Optional[str] = None) -> Path:
    """Train a Siamese model; returns the path of the final model artifact."""
    from tqdm import tqdm

    started = time.perf_counter()
    device = training_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    checkpoint_path = out / "checkpoint.pt"
    if checkpoint_path.exists() and not resume:
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    if not config.data:
        raise ValueError("no training data given")

    preprocess_config = PreprocessConfig.from_dict(config.preprocess) if config.preprocess else PreprocessConfig()
    initial = _initial_artifact(config.init, preprocess_config) if config.init and not resume else None
    cache = _data_cache(config, preprocess_config, log)
    split = WriterSplit.load(config.split_file) if config.split_file else split_writers(
        cache.records, dev_fraction=config.dev_fraction, test_fraction=config.test_fraction, seed=config.split_seed
    )
    split.save(str(out / "split.json"))
    with open(out / "config.json", "w") as handle:
        json.dump(config.to_dict(), handle, indent=1)
    train_idx, dev_idx = writer_indices(cache, split.train), writer_indices(cache, split.dev)
    if len(train_idx) == 0 or len(dev_idx) == 0:
        raise ValueError("the split leaves no training or no dev images")
    log(f"writers: {len(split.train)} train, {len(split.dev)} dev, {len(split.test)} test (held out); "
        f"{len(train_idx)} training images, {len(dev_idx)} dev images")

    torch.manual_seed(config.seed)
    model_args = {"embedding_dim": config.embedding_dim, **config.model_args}
    if config.model in FIXED_INPUT_BACKBONES:
        # The network's first FC layer must match the preprocessed canvas, whatever size it is.
        model_args.setdefault("input_size", [preprocess_config.height, preprocess_config.width])
    local_args = None
    if config.loss == "local-pair":
        channels, height, width = SiameseModel(config.model, model_args).map_shape((preprocess_config.height, preprocess_config.width))
        local_args = {"channels": channels, "map_size": [height, width], **config.local_head}
    network = SiameseModel(config.model, model_args, pair_head=config.loss == "pair-bce", local_head=local_args)
    if initial is not None:
        _load_initial_weights(network, initial, str(config.init))
        log(f"initial weights from {config.init}")
    network.to(device)
    writer_ids = {w: i for i, w in enumerate(sorted(split.train))}
    extra_head = WriterForgeryHead(network.embedding_dim, len(writer_ids)).to(device) if config.loss == "signet-f" else None
    parameters = list(network.parameters()) + (list(extra_head.parameters()) if extra_head else [])
    local_parameters = list(network.local.parameters()) if network.local is not None else []
    local_ids = {id(p) for p in local_parameters}
    groups = [{"params": [p for p in parameters if id(p) not in local_ids], "lr_scale": config.trunk_lr_scale if local_parameters else 1.0}]
    if local_parameters:
        groups.append({"params": local_parameters, "lr_scale": 1.0})
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    ema = None
    if config.ema_decay:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
    evaluated = ema.module if ema is not None else network  # what dev selection sees and what is saved
    sampler = PKSampler(cache.records, config.batch_writers, config.per_writer, forged_per_writer=config.forged_per_writer, subset=train_idx, seed=config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    augment_config = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.augment_args.items()})
    images = torch.from_numpy(cache.images)
    clutter, clutter_row = None, np.full(len(cache), -1)
    if config.clutter_probability > 0:
        from .synth.views import build_clutter_views

        clutter = torch.from_numpy(build_clutter_views(
            [cache.records[i] for i in train_idx], cache.config, views=config.clutter_views,
            cleaners=config.clutter_cleaners, seed=config.seed, cache_dir=config.cache_dir, log=log,
        ))
        clutter_row[train_idx] = np.arange(len(train_idx))
    steps_per_epoch = config.steps_per_epoch or max(1, len(train_idx) // config.batch_size)

    history: list[dict] = []
    step, first_epoch, best = 0, 1, math.inf
    elapsed_before = 0.0
    if resume and checkpoint_path.exists():
        state = torch.load(checkpoint_path, weights_only=True, map_location="cpu")
        network.load_state_dict(state["model"])
        if extra_head is not None and "extra_head" in state:
            extra_head.load_state_dict(state["extra_head"])
        if ema is not None:
            if "ema" not in state:
                raise ValueError(f"{checkpoint_path} holds no weight average, but this config asks for ema_decay {config.ema_decay}")
            ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        if "sampler" in state:
            sampler.load_state_dict(json.loads(state["sampler"]))
        else:  # checkpoints written before stop 26 kept only the generator: the pass in progress is lost
            sampler.rng.bit_generator.state = json.loads(state["sampler_rng"])
            log("this checkpoint predates exact resuming: the batches from here differ from an uninterrupted run's")
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and "cuda_rng" in state:  # dropout draws on the GPU's own generator
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        history = json.loads(state["history"])
        step, first_epoch, best = int(state["step"]), int(state["epoch"]) + 1, float(state["best"])
        elapsed_before = float(state.get("elapsed", 0.0))
        log(f"resumed from {checkpoint_path} after epoch {first_epoch - 1} (best dev EER {best:.4f})")

    def batches():
        while True:
            yield from sampler

    batch_iterator = batches()
    triplet_loss = TRIPLET_LOSSES.get(config.loss)
    for epoch in range(first_epoch, config.epochs + 1):
        network.train()
        epoch_started = time.perf_counter()
        losses = []
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{config.epochs}", disable=not progress, leave=False)
        for _ in bar:
            batch = next(batch_iterator)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step) * group.get("lr_scale", 1.0)
            x = images[batch]
            if clutter is not None:
                x = _swap_in_clutter(x, clutter, clutter_row[batch], config.clutter_probability, generator)
            x = x.to(device).unsqueeze(1).float().div_(255.0)
            if config.augment:
                x = augment_batch(x, augment_config, generator)
            labels = _labels_for(cache, batch, writer_ids).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
                if network.local is not None:
                    raw, descriptors = network.forward_local(x)
                else:
                    raw = network(x)
            embeddings = torch.nn.functional.normalize(raw.float(), dim=1)
            if network.local is not None:
                loss = _local_pair_loss(network, cache, batch, writer_ids, descriptors.float(), embeddings, config.local_random_pairs, generator, config.episode_weight)
            elif triplet_loss is not None:
                loss = triplet_loss(embeddings, labels, config.margin)
            elif config.loss == "contrastive":
                loss = batch_contrastive_loss(embeddings, labels, config.margin)
            elif config.loss == "pair-bce":
                loss = pair_bce_loss(network.pair_head, embeddings, labels)
            else:  # signet-f: writer classification + forgery, on the raw features
                forged = labels < 0
                loss = extra_head.loss(raw.float(), labels.clamp_min(0), forged, config.forgery_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 5.0)
            optimizer.step()
            if ema is not None:
                ema.update_parameters(network)
            losses.append(float(loss.detach()))
            step += 1
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        train_seconds = time.perf_counter() - epoch_started
        metrics = dev_metrics(evaluated, cache, dev_idx, bf16=config.bf16)
        key = selection_key(metrics)
        row = {
            "epoch": epoch,
            "step": step,
            "loss": float(np.mean(losses)),
            "lr": learning_rate(config, step),
            "train_seconds": round(train_seconds, 1),
            "images_per_second": round(steps_per_epoch * config.batch_size / train_seconds, 1),
            "dev_eer": metrics["eer"],
            "dev_eer_skilled": metrics.get("eer_skilled"),
            "dev_eer_random": metrics.get("eer_random"),
            "dev_auc": metrics["auc"],
        }
        history.append(row)
        kept = key < best or config.selection == "last"
        if kept:
            best = key
            save_model(
                out / "best.safetensors",
                evaluated,
                {"name": config.name or out.name, "preprocess": cache.config.to_dict(), "dev_metrics": metrics, "epoch": epoch},
            )
        skilled = f"{metrics['eer_skilled'] * 100:.2f}%" if "eer_skilled" in metrics else "n/a"
        marker = "  *kept (last)" if config.selection == "last" else "  *best"
        log(f"epoch {epoch:3d}  loss {row['loss']:.4f}  dev EER skilled {skilled}  random {metrics.get('eer_random', float('nan')) * 100:.2f}%  "
            f"AUC {metrics['auc']:.4f}  {row['images_per_second']:.0f} img/s{marker if kept else ''}")
        elapsed = elapsed_before + time.perf_counter() - started
        torch.save(
            {
                "model": network.state_dict(),
                **({"extra_head": extra_head.state_dict()} if extra_head else {}),
                **({"ema": ema.state_dict()} if ema is not None else {}),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
                "sampler": json.dumps(sampler.state_dict()),
                "history": json.dumps(history),
                "step": step,
                "epoch": epoch,
                "best": best,
                "elapsed": elapsed,
            },
            out / "checkpoint.tmp",
        )
        os.replace(out / "checkpoint.tmp", checkpoint_path)
        _write_logs(history, out)
        if config.max_minutes and elapsed > config.max_minutes * 60:
            log(f"stopping after {elapsed / 60:.1f} minutes (max_minutes {config.max_minutes})")
            break

    return finalize(config, out, cache, split, dev_idx, history, elapsed_before + time.perf_counter() - started, command, log, device=device)


def finalize(
    config, out: Path, cache: Cache, split: WriterSplit, dev_idx, history, wall_seconds: float, command, log, *,
    recalibration: Optional[dict] = None, best=None, target: Optional[Path] = None, device: torch.device | str = "cpu",
    ensemble_of: Optional[list[dict]] = None,
) -> Path:
    """Calibrate the best weights on dev writers and write ``model.safetensors`` with full metadata.

    ``recalibration`` (from :func:`recalibrate`): the finished run's training facts to keep
    (``init_version``, ``epochs_run``, ``machine``), the version it replaces (the new one always differs) and a
    record of the recalibration, stored under ``training.recalibrated``. ``best`` (the selected
    weights, default ``out/best.safetensors``) and ``target`` (default ``out/model.safetensors``):
    for recalibrating a model file that has no run folder. ``device``: where the calibration embeds
    (the training's device; the saved weights are the same wherever it ran). ``ensemble_of``: for
    an ensemble, its members (path, version, seed), stored under ``training.ensemble_of``."""
    from .models.artifact import load_artifact

    best = best if best is not None else load_artifact(out / "best.safetensors")
    network = best.network.to(device)
    calibrated = calibrate_network(network, cache, dev_idx, writer_indices(cache, split.train), bf16=config.bf16, use_size=config.use_size, log=log)
    datasets = sorted({r.dataset for r in cache.records})
    init_version = (recalibration or {}).get("init_version")
    if config.init and not recalibration:
        from .api import default_model_path
        from .models.artifact import read_metadata, weights_version

        init_version = weights_version(read_metadata(default_model_path() if config.init == "default" else config.init))
    version = f"{config.name or out.name}-{time.strftime('%Y%m%d%H%M%S')}"
    if recalibration and version == recalibration.get("previous_version"):  # refitted within the same second
        version += "-recalibrated"
    metadata = {
        "name": config.name or out.name,
        "version": version,
        "preprocess": cache.config.to_dict(),
        **{key: calibrated[key] for key in ("thresholds", "size_weight", "size_weight_dev_table", "calibration", "calibration_tta")},
        **({"represent": calibrated["represent"]} if calibrated["represent"] else {}),
        "dev_metrics": best.metadata.get("dev_metrics", {}),
        "selected_epoch": best.metadata.get("epoch", best.metadata.get("selected_epoch")),
        "training": {
            "data": [str(Path(d)) for d in config.data],
            "datasets": datasets,
            "split": split.to_dict(),
            "unseen_writers": sorted(split.dev + split.test),
            "test_writers": sorted(split.test),
            "seed": config.seed,
            "config": config.to_dict(),
            # which weights the training started from (its ``init``), when it did not start from scratch
            **({"init_version": init_version} if init_version else {}),
            "command": command or _command_line(),
            "epochs_run": len(history) if history is not None else (recalibration or {}).get("epochs_run"),
            "wall_seconds": round(wall_seconds, 1),
            "machine": (recalibration or {}).get("machine") or _where(device),  # where it was trained
            "n_train_images": int(sum(1 for r in cache.records if r.writer_key in set(split.train))),
            **({"recalibrated": recalibration["record"]} if recalibration else {}),
            **({"ensemble_of": ensemble_of} if ensemble_of else {}),
        },
    }
    path = save_model(target or out / "model.safetensors", network, metadata, extras={name: torch.from_numpy(calibrated[name]) for name in ("background", "cohort", "cohort_tta")})
    epoch = f"epoch {metadata['selected_epoch']}, " if metadata["selected_epoch"] is not None else ""
    # weights written by a script (e.g. a last-epoch export) carry no dev metrics of their epoch
    dev_eer = f"dev EER {selection_key(metadata['dev_metrics']) * 100:.2f}%, " if metadata["dev_metrics"] else "no dev EER recorded, "
    log(f"model: {path} ({epoch}{dev_eer}{wall_seconds / 60:.1f} min)")
    return path


def recalibrate(run_dir: str | Path, *, log=print, command: Optional[str] = None) -> Path:
    """Refit a finished training run's calibration with this version's code, without training.

    The selected weights (``best.safetensors``) are kept; the size weight, the thresholds,
    the per-method calibration, the WD background, the cohort and ``represent``'s block weights are fitted again on the run's own dev writers
    (its ``split.json``) exactly as :func:`finalize` fits them at the end of training, and
    ``model.safetensors`` is rewritten with a new version. The original training facts (command,
    wall time, the model it started from) are kept and the recalibration is recorded under
    ``training.recalibrated``. ``run_dir`` may also be a model file (a shipped or exported model,
    with no run folder): its own weights are refitted on the dev writers, data and preprocessing
    its metadata records, and the file is rewritten in place.
    """
    from . import __version__
    from .models.artifact import load_artifact, read_metadata

    out = Path(run_dir)
    if not out.exists():
        raise FileNotFoundError(f"{out}: no such training run folder or model file")
    is_file = out.is_file()
    if is_file:
        best = load_artifact(out)
        training = best.metadata.get("training", {})
        if "config" not in training or "split" not in training:
            raise ValueError(f"{out}: the model does not record its training config and split, so its dev writers are unknown")
        config = TrainConfig.from_dict(training["config"])
        split = WriterSplit.from_dict(training["split"])
        history, previous, preprocess = None, best.metadata, best.preprocess
    else:
        for name in ("config.json", "split.json", "log.json", "best.safetensors", "model.safetensors"):
            if not (out / name).exists():
                raise FileNotFoundError(f"{out / name} is missing: {out} is not a finished training run")

        def read_json(name: str):
            try:
                with open(out / name) as handle:
                    return json.load(handle)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{out / name}: not valid JSON ({exc})") from None

        config = TrainConfig.from_dict(read_json("config.json"))
        history = read_json("log.json")
        previous = read_metadata(out / "model.safetensors")
        training = previous.get("training", {})
        split = WriterSplit.load(str(out / "split.json"))
        best, preprocess = None, PreprocessConfig.from_dict(config.preprocess) if config.preprocess else PreprocessConfig()
    cache = _data_cache(config, preprocess, log)
    dev_idx = writer_indices(cache, split.dev)
    if len(dev_idx) == 0:
        raise ValueError(f"{out}: the run's dev writers are not in its data")
    record = {
        "command": command or _command_line(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "sigverify_version": __version__,
        "previous": training.get("recalibrated"),
        "machine": machine_description(),
    }
    keep = {
        "init_version": training.get("init_version"), "epochs_run": training.get("epochs_run"), "machine": training.get("machine"),
        "previous_version": previous.get("version"), "record": record,
    }
    return finalize(
        config, out.parent if is_file else out, cache, split, dev_idx, history, float(training.get("wall_seconds", 0.0)), training.get("command"), log,
        recalibration=keep, best=best, target=out if is_file else None, ensemble_of=training.get("ensemble_of"),
    )


def _where(device: torch.device | str) -> str:
    """This machine, and the GPU when the network ran on one."""
    device = torch.device(device)
    return machine_description() + (f", on {torch.cuda.get_device_name(device)}" if device.type == "cuda" else "")


def build_ensemble(models: Sequence[str | Path], out: str | Path, *, device: str = "cpu", log=print, command: Optional[str] = None) -> Path:
    """Join finished trainings of one recipe on one split (e.g. other seeds) into one model file.

    The members' weights are kept as they are; the ensemble (:class:`sigverify.models.ensemble.EnsembleModel`:
    the members' vectors side by side, the mean of their distances) gets its own size weight,
    thresholds, calibrations and cohort, fitted on the members' dev writers exactly as
    :func:`finalize` fits a single network's, and its metadata lists the members under
    ``training.ensemble_of``. Refused: fewer than two members, members trained on other writers,
    with other preprocessing or with size used by some and not others.
    """
    from types import SimpleNamespace

    from .models.artifact import load_artifact
    from .models.ensemble import EnsembleModel

    started = time.perf_counter()
    if len(models) < 2:
        raise ValueError("an ensemble needs at least two models")
    members = [load_artifact(path) for path in models]
    trainings = [m.metadata.get("training", {}) for m in members]
    if any("config" not in t or "split" not in t for t in trainings):
        raise ValueError("every member must record its training config and split (its dev writers)")
    first = members[0]
    for path, member, training in zip(models[1:], members[1:], trainings[1:]):
        if member.preprocess != first.preprocess:
            raise ValueError(f"{path}: other preprocessing than {models[0]}: members must see the same images")
        if WriterSplit.from_dict(training["split"]).to_dict() != WriterSplit.from_dict(trainings[0]["split"]).to_dict():
            raise ValueError(f"{path}: trained on another writer split than {models[0]}: an ensemble is calibrated on one set of dev writers")
        if bool(training["config"].get("use_size", True)) != bool(trainings[0]["config"].get("use_size", True)):
            raise ValueError(f"{path}: compares sizes where {models[0]} does not, or the other way round")
    # The first member's recipe stands for the ensemble's (data, preprocessing and split are shared), but
    # the place is the ensemble's own: a copied member's `out` names the folder it was trained in.
    config = TrainConfig.from_dict({**trainings[0]["config"], "init": None, "name": Path(out).stem, "out": str(Path(out).parent), "device": device})
    split = WriterSplit.from_dict(trainings[0]["split"])
    network = EnsembleModel([m.network for m in members]).eval()  # a new container starts in training mode
    cache = _data_cache(config, first.preprocess, log)
    dev_idx = writer_indices(cache, split.dev)
    if len(dev_idx) == 0:
        raise ValueError(f"{models[0]}: the members' dev writers are not in their data")
    network.to(training_device(device))
    metrics = dev_metrics(network, cache, dev_idx, bf16=config.bf16)
    member_figures = ", ".join(f"{selection_key(m.metadata['dev_metrics']) * 100:.2f}%" if m.metadata.get("dev_metrics") else "n/a" for m in members)
    log(f"ensemble of {len(members)}: one-reference dev EER {selection_key(metrics) * 100:.2f}% (members {member_figures})")
    ensemble_of = [
        {"path": str(path), "version": m.version, "seed": t["config"].get("seed"), "selected_epoch": m.metadata.get("selected_epoch"), "dev_metrics": m.metadata.get("dev_metrics", {})}
        for path, m, t in zip(models, members, trainings)
    ]
    best = SimpleNamespace(network=network, metadata={"dev_metrics": metrics, "epoch": None})
    target = Path(out)
    return finalize(config, target.parent, cache, split, dev_idx, None, time.perf_counter() - started, command, log, best=best, target=target, device=device, ensemble_of=ensemble_of)
