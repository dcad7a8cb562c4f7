"""The verification side of yolo-boxes-scores (yolo_boxes_scores.py): the NumPy reference decoder (with the
C++ layer lookup), the Hypothesis strategy, the bench case and ``explain``. Imported only when
verification runs."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from dsparsers import DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase, anchor_points, strategies
from dsparsers import reference as ref

from .yolo_boxes_scores import BOX_COLUMNS, BoxesScoresParams


def reference(case: ParserCase, params: BoxesScoresParams) -> ParseOutcome:
    with np.errstate(all="ignore"):
        return _reference(case, params)


def find_layers(case: ParserCase, params: BoxesScoresParams) -> tuple[Layer | None, Layer | None]:
    """Exactly the C++ lookup: both by name first, then by shape, never the same layer twice."""
    classes = params.num_classes
    axis = 1 if params.scores_layout == "rows" else 0

    def boxes_shape(dims):
        return len(dims) == 2 and dims[1] == BOX_COLUMNS

    def scores_shape(dims):
        return len(dims) == 2 and dims[axis] == classes

    boxes = next((layer for layer in case.layers if layer.name == params.boxes_name), None)
    scores = next((layer for layer in case.layers if layer.name == params.scores_name), None)
    if boxes is None:
        boxes = next((layer for layer in case.layers if layer is not scores and boxes_shape(layer.reported_dims)
                      and (scores is not None or not scores_shape(layer.reported_dims))), None)
    if scores is None:
        scores = next((layer for layer in case.layers if layer is not boxes
                       and scores_shape(layer.reported_dims)), None)
    return boxes, scores


def _reference(case: ParserCase, params: BoxesScoresParams) -> ParseOutcome:
    boxes, scores = find_layers(case, params)
    if boxes is None or scores is None:
        return ParseOutcome.rejected("missing boxes or scores layer")
    bdims, sdims = boxes.reported_dims, scores.reported_dims
    if len(bdims) != 2 or bdims[1] != BOX_COLUMNS or bdims[0] == 0:
        return ParseOutcome.rejected(f"bad boxes dims {bdims}")
    n = bdims[0]
    want = (n, params.num_classes) if params.scores_layout == "rows" else (params.num_classes, n)
    if tuple(sdims) != want:
        return ParseOutcome.rejected(f"bad scores dims {sdims}")
    if boxes.reported_type not in ref.FLOAT_TYPES or scores.reported_type not in ref.FLOAT_TYPES:
        return ParseOutcome.rejected("unsupported data type")
    box = ref.layer_view(boxes)
    matrix = ref.layer_view(scores)
    rows = matrix if params.scores_layout == "rows" else matrix.T
    best, cls = ref.best_class(rows)
    keep = ref.passes_threshold(cls, best, case.params)
    x1, y1, x2, y2 = (box[:, k] for k in range(BOX_COLUMNS))
    keep &= ref.all_finite(x1, y1, x2, y2)
    return ParseOutcome(True, ref.boxes_to_detections(x1[keep], y1[keep], x2[keep], y2[keep], cls[keep],
                                                      best[keep], case.network))


def bench_case(params: BoxesScoresParams, density: float, rng) -> ParserCase:
    count = params.num_candidates or anchor_points(params.input_width, params.input_height)
    boxes = np.zeros((count, BOX_COLUMNS), np.float32)
    boxes[:, 0] = rng.uniform(0, params.input_width - 200, count)
    boxes[:, 1] = rng.uniform(0, params.input_height - 200, count)
    boxes[:, 2:4] = boxes[:, 0:2] + rng.uniform(4, 200, (count, 2))
    scores = rng.uniform(0, 0.05, (count, params.num_classes)).astype(np.float32)
    hits = rng.random(count) < density
    scores[hits, rng.integers(0, params.num_classes, int(hits.sum()))] = rng.uniform(0.3, 1.0, int(hits.sum()))
    scores = np.ascontiguousarray(scores.T if params.scores_layout == "channels" else scores)
    return ParserCase((Layer(params.boxes_name, boxes), Layer(params.scores_name, scores)),
                      NetworkInfo(params.input_width, params.input_height),
                      DetectionParams.uniform(params.num_classes, 0.25))


def explain(case: ParserCase, params: BoxesScoresParams) -> list[dict[str, Any]]:
    boxes, scores = find_layers(case, params)
    if boxes is None or scores is None or len(boxes.reported_dims) != 2 or len(scores.reported_dims) != 2:
        return []
    with np.errstate(all="ignore"):
        box = ref.layer_view(boxes)
        matrix = ref.layer_view(scores)
        rows = matrix if params.scores_layout == "rows" else matrix.T
        if box.shape[1] != BOX_COLUMNS or rows.shape[0] != box.shape[0]:
            return []
        best, cls = ref.best_class(rows)
    return [{"candidate": i, "x1": float(b[0]), "y1": float(b[1]), "x2": float(b[2]), "y2": float(b[3]),
             "best class": int(c), "score": float(s), "threshold": float(case.params.precluster_threshold(int(c)))}
            for i, (b, s, c) in enumerate(zip(box[:16], best, cls))]


@st.composite
def cases(draw, params: BoxesScoresParams, max_candidates: int = 24) -> ParserCase:
    network = draw(strategies.networks)
    det = draw(strategies.detection_params(params.num_classes))
    mode = draw(st.sampled_from(["mixed", "mixed", "none", "all"]))
    plan = st.tuples(strategies.corner_box(network), strategies.score_plan(params.num_classes, det, mode))
    plans = draw(st.lists(plan, min_size=1, max_size=max_candidates))
    seed = draw(st.integers(0, 2**32 - 1))
    scores = np.random.default_rng(seed).uniform(0.0, 0.05, (len(plans), params.num_classes)).astype(np.float32)
    boxes = np.zeros((len(plans), BOX_COLUMNS), np.float32)
    for i, (box, assignments) in enumerate(plans):
        boxes[i] = box
        for cls, value in assignments:
            scores[i, cls] = value
    if params.scores_layout == "channels":
        scores = np.ascontiguousarray(scores.T)
    with np.errstate(over="ignore"):  # huge float32 corners become inf in FP16, as in a real FP16 engine
        boxes = boxes.astype(draw(strategies.float_dtypes))
        scores = scores.astype(draw(strategies.float_dtypes))
    # engines may rename outputs; with 4 classes only the names tell the two apart, so keep them
    naming = "named" if params.num_classes == BOX_COLUMNS else draw(
        st.sampled_from(["named", "named", "boxes renamed", "scores renamed", "both renamed"]))
    boxes_name = "engine_output_0" if naming in ("boxes renamed", "both renamed") else params.boxes_name
    scores_name = "engine_output_1" if naming in ("scores renamed", "both renamed") else params.scores_name
    layers = [Layer(boxes_name, boxes), Layer(scores_name, scores)]
    if draw(st.booleans()):
        layers.reverse()  # engine binding order need not follow the ONNX output order
    return ParserCase(tuple(layers), network, det)
