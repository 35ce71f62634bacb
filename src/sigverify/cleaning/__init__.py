"""Cleaning signatures of stamps, printed lines and text: ``sigverify.clean(image, method)``.

Methods: ``classical`` (morphology and component filtering, no weights), ``unet`` (supervised on
synthetic noisy/clean pairs) and ``cyclegan`` (unpaired noisy <-> clean translation). Learned
cleaners ship as safetensors artifacts (``kind: cleaner``) beside the verifier. Every cleaner takes
and returns an 8-bit greyscale image of the same size (255 = paper).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import cv2
import numpy as np
import torch

from ..errors import ModelError
from ..imageio import DEFAULT_MAX_PIXELS, ImageSource, load_gray
from ..models.artifact import check_state_dict, read_artifact, write_artifact
from .classical import clean_classical
from .networks import ResnetGenerator, UNet

CLEANERS = ("classical", "unet", "cyclegan", "none")
CLEANER_REQUIRED = ("format", "kind", "method", "architecture", "height")


@dataclass
class CleanerArtifact:
    method: str
    network: torch.nn.Module
    metadata: dict[str, Any]
    path: Optional[str] = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def height(self) -> int:
        return int(self.metadata["height"])


def build_network(method: str, args: dict[str, Any]) -> torch.nn.Module:
    if method == "unet":
        return UNet(**args)
    if method == "cyclegan":
        return ResnetGenerator(**args)
    raise ValueError(f"no network for cleaner {method!r}")


def save_cleaner(path: str | Path, method: str, network: torch.nn.Module, metadata: dict[str, Any]) -> Path:
    args = {"widths": network.widths} if method == "unet" else {"features": network.features, "blocks": network.blocks}
    meta = {**metadata, "kind": "cleaner", "method": method, "architecture": {"name": method, "args": args}}
    return write_artifact(path, network.state_dict(), meta)


def load_cleaner_artifact(path: str | Path) -> CleanerArtifact:
    metadata, tensors = read_artifact(path, required=CLEANER_REQUIRED, kind="cleaner")
    try:
        network = build_network(metadata["method"], metadata["architecture"].get("args", {}))
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{path}: cannot build the declared cleaner: {exc}") from None
    expected = network.state_dict()
    check_state_dict(path, expected, tensors, metadata["method"])
    network.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    network.eval()
    return CleanerArtifact(metadata["method"], network, metadata, str(path))


_cleaners: dict[str, CleanerArtifact] = {}
_cleaners_lock = threading.Lock()


def default_cleaner_path(method: str) -> Path:
    return Path(str(resources.files("sigverify") / "weights" / f"cleaner-{method}.safetensors"))


def load_cleaner(method: str = "unet", path: Union[None, str, Path] = None) -> CleanerArtifact:
    """A learned cleaner (cached); ``path`` overrides the shipped ``weights/cleaner-<method>``."""
    target = Path(path) if path is not None else default_cleaner_path(method)
    key = str(target.resolve())
    with _cleaners_lock:
        if key not in _cleaners:
            if not target.is_file():
                raise ModelError(f"{target}: no such cleaner file (rebuild it with scripts/train_cleaners.sh)")
            artifact = load_cleaner_artifact(target)
            if artifact.method != method and path is None:
                raise ModelError(f"{target}: holds a {artifact.method} cleaner, not {method}")
            _cleaners[key] = artifact
        return _cleaners[key]


def to_network_input(gray: np.ndarray, height: int) -> tuple[torch.Tensor, tuple[int, int], float]:
    """Resize to ``height`` (aspect kept), invert to ink = 1, pad to multiples of 16."""
    scale = height / gray.shape[0]
    width = max(16, int(round(gray.shape[1] * scale)))
    small = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    padded_w = int(np.ceil(width / 16) * 16)
    canvas = np.full((height, padded_w), 255, dtype=np.uint8)
    canvas[:, :width] = small
    tensor = torch.from_numpy(1.0 - canvas.astype(np.float32) / 255.0)[None, None]
    return tensor, (height, width), scale


@torch.inference_mode()
def run_network(artifact: CleanerArtifact, gray: np.ndarray) -> np.ndarray:
    """Clean one greyscale image with a learned cleaner; same size out."""
    tensor, (height, width), _ = to_network_input(gray, artifact.height)
    with artifact.lock:
        ink = torch.sigmoid(artifact.network(tensor))[0, 0, :, :width].numpy()
    cleaned = np.clip(255.0 - ink * 255.0, 0, 255).astype(np.uint8)
    return cv2.resize(cleaned, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)


def clean(image: ImageSource, method: str = "unet", *, cleaner: Union[None, str, Path] = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Remove stamps, printed lines and text from a signature image.

    Parameters
    ----------
    image
        Path, bytes, NumPy array or PIL image of a signature (crop).
    method
        ``"unet"`` (default), ``"cyclegan"``, ``"classical"`` or ``"none"``.
    cleaner
        Path of a learned cleaner artifact instead of the shipped one.

    Returns
    -------
    np.ndarray
        H x W uint8 greyscale, the input's size, 255 = paper.
    """
    if method not in CLEANERS:
        raise ValueError(f"unknown cleaner {method!r}; choose one of {', '.join(CLEANERS)}")
    gray = load_gray(image, max_pixels=max_pixels)
    if method == "none":
        return gray
    if method == "classical":
        return clean_classical(gray)
    return run_network(load_cleaner(method, cleaner), gray)
