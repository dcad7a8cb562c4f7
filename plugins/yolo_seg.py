"""ultralytics instance segmentation heads (YOLOv8-seg, YOLO11-seg): boxes, scores and mask coefficients.

- ``output0`` [B, 4+C+M, N] channel-major: cx, cy, w, h in network pixels, C sigmoid class scores,
  then M = 32 mask coefficients per candidate;
- ``output1`` protos [B, M, H/4, W/4]: M mask prototypes at a quarter of the network resolution.

A kept object's mask is sigmoid(coefficients . protos), sampled bilinearly (half-pixel centres, as
ultralytics' ``F.interpolate(mode="bilinear")``) at the centres of a grid laid over the object's
clipped box, because nvdsosd stretches a mask over its object's rectangle. The grid has one cell per
proto cell by default (``-O mask_resolution=proto``), one per network pixel (``network``) or a fixed
``WxH``. Values are probabilities, so segmentation-threshold=0.5 draws what ultralytics draws
(its masks are ``logit > 0``).

nvinfer requires cluster-mode=4 (no clustering) for instance masks, so the parser clusters itself, as
ultralytics' non_max_suppression does: per-class greedy NMS on the decoded, unclipped boxes in
descending confidence (IoU above ``-O nms_iou``, default 0.45, suppresses), at most ``-O max_det``
objects; then the kept boxes are clipped to the network (dropped under one pixel, as every dsparsers
parser drops them). The mask work happens only for the objects NMS keeps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from hypothesis import strategies as st

import dsparsers
from dsparsers.api import reference as ref
from dsparsers.api.architecture import Architecture, ConfigDefaults, GenerateOptions, HeadParams, Match, anchor_points
from dsparsers.emulation.datasets import COCO80
from dsparsers.errors import UsageError
from dsparsers.model.reader import ModelInfo
from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase, detections
from dsparsers.verification.strategies import detection_params, float_dtypes, f32, scored_candidates

BOX_CHANNELS = 4
DEFAULT_COEFFICIENTS = 32
PROTO_STRIDE = 4
MAX_MASK_SIDE = 2048  # mask_support.h kMaxMaskSide


@dataclass(frozen=True)
class SegParams(HeadParams):
    output_name: str = "output0"
    protos_name: str = "output1"
    num_coefficients: int = DEFAULT_COEFFICIENTS
    num_candidates: int | None = None
    nms_iou: float = 0.45
    max_det: int = 100
    #: "proto" (one cell per proto cell), "network" (one per network pixel) or "WxH" (fixed)
    mask_resolution: str = "proto"

    @property
    def channels(self) -> int:
        return BOX_CHANNELS + self.num_classes + self.num_coefficients

    @property
    def fixed_mask(self) -> tuple[int, int] | None:
        found = re.fullmatch(r"(\d+)x(\d+)", self.mask_resolution)
        return (int(found[1]), int(found[2])) if found else None


def _mask_resolution(text: str) -> str:
    text = text.strip().lower()
    if text in ("proto", "network"):
        return text
    found = re.fullmatch(r"(\d+)x(\d+)", text)
    if found and 1 <= int(found[1]) <= MAX_MASK_SIDE and 1 <= int(found[2]) <= MAX_MASK_SIDE:
        return text
    raise UsageError(f"-O mask_resolution={text}: expected proto, network or WxH (1..{MAX_MASK_SIDE} each)")


def _number(options: GenerateOptions, key: str, default: float, low: float, high: float, kind=float):
    text = options.extra.get(key)
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not (low <= value <= high):
        raise UsageError(f"-O {key}={text}: expected a {'number' if kind is float else 'whole number'} "
                         f"from {low:g} to {high:g}")
    return value


class YoloSeg(Architecture):
    name = "yolo-seg"
    aliases = ("yolov8-seg", "yolo11-seg", "ultralytics-seg")
    summary = "ultralytics instance segmentation (YOLOv8-seg, YOLO11-seg): boxes, masks, NMS in the parser"
    head = "output0 [B, 4+C+32, N] and protos [B, 32, H/4, W/4]"
    template = "yolo_seg.cpp.j2"
    params_type = SegParams
    parser_kind = "instance-mask"
    options = {
        "nms_iou": "per-class NMS IoU threshold of the parser (default 0.45; nvinfer cannot cluster masks)",
        "max_det": "most objects (and masks) per frame (default 100)",
        "mask_resolution": "proto (default), network, or WxH: the grid each object's mask is sampled on",
        "output": "name of the boxes/scores/coefficients output (default output0)",
        "protos": "name of the protos output (default output1)",
    }
    config_defaults = ConfigDefaults(
        network_type=3,
        cluster_mode=4,
        why_cluster_mode="instance masks need cluster-mode=4; the parser runs per-class NMS itself",
        why_preprocessing="ultralytics: RGB, 1/255, letterbox with centred padding",
        pre_cluster_threshold=0.25, nms_iou_threshold=0.45, topk=300,
        segmentation_threshold=0.5,
        why_segmentation_threshold="masks are sigmoid probabilities; 0.5 draws what ultralytics draws (logit > 0)")

    def defaults_for_params(self, params: SegParams, requested_as):
        return replace(self.config_defaults, why_cluster_mode=(
            f"instance masks need cluster-mode=4; the parser runs per-class NMS itself (IoU {params.nms_iou:g}, "
            f"at most {params.max_det} objects: -O nms_iou, -O max_det)"))

    # -- recognising the head ---------------------------------------------------------------
    def _heads(self, model: ModelInfo):
        heads = [t for t in model.outputs if t.rank == 3 and t.dtype.startswith("float")]
        protos = [t for t in model.outputs if t.rank == 4 and t.dtype.startswith("float")]
        if len(model.outputs) != 2 or len(heads) != 1 or len(protos) != 1:
            return None
        return heads[0], protos[0]

    def _classes(self, model: ModelInfo, head, protos, num_classes: int | None = None) -> tuple[int, int] | None:
        """(C, M) for this head, or None when its dims do not add up."""
        m = protos.dim(1) or DEFAULT_COEFFICIENTS
        names = model.class_names
        expected = num_classes or (len(names) if names else None)
        channels = head.dim(1)
        if channels is None:
            return (expected, m) if expected else None
        if expected is not None:
            return (expected, m) if channels == BOX_CHANNELS + expected + m else None
        c = channels - BOX_CHANNELS - m
        return (c, m) if c >= 1 else None

    def match(self, model: ModelInfo) -> Match | None:
        found = self._heads(model)
        if found is None:
            return None
        head, protos = found
        sizes = self._classes(model, head, protos)
        if sizes is None:
            return None
        c, m = sizes
        score = 0.5
        why = [f"{head.name} {head.shape_text()}: 4 box + {c} class + {m} coefficient rows; "
               f"{protos.name} {protos.shape_text()}: {m} mask prototypes"]
        if model.task == "segment":
            score += 0.3
            why.append("task=segment")
        elif model.task is not None:
            score -= 0.3
            why.append(f"but task={model.task!r}")
        if model.class_names and len(model.class_names) == c:
            score += 0.1
            why.append(f"{c} class names in metadata")
        size = model.input_size
        if size and protos.dim(2) and protos.dim(3) and (protos.dim(2) * PROTO_STRIDE, protos.dim(3) * PROTO_STRIDE) == (size[1], size[0]):
            score += 0.05
            why.append(f"protos at 1/{PROTO_STRIDE} of the {size[0]}x{size[1]} input")
        return Match(round(max(0.01, min(score, 1.0)), 2), "; ".join(why))

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> SegParams:
        options.check_extra(self)
        common = dict(nms_iou=_number(options, "nms_iou", 0.45, 0.0, 1.0),
                      max_det=_number(options, "max_det", 100, 1, 100000, int),
                      mask_resolution=_mask_resolution(options.extra.get("mask_resolution", "proto")))
        if model is None:
            num_classes = options.num_classes or 80
            width, height = options.input_size or (640, 640)
            names = COCO80 if num_classes == len(COCO80) else None
            return SegParams(num_classes, width, height, names, options.extra.get("output", "output0"),
                             options.extra.get("protos", "output1"), DEFAULT_COEFFICIENTS,
                             anchor_points(width, height), **common)
        found = self._heads(model)
        if found is None:
            raise UsageError(f"{model.path}: expected two outputs for {self.name} ([B, 4+C+M, N] and protos "
                             "[B, M, H/4, W/4]), found " + ", ".join(f"{t.name} {t.shape_text()}" for t in model.outputs))
        head, protos = found
        sizes = self._classes(model, head, protos, options.num_classes)
        if sizes is None and options.num_classes:
            raise UsageError(f"--classes {options.num_classes}: {head.name} {head.shape_text()} does not have "
                             f"4 + {options.num_classes} + {protos.dim(1) or DEFAULT_COEFFICIENTS} rows")
        if sizes is None:
            raise UsageError(f"{model.path}: output {head.name} {head.shape_text()} does not fit protos "
                             f"{protos.name} {protos.shape_text()} (when its dims are symbolic, --classes tells C)")
        c, m = sizes
        size = model.input_size or options.input_size or (640, 640)
        names = model.class_names
        return SegParams(c, size[0], size[1], tuple(names) if names and len(names) == c else None,
                         options.extra.get("output", head.name), options.extra.get("protos", protos.name), m,
                         head.dim(2), **common)

    def describe(self, params: SegParams) -> str:
        return (f"{params.output_name} [{params.channels}, {params.num_candidates or 'N'}] + {params.protos_name} "
                f"[{params.num_coefficients}, H/4, W/4], {params.num_classes} classes, "
                f"{params.input_width}x{params.input_height} input, NMS IoU {params.nms_iou:g}, "
                f"max {params.max_det} objects, masks at {params.mask_resolution} resolution")

    # -- generation -------------------------------------------------------------------------
    def template_context(self, params: SegParams) -> dict[str, Any]:
        fixed = params.fixed_mask
        mode = "fixed" if fixed else params.mask_resolution
        text = {"proto": "one mask cell per proto cell the box covers (ceil(box / (network / protos)))",
                "network": "one mask cell per network pixel the box covers (ceil(box))",
                "fixed": f"{fixed[0]}x{fixed[1]} cells per object" if fixed else ""}[mode]
        return {"num_classes": params.num_classes, "num_coefficients": params.num_coefficients,
                "output_name": params.output_name, "protos_name": params.protos_name, "nms_iou": params.nms_iou,
                "max_det": params.max_det, "mask_mode": mode, "mask_width": fixed[0] if fixed else 0,
                "mask_height": fixed[1] if fixed else 0, "mask_resolution_text": text}

    # -- the reference ----------------------------------------------------------------------
    def reference(self, case: ParserCase, params: SegParams) -> ParseOutcome:
        with np.errstate(all="ignore"):
            return self._reference(case, params)

    def _reference(self, case: ParserCase, params: SegParams) -> ParseOutcome:
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

    def strategy(self, params: SegParams):
        return _cases(params)

    def bench_case(self, params: SegParams, density: float, rng) -> ParserCase:
        """Full-size output0 and protos: a fraction ``density`` of candidates above 0.25, boxes 4-200 px."""
        from dsparsers.verification.bench import bench_candidates

        count = params.num_candidates or anchor_points(params.input_width, params.input_height)
        boxes, scores = bench_candidates(count, params.num_classes, params.input_width, params.input_height,
                                         density, rng)
        coefficients = rng.normal(0, 1, (count, params.num_coefficients)).astype(np.float32)
        rows = np.concatenate([boxes, scores, coefficients], axis=1)
        protos = rng.normal(0, 1, (params.num_coefficients, params.input_height // PROTO_STRIDE,
                                   params.input_width // PROTO_STRIDE)).astype(np.float32)
        return ParserCase((Layer(params.output_name, np.ascontiguousarray(rows.T)), Layer(params.protos_name, protos)),
                          NetworkInfo(params.input_width, params.input_height),
                          DetectionParams.uniform(params.num_classes, 0.25))

    def explain(self, case: ParserCase, params: SegParams) -> list[dict[str, Any]]:
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
def _cases(draw, params: SegParams, max_candidates: int = 16) -> ParserCase:
    network = draw(_seg_networks)
    det_params = draw(detection_params(params.num_classes))
    boxes, scores = draw(scored_candidates(params.num_classes, det_params, network, max_candidates))
    n, m = len(boxes), params.num_coefficients
    # overlapping duplicates, so that NMS has work: copy some boxes onto others, nudged
    if n > 1 and draw(st.booleans()):
        for target in draw(st.lists(st.integers(1, n - 1), max_size=4)):
            boxes[target] = boxes[draw(st.integers(0, target - 1))] + np.float32(draw(f32(-4, 4)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    coefficients = rng.normal(0, 1, (n, m)).astype(np.float32)
    ph, pw = draw(st.sampled_from([(network.height // PROTO_STRIDE, network.width // PROTO_STRIDE),
                                   (network.height // PROTO_STRIDE, network.width // PROTO_STRIDE),
                                   (max(1, network.height // 8), max(1, network.width // 8)), (1, 1)]))
    protos = rng.normal(0, 1, (m, ph, pw)).astype(np.float32)
    rows = np.concatenate([boxes, scores, coefficients], axis=1)  # [N, 4+C+M]
    dtype, proto_dtype = draw(float_dtypes), draw(float_dtypes)
    with np.errstate(over="ignore"):
        head = np.ascontiguousarray(rows.T).astype(dtype)
        protos = protos.astype(proto_dtype)
    names = draw(st.sampled_from([(params.output_name, params.protos_name), (params.output_name, params.protos_name),
                                  ("renamed_by_engine", "also_renamed")]))
    layers = [Layer(names[0], head), Layer(names[1], protos)]
    if draw(st.booleans()):
        layers.reverse()  # engine binding order need not be the ONNX output order
    return ParserCase(tuple(layers), network, det_params)


@dsparsers.hookimpl
def register_architectures(register):
    register(YoloSeg())
