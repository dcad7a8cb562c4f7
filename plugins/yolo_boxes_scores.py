"""Decoded boxes + score matrix head: YOLO-NAS, PP-YOLOE / PP-YOLOE+, DAMO-YOLO.

Two outputs, no NMS in the graph:

- ``boxes`` [B, N, 4]: x1, y1, x2, y2 in network pixels;
- ``scores`` [B, N, C] (row-major: YOLO-NAS, DAMO-YOLO) or [B, C, N] (channel-major: PaddleDetection's
  PP-YOLOE export with ``exclude_nms=True``), the per-class scores with the sigmoid already applied.

What the exporters write (checked against their sources):

- super-gradients (YOLO-NAS): the decoding module names its outputs ``pre_nms_bboxes_xyxy`` [B, N, 4]
  and ``pre_nms_scores`` [B, N, C]; ``model.export(..., postprocessing=None)`` leaves torch's numbered
  names (so the shape fallback matters).
- PaddleDetection (PP-YOLOE): ``PPYOLOEHead.post_process`` with ``exclude_nms`` returns ``pred_bboxes``
  [B, N, 4] (divided by the ``scale_factor`` input: feed 1.0 to stay in network pixels) and
  ``pred_scores`` [B, C, N]; paddle2onnx names them ``tmp_*``/``concat_*``; the graph has the extra
  inputs ``scale_factor`` (and ``im_shape``).
- DAMO-YOLO ``tools/converter.py``: the head returns (scores [B, N, C], boxes [B, N, 4]) and only the
  first is named (``output``, by default): the scores are called ``output``.

One object per candidate: its best class (NaN never wins, ties go to the lower id), kept when
``passes_threshold``; a box with a non-finite corner is dropped; ``add_box`` clips to the network and
drops boxes under one pixel. Layers are found by name, else by shape ([N, 4] vs [N, C] / [C, N]); when
C == 4 the two have the same shape and the names must decide (the parser then refuses to guess).

The NumPy reference, Hypothesis strategy, bench case and ``explain`` are in yolo_boxes_scores_reference.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import dsparsers
from dsparsers import (COCO80, Architecture, ConfigDefaults, GenerateOptions, HeadParams, Match, UsageError,
                       anchor_points)

if TYPE_CHECKING:
    from dsparsers import ModelInfo, ParseOutcome, ParserCase, TensorInfo

BOX_COLUMNS = 4
LAYOUTS = {"rows": "[N, C] row-major (YOLO-NAS, DAMO-YOLO)", "channels": "[C, N] channel-major (PP-YOLOE)"}
FAMILIES = "YOLO-NAS, PP-YOLOE(+), DAMO-YOLO"

#: output names the exporters use, canonical first
BOX_NAMES = ("boxes", "pre_nms_bboxes_xyxy", "bboxes", "pred_bboxes", "bbox_preds", "det_boxes_raw")
SCORE_NAMES = ("scores", "pre_nms_scores", "pred_scores", "cls_scores", "class_scores")
#: names of look-alike heads that are NOT this one (DETR family: normalized cxcywh boxes and logits)
FOREIGN_NAMES = ("pred_logits", "logits", "pred_boxes")


@dataclass(frozen=True)
class BoxesScoresParams(HeadParams):
    scores_layout: str = "rows"
    boxes_name: str = "boxes"
    scores_name: str = "scores"
    num_candidates: int | None = None


def _named(name: str, choices: tuple[str, ...]) -> bool:
    return name.lower() in choices


def _pair(model: ModelInfo, boxes_name: str | None = None,
          scores_name: str | None = None) -> tuple[TensorInfo, TensorInfo, str] | None:
    """(boxes, scores, how the roles were decided: "options", "names", "shapes" or "ambiguous") among the
    model's two rank-3 float outputs, or None."""
    heads = [t for t in model.outputs if t.rank == 3 and t.dtype.startswith("float")]
    if len(heads) != 2 or len(model.outputs) != 2:
        return None
    a, b = heads
    for boxes, scores in ((a, b), (b, a)):
        if boxes.name == boxes_name or scores.name == scores_name:
            return boxes, scores, "options"
    for boxes, scores in ((a, b), (b, a)):
        if _named(boxes.name, BOX_NAMES) and not _named(scores.name, BOX_NAMES):
            return boxes, scores, "names"
    for boxes, scores in ((a, b), (b, a)):
        if _named(scores.name, SCORE_NAMES) and not _named(boxes.name, SCORE_NAMES):
            return boxes, scores, "names"
    fours = [t for t in heads if t.dim(2) == BOX_COLUMNS]
    if len(fours) == 1:
        boxes = fours[0]
        return boxes, (b if boxes is a else a), "shapes"
    if len(fours) == 2:  # 4 classes and no telling names: the roles are a guess
        return a, b, "ambiguous"
    return None


