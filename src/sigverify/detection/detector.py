"""Finding signatures on pages: ``sigverify.detect(image)``.

The detector artifact (safetensors + JSON, ``kind: detector``) holds the network, the long side
pages are resized to, and the operating score chosen on development pages. Boxes come back in the
page's own pixels (x right, y down), sorted by score.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

from ..errors import ModelError
from ..models.artifact import check_state_dict, read_artifact, write_artifact
from .boxes import nms
from .data import canvas_for, resize_for_detection, to_canvas, to_tensor
from .model import SignatureDetector, decode

DETECTOR_REQUIRED = ("format", "kind", "architecture", "long_side", "operating_score")


@dataclass
class DetectorArtifact:
    network: SignatureDetector
    metadata: dict[str, Any]
    path: Optional[str] = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def long_side(self) -> int:
        return int(self.metadata["long_side"])

    @property
    def operating_score(self) -> float:
        return float(self.metadata["operating_score"])

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", "detector"))


def save_detector(path: str | Path, network: SignatureDetector, metadata: dict[str, Any]) -> Path:
    meta = {**metadata, "kind": "detector", "architecture": {"name": "centernet-lite", "args": {"widths": network.widths, "head": network.head_width}}}
    return write_artifact(path, network.state_dict(), meta)


def load_detector_artifact(path: str | Path) -> DetectorArtifact:
    metadata, tensors = read_artifact(path, required=DETECTOR_REQUIRED, kind="detector")
    try:
        network = SignatureDetector(**metadata["architecture"].get("args", {}))
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{path}: cannot build the declared detector: {exc}") from None
    expected = network.state_dict()
    check_state_dict(path, expected, tensors, "centernet-lite")
    network.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    network.eval()
    return DetectorArtifact(network, metadata, str(path))


_detectors: dict[str, DetectorArtifact] = {}
_detectors_lock = threading.Lock()


def default_detector_path() -> Path:
    import os

    override = os.environ.get("SIGVERIFY_DETECTOR")
    if override:
        return Path(override)
    return Path(str(resources.files("sigverify") / "weights" / "detector.safetensors"))


def load_detector(detector: Union[None, str, Path, DetectorArtifact] = None) -> DetectorArtifact:
    """Load (once, then cached) a detector; no argument: the shipped one."""
    if isinstance(detector, DetectorArtifact):
        return detector
    path = Path(detector) if detector is not None else default_detector_path()
    key = str(path.resolve())
    with _detectors_lock:
        if key not in _detectors:
            if not path.is_file():
                raise ModelError(f"{path}: no such detector file (rebuild it with scripts/train_detector.sh)")
            _detectors[key] = load_detector_artifact(path)
        return _detectors[key]


def detect_gray(gray: np.ndarray, artifact: DetectorArtifact, *, min_score: Optional[float] = None, bf16: bool = True, max_boxes: int = 20) -> list[dict[str, Any]]:
    """Boxes on one greyscale page (H x W uint8, 255 = paper), in its own pixels, best first."""
    threshold = artifact.operating_score if min_score is None else float(min_score)
    # Training scaled its pages the same way (portrait on the long side, cheques as on a letter sheet).
    height, width = gray.shape
    small, scale = resize_for_detection(gray, artifact.long_side)
    x = to_tensor([to_canvas(small, canvas_for(artifact.long_side))])
    with artifact.lock, torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        outputs = artifact.network(x)
    found = decode(tuple(o.float() for o in outputs), min_score=min(threshold, 0.99), max_boxes=max_boxes)[0]
    if not found:
        return []
    boxes = np.array([f[:4] for f in found]) / scale
    scores = np.array([f[4] for f in found])
    keep = nms(boxes, scores, 0.3)
    results = []
    for index in keep:
        x0, y0, x1, y1 = boxes[index]
        box = [max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)]
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            continue
        results.append({"box": [round(v, 1) for v in box], "score": float(scores[index])})
    return sorted(results, key=lambda r: -r["score"])
