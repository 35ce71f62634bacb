"""Box maths. Boxes are ``[x0, y0, x1, y1]`` in pixels, x to the right, y down, x1/y1 exclusive."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``len(a) x len(b)`` IoUs of two ``N x 4`` box arrays."""
    a = np.asarray(a, dtype=float).reshape(-1, 4)
    b = np.asarray(b, dtype=float).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def scale_boxes(boxes: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Boxes of an image mapped onto the same image resized by (sx, sy): x times sx, y times sy."""
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4).copy()
    boxes[:, [0, 2]] *= sx
    boxes[:, [1, 3]] *= sy
    return boxes


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4).copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    return boxes


def rotate_boxes(boxes: np.ndarray, angle_degrees: float, centre: tuple[float, float], new_centre: tuple[float, float] | None = None) -> np.ndarray:
    """Axis-aligned boxes enclosing ``boxes`` rotated by ``angle_degrees`` (counter-clockwise on the
    image, as ``cv2.getRotationMatrix2D`` rotates) about ``centre``; ``new_centre`` shifts the result
    (when the rotated image was enlarged to fit)."""
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    theta = math.radians(angle_degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    cx, cy = centre
    nx, ny = new_centre if new_centre is not None else centre
    out = []
    for x0, y0, x1, y1 in boxes:
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) - [cx, cy]
        # Image y points down, so a counter-clockwise turn on screen is (x, y) -> (x cos + y sin, -x sin + y cos).
        xs = corners[:, 0] * cos + corners[:, 1] * sin + nx
        ys = -corners[:, 0] * sin + corners[:, 1] * cos + ny
        out.append([xs.min(), ys.min(), xs.max(), ys.max()])
    return np.array(out).reshape(-1, 4)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> list[int]:
    """Greedy non-maximum suppression; indices of the kept boxes, best first."""
    order = list(np.argsort(-np.asarray(scores)))
    keep: list[int] = []
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    while order:
        best = order.pop(0)
        keep.append(int(best))
        if not order:
            break
        overlaps = iou_matrix(boxes[best : best + 1], boxes[order])[0]
        order = [i for i, o in zip(order, overlaps) if o <= threshold]
    return keep
