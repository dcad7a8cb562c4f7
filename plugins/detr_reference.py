"""detr's verification side: the NumPy reference decoder, the Hypothesis strategy, the bench case and
the explain rows (``plugins/detr.py`` imports this module only when one of them runs)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from dsparsers import DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase
from dsparsers import reference as ref
from dsparsers import strategies as sts

from ._detr_common import BOX_COLUMNS
from ._detr_common_reference import center_box_outcome, normalized_box
from .detr import DetrParams

#: logits are multiples of 1/64 in generated cases (exact in FP16; ties stay ties)
_QUANTUM = 64.0


def activated_scores(logits: np.ndarray, activation: str, no_object: bool) -> tuple[np.ndarray, np.ndarray]:
    """(score, class) per query from [Q, K] float32 logits, exactly as the C++ computes them."""
    with np.errstate(all="ignore"):
        classes = logits[:, :-1] if no_object else logits
        best, cls = ref.best_class(classes)
        if activation == "sigmoid":
            return ref.sigmoid(best), cls
        if activation == "none":
            return best, cls
        # softmax: max over all K logits (NaN never wins), then a sequential float32 sum of exp(l - max)
        top, _ = ref.best_class(logits)
        shifted = np.exp((logits - top[:, None]).astype(np.float32)).astype(np.float32)
        total = np.cumsum(shifted, axis=1, dtype=np.float32)[:, -1] if shifted.shape[1] else np.zeros(0, np.float32)
        numerator = np.exp((best - top).astype(np.float32)).astype(np.float32)
        return (numerator / total).astype(np.float32), cls


def find_layers(case: ParserCase, params: DetrParams) -> tuple[Layer | None, Layer | None]:
    """As the C++: both by name, then by shape ([Q, 4] boxes, [Q, K] logits), never one layer twice."""
    k = params.logit_columns
    by_name = {layer.name: layer for layer in reversed(case.layers)}
    logits = by_name.get(params.logits_name)
    boxes = by_name.get(params.boxes_name)
    if boxes is None:
        for layer in case.layers:
            d = layer.reported_dims
            if layer is logits or len(d) != 2 or d[1] != BOX_COLUMNS:
                continue
            if logits is None and k == BOX_COLUMNS:
                continue
            boxes = layer
            break
    if logits is None:
        logits = next((layer for layer in case.layers if layer is not boxes and len(layer.reported_dims) == 2
                       and layer.reported_dims[1] == k), None)
    return logits, boxes


def reference(case: ParserCase, params: DetrParams) -> ParseOutcome:
    with np.errstate(all="ignore"):
        logits, boxes = find_layers(case, params)
        if logits is None or boxes is None:
            return ParseOutcome.rejected("missing layer")
        bd, ld = boxes.reported_dims, logits.reported_dims
        if len(bd) != 2 or bd[1] != BOX_COLUMNS or bd[0] == 0 or ref.element_count(bd) != reported_elements(boxes):
            return ParseOutcome.rejected(f"bad boxes {bd}")
        if (len(ld) != 2 or ld[1] != params.logit_columns or ld[0] != bd[0]
                or ref.element_count(ld) != reported_elements(logits)):
            return ParseOutcome.rejected(f"bad logits {ld}")
        if boxes.reported_type not in ref.FLOAT_TYPES or logits.reported_type not in ref.FLOAT_TYPES:
            return ParseOutcome.rejected("bad type")
        score, cls = activated_scores(ref.layer_view(logits), params.activation, params.no_object)
        box = ref.layer_view(boxes)
        keep = ref.passes_threshold(cls, score, case.params) & (cls < params.num_classes)
        return center_box_outcome(box, cls, score, keep, case.network)


def bench_case(params: DetrParams, density: float, rng) -> ParserCase:
    q = params.num_queries or 300
    k = params.logit_columns
    logits = rng.uniform(-6, -4, (q, k)).astype(np.float32)
    if params.no_object:
        logits[:, -1] = 4.0
    hits = rng.random(q) < density
    logits[hits, rng.integers(0, params.num_classes, int(hits.sum()))] = 8.0
    boxes = rng.uniform(0.1, 0.5, (q, 4)).astype(np.float32)
    return ParserCase((Layer(params.logits_name, logits), Layer(params.boxes_name, boxes)),
                      NetworkInfo(params.input_width, params.input_height),
                      DetectionParams.uniform(params.num_classes, 0.25))


def explain(case: ParserCase, params: DetrParams) -> list[dict[str, Any]]:
    logits, boxes = find_layers(case, params)
    if logits is None or boxes is None or len(logits.reported_dims) != 2 or len(boxes.reported_dims) != 2:
        return []
    with np.errstate(all="ignore"):
        lv, bv = ref.layer_view(logits), ref.layer_view(boxes)
        if lv.shape[1] != params.logit_columns or bv.shape[1] != BOX_COLUMNS or lv.shape[0] != bv.shape[0]:
            return []
        score, cls = activated_scores(lv, params.activation, params.no_object)
    return [{"query": i, "cx": float(b[0]), "cy": float(b[1]), "w": float(b[2]), "h": float(b[3]),
             "best class": int(c), "score": float(s), "threshold": float(case.params.precluster_threshold(int(c)))}
            for i, (b, s, c) in enumerate(zip(bv[:16], score, cls))]


def reported_elements(layer: Layer) -> int:
    """numElements as the harness reports it: the element count of the reported dims."""
    return ref.element_count(layer.reported_dims)


@st.composite
def _logit_row(draw, params: DetrParams, det: DetectionParams, seed: int) -> np.ndarray:
    """One query's K logits: noise, then a profile (an object near/above/below its threshold, no object,
    a tie, NaN, +-inf)."""
    k, c = params.logit_columns, params.num_classes
    rng = np.random.default_rng(seed)
    row = np.round(rng.uniform(-4, 0, k) * _QUANTUM) / _QUANTUM
    profile = draw(st.sampled_from(["object", "object", "object", "background", "tie", "nan", "inf"]))
    cls = draw(st.integers(0, c - 1))
    if profile in ("object", "tie"):
        value = draw(st.integers(-6 * int(_QUANTUM), 12 * int(_QUANTUM))) / _QUANTUM
        row[cls] = value
        if profile == "tie":
            row[draw(st.integers(0, c - 1))] = value
    elif profile == "background" and params.no_object:
        row[-1] = draw(st.integers(0, 12 * int(_QUANTUM))) / _QUANTUM
    elif profile == "nan":
        row[draw(st.integers(0, k - 1))] = np.nan
    elif profile == "inf":
        row[draw(st.integers(0, k - 1))] = draw(st.sampled_from([np.inf, -np.inf]))
    if params.activation == "none":  # already probabilities: a plain score per class
        probs = rng.uniform(0.0, 0.05, k)
        for assigned, value in draw(sts.score_plan(c, det, "mixed")):
            probs[assigned] = value
        return probs.astype(np.float32)
    return row.astype(np.float32)


def away_from_thresholds(logits: np.ndarray, params: DetrParams, det: DetectionParams) -> np.ndarray:
    """Raise the best logit of every query whose score lies within 1e-4 (relative) of its class threshold,
    where NumPy's float32 exp and the C++ std::exp could round to different sides of it."""
    if params.activation == "none":
        return logits
    logits = logits.copy()
    for _ in range(64):
        with np.errstate(all="ignore"):
            score, cls = activated_scores(logits.astype(np.float32), params.activation, params.no_object)
            threshold = ref.threshold_of(cls, det)
            near = np.isfinite(score) & (threshold > 0) & (np.abs(score - threshold) <= np.float32(1e-4) * threshold)
        if not near.any():
            return logits
        rows = np.nonzero(near)[0]
        logits[rows, cls[rows]] = (logits[rows, cls[rows]].astype(np.float32) + np.float32(0.125)).astype(logits.dtype)
    return logits


@st.composite
def cases(draw, params: DetrParams, max_queries: int = 24) -> ParserCase:
    network = draw(sts.networks)
    det = draw(sts.detection_params(params.num_classes))
    count = draw(st.integers(1, max_queries))
    seed = draw(st.integers(0, 2**32 - 1))
    logits = np.stack([draw(_logit_row(params, det, seed + i)) for i in range(count)])
    boxes = np.array([draw(normalized_box()) for _ in range(count)], np.float32)
    with np.errstate(over="ignore"):
        logits = away_from_thresholds(logits.astype(draw(sts.float_dtypes)), params, det)
        boxes = boxes.astype(draw(sts.float_dtypes))
    renamed = draw(st.sampled_from(["named", "named", "logits renamed", "boxes renamed", "both renamed"]))
    if params.logit_columns == BOX_COLUMNS:
        renamed = "named"  # [Q, 4] logits and boxes look alike: only the names tell them apart
    layers = [Layer("engine_output_0" if renamed in ("logits renamed", "both renamed") else params.logits_name, logits),
              Layer("engine_output_1" if renamed in ("boxes renamed", "both renamed") else params.boxes_name, boxes)]
    if draw(st.booleans()):
        layers.reverse()
    return ParserCase(tuple(layers), network, det)

