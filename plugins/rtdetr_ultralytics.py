"""rtdetr-ultralytics: ultralytics RT-DETR, one output ``output0`` (facts checked against ultralytics'
sources).

Before 8.4: [B, 300, 4+C] (``torch.cat((dec_bboxes, dec_scores.sigmoid()), -1)``); 8.4 and later:
[B, 300, 6] from ``RTDETRDecoder.postprocess`` = cx, cy, w, h (normalized), score, class index (as a
float). The [B, 300, 6] form has the shape of the YOLOv10/YOLO26 end-to-end head (x1 y1 x2 y2 in
pixels), so this architecture only claims a model with RT-DETR evidence: metadata ``head: RTDETRDecoder``,
a description naming rtdetr (the exporter writes ``Ultralytics rtdetr-l model ...``), or deformable
attention (GridSample) in the graph; and ``end2end`` is not True.

The reference decoder, strategy and bench case are in ``rtdetr_ultralytics_reference`` (NumPy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dsparsers
from dsparsers import COCO80, Architecture, ConfigDefaults, GenerateOptions, HeadParams, Match, UsageError

from ._detr_common import float_outputs, has_deformable_attention

if TYPE_CHECKING:
    from dsparsers import ModelInfo, ParseOutcome, ParserCase, TensorInfo

LAYOUTS = {"scores": "[Q, 4+C]: cx cy w h + C activated scores (ultralytics before 8.4)",
           "rows": "[Q, 6]: cx cy w h score class (ultralytics 8.4 and later)"}


@dataclass(frozen=True)
class RtdetrParams(HeadParams):
    layout: str = "rows"
    output_name: str = "output0"
    num_queries: int | None = None

    @property
    def row_width(self) -> int:
        return 6 if self.layout == "rows" else 4 + self.num_classes


def _version_before_84(text: str | None) -> bool | None:
    try:
        parts = tuple(int(p) for p in (text or "").split(".")[:2])
    except ValueError:
        return None
    return parts < (8, 4) if len(parts) == 2 else None


def rtdetr_evidence(model: ModelInfo) -> list[str]:
    """Why ``model`` looks like an ultralytics RT-DETR export (empty when nothing says so)."""
    why = []
    if model.metadata.get("head") == "RTDETRDecoder":
        why.append("metadata head=RTDETRDecoder")
    if "rtdetr" in model.metadata.get("description", "").lower().replace("-", ""):
        why.append("metadata description names RT-DETR")
    if has_deformable_attention(model):
        why.append("deformable attention (GridSample) in the graph")
    return why


class RtdetrUltralytics(Architecture):
    name = "rtdetr-ultralytics"
    aliases = ("rtdetr", "rt-detr", "rtdetr-l", "rtdetr-x")
    summary = "ultralytics RT-DETR: one row per query, normalized cx cy w h (8.4+: score, class; before: C scores)"
    head = "output0 [B, 300, 6] cx cy w h (normalized), score, class (8.4+) or [B, 300, 4+C] (before 8.4)"
    template = "detr_rtdetr_ultralytics.cpp.j2"
    params_type = RtdetrParams
    options = {"layout": "rows ([Q, 6]: 8.4+) or scores ([Q, 4+C]: before 8.4); read from the model",
               "output": "output tensor name the parser looks for first"}
    # RTDETRPredictor: LetterBox with scale_fill=True (stretched), RGB, 1/255
    config_defaults = ConfigDefaults(
        cluster_mode=4,
        why_cluster_mode="none: RT-DETR predicts one box per query (no NMS in ultralytics either); NMS would "
                         "only drop true positives",
        net_scale_factor=1.0 / 255.0,
        model_color_format=0,
        maintain_aspect_ratio=False,
        symmetric_padding=False,
        why_preprocessing="ultralytics RTDETRPredictor: RGB, 1/255, stretched to the network (scale_fill)",
        pre_cluster_threshold=0.25,
        nms_iou_threshold=0.45,
        topk=300,
    )

    def _head(self, model: ModelInfo) -> TensorInfo | None:
        heads = float_outputs(model, 3)
        return heads[0] if len(model.outputs) == 1 and len(heads) == 1 and (heads[0].dim(2) or 0) >= 5 else None

    def _layout(self, model: ModelInfo, head: TensorInfo, forced: str | None,
                num_classes: int | None) -> tuple[str, int | None, str]:
        width = head.dim(2)
        names = model.class_names
        if forced:
            return forced, (width - 4 if forced == "scores" else num_classes), f"-O layout={forced}"
        if width != 6:
            return "scores", width - 4, f"{width - 4} class scores per row (ultralytics before 8.4)"
        old = _version_before_84(model.metadata.get("version"))
        if old is not None:
            return ("scores", 2, "[Q, 6] from ultralytics before 8.4: cx cy w h + 2 class scores") if old else \
                ("rows", num_classes or (len(names) if names else None),
                 "[Q, 6] from ultralytics 8.4+: cx cy w h score class")
        if names and len(names) != 2:
            return "rows", len(names), f"[Q, 6] with {len(names)} class names: cx cy w h score class"
        return "rows", num_classes or (len(names) if names else None), \
            "[Q, 6] assumed the 8.4+ rows (cx cy w h score class); -O layout=scores for a 2-class export before 8.4"

    def match(self, model: ModelInfo) -> Match | None:
        head = self._head(model)
        if head is None:
            return None
        evidence = rtdetr_evidence(model)
        if not evidence:
            return None  # never from the shape alone: [B, 300, 6] is also the YOLO end-to-end head
        if model.metadata.get("end2end") == "True":
            return Match(0.0, f"{head.name} {head.shape_text()}: RT-DETR evidence ({'; '.join(evidence)}) but "
                              "metadata end2end=True (a YOLO end-to-end head)")
        if model.task not in (None, "detect"):
            return Match(0.0, f"metadata task={model.task!r}: not a detection head")
        layout, classes, how = self._layout(model, head, None, None)
        # metadata naming RT-DETR is the exporter's own word (and must outrank the YOLO heads of the same
        # shape by the ambiguity margin); deformable attention alone is good but weaker evidence
        from_metadata = any(w.startswith("metadata") for w in evidence)
        score = (0.95 if from_metadata else 0.8) + (0.05 if from_metadata and len(evidence) > 1 else 0.0)
        why = [f"{head.name} {head.shape_text()}: one row per query, boxes cx cy w h normalized", *evidence, how]
        return Match(round(min(score, 1.0), 2), "; ".join(why))

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> RtdetrParams:
        options.check_extra(self)
        forced = options.extra.get("layout")
        if forced is not None and forced not in LAYOUTS:
            raise UsageError(f"-O layout={forced}: expected one of {', '.join(LAYOUTS)}")
        if model is None:
            num_classes = options.num_classes or 80
            width, height = options.input_size or (640, 640)
            return RtdetrParams(num_classes, width, height, COCO80 if num_classes == 80 else None, forced or "rows",
                                options.extra.get("output", "output0"), 300)
        head = self._head(model)
        if head is None or head.dim(2) is None:
            raise UsageError(f"{model.path}: {self.name} needs one output [B, Q, 6] or [B, Q, 4+C]; the model has "
                             + ", ".join(f"{t.name} {t.shape_text()}" for t in model.outputs))
        layout, num_classes, _ = self._layout(model, head, forced, options.num_classes)
        names = model.class_names
        if layout == "scores" and head.dim(2) - 4 < 1:
            raise UsageError(f"-O layout=scores: {head.name} {head.shape_text()} has no class scores")
        if layout == "rows" and head.dim(2) != 6:
            raise UsageError(f"-O layout=rows: {head.name} {head.shape_text()} is not [B, Q, 6]")
        if layout == "scores" and options.num_classes and options.num_classes != num_classes:
            raise UsageError(f"--classes {options.num_classes}: {head.name} {head.shape_text()} has {num_classes}")
        num_classes = options.num_classes or num_classes
        if num_classes is None:
            raise UsageError(f"{model.path}: the class count is not in the model's metadata: give --classes C")
        size = model.input_size or options.input_size or (640, 640)
        return RtdetrParams(num_classes, size[0], size[1], tuple(names) if names and len(names) == num_classes else None,
                            layout, options.extra.get("output", head.name), head.dim(1))

    def describe(self, params: RtdetrParams) -> str:
        q = params.num_queries or "Q"
        columns = "cx cy w h score class" if params.layout == "rows" else "cx cy w h + scores"
        return (f"{params.output_name} [{q}, {params.row_width}] {columns} (normalized boxes), "
                f"{params.num_classes} classes, {params.input_width}x{params.input_height} input")

    def template_context(self, params: RtdetrParams) -> dict[str, Any]:
        return {"num_classes": params.num_classes, "layout": params.layout, "row_width": params.row_width,
                "output_name": params.output_name}

    # -- the verification side (NumPy, Hypothesis): rtdetr_ultralytics_reference -------------
    def reference(self, case: ParserCase, params: RtdetrParams) -> ParseOutcome:
        from . import rtdetr_ultralytics_reference

        return rtdetr_ultralytics_reference.reference(case, params)

    def strategy(self, params: RtdetrParams):
        from . import rtdetr_ultralytics_reference

        return rtdetr_ultralytics_reference.cases(params)

    def bench_case(self, params: RtdetrParams, density: float, rng) -> ParserCase:
        from . import rtdetr_ultralytics_reference

        return rtdetr_ultralytics_reference.bench_case(params, density, rng)


@dsparsers.hookimpl
def register_architectures(register):
    register(RtdetrUltralytics())