def _layout(boxes: TensorInfo, scores: TensorInfo, num_classes: int | None,
            forced: str | None) -> tuple[str, int] | None:
    """(layout, C) for a scores output [B, d1, d2] beside boxes [B, N, 4], or None when it does not fit."""
    n, d1, d2 = boxes.dim(1), scores.dim(1), scores.dim(2)
    options = []
    if forced in (None, "rows") and (n is None or d1 is None or d1 == n):
        options.append(("rows", d2))
    if forced in (None, "channels") and (n is None or d2 is None or d2 == n):
        options.append(("channels", d1))
    if num_classes:
        options = [(lay, c) for lay, c in options if c in (None, num_classes)]
        options = [(lay, num_classes) for lay, _ in options]
    options = [(lay, c) for lay, c in options if c]
    if not options:
        return None
    if len(options) == 2:
        (l1, c1), (l2, c2) = options
        if n is not None:  # a dim equal to N is the candidate axis, the other one is C
            exact = [o for o in options if o[1] != n]
            if len(exact) == 1:
                return exact[0]
        if c1 != c2:  # both symbolic N: the class dim is the smaller one (N is thousands)
            return min(options, key=lambda o: o[1])
        return options[0]  # C == N: row-major unless -O scores_layout says otherwise
    return options[0]


