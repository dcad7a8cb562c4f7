"""NumPy building blocks shared by the reference decoders.

Each step does exactly what the generated C++ does, in float32, in the same order, so that a
reference decoder and a correct parser agree to the last bit on x86-64 (and within rounding where a
compiler contracts into FMA).
"""

from __future__ import annotations

import numpy as np

from dsparsers.api.abi_types import DETECTION_DTYPE, DataType, DetectionParams, Layer, NetworkInfo

FLOAT_TYPES = (DataType.FLOAT, DataType.HALF)


def layer_view(layer: Layer) -> np.ndarray:
    """The layer's data as float32, shaped by its reported dims (what the parser would read)."""
    dims = layer.reported_dims
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    flat = np.ascontiguousarray(layer.data).reshape(-1)[:count]
    return flat.astype(np.float32).reshape(dims)


def find_layer(layers: tuple[Layer, ...], name: str, shape_ok) -> Layer | None:
    """The layer called ``name``, else the first whose reported dims satisfy ``shape_ok`` (as the C++)."""
    for layer in layers:
        if layer.name == name:
            return layer
    for layer in layers:
        if shape_ok(layer.reported_dims):
            return layer
    return None


def find_roles(layers: tuple[Layer, ...], names: dict, tests: dict) -> dict:
    """Layers of a multi-output head, by role, as the C++ finds them: each role by its names first (in
    order), then each still-missing role by ``tests[role](layer)`` among the layers no role has taken.
    Missing roles map to None."""
    found = {role: next((layer for name in names[role] for layer in layers if layer.name == name), None)
             for role in names}
    for role in names:
        if found[role] is None:
            found[role] = next((layer for layer in layers
                                if not any(layer is other for other in found.values()) and tests[role](layer)), None)
    return found


