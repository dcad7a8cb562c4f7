"""The verification side of yolo-darknet (yolo_darknet.py): the NumPy reference decoder (with the C++
layer selection), the Hypothesis strategy, the bench case and ``explain``. Imported only when
verification runs."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from hypothesis import strategies as st

from dsparsers import DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase, detections, strategies
from dsparsers import reference as ref

from .yolo_darknet import CLASS_CHANNEL, OBJECTNESS_CHANNEL, DarknetParams


def reference(case: ParserCase, params: DarknetParams) -> ParseOutcome:
    with np.errstate(all="ignore"):  # exp overflow, inf * 0 and friends are part of the contract
        return _reference(case, params)


def _reference(case: ParserCase, params: DarknetParams) -> ParseOutcome:
    chosen = select_layers(case.layers, params)
    if chosen is None:
        return ParseOutcome.rejected("missing output layer")
    grids = []
    for layer in chosen:
        dims = layer.reported_dims
        if len(dims) != 3 or dims[0] != params.channels or dims[1] == 0 or dims[2] == 0:
            return ParseOutcome.rejected(f"bad dims {dims}")
        if int(np.prod(dims, dtype=np.int64)) > 0xFFFFFFFF:
            return ParseOutcome.rejected("dims overflow")
        if layer.reported_type not in ref.FLOAT_TYPES:
            return ParseOutcome.rejected("unsupported data type")
        height, width = dims[1], dims[2]
        net = case.network
        if net.width % width or net.height % height:
            return ParseOutcome.rejected("grid does not divide the network")
        grids.append((net.width // width, net.height // height, layer))
    grids.sort(key=lambda g: g[0])  # stable, as the C++ insertion sort
    if [(sx, sy) for sx, sy, _ in grids] != [(s, s) for s in params.strides]:
        return ParseOutcome.rejected("strides do not match")
    found = [detections()]
    for k, (stride, _, layer) in enumerate(grids):
        for cls, score, x1, y1, x2, y2, keep in decode_scale(ref.layer_view(layer), k, stride, params, case):
            found.append(ref.boxes_to_detections(x1[keep], y1[keep], x2[keep], y2[keep], cls[keep], score[keep],
                                                 case.network))
    return ParseOutcome(True, np.concatenate(found))


def bench_case(params: DarknetParams, density: float, rng) -> ParserCase:
    """Full-size grids at the canonical input: a fraction ``density`` of the anchors score about 0.9
    (objectness and one class logit 3), the rest have objectness below 0.01."""
    width, height = params.input_width, params.input_height
    layers = []
    for k, stride in enumerate(params.strides):
        cells = (height // stride) * (width // stride)
        data = np.empty((params.anchors_per_scale, params.anchor_channels, cells), np.float32)
        data[:, 0:4] = rng.uniform(-2, 2, (params.anchors_per_scale, 4, cells))
        data[:, OBJECTNESS_CHANNEL] = rng.uniform(-8, -5, (params.anchors_per_scale, cells))
        data[:, CLASS_CHANNEL:] = rng.uniform(-8, -2, (params.anchors_per_scale, params.num_classes, cells))
        anchor, cell = np.nonzero(rng.random((params.anchors_per_scale, cells)) < density)
        data[anchor, OBJECTNESS_CHANNEL, cell] = 3.0
        data[anchor, CLASS_CHANNEL + rng.integers(0, params.num_classes, anchor.size), cell] = 3.0
        layers.append(Layer(params.output_names[k], data.reshape(params.channels, height // stride, width // stride)))
    return ParserCase(tuple(reversed(layers)), NetworkInfo(width, height),
                      DetectionParams.uniform(params.num_classes, 0.25))


def explain(case: ParserCase, params: DarknetParams) -> list[dict[str, Any]]:
    """The best-scoring anchors of each output the parser would read (at most 24 rows)."""
    chosen = select_layers(case.layers, params)
    rows: list[dict[str, Any]] = []
    if chosen is None:
        return rows
    with np.errstate(all="ignore"):
        for layer in chosen:
            dims = layer.reported_dims
            if len(dims) != 3 or dims[0] != params.channels or 0 in dims or case.network.width % dims[2]:
                continue
            stride = case.network.width // dims[2]
            if stride not in params.strides:
                continue
            k = params.strides.index(stride)
            for a, (cls, score, x1, y1, x2, y2, keep) in enumerate(
                    decode_scale(ref.layer_view(layer), k, stride, params, case)):
                for cell in np.argsort(-np.nan_to_num(score, nan=-1.0), kind="stable")[:4]:
                    rows.append({"layer": layer.name, "stride": stride, "anchor": a, "gx": int(cell % dims[2]),
                                 "gy": int(cell // dims[2]), "class": int(cls[cell]), "score": float(score[cell]),
                                 "threshold": float(case.params.precluster_threshold(int(cls[cell]))),
                                 "x1": float(x1[cell]), "y1": float(y1[cell]), "x2": float(x2[cell]),
                                 "y2": float(y2[cell]), "kept": bool(keep[cell])})
    return rows[:24]


def _head_shape(dims: tuple[int, ...], params: DarknetParams) -> bool:
    return len(dims) == 3 and dims[0] == params.channels


def select_layers(layers: tuple[Layer, ...], params: DarknetParams) -> list[Layer] | None:
    """The head's layers as the C++ picks them: each output name first; then, for names not found,
    the first layer of head shape ([A*(5+C), H, W]) not already taken. None when one is missing."""
    chosen: list[Layer | None] = [ref.find_layer(layers, name, lambda dims: False) for name in params.output_names]
    for k, name in enumerate(params.output_names):
        if chosen[k] is None:
            chosen[k] = next((layer for layer in layers if _head_shape(layer.reported_dims, params)
                              and not any(layer is c for c in chosen)), None)
            if chosen[k] is None:
                return None
    return chosen  # type: ignore[return-value]


def decode_scale(data: np.ndarray, scale: int, stride: int, params: DarknetParams, case: ParserCase, keep=True):
    """Per anchor of one output [A*(5+C), H, W] (float32), in the C++ order (anchor, then cell row-major):
    (class, score, x1, y1, x2, y2, kept) arrays over the cells; kept = passes the threshold and the box is
    finite (None when ``keep`` is false: the strategy only needs the values)."""
    per, k_channels = params.anchors_per_scale, params.anchor_channels
    height, width = data.shape[1], data.shape[2]
    planes = data.reshape(per, k_channels, height * width)
    cells = np.arange(height * width)
    gx = (cells % width).astype(np.float32)
    gy = (cells // width).astype(np.float32)
    sxy = np.float32(params.scale_x_y[scale])
    half_excess = (sxy - np.float32(1)) * np.float32(0.5)
    fstride = np.float32(stride)
    for a, (anchor_w, anchor_h) in enumerate(params.scale_anchors(scale)):
        t = planes[a]
        objectness = ref.sigmoid(t[OBJECTNESS_CHANNEL])
        best, cls = ref.best_class(ref.sigmoid(t[CLASS_CHANNEL:]).T)
        score = (objectness * best).astype(np.float32)
        kept = ref.passes_threshold(cls, score, case.params) if keep else None
        cx = (((ref.sigmoid(t[0]) * sxy).astype(np.float32) - half_excess + gx).astype(np.float32) * fstride)
        cy = (((ref.sigmoid(t[1]) * sxy).astype(np.float32) - half_excess + gy).astype(np.float32) * fstride)
        w = (np.exp(t[2]) * np.float32(anchor_w)).astype(np.float32)
        h = (np.exp(t[3]) * np.float32(anchor_h)).astype(np.float32)
        if keep:
            kept &= ref.all_finite(cx, cy, w, h)
        x1, y1, x2, y2 = ref.corners_from_center(cx, cy, w, h)
        yield cls, score, x1, y1, x2, y2, kept


# -- Hypothesis strategy ----------------------------------------------------------------------

_QUANTUM = 64.0  # logits are multiples of 1/64: distinct values are far apart after sigmoid, ties exact


def _q(value: float) -> float:
    return round(value * _QUANTUM) / _QUANTUM if math.isfinite(value) else value


def _logit(low: float, high: float):
    return strategies.f32(low, high).map(_q)


_PLAN_KINDS = ["object", "object", "object", "tie", "nan-class", "inf", "huge", "edge", "nonfinite-box"]
# Strategies built once: Hypothesis re-validates every new strategy object, which dominates small draws.
_OBJECTNESS = _logit(-4, 12)
_CLASS = _logit(-4, 8)
_CENTRE = _logit(-6, 6)
_SIZE = _logit(-4, 4)
_WIDE = _logit(1, 4)
_SIGNED_INF = st.sampled_from([float("inf"), float("-inf")])
_NONFINITE = st.sampled_from([float("nan"), float("inf"), float("-inf")])
_HUGE = st.sampled_from([100.0, 1e4, 1e30, -100.0, 1e38])
_PUSHED = st.sampled_from([-8.0, 8.0])


@st.composite
def _plan(draw, scales: int, anchors: int, classes: int):
    """One anchor of one cell set by hand: (scale, anchor, cell seed, {channel: value})."""
    kind = draw(st.sampled_from(_PLAN_KINDS))
    scale = draw(st.integers(0, scales - 1))
    anchor = draw(st.integers(0, anchors - 1))
    cell = draw(st.integers(0, 63))
    cls = draw(st.integers(0, classes - 1))
    values = {OBJECTNESS_CHANNEL: draw(_OBJECTNESS), CLASS_CHANNEL + cls: draw(_CLASS),
              0: draw(_CENTRE), 1: draw(_CENTRE), 2: draw(_SIZE), 3: draw(_SIZE)}
    if kind == "tie":
        values[CLASS_CHANNEL + draw(st.integers(0, classes - 1))] = values[CLASS_CHANNEL + cls]
    elif kind == "nan-class":
        values[CLASS_CHANNEL + draw(st.integers(0, classes - 1))] = float("nan")
        values[CLASS_CHANNEL + cls] = draw(_CLASS)
    elif kind == "inf":
        values[draw(st.sampled_from([OBJECTNESS_CHANNEL, CLASS_CHANNEL + cls, 0, 1]))] = draw(_SIGNED_INF)
    elif kind == "huge":  # exp overflows to inf (dropped), or underflows to a zero-size box (dropped)
        values[draw(st.sampled_from([2, 3]))] = draw(_HUGE)
    elif kind == "edge":  # a cell on the border, centre pushed out, a box wider than the cell
        cell = draw(st.sampled_from([0, 63]))
        values[0], values[1] = draw(_PUSHED), draw(_PUSHED)
        values[2], values[3] = draw(_WIDE), draw(_WIDE)
    elif kind == "nonfinite-box":
        values[draw(st.integers(0, 3))] = draw(_NONFINITE)
    return scale, anchor, cell, values


@functools.lru_cache(maxsize=32)
def _plans(scales: int, anchors: int, classes: int, max_plans: int):
    return st.lists(_plan(scales, anchors, classes), max_size=max_plans)


def _nudge(arrays: list[np.ndarray], dtype, params: DarknetParams, network: NetworkInfo, det_params) -> None:
    """Move every candidate whose outcome could differ by one ulp between NumPy's float32 exp and the
    C++ std::exp away from the edge: a score within 1e-4 (relative) of its class threshold, or a clipped
    box within 1e-3 px of the 1-pixel minimum. Its objectness becomes -inf (score 0: clearly dropped)."""
    probe = ParserCase((), network, det_params)
    table = ref.threshold_of(np.arange(params.num_classes), det_params)
    with np.errstate(all="ignore"):
        for k, (array, stride) in enumerate(zip(arrays, params.strides)):
            data = array.astype(np.float32).reshape(params.channels, network.height // stride, network.width // stride)
            for a, (cls, score, x1, y1, x2, y2, _keep) in enumerate(
                    decode_scale(data, k, stride, params, probe, keep=False)):
                threshold = table[cls]
                near = np.isfinite(score) & (threshold > 0) & (np.abs(score - threshold) <= np.float32(1e-4) * threshold)
                cw = np.clip(x2, 0, np.float32(network.width)) - np.clip(x1, 0, np.float32(network.width))
                ch = np.clip(y2, 0, np.float32(network.height)) - np.clip(y1, 0, np.float32(network.height))
                near |= (np.abs(cw - 1) <= 1e-3) | (np.abs(ch - 1) <= 1e-3)
                planes = array.reshape(params.anchors_per_scale, params.anchor_channels, -1)
                planes[a, OBJECTNESS_CHANNEL, near] = -np.inf


@st.composite
def cases(draw, params: DarknetParams, max_plans: int = 12) -> ParserCase:
    base = math.lcm(*params.strides)
    limit = max(1, (8 * min(params.strides)) // base)  # the finest grid stays within 8x8 cells
    network = NetworkInfo(base * draw(st.integers(1, limit)), base * draw(st.integers(1, limit)))
    det_params = draw(strategies.detection_params(params.num_classes))
    dtype = draw(strategies.float_dtypes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    per, channels = params.anchors_per_scale, params.anchor_channels
    arrays = []
    for stride in params.strides:
        width, height = network.width // stride, network.height // stride
        data = np.empty((per, channels, height * width), np.float32)
        data[:, 0:2] = rng.uniform(-4, 4, (per, 2, height * width))
        data[:, 2:4] = rng.uniform(-3, 3, (per, 2, height * width))
        data[:, OBJECTNESS_CHANNEL] = rng.uniform(-12, -3, (per, height * width))
        data[:, CLASS_CHANNEL:] = rng.uniform(-10, 0, (per, params.num_classes, height * width))
        arrays.append(np.round(data * _QUANTUM) / _QUANTUM)
    for scale, anchor, cell, values in draw(_plans(params.num_scales, params.anchors_per_scale,
                                                   params.num_classes, max_plans)):
        target = arrays[scale]
        cell = min(cell, target.shape[2] - 1)
        for channel, value in values.items():
            target[anchor, channel, cell] = value
    with np.errstate(over="ignore"):  # huge float32 logits become inf in float16, as a real FP16 engine would
        arrays = [a.astype(dtype) for a in arrays]
    _nudge(arrays, dtype, params, network, det_params)
    layers = []
    for k, (array, stride) in enumerate(zip(arrays, params.strides)):
        name = draw(st.sampled_from([params.output_names[k], params.output_names[k], f"engine_output_{k}"]))
        shaped = array.reshape(params.channels, network.height // stride, network.width // stride)
        layers.append(Layer(name, np.ascontiguousarray(shaped)))
    order = draw(st.permutations(range(len(layers))))
    layers = [layers[i] for i in order]
    if draw(st.integers(0, 4)) == 0:  # an unrelated binding (e.g. an auxiliary output) among the head's
        layers.insert(draw(st.integers(0, len(layers))), Layer("aux", np.zeros((2, 3), np.float32)))
    return ParserCase(tuple(layers), network, det_params)
