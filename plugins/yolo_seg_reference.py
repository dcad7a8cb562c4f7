"""yolo-seg's verification side: the NumPy reference decoder (with the parser's per-class NMS and mask
sampling), the Hypothesis strategy, the bench case and the explain rows (``plugins/yolo_seg.py``
imports this module only when one of them runs)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from dsparsers import DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase, anchor_points, detections
from dsparsers import bench_inputs
from dsparsers import reference as ref
from dsparsers import strategies as sts

from .yolo_seg import BOX_CHANNELS, MAX_MASK_SIDE, PROTO_STRIDE, SegParams


def reference(case: ParserCase, params: SegParams) -> ParseOutcome:
    with np.errstate(all="ignore"):
        return _reference(case, params)


def _reference(case: ParserCase, params: SegParams) -> ParseOutcome:
    def reject(why: str) -> ParseOutcome:
        return ParseOutcome.rejected(why, with_masks=True)

    channels, m = params.channels, params.num_coefficients
    head = ref.find_layer(case.layers, params.output_name, lambda d: len(d) == 2 and d[0] == channels)
    protos = ref.find_layer(case.layers, params.protos_name, lambda d: len(d) == 3 and d[0] == m)
    if head is None or protos is None or head is protos:
        return reject("missing layers")
    dims = head.reported_dims
    if len(dims) != 2 or dims[0] != channels:
        return reject(f"bad head dims {dims}")
    count = dims[1]
    if count == 0 or ref.element_count(dims) != count * channels:
        return reject("bad head element count")
    pdims = protos.reported_dims
    if len(pdims) != 3 or pdims[0] != m or pdims[1] == 0 or pdims[2] == 0 or ref.element_count(pdims) == 0:
        return reject(f"bad protos dims {pdims}")
    if case.network.width == 0 or case.network.height == 0:
        return reject("empty network")
    if head.reported_type not in ref.FLOAT_TYPES or protos.reported_type not in ref.FLOAT_TYPES:
        return reject("unsupported data type")
    rows = ref.layer_view(head).T  # [N, 4+C+M]
    best, cls = ref.best_class(rows[:, BOX_CHANNELS:BOX_CHANNELS + params.num_classes])
    keep = ref.keep_scores(best, cls, case.params)
    cx, cy, w, h = (rows[:, k] for k in range(BOX_CHANNELS))
    keep &= ref.all_finite(cx, cy, w, h)
    x1, y1, x2, y2 = ref.corners_from_center(cx, cy, w, h)
    # (index, class, score, decoded corners), in index order like the C++ scan
    candidates = [(int(i), int(cls[i]), np.float32(best[i]), (x1[i], y1[i], x2[i], y2[i]))
                  for i in np.nonzero(keep)[0]]
    kept = nms(candidates, np.float32(params.nms_iou), params.max_det)
    plane = ref.layer_view(protos).reshape(m, -1)
    ph, pw = pdims[1], pdims[2]
    coefficients = rows[:, BOX_CHANNELS + params.num_classes:]
    objects, masks = [], []
    for index, class_id, score, corners in kept:
        box, big_enough = ref.clipped_box(*corners, case.network)
        if not big_enough:
            continue
        mask_w, mask_h = mask_grid(box, params, case.network, pw, ph)
        logits = mask_logits(coefficients[index], plane).reshape(ph, pw)
        masks.append(ref.resample_mask(logits, (0, 0, case.network.width, case.network.height), box,
                                       mask_w, mask_h, activate=True))
        objects.append((class_id, box[0], box[1], box[2] - box[0], box[3] - box[1], score))
    return ParseOutcome(True, detections(objects), masks=tuple(masks))


def bench_case(params: SegParams, density: float, rng) -> ParserCase:
    """Full-size output0 and protos: a fraction ``density`` of candidates above 0.25, boxes 4-200 px."""
    count = params.num_candidates or anchor_points(params.input_width, params.input_height)
    boxes, scores = bench_inputs.bench_candidates(count, params.num_classes, params.input_width,
                                                  params.input_height, density, rng)
    coefficients = rng.normal(0, 1, (count, params.num_coefficients)).astype(np.float32)
    rows = np.concatenate([boxes, scores, coefficients], axis=1)
    protos = rng.normal(0, 1, (params.num_coefficients, params.input_height // PROTO_STRIDE,
                               params.input_width // PROTO_STRIDE)).astype(np.float32)
    return ParserCase((Layer(params.output_name, np.ascontiguousarray(rows.T)), Layer(params.protos_name, protos)),
                      NetworkInfo(params.input_width, params.input_height),
                      DetectionParams.uniform(params.num_classes, 0.25))


def explain(case: ParserCase, params: SegParams) -> list[dict[str, Any]]:
    head = ref.find_layer(case.layers, params.output_name, lambda d: len(d) == 2 and d[0] == params.channels)
    if head is None or len(head.reported_dims) != 2 or head.reported_dims[0] != params.channels:
        return []
    rows = ref.layer_view(head).T
    best, cls = ref.best_class(rows[:, BOX_CHANNELS:BOX_CHANNELS + params.num_classes])
    return [{"candidate": i, "cx": float(r[0]), "cy": float(r[1]), "w": float(r[2]), "h": float(r[3]),
             "best class": int(c), "class score": float(b), "threshold": float(case.params.precluster_threshold(int(c)))}
            for i, (r, b, c) in enumerate(zip(rows[:16], best, cls))]


def _area(box) -> np.float32:
    return (box[2] - box[0]) * (box[3] - box[1])


def box_iou(a, b) -> np.float32:
    """The parser's IoU of two boxes (float32, no +1)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if not (w > 0 and h > 0):
        return np.float32(0)
    inter = np.float32(w * h)
    return np.float32(inter / (_area(a) + _area(b) - inter))


