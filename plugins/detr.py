"""detr: DETR-style set prediction, one box per query (no NMS needed). Facts checked against the
exporters' sources.

``pred_logits`` / ``logits`` [B, Q, K] + ``pred_boxes`` [B, Q, 4], boxes cx, cy, w, h normalized to 0..1
(Hugging Face transformers and facebookresearch exports, TAO Deformable DETR / PeopleNet Transformer).
How scores come from the logits depends on the training loss:

* ``softmax``: facebook DETR (cross-entropy): K = C + 1, the last column is "no object"; score = the
  largest softmax probability over the C real classes (HF ``DetrImageProcessor.post_process_object_detection``:
  ``softmax(logits)[..., :-1].max(-1)``);
* ``sigmoid``: Deformable DETR, DINO, Conditional DETR, TAO DDETR, PeopleNet Transformer (focal loss):
  K = C, score = sigmoid of the best logit, no background column;
* ``none``: the graph already applied the activation (a Softmax / Sigmoid node produces the output);
  with a Softmax the last column is still "no object" and is skipped.

The parser takes the argmax over the raw logits (NaN never wins, ties go to the lower class; exp and
sigmoid are monotonic, so this is the probability argmax) and computes the one probability it needs.
Softmax subtracts the largest logit first and sums exp() sequentially in float32.

The other DETR output forms are their own families: ``rtdetr_ultralytics`` (one [B, Q, 6] or
[B, Q, 4+C] output) and ``rtdetr_postprocessed`` (labels, boxes, scores after RT-DETR's post-processor).
The reference decoder, strategy, bench case and explain rows are in ``detr_reference`` (NumPy).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import dsparsers
from dsparsers import COCO80, Architecture, ConfigDefaults, GenerateOptions, HeadParams, Match, UsageError

from ._detr_common import BOX_COLUMNS, BOXES_NAMES, float_outputs, has_deformable_attention, named

if TYPE_CHECKING:
    from dsparsers import ModelInfo, ParseOutcome, ParserCase, TensorInfo

ACTIVATIONS = {
    "softmax": "softmax over C+1 logits, the last is 'no object' (facebook DETR)",
    "sigmoid": "sigmoid per class, no background (Deformable DETR, DINO, TAO DDETR, PeopleNet Transformer)",
    "none": "scores already activated in the graph",
}
LOGITS_NAMES = ("pred_logits", "logits", "class_logits", "scores_logits")
#: --arch names of focal-loss (sigmoid) models
SIGMOID_ALIASES = ("deformable-detr", "ddetr", "tao-ddetr", "peoplenet-transformer", "dino", "conditional-detr")
#: ImageNet mean in 0..255 and one scale for the three stds (nvinfer has a single net-scale-factor):
#: 1 / mean(0.229, 0.224, 0.225) / 255, as NVIDIA's TAO configs use
IMAGENET_OFFSETS = (123.675, 116.28, 103.53)
IMAGENET_SCALE = 0.0173520735728


@dataclass(frozen=True)
class DetrParams(HeadParams):
    activation: str = "softmax"
    no_object: bool = True
    logits_name: str = "pred_logits"
    boxes_name: str = "pred_boxes"
    num_queries: int | None = None

    @property
    def logit_columns(self) -> int:
        return self.num_classes + (1 if self.no_object else 0)


def _detr_pair(model: ModelInfo, logits_name: str | None = None,
               boxes_name: str | None = None) -> tuple[TensorInfo, TensorInfo] | None:
    heads = float_outputs(model, 3)
    if len(heads) != 2 or len(model.outputs) != 2:
        return None
    a, b = heads
    for logits, boxes in ((a, b), (b, a)):
        if logits.name == logits_name or boxes.name == boxes_name:
            return logits, boxes
    for logits, boxes in ((a, b), (b, a)):
        if named(logits, LOGITS_NAMES) and named(boxes, BOXES_NAMES):
            return logits, boxes
    return None


class Detr(Architecture):
    name = "detr"
    aliases = ("deformable-detr", "ddetr", "tao-ddetr", "peoplenet-transformer", "dino", "conditional-detr")
    summary = "DETR-style set prediction: per-query class logits and normalized boxes (DETR, Deformable DETR, DINO, TAO)"
    head = ("pred_logits [B, Q, C+1] (softmax, last = no object) or [B, Q, C] (sigmoid), "
            "pred_boxes [B, Q, 4] cx cy w h (normalized)")
    template = "detr.cpp.j2"
    params_type = DetrParams
    options = {
        "activation": "softmax (C+1 logits, last = no object), sigmoid (C logits, focal) or none (already "
                      "activated); read from the graph, the class names or --arch when not given",
        "no_object": "with activation=none: 1 when the last column is 'no object' (softmax already applied)",
        "logits": "logits output name the parser looks for first",
        "boxes": "boxes output name the parser looks for first",
    }
    # DetrImageProcessor: RGB, rescale 1/255, ImageNet mean/std, resize keeping the aspect ratio and pad
    # bottom/right (do_pad) -> maintain-aspect-ratio=1, symmetric-padding=0
    config_defaults = ConfigDefaults(
        cluster_mode=4,
        why_cluster_mode="none: each query predicts one object and set-based training already removes "
                         "duplicates; NMS would only drop true positives",
        net_scale_factor=IMAGENET_SCALE,
        offsets=IMAGENET_OFFSETS,
        model_color_format=0,
        maintain_aspect_ratio=True,
        symmetric_padding=False,
        why_preprocessing="Hugging Face DetrImageProcessor: RGB, ImageNet mean/std, aspect ratio kept, "
                          "padded right/bottom",
        pre_cluster_threshold=0.5,
        nms_iou_threshold=0.5,
        topk=300,
    )

    def defaults_for(self, requested_as):
        if requested_as in ("tao-ddetr", "peoplenet-transformer"):
            # NVIDIA's deepstream_tao_apps config for PeopleNet Transformer: ImageNet offsets, stretched
            return replace(self.config_defaults, maintain_aspect_ratio=False,
                           why_preprocessing="TAO DDETR / PeopleNet Transformer (deepstream_tao_apps): RGB, "
                                             "ImageNet mean/std, stretched to the network")
        return self.config_defaults

    # -- recognising the head ---------------------------------------------------------------
    def _activation(self, model: ModelInfo, logits: TensorInfo, forced: str | None,
                    requested_as: str | None) -> tuple[str, bool, str]:
        """(activation, no_object, why) for ``logits``."""
        k = logits.dim(2)
        names = model.class_names
        producer = model.producers.get(logits.name)
        if forced:
            return forced, forced == "softmax", f"-O activation={forced}"
        if producer is not None and producer.op_type in ("Softmax", "Sigmoid"):
            softmax = producer.op_type == "Softmax"
            return "none", softmax, (f"a {producer.op_type} node produces {logits.name}: scores already activated"
                                     + ("; last column = no object" if softmax else ""))
        if names and k:
            if len(names) == k - 1:
                return "softmax", True, f"{k} logits = {len(names)} class names + no object: softmax"
            if len(names) == k:
                return "sigmoid", False, f"{k} logits = {len(names)} class names, no background: sigmoid (focal)"
        if requested_as in SIGMOID_ALIASES:
            return "sigmoid", False, f"--arch {requested_as}: sigmoid (focal loss)"
        if has_deformable_attention(model):
            return "sigmoid", False, "deformable attention (GridSample) in the graph: a focal-loss DETR, sigmoid"
        if k == 92:
            return "softmax", True, "92 logits = COCO's 91 ids + no object (facebook DETR): softmax"
        if k == 91:
            return "sigmoid", False, "91 logits = COCO's 91 ids, no background: sigmoid (focal)"
        return "softmax", True, ("no deformable attention in the graph: assumed plain DETR, softmax with no "
                                 "object last (-O activation=sigmoid for focal-loss models)")

    def match(self, model: ModelInfo) -> Match | None:
        pair = _detr_pair(model)
        if pair is None:
            return None
        logits, boxes = pair
        if boxes.dim(2) != BOX_COLUMNS or (logits.dim(1) and boxes.dim(1) and logits.dim(1) != boxes.dim(1)):
            return None
        activation, no_object, how = self._activation(model, logits, None, None)
        k = logits.dim(2)
        if k is not None and k - (1 if no_object else 0) < 1:
            return None
        score = 0.7
        why = [f"{logits.name} {logits.shape_text()} + {boxes.name} {boxes.shape_text()}: per-query class "
               f"logits and normalized cx cy w h boxes (DETR family)", how]
        if named(logits, ("pred_logits",)) and named(boxes, ("pred_boxes",)):
            score += 0.1
            why.append("output names pred_logits/pred_boxes")
        if "assumed" in how:
            score -= 0.1
        return Match(round(min(score, 1.0), 2), "; ".join(why))

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> DetrParams:
        options.check_extra(self)
        extra = options.extra
        forced = extra.get("activation")
        if forced is not None and forced not in ACTIVATIONS:
            raise UsageError(f"-O activation={forced}: expected one of {', '.join(ACTIVATIONS)}")
        no_object_text = extra.get("no_object")
        if no_object_text is not None and no_object_text not in ("0", "1"):
            raise UsageError(f"-O no_object={no_object_text}: expected 0 or 1")
        if no_object_text is not None and forced != "none":
            raise UsageError("-O no_object applies with -O activation=none only")
        if model is None:
            activation = forced or ("sigmoid" if options.requested_as in SIGMOID_ALIASES else "softmax")
            no_object = activation == "softmax" if no_object_text is None else no_object_text == "1"
            num_classes = options.num_classes or 91
            width, height = options.input_size or (640, 640)
            return DetrParams(num_classes, width, height, COCO80 if num_classes == 80 else None, activation,
                              no_object, extra.get("logits", "pred_logits"), extra.get("boxes", "pred_boxes"),
                              100 if activation == "softmax" else 300)
        pair = _detr_pair(model, extra.get("logits"), extra.get("boxes"))
        listed = ", ".join(f"{t.name} {t.shape_text()}" for t in model.outputs)
        if pair is None or pair[1].dim(2) != BOX_COLUMNS:
            raise UsageError(f"{model.path}: {self.name} needs two outputs, logits [B, Q, K] and boxes [B, Q, 4] "
                             f"(named pred_logits/logits and pred_boxes, or -O logits=/boxes=); found {listed}")
        logits, boxes = pair
        activation, no_object, _ = self._activation(model, logits, forced, options.requested_as)
        if no_object_text is not None:
            no_object = no_object_text == "1"
        k = logits.dim(2)
        names = model.class_names
        if k is None:
            if not options.num_classes:
                raise UsageError(f"{model.path}: {logits.name} {logits.shape_text()} has a symbolic class dim: "
                                 "give --classes C")
            num_classes = options.num_classes
        else:
            num_classes = k - (1 if no_object else 0)
            if options.num_classes and options.num_classes != num_classes:
                raise UsageError(f"--classes {options.num_classes}: {logits.name} {logits.shape_text()} with "
                                 f"activation {activation} has {num_classes} classes")
            if num_classes < 1:
                raise UsageError(f"{model.path}: {logits.name} {logits.shape_text()} leaves no class")
        size = model.input_size or options.input_size or (640, 640)
        return DetrParams(num_classes, size[0], size[1],
                          tuple(names) if names and len(names) == num_classes else None, activation, no_object,
                          extra.get("logits", logits.name), extra.get("boxes", boxes.name),
                          logits.dim(1) or boxes.dim(1))

    def describe(self, params: DetrParams) -> str:
        q = params.num_queries or "Q"
        act = {"softmax": "softmax, last = no object", "sigmoid": "sigmoid"}.get(
            params.activation, "activated" + (", last = no object" if params.no_object else ""))
        return (f"{params.logits_name} [{q}, {params.logit_columns}] ({act}) + {params.boxes_name} [{q}, 4] "
                f"cxcywh normalized, {params.num_classes} classes, {params.input_width}x{params.input_height} input")

    def template_context(self, params: DetrParams) -> dict[str, Any]:
        return {"num_classes": params.num_classes, "logit_columns": params.logit_columns,
                "activation": params.activation, "no_object": params.no_object,
                "logits_name": params.logits_name, "boxes_name": params.boxes_name}

    # -- the verification side (NumPy, Hypothesis): detr_reference ---------------------------
    def reference(self, case: ParserCase, params: DetrParams) -> ParseOutcome:
        from . import detr_reference

        return detr_reference.reference(case, params)

    def strategy(self, params: DetrParams):
        from . import detr_reference

        return detr_reference.cases(params)

    def bench_case(self, params: DetrParams, density: float, rng) -> ParserCase:
        from . import detr_reference

        return detr_reference.bench_case(params, density, rng)

    def explain(self, case: ParserCase, params: DetrParams) -> list[dict[str, Any]]:
        from . import detr_reference

        return detr_reference.explain(case, params)


@dsparsers.hookimpl
def register_architectures(register):
    register(Detr())
