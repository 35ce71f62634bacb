"""Model artifacts: one ``.safetensors`` file holding the weights (fp16) and, in its header, the JSON
metadata needed to rebuild and trust the model. Loading never unpickles anything.

Metadata (``sigverify`` key of the safetensors header), format 1::

    format, sigverify_version, name, created
    architecture: {"name": ..., "args": {...}}, embedding_dim, pair_head, local_head (its arguments, if any)
    preprocess: PreprocessConfig.to_dict()
    training: data, split (train/dev/test writer keys), seed, command, config, epochs, wall time, machine
    thresholds: {"distance": ..., ...}     decision thresholds fixed on development writers
    calibration: {...}                      score -> probability maps fitted on development writers
    dev_metrics: {...}
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import torch

from ..errors import ModelError
from ..preprocess import PreprocessConfig
from .ensemble import build_network
from .siamese import SiameseModel

if TYPE_CHECKING:
    from ..methods import Cohort, Comparator
    from .layout import RepresentLayout

FORMAT_VERSION = 1
METADATA_KEY = "sigverify"
REQUIRED_KEYS = ("format", "architecture", "embedding_dim", "preprocess")


@dataclass
class ModelArtifact:
    """A loaded model: the network (eval mode, fp32), its preprocessing and its metadata."""

    network: SiameseModel
    metadata: dict[str, Any]
    path: Optional[str] = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    preprocess: PreprocessConfig = field(init=False)
    _comparator: Optional[Any] = field(init=False, default=None, repr=False)
    _cohorts: dict[str, Any] = field(init=False, default_factory=dict, repr=False)
    _layout: Optional[tuple] = field(init=False, default=None, repr=False)  # (layout or None,), once fitted

    def __post_init__(self) -> None:
        self.preprocess = PreprocessConfig.from_dict(self.metadata["preprocess"])

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or (Path(self.path).stem if self.path else "model"))

    @property
    def version(self) -> str:
        """Identifies the weights: embeddings from different versions must not be mixed."""
        return str(self.metadata.get("version") or self.name)

    @property
    def size_weight(self) -> float:
        """Weight of the measured signature size in the compared vectors (0: size not used)."""
        return float(self.metadata.get("size_weight", 0.0))

    @property
    def global_dim(self) -> int:
        """Length of the embedding plus, when the model uses size, the weighted size (3 values)."""
        return self.network.embedding_dim + (3 if self.size_weight else 0)

    @property
    def vector_dim(self) -> int:
        """Length of the vectors the methods compare (embedding [+ weighted size], then the local
        descriptor for models with a local head); :func:`sigverify.represent` hands them out
        re-laid out (:attr:`represent_dim`)."""
        return self.global_dim + self.network.descriptor_dim

    @property
    def represent_layout(self) -> Optional["RepresentLayout"]:
        """How :func:`sigverify.represent` lays out this model's vectors for outside scorers (fitted
        once from the stored cohort, see :mod:`sigverify.models.layout`); ``None`` for a model
        calibrated before cohorts existed, whose vectors are handed out as they are compared."""
        from .layout import LOCAL_WEIGHT, RepresentLayout

        if self._layout is None:
            cohort = self.cohort_for(False)
            layout = None
            if cohort is not None:
                weights = self.metadata.get("represent") or {}  # block weights chosen on the model's dev writers
                layout = RepresentLayout.fit(
                    cohort.vectors, self.network.embedding_dim, bool(self.size_weight), self.network.descriptor_dim,
                    local_weight=float(weights.get("local_weight", LOCAL_WEIGHT)), size_scale=float(weights.get("size_scale", 1.0)),
                )
            self._layout = (layout,)
        return self._layout[0]

    @property
    def represent_dim(self) -> int:
        """Length of the vectors :func:`sigverify.represent` returns (``vector_dim`` re-laid out)."""
        layout = self.represent_layout
        return self.vector_dim if layout is None else layout.dim

    def to_represented(self, vectors: np.ndarray) -> np.ndarray:
        """Internal vectors (``N x vector_dim``, what the methods compare) -> what ``represent`` returns."""
        layout = self.represent_layout
        return np.asarray(vectors, dtype=np.float32) if layout is None else layout.encode(vectors)

    def from_represented(self, vectors: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_represented` (to float32 rounding)."""
        layout = self.represent_layout
        return np.asarray(vectors, dtype=np.float32) if layout is None else layout.decode(vectors)

    @property
    def comparator(self) -> "Comparator":
        """How this model's vectors are compared: Euclidean, or the learned local-head distance."""
        from .local import comparator_for

        if self._comparator is None:  # built once: a learned distance remembers recent matrices
            self._comparator = comparator_for(self.network, self.size_weight)
        return self._comparator

    def vectors(self, images: np.ndarray, sizes: Optional[np.ndarray], *, bf16: bool = True, tta: bool = False) -> np.ndarray:
        """Embeddings (and weighted sizes) of preprocessed images: what the methods compare."""
        from .siamese import signature_vectors

        return signature_vectors(self.network, images, sizes, self.size_weight, bf16=bf16, tta=tta)

    def writers(self, role: str) -> list[str]:
        """The writer keys the model's metadata records for ``role``: ``"train"`` and ``"dev"`` (its
        split) or ``"test"`` (the writers held out from it); empty when it records none."""
        training = self.metadata.get("training", {})
        if role == "test":
            return list(training.get("test_writers") or [])
        if role in ("train", "dev"):
            return list(training.get("split", {}).get(role) or [])
        raise ValueError(f"role must be train, dev or test, got {role!r}")

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self.metadata.get("thresholds", {}))

    @property
    def calibration(self) -> dict[str, Any]:
        return dict(self.metadata.get("calibration", {}))

    @property
    def background(self) -> Optional[np.ndarray]:
        """Genuine embeddings of training writers (negatives of the writer-dependent classifiers)."""
        tensor = self.extras.get("background")
        return None if tensor is None else tensor.float().numpy()

    def has_tta_calibration(self) -> bool:
        """Whether the model was calibrated with test-time-augmented vectors too (models calibrated
        before stop 22 were not: ``sigverify recalibrate`` adds it)."""
        return bool(self.metadata.get("calibration_tta")) and "cohort_tta" in self.extras

    def calibration_for(self, tta: bool) -> dict[str, Any]:
        """The calibration fitted for plain (``tta=False``) or test-time-augmented vectors."""
        if not tta:
            return self.calibration
        if not self.has_tta_calibration():
            raise ModelError(f"{self.path or self.name}: no calibration for test-time augmentation; refit it with `sigverify recalibrate`")
        return dict(self.metadata["calibration_tta"])

    @property
    def cohort(self) -> Optional["Cohort"]:
        """Training writers' genuine signatures as full vectors, for the cohort methods (``None``
        for a model calibrated before they existed)."""
        return self.cohort_for(False)

    def cohort_for(self, tta: bool) -> Optional["Cohort"]:
        """The cohort as plain (``tta=False``) or test-time-augmented vectors, built once (it
        remembers the scales it computed)."""
        from ..methods import Cohort

        name = "cohort_tta" if tta else "cohort"
        tensor = self.extras.get(name)
        if tensor is None:
            return None
        if name not in self._cohorts:
            if tensor.ndim != 2 or tensor.shape[1] != self.vector_dim:
                raise ModelError(f"{self.path}: {name} vectors of size {tuple(tensor.shape)} do not match the model's vectors ({self.vector_dim})")
            self._cohorts[name] = Cohort(tensor.float().numpy())
        return self._cohorts[name]