def best_class(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate (rows), the highest score and its class; NaN never wins, ties go to the lower class.

    A candidate whose every score is NaN gets -inf (and is then dropped as not finite).
    """
    masked = np.where(np.isnan(scores), np.float32(-np.inf), scores).astype(np.float32)
    if masked.shape[1] == 0:
        return np.full(masked.shape[0], -np.inf, np.float32), np.zeros(masked.shape[0], np.int64)
    cls = np.argmax(masked, axis=1)
    return masked[np.arange(masked.shape[0]), cls], cls


def threshold_of(cls: np.ndarray, params: DetectionParams) -> np.ndarray:
    """perClassPreclusterThreshold[cls], nvinfer's default where the vector has no entry."""
    table = np.array([params.precluster_threshold(c) for c in range(len(params.precluster) + 1)], np.float32)
    return np.where(cls < len(params.precluster), table[np.minimum(cls, len(params.precluster))],
                    table[len(params.precluster)])


def keep_scores(best: np.ndarray, cls: np.ndarray, params: DetectionParams) -> np.ndarray:
    """Finite score, class configured, score >= its class threshold (a NaN threshold keeps nothing)."""
    return passes_threshold(cls, best, params)


def corners_from_center(cx, cy, w, h):
    half_w = (w * np.float32(0.5)).astype(np.float32)
    half_h = (h * np.float32(0.5)).astype(np.float32)
    return (cx - half_w).astype(np.float32), (cy - half_h).astype(np.float32), \
        (cx + half_w).astype(np.float32), (cy + half_h).astype(np.float32)


def boxes_to_detections(x1, y1, x2, y2, cls, conf, network: NetworkInfo) -> np.ndarray:
    """Corners in network pixels -> detections: clipped to the network, w or h < 1 pixel dropped.

    Callers drop non-finite corners first (the C++ does: a NaN would otherwise clip to an edge).
    """
    width, height = np.float32(network.width), np.float32(network.height)
    x1 = np.clip(np.asarray(x1, np.float32), np.float32(0), width)
    x2 = np.clip(np.asarray(x2, np.float32), np.float32(0), width)
    y1 = np.clip(np.asarray(y1, np.float32), np.float32(0), height)
    y2 = np.clip(np.asarray(y2, np.float32), np.float32(0), height)
    w = (x2 - x1).astype(np.float32)
    h = (y2 - y1).astype(np.float32)
    keep = (w >= np.float32(1)) & (h >= np.float32(1))
    out = np.zeros(int(keep.sum()), DETECTION_DTYPE)
    out["class_id"] = np.asarray(cls)[keep]
    out["left"], out["top"], out["width"], out["height"] = x1[keep], y1[keep], w[keep], h[keep]
    out["confidence"] = np.asarray(conf, np.float32)[keep]
    return out


def all_finite(*columns: np.ndarray) -> np.ndarray:
    mask = np.ones(np.shape(columns[0]), bool)
    for column in columns:
        mask &= np.isfinite(column)
    return mask


def class_ids_from_float(values: np.ndarray, model_classes: int, configured: int) -> tuple[np.ndarray, np.ndarray]:
    """(valid mask, class ids) for class ids stored as floats, as the C++ class_from_float decides:
    finite, >= 0, below the model's class count and numClassesConfigured; truncated toward zero."""
    values = np.asarray(values, np.float32)
    with np.errstate(invalid="ignore"):
        valid = (values >= 0) & (values < np.float32(model_classes)) & (values < np.float32(configured))
    ids = np.where(valid, values, 0).astype(np.int64)
    valid &= (ids < model_classes) & (ids < configured)
    return valid, ids


def passes_threshold(cls: np.ndarray, score: np.ndarray, params: DetectionParams) -> np.ndarray:
    """The C++ passes_threshold: finite score, class configured, score >= its class threshold."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(score) & (cls < params.num_classes_configured) & (score >= threshold_of(cls, params))


def element_count(dims) -> int:
    """The C++ element_count: product of the dims, 0 for numDims 0 or > 8 or a product over 32 bits."""
    if not 1 <= len(dims) <= 8:
        return 0
    total = 1
    for d in dims:
        total *= int(d)
        if total > 0xFFFFFFFF:
            return 0
    return total


def first_int32(layer: Layer) -> int:
    """A count layer's first element as the C++ reads it: the buffer's first four bytes as an int32."""
    return int(np.frombuffer(np.ascontiguousarray(layer.data).tobytes()[:4].ljust(4, b"\0"), np.int32)[0])


def normalized_to_pixels(x1, y1, x2, y2, network: NetworkInfo):
    """Corners normalized to 0..1 -> network pixels, in float32 as the C++ multiplies them."""
    w, h = np.float32(network.width), np.float32(network.height)
    return ((x1 * w).astype(np.float32), (y1 * h).astype(np.float32),
            (x2 * w).astype(np.float32), (y2 * h).astype(np.float32))


def check_nms_outputs(count: Layer, boxes: Layer, scores: Layer, classes: Layer) -> tuple[str | None, int]:
    """The checks the NMS-plugin parsers (BatchedNMS, EfficientNMS) make on their four outputs:
    (None, K) when count is INT32 with an element, boxes [K, 4], scores and classes [K], boxes and
    scores FLOAT/HALF; else (why the parser refuses, 0). Class data types differ per plugin: the caller
    checks them."""
    if count.reported_type != DataType.INT32 or element_count(count.reported_dims) < 1:
        return "bad count layer", 0
    dims = boxes.reported_dims
    if len(dims) != 2 or dims[1] != 4 or dims[0] == 0:
        return f"bad boxes dims {dims}", 0
    k = dims[0]
    for layer in (scores, classes):
        if tuple(layer.reported_dims) != (k,):
            return f"bad dims {layer.reported_dims}", 0
    if boxes.reported_type not in FLOAT_TYPES or scores.reported_type not in FLOAT_TYPES:
        return "unsupported data type", 0
    return None, k


# -- instance masks (the C++ side is codegen_templates/support/dsparsers/mask_support.h) ------------
def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) in float32."""
    with np.errstate(over="ignore"):
        return (np.float32(1) / (np.float32(1) + np.exp(-np.asarray(x, np.float32)))).astype(np.float32)


def bilinear_taps(d0: float, d1: float, count: int, s0: float, s1: float, size: int):
    """(lo, hi, weight) arrays of ``count`` cells covering [d0, d1] sampled from ``size`` cells covering
    [s0, s1]: half-pixel centres, clamped edges (align_corners=False), float32 like the C++."""
    f = np.float32
    d0, d1, s0, s1 = f(d0), f(d1), f(s0), f(s1)
    step = (d1 - d0) / f(count)
    scale = f(size) / (s1 - s0)
    x = d0 + (np.arange(count, dtype=np.float32) + f(0.5)) * step
    u = (x - s0) * scale - f(0.5)
    u = np.where(u > 0, u, f(0)).astype(np.float32)  # NaN -> 0, as `!(u > 0)` in C++
    u = np.minimum(u, f(size - 1))
    lo = u.astype(np.int64)
    hi = np.minimum(lo + 1, size - 1)
    return lo, hi, (u - lo.astype(np.float32)).astype(np.float32)


def resample_mask(src: np.ndarray, source: tuple[float, float, float, float], target: tuple[float, float, float, float],
                  width: int, height: int, activate: bool) -> np.ndarray:
    """``src`` (rows x cols, covering the x1, y1, x2, y2 rectangle ``source``) resampled bilinearly onto a
    height x width mask covering ``target``; sigmoid applied when ``activate``. float32."""
    src = np.asarray(src, np.float32)
    xlo, xhi, wx = bilinear_taps(target[0], target[2], width, source[0], source[2], src.shape[1])
    ylo, yhi, wy = bilinear_taps(target[1], target[3], height, source[1], source[3], src.shape[0])
    one = np.float32(1)
    wx, wy = wx[None, :], wy[:, None]
    with np.errstate(invalid="ignore", over="ignore"):
        top = (one - wx) * src[ylo][:, xlo] + wx * src[ylo][:, xhi]
        bottom = (one - wx) * src[yhi][:, xlo] + wx * src[yhi][:, xhi]
        value = ((one - wy) * top + wy * bottom).astype(np.float32)
    return sigmoid(value) if activate else value


def clipped_box(x1, y1, x2, y2, network: NetworkInfo):
    """The box clipped to the network, and whether it keeps at least one pixel each way (as clip_box)."""
    f = np.float32
    cx1, cx2 = (np.clip(f(v), f(0), f(network.width)) for v in (x1, x2))
    cy1, cy2 = (np.clip(f(v), f(0), f(network.height)) for v in (y1, y2))
    return (cx1, cy1, cx2, cy2), bool(cx2 - cx1 >= 1 and cy2 - cy1 >= 1)
