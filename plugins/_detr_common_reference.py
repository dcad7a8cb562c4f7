"""The NumPy / Hypothesis pieces the DETR-style references share (detr and rtdetr-ultralytics read
normalized cx, cy, w, h boxes). Not a plugin; imported by the ``*_reference`` modules only."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from dsparsers import NetworkInfo, ParseOutcome
from dsparsers import reference as ref
from dsparsers import strategies as sts


def center_corners(cx, cy, w, h, network: NetworkInfo):
    """Normalized cx, cy, w, h -> corners in network pixels: (cx - w * 0.5) * W, as the C++."""
    x1, y1, x2, y2 = ref.corners_from_center(cx, cy, w, h)
    width, height = np.float32(network.width), np.float32(network.height)
    return ((x1 * width).astype(np.float32), (y1 * height).astype(np.float32),
            (x2 * width).astype(np.float32), (y2 * height).astype(np.float32))


def center_box_outcome(box: np.ndarray, cls: np.ndarray, score: np.ndarray, keep: np.ndarray,
                       network: NetworkInfo) -> ParseOutcome:
    """The accepted outcome of queries whose normalized cx, cy, w, h are columns 0..3 of ``box``: those
    ``keep`` marks whose corners in network pixels are finite, as detections (clipped, at least a pixel)."""
    x1, y1, x2, y2 = center_corners(box[:, 0], box[:, 1], box[:, 2], box[:, 3], network)
    keep = keep & ref.all_finite(x1, y1, x2, y2)
    return ParseOutcome(True, ref.boxes_to_detections(x1[keep], y1[keep], x2[keep], y2[keep], cls[keep],
                                                      score[keep], network))


@st.composite
def normalized_box(draw) -> tuple[float, float, float, float]:
    """cx, cy, w, h normalized: inside, straddling an edge, tiny, huge, negative size, non-finite."""
    kind = draw(st.sampled_from(["inside", "inside", "inside", "edge", "tiny", "huge", "negative", "nonfinite"]))
    if kind == "inside":
        return (draw(sts.f32(0, 1)), draw(sts.f32(0, 1)), draw(sts.f32(0.01, 1)), draw(sts.f32(0.01, 1)))
    if kind == "edge":
        return (draw(st.sampled_from([0.0, 1.0])) + draw(sts.f32(-0.1, 0.1)), draw(sts.f32(0, 1)),
                draw(sts.f32(0.01, 0.3)), draw(sts.f32(0.01, 0.3)))
    if kind == "tiny":
        return (draw(sts.f32(0, 1)), draw(sts.f32(0, 1)), draw(sts.f32(0, 0.003)), draw(sts.f32(0, 0.003)))
    if kind == "huge":
        return (draw(sts.f32(-1e30, 1e30)), draw(sts.f32(-1e30, 1e30)), draw(sts.f32(0, 3e38)), draw(sts.f32(0, 3e38)))
    if kind == "negative":
        return (draw(sts.f32(0, 1)), draw(sts.f32(0, 1)), draw(sts.f32(-1, 0)), draw(sts.f32(-1, 1)))
    box = [draw(sts.f32(0, 1)), draw(sts.f32(0, 1)), draw(sts.f32(0.01, 1)), draw(sts.f32(0.01, 1))]
    box[draw(st.integers(0, 3))] = draw(st.sampled_from([float("nan"), float("inf"), float("-inf")]))
    return tuple(box)