EXTRA_PREFIX = "extra."


def write_artifact(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any], *, half: bool = True) -> Path:
    """Write tensors (floating ones as fp16 when ``half``) and JSON metadata to one safetensors
    file, atomically. Shared by the verifier, the detector and the cleaners."""
    from safetensors.torch import save_file

    from .. import __version__

    meta = dict(metadata)
    meta.setdefault("format", FORMAT_VERSION)
    meta.setdefault("sigverify_version", __version__)
    meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S"))
    meta["weights_dtype"] = "float16" if half else "float32"
    stored = {}
    for key, value in tensors.items():
        value = torch.as_tensor(value).detach().cpu().contiguous()
        stored[key] = value.half() if half and value.is_floating_point() else value
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(stored, str(tmp), metadata={METADATA_KEY: json.dumps(meta, sort_keys=True)})
    tmp.replace(path)
    return path


def read_artifact(path: str | Path, *, required: tuple[str, ...] = ("format",), kind: Optional[str] = None) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(metadata, tensors) of an artifact, or :class:`ModelError` saying what is wrong with it."""
    from safetensors.torch import load_file

    metadata = read_metadata(path, required=required)
    if kind is not None and metadata.get("kind", "verifier") != kind:
        raise ModelError(f"{path}: a {metadata.get('kind', 'verifier')} model, not a {kind}")
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{path}: weights unreadable (truncated or corrupt?): {exc}") from None
    return metadata, tensors


def check_state_dict(path: str | Path, expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], architecture: str) -> None:
    """Refuse weights whose names or shapes differ from the network built from the metadata."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if tuple(expected[k].shape) != tuple(tensors[k].shape))
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"missing {missing[:3]}")
        if unexpected:
            details.append(f"unexpected {unexpected[:3]}")
        if wrong:
            details.append(f"wrong shape {wrong[:3]}")
        raise ModelError(f"{path}: weights do not match the declared architecture {architecture}: " + "; ".join(details))


