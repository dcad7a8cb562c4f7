"""rtdetr-postprocessed's verification side: the NumPy reference decoder, the Hypothesis strategy and the
bench case (``plugins/rtdetr_postprocessed.py`` imports this module only when one of them runs)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from dsparsers import DataType, DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase
from dsparsers import reference as ref
from dsparsers import strategies as sts

from ._detr_common import BOX_COLUMNS
from .rtdetr_postprocessed import PostprocessedParams


def find_layers(case: ParserCase, params: PostprocessedParams):
    """As the C++: each by name, else by shape and type, never one layer twice."""
    int_types = (DataType.INT64, DataType.INT32)
    found: dict[str, Layer | None] = {}
    for role, name in (("labels", params.labels_name), ("boxes", params.boxes_name), ("scores", params.scores_name)):
        found[role] = next((layer for layer in case.layers if layer.name == name), None)
    tests = {
        "boxes": lambda l: len(l.reported_dims) == 2 and l.reported_dims[1] == BOX_COLUMNS,
        "labels": lambda l: len(l.reported_dims) == 1 and l.reported_type in int_types,
        "scores": lambda l: len(l.reported_dims) == 1 and l.reported_type in ref.FLOAT_TYPES,
    }
    for role in ("boxes", "labels", "scores"):
        if found[role] is None:
            taken = [v for v in found.values() if v is not None]
            found[role] = next((l for l in case.layers if all(l is not t for t in taken) and tests[role](l)), None)
    return found["labels"], found["boxes"], found["scores"]


def reference(case: ParserCase, params: PostprocessedParams) -> ParseOutcome:
    with np.errstate(all="ignore"):
        labels, boxes, scores = find_layers(case, params)
        if labels is None or boxes is None or scores is None:
            return ParseOutcome.rejected("missing layer")
        bd = boxes.reported_dims
        if len(bd) != 2 or bd[1] != BOX_COLUMNS or bd[0] == 0 or boxes.reported_type not in ref.FLOAT_TYPES:
            return ParseOutcome.rejected(f"bad boxes {bd}")
        k = bd[0]
        if labels.reported_dims != (k,) or labels.reported_type not in (DataType.INT64, DataType.INT32):
            return ParseOutcome.rejected("bad labels")
        if scores.reported_dims != (k,) or scores.reported_type not in ref.FLOAT_TYPES:
            return ParseOutcome.rejected("bad scores")
        lab = np.ascontiguousarray(labels.data).reshape(-1)[:k].astype(np.int64)
        score = ref.layer_view(scores)
        box = ref.layer_view(boxes)
        valid = (lab >= 0) & (lab < params.num_classes) & (lab < case.params.num_classes_configured)
        cls = np.where(valid, lab, 0)
        keep = valid & ref.passes_threshold(cls, score, case.params)
        x1, y1, x2, y2 = (box[:, j] for j in range(4))
        if params.box_units == "normalized":
            w, h = np.float32(case.network.width), np.float32(case.network.height)
            x1, x2 = (x1 * w).astype(np.float32), (x2 * w).astype(np.float32)
            y1, y2 = (y1 * h).astype(np.float32), (y2 * h).astype(np.float32)
        keep &= ref.all_finite(x1, y1, x2, y2)
        return ParseOutcome(True, ref.boxes_to_detections(x1[keep], y1[keep], x2[keep], y2[keep], cls[keep],
                                                          score[keep], case.network))


def bench_case(params: PostprocessedParams, density: float, rng) -> ParserCase:
    k = params.num_detections or 300
    boxes = np.zeros((k, 4), np.float32)
    boxes[:, :2] = rng.uniform(0, params.input_width - 200, (k, 2))
    boxes[:, 2:] = boxes[:, :2] + rng.uniform(4, 200, (k, 2))
    if params.box_units == "normalized":
        boxes /= np.float32(max(params.input_width, params.input_height))
    scores = np.where(rng.random(k) < density, rng.uniform(0.3, 1.0, k), rng.uniform(0, 0.05, k)).astype(np.float32)
    labels = rng.integers(0, params.num_classes, k).astype(np.int64)
    return ParserCase((Layer(params.labels_name, labels), Layer(params.boxes_name, boxes),
                       Layer(params.scores_name, scores)), NetworkInfo(params.input_width, params.input_height),
                      DetectionParams.uniform(params.num_classes, 0.25))


@st.composite
def cases(draw, params: PostprocessedParams, max_detections: int = 24) -> ParserCase:
    network = draw(sts.networks)
    det = draw(sts.detection_params(params.num_classes))
    count = draw(st.integers(1, max_detections))
    labels = np.zeros(count, np.int64)
    scores = np.zeros(count, np.float32)
    boxes = np.zeros((count, 4), np.float32)
    for i in range(count):
        kind = draw(st.sampled_from(["valid", "valid", "valid", "negative", "too-large", "huge"]))
        labels[i] = {"valid": lambda: draw(st.integers(0, params.num_classes - 1)),
                     "negative": lambda: -1,
                     "too-large": lambda: draw(st.integers(params.num_classes, params.num_classes + 3)),
                     "huge": lambda: draw(st.sampled_from([2**31 + 5, -(2**40), 2**33]))}[kind]()
        scores[i] = draw(sts.plain_score(det, float(max(0, min(labels[i], params.num_classes - 1)))))
        x1, y1, x2, y2 = draw(sts.corner_box(network))
        if params.box_units == "normalized":
            x1, x2 = x1 / network.width, x2 / network.width
            y1, y2 = y1 / network.height, y2 / network.height
        boxes[i] = (x1, y1, x2, y2)
    label_type = draw(st.sampled_from([np.int64, np.int64, np.int32]))
    with np.errstate(over="ignore", invalid="ignore"):
        labels = labels.astype(label_type)  # TensorRT may narrow INT64 outputs to INT32 (wraps huge values)
        boxes = boxes.astype(draw(sts.float_dtypes))
        scores = scores.astype(draw(sts.float_dtypes))
    renamed = draw(st.sampled_from(["named", "named", "renamed"]))
    names = (params.labels_name, params.boxes_name, params.scores_name) if renamed == "named" else \
        ("engine_output_0", "engine_output_1", "engine_output_2")
    layers = [Layer(names[0], labels), Layer(names[1], boxes), Layer(names[2], scores)]
    order = draw(st.permutations(range(3)))
    return ParserCase(tuple(layers[j] for j in order), network, det)

