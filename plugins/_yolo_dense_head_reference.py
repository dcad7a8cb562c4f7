"""The verification side of the dense YOLO heads (_yolo_dense_head.py): the NumPy reference decoder, the
Hypothesis strategy, the bench case and ``explain``. Imported only when verification runs."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from dsparsers import (DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase, anchor_points, bench_inputs,
                        strategies)
from dsparsers import reference as ref

from ._yolo_dense_head import BOX_CHANNELS, DenseHeadParams


def reference(case: ParserCase, params: DenseHeadParams) -> ParseOutcome:
    with np.errstate(all="ignore"):  # inf - inf and friends are part of the contract, not accidents
        return _reference(case, params)


def _reference(case: ParserCase, params: DenseHeadParams) -> ParseOutcome:
    axis = 0 if params.layout == "channels" else 1
    layer = ref.find_layer(case.layers, params.output_name,
                           lambda dims: len(dims) == 2 and dims[axis] == params.channels)
    if layer is None:
        return ParseOutcome.rejected(f"no output layer {params.output_name!r}")
    if layer.reported_type not in ref.FLOAT_TYPES:
        return ParseOutcome.rejected("unsupported data type")
    dims = layer.reported_dims
    if len(dims) != 2 or dims[axis] != params.channels or dims[1 - axis] == 0:
        return ParseOutcome.rejected(f"bad dims {dims}")
    data = ref.layer_view(layer)
    rows = data.T if params.layout == "channels" else data  # [N, offset+C]
    best, cls = ref.best_class(rows[:, params.score_offset:])
    if params.objectness:
        best = (rows[:, BOX_CHANNELS] * best).astype(np.float32)
    keep = ref.keep_scores(best, cls, case.params)
    cx, cy, w, h = (rows[:, k] for k in range(BOX_CHANNELS))
    keep &= ref.all_finite(cx, cy, w, h)
    x1, y1, x2, y2 = ref.corners_from_center(cx[keep], cy[keep], w[keep], h[keep])
    return ParseOutcome(True, ref.boxes_to_detections(x1, y1, x2, y2, cls[keep], best[keep], case.network))


def bench_case(params: DenseHeadParams, density: float, rng) -> ParserCase:
    count = params.num_candidates or anchor_points(params.input_width, params.input_height)
    boxes, scores = bench_inputs.bench_candidates(count, params.num_classes, params.input_width, params.input_height,
                                                  density, rng)
    columns = [boxes] + ([np.ones((count, 1), np.float32)] if params.objectness else []) + [scores]
    rows = np.concatenate(columns, axis=1)
    data = np.ascontiguousarray(rows.T if params.layout == "channels" else rows)
    return ParserCase((Layer(params.output_name, data),), NetworkInfo(params.input_width, params.input_height),
                      DetectionParams.uniform(params.num_classes, 0.25))


def explain(case: ParserCase, params: DenseHeadParams) -> list[dict[str, Any]]:
    layer = case.layers[0]
    if len(layer.reported_dims) != 2:
        return []
    data = ref.layer_view(layer)
    rows = data.T if params.layout == "channels" else data
    best, cls = ref.best_class(rows[:, params.score_offset:])
    return [{"candidate": i, "cx": float(r[0]), "cy": float(r[1]), "w": float(r[2]), "h": float(r[3]),
             **({"objectness": float(r[4])} if params.objectness else {}),
             "best class": int(c), "class score": float(b),
             "threshold": float(case.params.precluster_threshold(int(c)))}
            for i, (r, b, c) in enumerate(zip(rows[:16], best, cls))]


@st.composite
def cases(draw, params: DenseHeadParams, max_candidates: int = 24) -> ParserCase:
    network = draw(strategies.networks)
    det_params = draw(strategies.detection_params(params.num_classes))
    boxes, scores = draw(strategies.scored_candidates(params.num_classes, det_params, network, max_candidates))
    columns = [boxes]
    if params.objectness:
        objectness = draw(st.lists(st.one_of(st.just(1.0), strategies.f32(0.0, 1.0), strategies.nonfinite),
                                   min_size=len(boxes), max_size=len(boxes)))
        columns.append(np.array(objectness, np.float32).reshape(-1, 1))
    rows = np.concatenate(columns + [scores], axis=1)  # [N, offset+C]
    with np.errstate(over="ignore"):  # huge float32 boxes become inf in float16, as a real FP16 engine would
        data = np.ascontiguousarray(rows.T if params.layout == "channels" else rows).astype(draw(strategies.float_dtypes))
    name = draw(st.sampled_from([params.output_name, params.output_name, "renamed_by_engine"]))
    return ParserCase((Layer(name, data),), network, det_params)