def save_model(
    path: str | Path,
    network: SiameseModel,
    metadata: dict[str, Any],
    *,
    half: bool = True,
    extras: Optional[dict[str, torch.Tensor]] = None,
) -> Path:
    """Write a verifier: ``network``'s weights, ``extras`` (e.g. the background embeddings) and
    ``metadata`` in one safetensors file."""
    meta = dict(metadata)
    meta["kind"] = "verifier"
    meta["architecture"] = {"name": network.architecture, "args": network.architecture_args}
    meta["embedding_dim"] = network.embedding_dim
    meta["pair_head"] = network.pair_head is not None
    if network.local_head_args:
        meta["local_head"] = network.local_head_args
    else:
        meta.pop("local_head", None)
    meta["extras"] = sorted(extras or {})
    tensors = dict(network.state_dict())
    tensors.update({EXTRA_PREFIX + k: torch.as_tensor(v) for k, v in (extras or {}).items()})
    return write_artifact(path, tensors, meta, half=half)


def weights_version(metadata: dict[str, Any]) -> Optional[str]:
    """Which weights a model file holds, from its metadata (as a later stage records in ``init_version``)."""
    return metadata.get("version") or metadata.get("name")


def read_metadata(path: str | Path, *, required: tuple[str, ...] = REQUIRED_KEYS) -> dict[str, Any]:
    """The metadata of an artifact, without loading its weights."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for bad files
        raise ModelError(f"{path}: not a readable safetensors model (truncated or corrupt?): {exc}") from None
    if METADATA_KEY not in header:
        raise ModelError(f"{path}: safetensors file without sigverify metadata")
    try:
        metadata = json.loads(header[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: metadata is not valid JSON ({exc})") from None
    missing = [key for key in required if key not in metadata]
    if missing:
        raise ModelError(f"{path}: metadata lacks {', '.join(missing)}")
    if metadata["format"] > FORMAT_VERSION:
        raise ModelError(f"{path}: model format {metadata['format']} is newer than this sigverify ({FORMAT_VERSION})")
    return metadata


def load_artifact(path: str | Path) -> ModelArtifact:
    """Load a verifier artifact, checking that its weights match its declared architecture.

    Raises
    ------
    ModelError
        Missing, truncated or corrupt file; metadata missing or inconsistent; weights that do not
        fit the declared architecture.
    """
    metadata, tensors = read_artifact(path, required=REQUIRED_KEYS, kind="verifier")
    extras = {k[len(EXTRA_PREFIX) :]: v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)}
    tensors = {k: v for k, v in tensors.items() if not k.startswith(EXTRA_PREFIX)}
    if sorted(extras) != sorted(metadata.get("extras", [])):
        raise ModelError(f"{path}: extra tensors {sorted(extras)} differ from the declared {metadata.get('extras', [])}")
    architecture = metadata["architecture"]
    try:
        network = build_network(
            architecture["name"], architecture.get("args", {}), pair_head=bool(metadata.get("pair_head")), local_head=metadata.get("local_head")
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: cannot build declared architecture {architecture!r}: {exc}") from None
    if network.embedding_dim != metadata["embedding_dim"]:
        raise ModelError(f"{path}: declared embedding size {metadata['embedding_dim']} != architecture's {network.embedding_dim}")
    expected = network.state_dict()
    check_state_dict(path, expected, tensors, architecture["name"])
    network.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()}, strict=True)
    network.eval()
    return ModelArtifact(network=network, metadata=metadata, path=str(path), extras=extras)
