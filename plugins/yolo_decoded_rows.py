"""Decoded detection rows [B, K, 6]: x1, y1, x2, y2 (pixels), score, class id (float).

Two families export this shape with different meanings for the pipeline:

- end-to-end (NMS-free) heads: ultralytics YOLOv10 and YOLO26 (and any ultralytics model exported
  with nms=True): K = 300 boxes already one per object, so nvinfer must not cluster (cluster-mode=4);
- DeepStream-Yolo exports: one row per anchor point (N = 8400 at 640) with the best class picked in
  the graph and no NMS, so nvinfer clusters (cluster-mode=2).

They share the template yolo_decoded_rows.cpp.j2; the matchers tell them apart from metadata, the
row count and the ops that produce the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from hypothesis import strategies as st

import dsparsers
from dsparsers.api import reference as ref
from dsparsers.api.architecture import Architecture, anchor_points, ConfigDefaults, GenerateOptions, HeadParams, Match
from dsparsers.emulation.datasets import COCO80
from dsparsers.errors import UsageError
from dsparsers.model.reader import ModelInfo, TensorInfo
from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase
from dsparsers.verification.strategies import corner_box, detection_params, float_class_id, float_dtypes, networks, plain_score

ROW_WIDTH = 6


@dataclass(frozen=True)
class DecodedRowsParams(HeadParams):
    output_name: str = "output0"
    num_rows: int | None = None


class DecodedRows(Architecture):
    template = "yolo_decoded_rows.cpp.j2"
    params_type = DecodedRowsParams
    options = {"output": "output tensor name the parser looks for first"}
    default_output: ClassVar[str] = "output0"
    head_note: ClassVar[str] = ""

    def canonical_rows(self, width: int, height: int) -> int:
        raise NotImplementedError

    def evidence(self, model: ModelInfo, head: TensorInfo) -> tuple[float, list[str]]:
        raise NotImplementedError

    def _head(self, model: ModelInfo) -> TensorInfo | None:
        heads = [t for t in model.outputs if t.rank == 3 and t.dim(2) == ROW_WIDTH]
        return heads[0] if len(model.outputs) == 1 and len(heads) == 1 and heads[0].dtype.startswith("float") else None

    def match(self, model: ModelInfo) -> Match | None:
        head = self._head(model)
        if head is None:
            return None
        if model.task not in (None, "detect"):
            return Match(0.0, f"metadata task={model.task!r}: not a detection head")
        rtdetr = _rtdetr_evidence(model)
        if rtdetr:  # same [B, 300, 6] shape, but cx cy w h normalized: never read it as corners in pixels
            return Match(0.0, f"{head.name} {head.shape_text()}: an RT-DETR export ({'; '.join(rtdetr)}): "
                              "normalized cx cy w h rows, see rtdetr-ultralytics")
        bonus, why = self.evidence(model, head)
        score = round(max(0.01, min(0.4 + bonus, 1.0)), 2)
        return Match(score, f"{head.name} {head.shape_text()}: rows of x1 y1 x2 y2 score class; " + "; ".join(why))

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> DecodedRowsParams:
        options.check_extra(self)
        if model is None:
            num_classes = options.num_classes or 80
            width, height = options.input_size or (640, 640)
            return DecodedRowsParams(num_classes, width, height, COCO80 if num_classes == 80 else None,
                                     options.extra.get("output", self.default_output), self.canonical_rows(width, height))
        head = self._head(model)
        if head is None:
            raise UsageError(f"{model.path}: {self.name} needs one output [B, K, 6]; the model has "
                             + ", ".join(f"{t.name} {t.shape_text()}" for t in model.outputs))
        names = model.class_names
        num_classes = options.num_classes or (len(names) if names else None)
        if num_classes is None:
            raise UsageError(f"{model.path}: the class count is not in the model's metadata: give --classes C")
        if names and options.num_classes and options.num_classes != len(names):
            raise UsageError(f"--classes {options.num_classes}: the model's metadata names {len(names)} classes")
        size = model.input_size or options.input_size or (640, 640)
        return DecodedRowsParams(num_classes, size[0], size[1], tuple(names) if names and len(names) == num_classes else None,
                                 options.extra.get("output", head.name), head.dim(1))

    def describe(self, params: DecodedRowsParams) -> str:
        return (f"{params.output_name} [{params.num_rows or 'K'}, 6] x1 y1 x2 y2 score class, {params.num_classes} classes, "
                f"{params.input_width}x{params.input_height} input")

    def template_context(self, params: DecodedRowsParams) -> dict[str, Any]:
        return {"num_classes": params.num_classes, "output_name": params.output_name, "head_note": self.head_note}

    def reference(self, case: ParserCase, params: DecodedRowsParams) -> ParseOutcome:
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

    def strategy(self, params: DecodedRowsParams):
        return _cases(params)

    def bench_case(self, params: DecodedRowsParams, density: float, rng) -> ParserCase:
        count = params.num_rows or self.canonical_rows(params.input_width, params.input_height)
        rows = np.zeros((count, ROW_WIDTH), np.float32)
        rows[:, 0] = rng.uniform(0, params.input_width - 200, count)
        rows[:, 1] = rng.uniform(0, params.input_height - 200, count)
        rows[:, 2:4] = rows[:, 0:2] + rng.uniform(4, 200, (count, 2))
        rows[:, 4] = np.where(rng.random(count) < density, rng.uniform(0.3, 1.0, count), rng.uniform(0, 0.05, count))
        rows[:, 5] = rng.integers(0, params.num_classes, count)
        return ParserCase((Layer(params.output_name, rows),), NetworkInfo(params.input_width, params.input_height),
                          DetectionParams.uniform(params.num_classes, 0.25))

    def explain(self, case: ParserCase, params: DecodedRowsParams) -> list[dict[str, Any]]:
        layer = case.layers[0]
        if len(layer.reported_dims) != 2 or layer.reported_dims[1] != ROW_WIDTH:
            return []
        rows = ref.layer_view(layer)
        return [{"row": i, "x1": float(r[0]), "y1": float(r[1]), "x2": float(r[2]), "y2": float(r[3]),
                 "score": float(r[4]), "class": float(r[5])} for i, r in enumerate(rows[:16])]


class EndToEndYolo(DecodedRows):
    name = "yolo-end2end"
    aliases = ("yolov10", "yolo26", "yolo-e2e", "end2end", "yolo-nms")
    summary = "NMS-free end-to-end heads: ultralytics YOLOv10, YOLO26, exports with nms=True"
    head = "output0 [B, K, 6] (K = 300): x1 y1 x2 y2 (pixels), score, class; one box per object"
    head_note = "Already one box per object (end-to-end head): no clustering afterwards (cluster-mode=4)."
    config_defaults = ConfigDefaults(
        cluster_mode=4,
        why_cluster_mode="none: the end-to-end head already keeps one box per object; NMS would only remove true positives",
        why_preprocessing="ultralytics: RGB, 1/255, letterbox with centred padding",
        pre_cluster_threshold=0.25, nms_iou_threshold=0.45, topk=300)

    def canonical_rows(self, width, height):
        return 300

    def evidence(self, model, head):
        score, why = 0.0, []
        if model.metadata.get("end2end") == "True" and "dsparsers_patched" not in model.metadata:
            score += 0.35
            why.append("metadata end2end=True")
        if model.metadata.get("args", "").find("'nms': True") >= 0:
            score += 0.2
            why.append("exported with nms=True")
        rows = head.dim(1)
        if rows is not None and rows <= 1000:
            score += 0.1
            why.append(f"K={rows}: a top-K of final detections")
        ops = model.upstream_ops(head.name, depth=6)
        if any(op in ops for op in ("TopK", "GatherElements", "NonMaxSuppression")):
            score += 0.1
            why.append("TopK/Gather before the output (end-to-end selection)")
        if model.task == "detect":
            score += 0.05
            why.append("task=detect")
        return score, why


class DeepStreamYolo(DecodedRows):
    name = "deepstream-yolo"
    aliases = ("dsyolo", "deepstream-yolo-export")
    summary = "the DeepStream-Yolo export layout: decoded boxes, best score and class per anchor point"
    head = "output [B, N, 6]: x1 y1 x2 y2 (pixels), score, class; one row per anchor point, no NMS"
    head_note = "One row per anchor point, best class chosen in the graph, no NMS: nvinfer clusters (cluster-mode=2)."
    default_output = "output"
    config_defaults = ConfigDefaults(
        cluster_mode=2,
        why_cluster_mode="NMS: the export keeps one row per anchor point and does no NMS",
        why_preprocessing="DeepStream-Yolo's configs: RGB, 1/255, letterbox with centred padding",
        pre_cluster_threshold=0.25, nms_iou_threshold=0.45, topk=300)

    def canonical_rows(self, width, height):
        return anchor_points(width, height)

    def evidence(self, model, head):
        score, why = 0.0, []
        rows, size = head.dim(1), model.input_size
        if rows and size and rows in (self.canonical_rows(*size), 3 * self.canonical_rows(*size)):
            score += 0.25
            why.append(f"{rows} rows = one per anchor point at {size[0]}x{size[1]}")
        if head.name == "output":
            score += 0.1
            why.append("named 'output' like DeepStream-Yolo's exports")
        ops = model.upstream_ops(head.name, depth=4)
        if any(op in ops for op in ("ArgMax", "ReduceMax")):
            score += 0.1
            why.append("ArgMax/ReduceMax over classes in the graph")
        if model.metadata.get("end2end") == "True":
            score -= 0.3
            why.append("but metadata end2end=True")
        if model.metadata.get("dsparsers_patched", "").startswith(self.name):
            score += 0.4
            why.append("decode head appended by `dsparsers patch`")
        return score, why


def _rtdetr_evidence(model: ModelInfo) -> list[str]:
    """What marks an ultralytics RT-DETR export, whose 8.4+ output has this very shape (unless the
    metadata says end2end=True, which only YOLO end-to-end heads write)."""
    if model.metadata.get("end2end") == "True":
        return []
    why = []
    if model.metadata.get("head") == "RTDETRDecoder":
        why.append("metadata head=RTDETRDecoder")
    if "rtdetr" in model.metadata.get("description", "").lower().replace("-", ""):
        why.append("metadata description names RT-DETR")
    if any(node.op_type == "GridSample" for node in model.producers.values()):
        why.append("deformable attention (GridSample) in the graph")
    return why


@st.composite
def _cases(draw, params: DecodedRowsParams, max_rows: int = 24) -> ParserCase:
    network = draw(networks)
    det_params = draw(detection_params(params.num_classes))

    @st.composite
    def row(draw_row):
        cls = draw_row(float_class_id(params.num_classes))
        return (*draw_row(corner_box(network)), draw_row(plain_score(det_params, cls)), cls)

    rows = np.array(draw(st.lists(row(), min_size=1, max_size=max_rows)), np.float32)
    with np.errstate(over="ignore"):
        data = rows.astype(draw(float_dtypes))
    name = draw(st.sampled_from([params.output_name, params.output_name, "renamed_by_engine"]))
    return ParserCase((Layer(name, data),), network, det_params)


@dsparsers.hookimpl
def register_architectures(register):
    register(EndToEndYolo())
    register(DeepStreamYolo())
