"""The verification side of the decoded-rows heads (_yolo_decoded_rows.py: yolo-end2end, deepstream-yolo):
the NumPy reference decoder, the Hypothesis strategy, the bench case and ``explain``. Imported only when
verification runs."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from dsparsers import DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase, strategies
from dsparsers import reference as ref

from ._yolo_decoded_rows import ROW_WIDTH, DecodedRowsParams


def reference(case: ParserCase, params: DecodedRowsParams) -> ParseOutcome:
    with np.errstate(all="ignore"):
        layer = ref.find_layer(case.layers, params.output_name, lambda d: len(d) == 2 and d[1] == ROW_WIDTH)
        if layer is None:
            return ParseOutcome.rejected(f"no output layer {params.output_name!r}")
        dims = layer.reported_dims
        if layer.reported_type not in ref.FLOAT_TYPES or len(dims) != 2 or dims[1] != ROW_WIDTH or dims[0] == 0:
            return ParseOutcome.rejected(f"bad layer {dims} {layer.reported_type.name}")
        rows = ref.layer_view(layer)
        valid, cls = ref.class_ids_from_float(rows[:, 5], params.num_classes, case.params.num_classes_configured)
        score = rows[:, 4]
        keep = valid & ref.passes_threshold(cls, score, case.params)
        keep &= ref.all_finite(rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3])
        x1, y1, x2, y2 = (rows[keep, k] for k in range(4))
        return ParseOutcome(True, ref.boxes_to_detections(x1, y1, x2, y2, cls[keep], score[keep], case.network))


def bench_case(params: DecodedRowsParams, density: float, rng, count: int) -> ParserCase:
    """``count`` rows (the head's, or the family's canonical count) at the canonical input."""
    rows = np.zeros((count, ROW_WIDTH), np.float32)
    rows[:, 0] = rng.uniform(0, params.input_width - 200, count)
    rows[:, 1] = rng.uniform(0, params.input_height - 200, count)
    rows[:, 2:4] = rows[:, 0:2] + rng.uniform(4, 200, (count, 2))
    rows[:, 4] = np.where(rng.random(count) < density, rng.uniform(0.3, 1.0, count), rng.uniform(0, 0.05, count))
    rows[:, 5] = rng.integers(0, params.num_classes, count)
    return ParserCase((Layer(params.output_name, rows),), NetworkInfo(params.input_width, params.input_height),
                      DetectionParams.uniform(params.num_classes, 0.25))


def explain(case: ParserCase, params: DecodedRowsParams) -> list[dict[str, Any]]:
    layer = case.layers[0]
    if len(layer.reported_dims) != 2 or layer.reported_dims[1] != ROW_WIDTH:
        return []
    rows = ref.layer_view(layer)
    return [{"row": i, "x1": float(r[0]), "y1": float(r[1]), "x2": float(r[2]), "y2": float(r[3]),
             "score": float(r[4]), "class": float(r[5])} for i, r in enumerate(rows[:16])]


@st.composite
def cases(draw, params: DecodedRowsParams, max_rows: int = 24) -> ParserCase:
    network = draw(strategies.networks)
    det_params = draw(strategies.detection_params(params.num_classes))

    @st.composite
    def row(draw_row):
        cls = draw_row(strategies.float_class_id(params.num_classes))
        return (*draw_row(strategies.corner_box(network)), draw_row(strategies.plain_score(det_params, cls)), cls)

    rows = np.array(draw(st.lists(row(), min_size=1, max_size=max_rows)), np.float32)
    with np.errstate(over="ignore"):
        data = rows.astype(draw(strategies.float_dtypes))
    name = draw(st.sampled_from([params.output_name, params.output_name, "renamed_by_engine"]))
    return ParserCase((Layer(name, data),), network, det_params)
