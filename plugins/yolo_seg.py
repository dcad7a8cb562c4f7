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

The reference decoder (with the parser's NMS and mask sampling), strategy, bench case and explain rows
are in ``yolo_seg_reference`` (NumPy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import dsparsers
from dsparsers import (COCO80, Architecture, ConfigDefaults, GenerateOptions, HeadParams, Match, UsageError,
                       anchor_points)

if TYPE_CHECKING:
    from dsparsers import ModelInfo, ParseOutcome, ParserCase

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

    # -- the verification side (NumPy, Hypothesis): yolo_seg_reference ----------------------
    def reference(self, case: ParserCase, params: SegParams) -> ParseOutcome:
        from . import yolo_seg_reference

        return yolo_seg_reference.reference(case, params)

    def strategy(self, params: SegParams):
        from . import yolo_seg_reference

        return yolo_seg_reference.cases(params)

    def bench_case(self, params: SegParams, density: float, rng) -> ParserCase:
        from . import yolo_seg_reference

        return yolo_seg_reference.bench_case(params, density, rng)

    def explain(self, case: ParserCase, params: SegParams) -> list[dict[str, Any]]:
        from . import yolo_seg_reference

        return yolo_seg_reference.explain(case, params)


@dsparsers.hookimpl
def register_architectures(register):
    register(YoloSeg())
