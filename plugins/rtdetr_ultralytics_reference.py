"""rtdetr-ultralytics' verification side: the NumPy reference decoder, the Hypothesis strategy and the
bench case (``plugins/rtdetr_ultralytics.py`` imports this module only when one of them runs)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from dsparsers import DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase
from dsparsers import reference as ref
from dsparsers import strategies as sts

from ._detr_common_reference import center_box_outcome, normalized_box
from .rtdetr_ultralytics import RtdetrParams


def reference(case: ParserCase, params: RtdetrParams) -> ParseOutcome:
    width = params.row_width
    with np.errstate(all="ignore"):
        layer = ref.find_layer(case.layers, params.output_name, lambda d: len(d) == 2 and d[1] == width)
        if layer is None:
            return ParseOutcome.rejected("no layer")
        dims = layer.reported_dims
        if layer.reported_type not in ref.FLOAT_TYPES or len(dims) != 2 or dims[1] != width or dims[0] == 0:
            return ParseOutcome.rejected(f"bad layer {dims}")
        rows = ref.layer_view(layer)
        if params.layout == "rows":
            valid, cls = ref.class_ids_from_float(rows[:, 5], params.num_classes, case.params.num_classes_configured)
            score = rows[:, 4]
        else:
            score, cls = ref.best_class(rows[:, 4:])
            valid = np.ones(len(rows), bool)
        keep = valid & ref.passes_threshold(cls, score, case.params)
        return center_box_outcome(rows, cls, score, keep, case.network)


def bench_case(params: RtdetrParams, density: float, rng) -> ParserCase:
    q = params.num_queries or 300
    rows = np.zeros((q, params.row_width), np.float32)
    rows[:, :4] = rng.uniform(0.1, 0.5, (q, 4))
    hits = rng.random(q) < density
    if params.layout == "rows":
        rows[:, 4] = np.where(hits, rng.uniform(0.3, 1.0, q), rng.uniform(0, 0.05, q))
        rows[:, 5] = rng.integers(0, params.num_classes, q)
    else:
        rows[:, 4:] = rng.uniform(0, 0.05, (q, params.num_classes))
        rows[hits, 4 + rng.integers(0, params.num_classes, int(hits.sum()))] = rng.uniform(0.3, 1.0, int(hits.sum()))
    return ParserCase((Layer(params.output_name, rows),), NetworkInfo(params.input_width, params.input_height),
                      DetectionParams.uniform(params.num_classes, 0.25))


@st.composite
def cases(draw, params: RtdetrParams, max_queries: int = 24) -> ParserCase:
    network = draw(sts.networks)
    det = draw(sts.detection_params(params.num_classes))
    count = draw(st.integers(1, max_queries))
    rows = np.zeros((count, params.row_width), np.float32)
    seed = draw(st.integers(0, 2**32 - 1))
    if params.layout == "scores":
        rows[:, 4:] = np.random.default_rng(seed).uniform(0.0, 0.05, (count, params.num_classes))
    for i in range(count):
        rows[i, :4] = draw(normalized_box())
        if params.layout == "rows":
            cls = draw(sts.float_class_id(params.num_classes))
            rows[i, 4], rows[i, 5] = draw(sts.plain_score(det, cls)), cls
        else:
            for assigned, value in draw(sts.score_plan(params.num_classes, det, "mixed")):
                rows[i, 4 + assigned] = value
    with np.errstate(over="ignore"):
        data = rows.astype(draw(sts.float_dtypes))
    name = draw(st.sampled_from([params.output_name, params.output_name, "renamed_by_engine"]))
    return ParserCase((Layer(name, data),), network, det)

