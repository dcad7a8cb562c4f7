"""The verification side of the NMS-plugin outputs (nms_plugin_outputs.py): the NumPy reference decoder,
the Hypothesis strategy of parser inputs, the bench input and ``explain``, for all three variants.

Each function takes the ``NmsPluginOutputs`` architecture (for its variant) and the HeadParams it made.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from dsparsers import DataType, DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase
from dsparsers import reference as ref
from dsparsers import strategies as shared

RECORD = 7  # image_id, label, confidence, xmin, ymin, xmax, ymax


# -- the reference decoder ---------------------------------------------------------------------------
def find(arch, case: ParserCase, params) -> dict[str, Layer | None]:
    """Exactly the C++ lookup: every role by its names first, then by type and shape among the rest."""
    v = arch.variant
    if v.records:
        tests = {
            "detections": lambda l: len(l.reported_dims) == 3 and l.reported_dims[2] == RECORD,
            "count": lambda l: l.reported_type == DataType.INT32,
        }
    else:
        int_classes = v.int_classes  # then the count is told apart from the INT32 classes by its single element
        tests = {
            "count": lambda l: l.reported_type == DataType.INT32 and
            (not int_classes or ref.element_count(l.reported_dims) == 1),
            "boxes": lambda l: len(l.reported_dims) == 2 and l.reported_dims[1] == 4,
            "scores": lambda l: len(l.reported_dims) == 1 and l.reported_type != DataType.INT32,
            "classes": lambda l: len(l.reported_dims) == 1 and (l.reported_type == DataType.INT32) == int_classes,
        }
    return ref.find_roles(case.layers, {role: params.names(role) for role in v.roles}, tests)


def reference(arch, case: ParserCase, params) -> ParseOutcome:
    with np.errstate(all="ignore"):
        return _reference(arch, case, params)


def _reference(arch, case: ParserCase, params) -> ParseOutcome:
    v = arch.variant
    found = find(arch, case, params)
    if any(layer is None for layer in found.values()):
        return ParseOutcome.rejected("missing layer")
    order, coords, background, _ = arch.head_settings(params)
    count = found["count"]
    if v.records:
        det = found["detections"]
        if count.reported_type != DataType.INT32 or ref.element_count(count.reported_dims) < 1:
            return ParseOutcome.rejected("bad count layer")
        dims = det.reported_dims
        if len(dims) != 3 or dims[0] != 1 or dims[2] != RECORD or dims[1] == 0 or ref.element_count(dims) == 0:
            return ParseOutcome.rejected(f"bad detections dims {dims}")
        if det.reported_type not in ref.FLOAT_TYPES:
            return ParseOutcome.rejected("unsupported data type")
        k = dims[1]
        n = min(max(ref.first_int32(count), 0), k)
        rows = ref.layer_view(det).reshape(k, RECORD)[:n]
        labels, score, box = rows[:, 1], rows[:, 2], rows[:, 3:7]
    else:
        boxes, scores, classes = found["boxes"], found["scores"], found["classes"]
        problem, k = ref.check_nms_outputs(count, boxes, scores, classes)
        if problem:
            return ParseOutcome.rejected(problem)
        if v.int_classes and classes.reported_type != DataType.INT32:
            return ParseOutcome.rejected("classes not INT32")
        if not v.int_classes and classes.reported_type not in ref.FLOAT_TYPES:
            return ParseOutcome.rejected("unsupported data type")
        n = min(max(ref.first_int32(count), 0), k)
        box = ref.layer_view(boxes)[:n]
        score = ref.layer_view(scores)[:n]
        labels = None if v.int_classes else ref.layer_view(classes)[:n]
    configured = case.params.num_classes_configured
    if labels is None:  # INT32 ids, read as the C++ reads them
        ids = np.frombuffer(np.ascontiguousarray(found["classes"].data).tobytes()[:4 * k], np.int32)[:n]
        ids = ids.astype(np.int64)
        valid = (ids >= 0) & (ids < params.num_classes) & (ids < configured)
        cls = np.where(valid, ids, 0)
    else:
        valid, cls = ref.class_ids_from_float(labels, params.num_classes, configured)
    if background >= 0:
        valid &= cls != background
    keep = valid & ref.passes_threshold(cls, score, case.params)
    if order == "yxyx":
        y1, x1, y2, x2 = (box[:, j] for j in range(4))
    else:
        x1, y1, x2, y2 = (box[:, j] for j in range(4))
    keep &= ref.all_finite(x1, y1, x2, y2)
    if coords == "normalized":
        x1, y1, x2, y2 = ref.normalized_to_pixels(x1, y1, x2, y2, case.network)
    return ParseOutcome(True, ref.boxes_to_detections(x1[keep], y1[keep], x2[keep], y2[keep], cls[keep],
                                                      score[keep], case.network))


# -- Hypothesis: valid parser inputs and the ways they go wrong ---------------------------------------
@st.composite
def _int_class_id(draw, num_classes: int, background: int) -> int:
    kind = draw(st.sampled_from(["valid", "valid", "valid", "valid", "negative", "too-large", "background"]))
    if kind == "valid":
        return draw(st.integers(0, num_classes - 1))
    if kind == "negative":
        return draw(st.sampled_from([-1, -2**31]))
    if kind == "too-large":
        return draw(st.one_of(st.integers(num_classes, num_classes + 5), st.just(2**31 - 1)))
    return background if background >= 0 else 0


@st.composite
def _row(draw, arch, params, det, network: NetworkInfo):
    """(box in the layer's own order, score, class id) of one kept row."""
    order, coords, background, _ = arch.head_settings(params)
    x1, y1, x2, y2 = draw(shared.corner_box(network))
    if coords == "normalized":
        with np.errstate(all="ignore"):
            x1, x2 = (float(np.float32(v) / np.float32(network.width)) for v in (x1, x2))
            y1, y2 = (float(np.float32(v) / np.float32(network.height)) for v in (y1, y2))
    box = (y1, x1, y2, x2) if order == "yxyx" else (x1, y1, x2, y2)
    if arch.variant.int_classes:
        cls = draw(_int_class_id(params.num_classes, background))
    else:
        labels = [shared.float_class_id(params.num_classes)]
        if background >= 0:
            labels.append(st.just(float(background)))
        cls = draw(st.one_of(*labels))
    return box, draw(shared.plain_score(det, float(cls))), cls


def cases(arch, params):
    return _cases(arch, params)


@st.composite
def _cases(draw, arch, params, max_rows: int = 24) -> ParserCase:
    v = arch.variant
    _, coords, _, _ = arch.head_settings(params)
    network = draw(shared.networks)
    det = draw(shared.detection_params(params.num_classes))
    rows = draw(st.lists(_row(arch, params, det, network), min_size=0, max_size=max_rows))
    k = draw(st.integers(max(1, len(rows)), max(1, len(rows)) + 4))  # K >= kept rows: the rest is padding
    # padding rows: box 0, score 0, class -1 (EfficientNMS: class 0! only the count tells them apart)
    boxes = np.zeros((k, 4), np.float32)
    scores = np.zeros(k, np.float32)
    classes = np.zeros(k, np.int32) if v.int_classes else np.full(k, -1.0, np.float32)
    for i, (box, score, cls) in enumerate(rows):
        boxes[i], scores[i], classes[i] = box, score, cls
    if draw(st.booleans()):  # garbage past the count must never be read as objects
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        start = len(rows)
        boxes[start:] = rng.uniform(0, 1, (k - start, 4)) * (1 if coords == "normalized" else 300)
        boxes[start:, 2:] += boxes[start:, :2]
        scores[start:] = rng.uniform(0.5, 1, k - start)
        classes[start:] = rng.integers(0, params.num_classes, k - start)
    count_kind = draw(st.sampled_from(["exact", "exact", "exact", "zero", "negative", "too-large"]))
    count = {"exact": len(rows), "zero": 0}.get(count_kind)
    if count_kind == "negative":
        count = draw(st.sampled_from([-1, -200, -(2**31)]))
    elif count_kind == "too-large":
        count = draw(st.sampled_from([k + 1, k + 100, 2**31 - 1]))
    naming = draw(st.sampled_from(["own", "own", *(f"known{i}" for i in range(len(v.known_names[v.roles[0]]))),
                                   "renamed"]))
    if naming == "own":
        names = [getattr(params, f"{role}_name") for role in v.roles]
    elif naming.startswith("known"):
        names = [v.known_names[role][int(naming[5:])] for role in v.roles]
    else:
        names = [f"engine_output_{i}" for i in range(len(v.roles))]
    count_data = np.array([count], np.int32)
    if v.records:
        records = np.zeros((k, RECORD), np.float32)
        records[:, 0] = draw(st.sampled_from([0.0, 1.0, -1.0]))  # image_id is never read
        records[:, 1], records[:, 2], records[:, 3:7] = classes, scores, boxes
        with np.errstate(over="ignore"):
            records = records.astype(draw(st.sampled_from([np.float32, np.float16])))
        data = {"detections": records.reshape(1, k, RECORD), "count": count_data.reshape(1, 1, 1)}
    else:
        with np.errstate(over="ignore"):
            boxes = boxes.astype(draw(st.sampled_from([np.float32, np.float16])))
            scores = scores.astype(draw(st.sampled_from([np.float32, np.float16])))
            if not v.int_classes:
                classes = classes.astype(draw(st.sampled_from([np.float32, np.float16])))
        data = {"count": count_data, "boxes": boxes, "scores": scores, "classes": classes}
    layers = [Layer(name, data[role]) for role, name in zip(v.roles, names)]
    # any binding order when named; renamed four-output layers stay in plugin order (the two [K] layers
    # of BatchedNMS, and a [1] classes layer of EfficientNMS, are told apart only by it)
    if naming != "renamed" or v.records:
        order = draw(st.permutations(range(len(layers))))
        layers = [layers[i] for i in order]
    return ParserCase(tuple(layers), network, det)


# -- bench and explain ---------------------------------------------------------------------------------
def bench_case(arch, params, density: float, rng) -> ParserCase:
    v = arch.variant
    _, coords, background, k = arch.head_settings(params)
    kept = max(1, int(round(density * k)))
    network = NetworkInfo(params.input_width, params.input_height)
    det = DetectionParams.uniform(params.num_classes, 0.25)
    if v.records:
        records = np.zeros((k, RECORD), np.float32)
        records[:, 1] = -1.0
        first = 1 if background == 0 else 0
        corners = rng.uniform(0, 0.8, (kept, 2)).astype(np.float32)
        records[:kept, 1] = rng.integers(first, max(first + 1, params.num_classes), kept)
        records[:kept, 2] = rng.uniform(0.3, 1.0, kept)
        records[:kept, 3:5] = corners
        records[:kept, 5:7] = corners + rng.uniform(0.01, 0.2, (kept, 2)).astype(np.float32)
        layers = (Layer(params.detections_name, records.reshape(1, k, RECORD)),
                  Layer(params.count_name, np.array([kept], np.int32).reshape(1, 1, 1)))
        return ParserCase(layers, network, det)
    scale = np.float32(1.0) if coords == "normalized" else np.float32(min(params.input_width, params.input_height))
    corners = rng.uniform(0, 0.8, (k, 2)).astype(np.float32)
    boxes = np.concatenate([corners, corners + rng.uniform(0.01, 0.2, (k, 2)).astype(np.float32)], axis=1) * scale
    scores = np.where(np.arange(k) < kept, rng.uniform(0.3, 1.0, k), 0).astype(np.float32)
    padding, dtype = (0, np.int32) if v.int_classes else (-1, np.float32)
    classes = np.where(np.arange(k) < kept, rng.integers(0, params.num_classes, k), padding).astype(dtype)
    layers = (Layer(params.count_name, np.array([kept], np.int32)), Layer(params.boxes_name, boxes.astype(np.float32)),
              Layer(params.scores_name, scores), Layer(params.classes_name, classes))
    return ParserCase(layers, network, det)


def explain(arch, case: ParserCase, params) -> list[dict[str, Any]]:
    v = arch.variant
    found = find(arch, case, params)
    if any(layer is None for layer in found.values()):
        return []
    order, _, _, _ = arch.head_settings(params)
    try:
        with np.errstate(all="ignore"):
            raw = ref.first_int32(found["count"])
            if v.records:
                rows = ref.layer_view(found["detections"]).reshape(-1, RECORD)
                return [{"row": i, "image_id": float(r[0]), "label": float(r[1]), "confidence": float(r[2]),
                         "x1": float(r[3]), "y1": float(r[4]), "x2": float(r[5]), "y2": float(r[6]),
                         "counted": "yes" if i < raw else "no"} for i, r in enumerate(rows[:16])]
            box, score = ref.layer_view(found["boxes"]), ref.layer_view(found["scores"])
            if v.int_classes:
                ids = [int(c) for c in np.ascontiguousarray(found["classes"].data).view(np.int32).reshape(-1)]
            else:
                ids = [float(c) for c in ref.layer_view(found["classes"])]
        names = ("y1", "x1", "y2", "x2") if order == "yxyx" else ("x1", "y1", "x2", "y2")
        column = "class" if v.int_classes else "class (float)"
        return [{"row": i, **{n: float(x) for n, x in zip(names, b)}, "score": float(s), column: c,
                 "counted": "yes" if i < raw else "no"}
                for i, (b, s, c) in enumerate(zip(box[:16], score, ids))]
    except (ValueError, IndexError, TypeError):
        return []
