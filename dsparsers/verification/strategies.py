"""Hypothesis building blocks shared by the architectures' strategies.

Structure (how many candidates, which are above threshold, which boxes fall outside, which values
are NaN) is drawn by Hypothesis so that failures shrink to a minimal case; bulk filler (the scores
of classes that do not matter) comes from a NumPy generator seeded by a drawn integer.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from dsparsers.api.abi_types import DetectionParams, NetworkInfo

#: network sizes people deploy, plus arbitrary multiples of 32
networks = st.one_of(
    st.sampled_from([NetworkInfo(640, 640), NetworkInfo(320, 320), NetworkInfo(1280, 1280),
                     NetworkInfo(640, 384), NetworkInfo(416, 416)]),
    st.builds(NetworkInfo, st.integers(1, 64).map(lambda k: 32 * k), st.integers(1, 64).map(lambda k: 32 * k)),
)

float_dtypes = st.sampled_from([np.float32, np.float16])


def f32(low: float, high: float) -> st.SearchStrategy[float]:
    """Finite float32 values in [low, high] (bounds rounded to float32)."""
    return st.floats(float(np.float32(low)), float(np.float32(high)), width=32, allow_nan=False, allow_infinity=False)


nonfinite = st.sampled_from([float("nan"), float("inf"), float("-inf")])


@st.composite
def detection_params(draw, num_classes: int) -> DetectionParams:
    """nvinfer-like params: usually one threshold per configured class, sometimes per-class values,
    sometimes a configured class count that differs from the model's, rarely a short vector."""
    configured = draw(st.one_of(st.just(num_classes), st.integers(1, num_classes + 3)))
    shape = draw(st.sampled_from(["uniform", "uniform", "per-class", "short"]))
    if shape == "per-class":
        seed = draw(st.integers(0, 2**32 - 1))
        thresholds = tuple(float(v) for v in np.random.default_rng(seed).uniform(0.05, 0.95, configured).astype(np.float32))
    else:
        value = draw(st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.9]), f32(0.0, 1.0)))
        length = configured if shape == "uniform" else draw(st.integers(0, max(0, configured - 1)))
        thresholds = (value,) * length
    return DetectionParams(configured, thresholds, (0.0,) * configured)


@st.composite
def center_box(draw, network: NetworkInfo) -> tuple[float, float, float, float]:
    """(cx, cy, w, h) in network pixels: inside, straddling an edge, outside, tiny, huge, inverted, non-finite."""
    W, H = float(network.width), float(network.height)
    kind = draw(st.sampled_from(["inside", "inside", "inside", "edge", "outside", "tiny", "huge", "negative", "nonfinite"]))
    if kind == "inside":
        return (draw(f32(0, W)), draw(f32(0, H)), draw(f32(1, W)), draw(f32(1, H)))
    if kind == "edge":
        return (draw(st.sampled_from([0.0, W])) + draw(f32(-40, 40)), draw(st.sampled_from([0.0, H])) + draw(f32(-40, 40)),
                draw(f32(1, 120)), draw(f32(1, 120)))
    if kind == "outside":
        return (draw(st.sampled_from([-1.0, 2.0])) * W, draw(f32(-2 * H, 3 * H)), draw(f32(1, W / 2)), draw(f32(1, H)))
    if kind == "tiny":
        return (draw(f32(0, W)), draw(f32(0, H)), draw(f32(0, 2)), draw(f32(0, 2)))
    if kind == "huge":
        return (draw(f32(-1e30, 1e30)), draw(f32(-1e30, 1e30)), draw(f32(0, 3e38)), draw(f32(0, 3e38)))
    if kind == "negative":
        return (draw(f32(0, W)), draw(f32(0, H)), draw(f32(-W, 0)), draw(f32(-H, H)))
    box = [draw(f32(0, W)), draw(f32(0, H)), draw(f32(1, W)), draw(f32(1, H))]
    box[draw(st.integers(0, 3))] = draw(nonfinite)
    return tuple(box)