class YoloBoxesScores(Architecture):
    name = "yolo-boxes-scores"
    aliases = ("yolo-nas", "yolonas", "ppyoloe", "ppyoloe-plus", "pp-yoloe", "damo-yolo", "damoyolo")
    summary = "decoded xyxy boxes + per-class score matrix, no NMS (YOLO-NAS, PP-YOLOE(+), DAMO-YOLO)"
    head = "boxes [B, N, 4] x1 y1 x2 y2 (pixels) and scores [B, N, C] or [B, C, N] (activated)"
    template = "yolo_boxes_scores.cpp.j2"
    options = {
        "scores_layout": "rows ([N, C]: YOLO-NAS, DAMO-YOLO) or channels ([C, N]: PP-YOLOE); "
                         "read from the model when its shapes tell",
        "boxes": "boxes output name the parser looks for first (default boxes, or the model's)",
        "scores": "scores output name the parser looks for first (default scores, or the model's)",
    }
    params_type = BoxesScoresParams
    # YOLO-NAS (super-gradients default_yolo_nas_coco_processing_params): RGB, /255, longest side
    # rescaled and padded to the centre (DetectionCenterPadding, value 114). PP-YOLOE(+) and DAMO-YOLO
    # differ (stretch resize; PP-YOLOE uses ImageNet mean/std, DAMO-YOLO raw 0..255): see the README.
    config_defaults = ConfigDefaults(
        cluster_mode=2,
        why_cluster_mode="NMS: the head gives one decoded box per anchor point and has no NMS of its own",
        why_preprocessing="YOLO-NAS: RGB, 1/255, letterbox centred (--arch ppyoloe / ppyoloe-plus / damo-yolo "
                          "write their own)",
        net_scale_factor=1.0 / 255.0,
        offsets=None,
        model_color_format=0,
        maintain_aspect_ratio=True,
        symmetric_padding=True,
        pre_cluster_threshold=0.25,
        nms_iou_threshold=0.45,
        topk=300,
    )

    # -- recognising the head ---------------------------------------------------------------
    def defaults_for(self, requested_as):
        """PP-YOLOE(+) and DAMO-YOLO prepare images differently from YOLO-NAS (the canonical config)."""
        stretch = dict(maintain_aspect_ratio=False, symmetric_padding=False)
        if requested_as in ("ppyoloe-plus",):
            return replace(self.config_defaults, **stretch, why_preprocessing="PP-YOLOE+: RGB, 1/255, stretched")
        if requested_as in ("ppyoloe", "pp-yoloe"):
            return replace(self.config_defaults, **stretch, net_scale_factor=0.0173520735727919486,
                           offsets=(123.675, 116.28, 103.53),
                           why_preprocessing="PP-YOLOE: RGB, ImageNet mean/std (offsets and scale), stretched")
        if requested_as in ("damo-yolo", "damoyolo"):
            return replace(self.config_defaults, **stretch, net_scale_factor=1.0,
                           why_preprocessing="DAMO-YOLO: RGB, 0-255 pixels, stretched")
        return self.config_defaults

    def match(self, model: ModelInfo) -> Match | None:
        if any(_named(t.name, FOREIGN_NAMES) for t in model.outputs):
            return None
        pair = _pair(model)
        if pair is None:
            return None
        boxes, scores, how = pair
        if boxes.dim(2) != BOX_COLUMNS:
            return None
        names = model.class_names
        found = _layout(boxes, scores, len(names) if names else None, None) or _layout(boxes, scores, None, None)
        if found is None:
            return None
        layout, num_classes = found
        score = 0.5
        why = [f"{boxes.name} {boxes.shape_text()} (x1 y1 x2 y2) + {scores.name} {scores.shape_text()} "
               f"({num_classes} classes, {LAYOUTS[layout]}): decoded boxes and a per-class score matrix "
               f"with no NMS, the head {FAMILIES} export"]
        if num_classes == BOX_COLUMNS:
            if how == "ambiguous":
                return Match(0.2, why[0] + "; with 4 classes both outputs are [N, 4] and their names do not "
                             "say which is which (-O boxes=/scores= names them)")
            why.append("4 classes: boxes and scores told apart by their names")
        if _named(boxes.name, BOX_NAMES) and _named(scores.name, SCORE_NAMES):
            score += 0.2
            why.append("output names say boxes/scores")
        n = boxes.dim(1)
        size = model.input_size
        if size and n and n == anchor_points(*size):
            score += 0.1
            why.append(f"{n} candidates = strides 8/16/32 at {size[0]}x{size[1]}")
        if "Sigmoid" in model.upstream_ops(scores.name, depth=4):
            score += 0.1
            why.append("scores come from a Sigmoid")
        if any(t.name in ("scale_factor", "im_shape") for t in model.inputs) or "paddle" in model.producer.lower():
            score += 0.05
            why.append("PaddleDetection inputs/producer (PP-YOLOE)")
        if names and len(names) == num_classes:
            score += 0.05
            why.append(f"{num_classes} class names in metadata")
        return Match(round(min(score, 1.0), 2), "; ".join(why))

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> BoxesScoresParams:
        options.check_extra(self)
        forced = options.extra.get("scores_layout")
        if forced is not None and forced not in LAYOUTS:
            raise UsageError(f"-O scores_layout={forced}: expected one of {', '.join(LAYOUTS)}")
        if model is None:
            num_classes = options.num_classes or 80
            width, height = options.input_size or (640, 640)
            names = COCO80 if num_classes == len(COCO80) else None
            return BoxesScoresParams(num_classes, width, height, names, forced or "rows",
                                     options.extra.get("boxes", "boxes"), options.extra.get("scores", "scores"),
                                     anchor_points(width, height))
        pair = _pair(model, options.extra.get("boxes"), options.extra.get("scores"))
        listed = ", ".join(f"{t.name} {t.shape_text()}" for t in model.outputs)
        if pair is None or pair[0].dim(2) != BOX_COLUMNS:
            raise UsageError(f"{model.path}: expected two outputs, boxes [B, N, 4] and scores [B, N, C] or "
                             f"[B, C, N], for {self.name}; found {listed}")
        boxes, scores, how = pair
        names = model.class_names
        expected = options.num_classes or (len(names) if names else None)
        found = _layout(boxes, scores, expected, forced)
        if found is None and options.num_classes:
            raise UsageError(f"--classes {options.num_classes}: the model's {scores.name} {scores.shape_text()} "
                             f"does not have {options.num_classes} classes"
                             + (f" in the {forced} layout" if forced else ""))
        if found is None and expected and not options.num_classes:
            found = _layout(boxes, scores, None, forced)  # metadata names disagree: trust the shapes
        if found is None:
            raise UsageError(f"{model.path}: output {scores.name} {scores.shape_text()} is neither [B, N, C] nor "
                             f"[B, C, N] beside {boxes.name} {boxes.shape_text()}"
                             + (f" (-O scores_layout={forced})" if forced else
                                " (when its dims are symbolic, --classes and -O scores_layout tell)"))
        layout, num_classes = found
        if num_classes == BOX_COLUMNS and how == "ambiguous":
            raise UsageError(f"{model.path}: {listed}: with 4 classes boxes and scores have the same shape and "
                             "their names do not say which is which: name them with -O boxes=... -O scores=...")
        size = model.input_size or options.input_size or (640, 640)
        return BoxesScoresParams(
            num_classes, size[0], size[1], tuple(names) if names and len(names) == num_classes else None,
            layout, options.extra.get("boxes", boxes.name), options.extra.get("scores", scores.name), boxes.dim(1))

    def describe(self, params: BoxesScoresParams) -> str:
        n = params.num_candidates or "N"
        shape = f"[{n}, {params.num_classes}]" if params.scores_layout == "rows" else f"[{params.num_classes}, {n}]"
        return (f"{params.boxes_name} [{n}, 4] xyxy + {params.scores_name} {shape} "
                f"{'row' if params.scores_layout == 'rows' else 'channel'}-major, {params.num_classes} classes, "
                f"{params.input_width}x{params.input_height} input")

    # -- generation -------------------------------------------------------------------------
    def template_context(self, params: BoxesScoresParams) -> dict[str, Any]:
        return {"num_classes": params.num_classes, "scores_layout": params.scores_layout,
                "boxes_name": params.boxes_name, "scores_name": params.scores_name}

    # -- verification (NumPy and Hypothesis: yolo_boxes_scores_reference, imported when used) ----
    def reference(self, case: ParserCase, params: BoxesScoresParams) -> ParseOutcome:
        from . import yolo_boxes_scores_reference as reference

        return reference.reference(case, params)

    def strategy(self, params: BoxesScoresParams):
        from . import yolo_boxes_scores_reference as reference

        return reference.cases(params)

    def bench_case(self, params: BoxesScoresParams, density: float, rng) -> ParserCase:
        from . import yolo_boxes_scores_reference as reference

        return reference.bench_case(params, density, rng)

    def explain(self, case: ParserCase, params: BoxesScoresParams) -> list[dict[str, Any]]:
        from . import yolo_boxes_scores_reference as reference

        return reference.explain(case, params)

    def append_decode(self, graph, opset: int, params: BoxesScoresParams, *, topk: int | None, source):
        """`dsparsers patch`: best class and score per candidate in the graph, boxes passed through."""
        patch = dsparsers.graph_patch
        boxes = patch.graph_output(graph, params.boxes_name, source)
        scores = patch.graph_output(graph, params.scores_name, source)
        if params.scores_layout == "channels":
            scores = patch.transpose_last(graph, scores, "dsp_scores_rows")
        score, class_id = patch.best_class(graph, opset, scores)
        return patch.compact_rows(graph, opset, boxes, score, class_id, batch=boxes.shape[0] if boxes.shape else None,
                                  topk=topk)


@dsparsers.hookimpl
def register_architectures(register):
    register(YoloBoxesScores())
