"""rtdetr-postprocessed: lyuwenyu RT-DETR / RT-DETRv2 and D-FINE exported with their ``PostProcessor`` in
deploy mode (facts checked against their deploy scripts).

Outputs ``labels`` [B, K] int64, ``boxes`` [B, K, 4], ``scores`` [B, K] and a second input
``orig_target_sizes`` [B, 2] = (width, height). Boxes are x1 y1 x2 y2 normalized, multiplied in the graph
by ``orig_target_sizes``. nvinfer only feeds the image input (other inputs need the custom
``NvDsInferInitializeInputLayers``), so fix ``orig_target_sizes`` to the network's W, H in the ONNX (a
constant) and boxes come out in network pixels (``-O box_units=pixels``, the default); fixed to (1, 1)
they stay normalized (``-O box_units=normalized``: the parser scales them). Labels are read as INT64, or
INT32 when TensorRT narrowed them.

The reference decoder, strategy and bench case are in ``rtdetr_postprocessed_reference`` (NumPy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dsparsers
from dsparsers import COCO80, Architecture, ConfigDefaults, GenerateOptions, HeadParams, Match, UsageError

from ._detr_common import BOX_COLUMNS, BOXES_NAMES, named

if TYPE_CHECKING:
    from dsparsers import ModelInfo, ParseOutcome, ParserCase, TensorInfo

BOX_UNITS = {"pixels": "orig_target_sizes fixed to the network W, H: boxes in network pixels",
             "normalized": "orig_target_sizes fixed to (1, 1): boxes normalized, scaled by the parser"}
LABEL_NAMES = ("labels", "classes", "class_ids")
SCORE_NAMES = ("scores", "confidences")


@dataclass(frozen=True)
class PostprocessedParams(HeadParams):
    box_units: str = "pixels"
    labels_name: str = "labels"
    boxes_name: str = "boxes"
    scores_name: str = "scores"
    num_detections: int | None = None


def _post_triple(model: ModelInfo) -> tuple[TensorInfo, TensorInfo, TensorInfo] | None:
    if len(model.outputs) != 3:
        return None
    ints = [t for t in model.outputs if t.rank == 2 and t.dtype in ("int64", "int32")]
    boxes = [t for t in model.outputs if t.rank == 3 and t.dtype.startswith("float") and t.dim(2) == BOX_COLUMNS]
    scores = [t for t in model.outputs if t.rank == 2 and t.dtype.startswith("float")]
    if len(ints) != 1 or len(boxes) != 1 or len(scores) != 1:
        return None
    return ints[0], boxes[0], scores[0]


class RtdetrPostprocessed(Architecture):
    name = "rtdetr-postprocessed"
    aliases = ("rtdetrv2", "rt-detrv2", "d-fine", "dfine", "rtdetr-lyuwenyu")
    summary = "RT-DETR / RT-DETRv2 / D-FINE exported with their post-processor: top-K labels, boxes, scores"
    head = ("labels [B, K] int64, boxes [B, K, 4] x1 y1 x2 y2 (scaled by input orig_target_sizes), "
            "scores [B, K]")
    template = "detr_postprocessed.cpp.j2"
    params_type = PostprocessedParams
    options = {"box_units": "pixels (orig_target_sizes fixed to the network W, H; default) or normalized "
                            "(fixed to 1, 1)",
               "labels": "labels output name", "boxes": "boxes output name", "scores": "scores output name"}
    # references/deploy/*: T.Resize((640, 640)) + ToTensor -> RGB, 1/255, stretched
    config_defaults = ConfigDefaults(
        cluster_mode=4,
        why_cluster_mode="none: the post-processor already keeps the top-K query predictions, one box per "
                         "object; NMS would only drop true positives",
        net_scale_factor=1.0 / 255.0,
        model_color_format=0,
        maintain_aspect_ratio=False,
        symmetric_padding=False,
        why_preprocessing="RT-DETR(v2) / D-FINE deploy scripts: RGB, 1/255, resized to the network (stretched); "
                          "fix the orig_target_sizes input to the network W, H in the ONNX (nvinfer feeds only "
                          "the image)",
        pre_cluster_threshold=0.5,
        nms_iou_threshold=0.45,
        topk=300,
    )

    def match(self, model: ModelInfo) -> Match | None:
        triple = _post_triple(model)
        if triple is None:
            return None
        labels, boxes, scores = triple
        k = {t.dim(1) for t in triple} - {None}
        if len(k) > 1:
            return None
        score = 0.55
        why = [f"{labels.name} {labels.shape_text()} {labels.dtype} + {boxes.name} {boxes.shape_text()} + "
               f"{scores.name} {scores.shape_text()}: top-K detections from an RT-DETR-style post-processor"]
        if (named(labels, LABEL_NAMES) and named(boxes, BOXES_NAMES) and named(scores, SCORE_NAMES)):
            score += 0.2
            why.append("output names labels/boxes/scores")
        if any(t.name == "orig_target_sizes" for t in model.inputs):
            score += 0.2
            why.append("input orig_target_sizes: boxes are scaled by it in the graph; fix it to the network "
                       "W, H (pixels) or 1, 1 (-O box_units=normalized)")
        return Match(round(min(score, 1.0), 2), "; ".join(why))

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> PostprocessedParams:
        options.check_extra(self)
        extra = options.extra
        units = extra.get("box_units", "pixels")
        if units not in BOX_UNITS:
            raise UsageError(f"-O box_units={units}: expected one of {', '.join(BOX_UNITS)}")
        num_classes = options.num_classes
        if model is None:
            num_classes = num_classes or 80
            width, height = options.input_size or (640, 640)
            return PostprocessedParams(num_classes, width, height, COCO80 if num_classes == 80 else None, units,
                                       extra.get("labels", "labels"), extra.get("boxes", "boxes"),
                                       extra.get("scores", "scores"), 300)
        triple = _post_triple(model)
        if triple is None:
            raise UsageError(f"{model.path}: {self.name} needs outputs labels [B, K] int64/int32, boxes [B, K, 4], "
                             "scores [B, K]; found " + ", ".join(f"{t.name} {t.shape_text()} {t.dtype}"
                                                                  for t in model.outputs))
        labels, boxes, scores = triple
        names = model.class_names
        num_classes = num_classes or (len(names) if names else None)
        if num_classes is None:
            raise UsageError(f"{model.path}: the labels output does not say how many classes there are: "
                             "give --classes C")
        size = model.input_size or options.input_size or (640, 640)
        return PostprocessedParams(num_classes, size[0], size[1],
                                   tuple(names) if names and len(names) == num_classes else None, units,
                                   extra.get("labels", labels.name), extra.get("boxes", boxes.name),
                                   extra.get("scores", scores.name), boxes.dim(1))

    def describe(self, params: PostprocessedParams) -> str:
        k = params.num_detections or "K"
        return (f"{params.labels_name} [{k}] int64/int32 + {params.boxes_name} [{k}, 4] xyxy ({params.box_units}) + "
                f"{params.scores_name} [{k}], {params.num_classes} classes, {params.input_width}x{params.input_height} input")

    def template_context(self, params: PostprocessedParams) -> dict[str, Any]:
        return {"num_classes": params.num_classes, "box_units": params.box_units, "labels_name": params.labels_name,
                "boxes_name": params.boxes_name, "scores_name": params.scores_name}

    # -- the verification side (NumPy, Hypothesis): rtdetr_postprocessed_reference -----------
    def reference(self, case: ParserCase, params: PostprocessedParams) -> ParseOutcome:
        from . import rtdetr_postprocessed_reference

        return rtdetr_postprocessed_reference.reference(case, params)

    def strategy(self, params: PostprocessedParams):
        from . import rtdetr_postprocessed_reference

        return rtdetr_postprocessed_reference.cases(params)

    def bench_case(self, params: PostprocessedParams, density: float, rng) -> ParserCase:
        from . import rtdetr_postprocessed_reference

        return rtdetr_postprocessed_reference.bench_case(params, density, rng)


@dsparsers.hookimpl
def register_architectures(register):
    register(RtdetrPostprocessed())