def nms(candidates: list, iou_threshold: np.float32, max_det: int) -> list:
    """Per-class greedy NMS as the parser runs it: stable sort by descending score, a candidate is dropped
    when its IoU with a kept one of its class exceeds the threshold, at most ``max_det`` kept."""
    order = sorted(range(len(candidates)), key=lambda k: -float(candidates[k][2]))  # sorted() is stable
    kept: list = []
    for k in order:
        if len(kept) == max_det:
            break
        c = candidates[k]
        if all(o[1] != c[1] or not box_iou(o[3], c[3]) > iou_threshold for o in kept):
            kept.append(c)
    return kept


def mask_logits(coefficients: np.ndarray, protos: np.ndarray) -> np.ndarray:
    """coefficients . protos per proto cell, summed in the parser's order (k = 0, 1, ...) in float32, one
    rounding per product and per sum as the C++ does, so large real logits agree to the last bit."""
    acc = np.zeros(protos.shape[1], np.float32)
    for k, c in enumerate(np.asarray(coefficients, np.float32)):
        acc += c * protos[k]
    return acc


def mask_grid(box, params: SegParams, network: NetworkInfo, proto_w: int, proto_h: int) -> tuple[int, int]:
    """(width, height) of an object's mask, as the parser sizes it."""
    if params.fixed_mask:
        return params.fixed_mask
    f = np.float32
    if params.mask_resolution == "proto":
        cell_w, cell_h = f(network.width) / f(proto_w), f(network.height) / f(proto_h)
    else:
        cell_w = cell_h = f(1)
    sides = []
    for extent, cell in ((box[2] - box[0], cell_w), (box[3] - box[1], cell_h)):
        cells = np.ceil(f(extent) / cell)
        sides.append(1 if cells < 1 else MAX_MASK_SIDE if cells > MAX_MASK_SIDE else int(cells))
    return sides[0], sides[1]


#: network sizes small enough that full-resolution protos stay cheap in the property tests
_seg_networks = st.sampled_from([NetworkInfo(320, 320), NetworkInfo(160, 96), NetworkInfo(64, 64),
                                 NetworkInfo(640, 384), NetworkInfo(96, 160)])


@st.composite
def cases(draw, params: SegParams, max_candidates: int = 16) -> ParserCase:
    network = draw(_seg_networks)
    det_params = draw(sts.detection_params(params.num_classes))
    boxes, scores = draw(sts.scored_candidates(params.num_classes, det_params, network, max_candidates))
    n, m = len(boxes), params.num_coefficients
    # overlapping duplicates, so that NMS has work: copy some boxes onto others, nudged
    if n > 1 and draw(st.booleans()):
        for target in draw(st.lists(st.integers(1, n - 1), max_size=4)):
            boxes[target] = boxes[draw(st.integers(0, target - 1))] + np.float32(draw(sts.f32(-4, 4)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    coefficients = rng.normal(0, 1, (n, m)).astype(np.float32)
    ph, pw = draw(st.sampled_from([(network.height // PROTO_STRIDE, network.width // PROTO_STRIDE),
                                   (network.height // PROTO_STRIDE, network.width // PROTO_STRIDE),
                                   (max(1, network.height // 8), max(1, network.width // 8)), (1, 1)]))
    protos = rng.normal(0, 1, (m, ph, pw)).astype(np.float32)
    rows = np.concatenate([boxes, scores, coefficients], axis=1)  # [N, 4+C+M]
    dtype, proto_dtype = draw(sts.float_dtypes), draw(sts.float_dtypes)
    with np.errstate(over="ignore"):
        head = np.ascontiguousarray(rows.T).astype(dtype)
        protos = protos.astype(proto_dtype)
    names = draw(st.sampled_from([(params.output_name, params.protos_name), (params.output_name, params.protos_name),
                                  ("renamed_by_engine", "also_renamed")]))
    layers = [Layer(names[0], head), Layer(names[1], protos)]
    if draw(st.booleans()):
        layers.reverse()  # engine binding order need not be the ONNX output order
    return ParserCase(tuple(layers), network, det_params)