@st.composite
def score_plan(draw, num_classes: int, params: DetectionParams, mode: str) -> list[tuple[int, float]]:
    """(class, score) assignments for one candidate, by profile: below, above or at its class
    threshold, NaN beside a real score, +-inf, or a tie between two classes (the lower id must win)."""
    cls = draw(st.integers(0, num_classes - 1))
    threshold = float(params.precluster_threshold(cls))
    profile = {"none": "below", "all": "above"}.get(mode) or draw(
        st.sampled_from(["above", "below", "above", "at", "nan", "inf", "tie"]))
    if profile == "below":
        return [(cls, draw(f32(0.0, max(0.0, threshold - 1e-3))) if threshold > 0 else 0.0)]
    if profile == "above":
        return [(cls, draw(f32(min(1.0, threshold), 1.0)))]
    if profile == "at":
        return [(cls, threshold)]
    if profile == "nan":
        return [(draw(st.integers(0, num_classes - 1)), float("nan")), (cls, draw(f32(0.0, 1.0)))]
    if profile == "inf":
        return [(cls, draw(st.sampled_from([float("inf"), float("-inf")])))]
    value = draw(f32(min(1.0, threshold), 1.0))
    return [(draw(st.integers(0, num_classes - 1)), value), (cls, value)]


@st.composite
def scored_candidates(draw, num_classes: int, params: DetectionParams, network: NetworkInfo,
                      max_candidates: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """(boxes [N, 4] cx cy w h, scores [N, C]) float32: every candidate a drawn box and score plan
    over noise below 0.05. Candidates are a Hypothesis list, so failures shrink to one or two."""
    mode = draw(st.sampled_from(["mixed", "mixed", "none", "all"]))
    plans = draw(st.lists(st.tuples(center_box(network), score_plan(num_classes, params, mode)),
                          min_size=1, max_size=max_candidates))
    seed = draw(st.integers(0, 2**32 - 1))
    scores = np.random.default_rng(seed).uniform(0.0, 0.05, (len(plans), num_classes)).astype(np.float32)
    boxes = np.zeros((len(plans), 4), np.float32)
    for i, (box, assignments) in enumerate(plans):
        boxes[i] = box
        for cls, value in assignments:
            scores[i, cls] = value
    return boxes, scores


@st.composite
def corner_box(draw, network: NetworkInfo) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2) in network pixels, from the same kinds as center_box (inverted boxes included)."""
    cx, cy, w, h = draw(center_box(network))
    with np.errstate(all="ignore"):
        half_w, half_h = np.float32(w) * np.float32(0.5), np.float32(h) * np.float32(0.5)
        return (float(np.float32(cx) - half_w), float(np.float32(cy) - half_h),
                float(np.float32(cx) + half_w), float(np.float32(cy) + half_h))


@st.composite
def float_class_id(draw, num_classes: int) -> float:
    """A class id as an exporter writes it into a float tensor, and the ways it goes wrong."""
    kind = draw(st.sampled_from(["valid", "valid", "valid", "valid", "negative", "too-large", "fraction", "nonfinite"]))
    if kind == "valid":
        return float(draw(st.integers(0, num_classes - 1)))
    if kind == "negative":
        return draw(st.sampled_from([-1.0, -0.5, -1e9]))
    if kind == "too-large":
        return float(draw(st.integers(num_classes, num_classes + 5)))
    if kind == "fraction":
        return draw(f32(0.0, float(num_classes)))
    return draw(nonfinite)


@st.composite
def plain_score(draw, params: DetectionParams, class_id: float) -> float:
    """One detection score relative to its class threshold: below, at, above, or non-finite."""
    cls = int(class_id) if np.isfinite(class_id) and class_id >= 0 else 0
    threshold = float(params.precluster_threshold(cls))
    kind = draw(st.sampled_from(["above", "above", "below", "at", "nonfinite"]))
    if kind == "above":
        return draw(f32(min(1.0, threshold), 1.0))
    if kind == "below":
        return draw(f32(0.0, max(0.0, threshold - 1e-3))) if threshold > 0 else 0.0
    if kind == "at":
        return threshold
    return draw(nonfinite)
