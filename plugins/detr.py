"""DETR family: set-prediction transformers whose queries each give one box (no NMS needed).

Three architectures, one per output form (facts checked against the exporters' sources):

- ``detr``: ``pred_logits`` / ``logits`` [B, Q, K] + ``pred_boxes`` [B, Q, 4], boxes cx, cy, w, h normalized
  to 0..1 (Hugging Face transformers and facebookresearch exports, TAO Deformable DETR / PeopleNet
  Transformer). How scores come from the logits depends on the training loss:

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

- ``rtdetr-ultralytics``: ultralytics RT-DETR, one output ``output0``. Before 8.4: [B, 300, 4+C]
  (``torch.cat((dec_bboxes, dec_scores.sigmoid()), -1)``); 8.4 and later: [B, 300, 6] from
  ``RTDETRDecoder.postprocess`` = cx, cy, w, h (normalized), score, class index (as a float). The
  [B, 300, 6] form has the shape of the YOLOv10/YOLO26 end-to-end head (x1 y1 x2 y2 in pixels), so this
  architecture only claims a model with RT-DETR evidence: metadata ``head: RTDETRDecoder``, a description
  naming rtdetr (the exporter writes ``Ultralytics rtdetr-l model ...``), or deformable attention
  (GridSample) in the graph; and ``end2end`` is not True.

- ``rtdetr-postprocessed``: lyuwenyu RT-DETR / RT-DETRv2 and D-FINE exported with their ``PostProcessor``
  in deploy mode: outputs ``labels`` [B, K] int64, ``boxes`` [B, K, 4], ``scores`` [B, K] and a second
  input ``orig_target_sizes`` [B, 2] = (width, height). Boxes are x1 y1 x2 y2 normalized, multiplied in
  the graph by ``orig_target_sizes``. nvinfer only feeds the image input (other inputs need the custom
  ``NvDsInferInitializeInputLayers``), so fix ``orig_target_sizes`` to the network's W, H in the ONNX
  (a constant) and boxes come out in network pixels (``-O box_units=pixels``, the default); fixed to
  (1, 1) they stay normalized (``-O box_units=normalized``: the parser scales them). Labels are read as
  INT64, or INT32 when TensorRT narrowed them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from hypothesis import strategies as st

import dsparsers
from dsparsers.api import reference as ref
from dsparsers.api.architecture import Architecture, ConfigDefaults, GenerateOptions, HeadParams, Match
from dsparsers.emulation.datasets import COCO80
from dsparsers.errors import UsageError
from dsparsers.model.reader import ModelInfo, TensorInfo
from dsparsers.api.abi_types import DataType, DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase
from dsparsers.verification.strategies import (corner_box, detection_params, f32, float_class_id, float_dtypes, networks,
                                  plain_score, score_plan)

BOX_COLUMNS = 4
ACTIVATIONS = {
    "softmax": "softmax over C+1 logits, the last is 'no object' (facebook DETR)",
    "sigmoid": "sigmoid per class, no background (Deformable DETR, DINO, TAO DDETR, PeopleNet Transformer)",
    "none": "scores already activated in the graph",
}
LOGITS_NAMES = ("pred_logits", "logits", "class_logits", "scores_logits")
BOXES_NAMES = ("pred_boxes", "boxes", "bboxes")
#: --arch names of focal-loss (sigmoid) models
SIGMOID_ALIASES = ("deformable-detr", "ddetr", "tao-ddetr", "peoplenet-transformer", "dino", "conditional-detr")
#: ImageNet mean in 0..255 and one scale for the three stds (nvinfer has a single net-scale-factor):
#: 1 / mean(0.229, 0.224, 0.225) / 255, as NVIDIA's TAO configs use
IMAGENET_OFFSETS = (123.675, 116.28, 103.53)
IMAGENET_SCALE = 0.0173520735728
#: logits are multiples of 1/64 in generated cases (exact in FP16; ties stay ties)
_QUANTUM = 64.0


def has_deformable_attention(model: ModelInfo) -> bool:
    """Multi-scale deformable attention exports as GridSample (Deformable DETR, DINO, RT-DETR)."""
    return any(node.op_type == "GridSample" for node in model.producers.values())


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


def _named(tensor: TensorInfo, names: tuple[str, ...]) -> bool:
    return tensor.name.lower() in names


def _floats(model: ModelInfo, rank: int) -> list[TensorInfo]:
    return [t for t in model.outputs if t.rank == rank and t.dtype.startswith("float")]


# -- shared float32 arithmetic (the reference and the strategies use it; the C++ does the same) -------
def center_corners(cx, cy, w, h, network: NetworkInfo):
    """Normalized cx, cy, w, h -> corners in network pixels: (cx - w * 0.5) * W, as the C++."""
    x1, y1, x2, y2 = ref.corners_from_center(cx, cy, w, h)
    width, height = np.float32(network.width), np.float32(network.height)
    return ((x1 * width).astype(np.float32), (y1 * height).astype(np.float32),
            (x2 * width).astype(np.float32), (y2 * height).astype(np.float32))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (np.float32(1) / (np.float32(1) + np.exp(-x))).astype(np.float32)


def activated_scores(logits: np.ndarray, activation: str, no_object: bool) -> tuple[np.ndarray, np.ndarray]:
    """(score, class) per query from [Q, K] float32 logits, exactly as the C++ computes them."""
    with np.errstate(all="ignore"):
        classes = logits[:, :-1] if no_object else logits
        best, cls = ref.best_class(classes)
        if activation == "sigmoid":
            return sigmoid(best), cls
        if activation == "none":
            return best, cls
        # softmax: max over all K logits (NaN never wins), then a sequential float32 sum of exp(l - max)
        top, _ = ref.best_class(logits)
        shifted = np.exp((logits - top[:, None]).astype(np.float32)).astype(np.float32)
        total = np.cumsum(shifted, axis=1, dtype=np.float32)[:, -1] if shifted.shape[1] else np.zeros(0, np.float32)
        numerator = np.exp((best - top).astype(np.float32)).astype(np.float32)
        return (numerator / total).astype(np.float32), cls


# ================================================================================================
# detr: logits + boxes
# ================================================================================================
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
    heads = _floats(model, 3)
    if len(heads) != 2 or len(model.outputs) != 2:
        return None
    a, b = heads
    for logits, boxes in ((a, b), (b, a)):
        if logits.name == logits_name or boxes.name == boxes_name:
            return logits, boxes
    for logits, boxes in ((a, b), (b, a)):
        if _named(logits, LOGITS_NAMES) and _named(boxes, BOXES_NAMES):
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
        if _named(logits, ("pred_logits",)) and _named(boxes, ("pred_boxes",)):
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

    # -- the reference ----------------------------------------------------------------------
    def _find(self, case: ParserCase, params: DetrParams) -> tuple[Layer | None, Layer | None]:
        """As the C++: both by name, then by shape ([Q, 4] boxes, [Q, K] logits), never one layer twice."""
        k = params.logit_columns
        by_name = {layer.name: layer for layer in reversed(case.layers)}
        logits = by_name.get(params.logits_name)
        boxes = by_name.get(params.boxes_name)
        if boxes is None:
            for layer in case.layers:
                d = layer.reported_dims
                if layer is logits or len(d) != 2 or d[1] != BOX_COLUMNS:
                    continue
                if logits is None and k == BOX_COLUMNS:
                    continue
                boxes = layer
                break
        if logits is None:
            logits = next((layer for layer in case.layers if layer is not boxes and len(layer.reported_dims) == 2
                           and layer.reported_dims[1] == k), None)
        return logits, boxes

    def reference(self, case: ParserCase, params: DetrParams) -> ParseOutcome:
        with np.errstate(all="ignore"):
            logits, boxes = self._find(case, params)
            if logits is None or boxes is None:
                return ParseOutcome.rejected("missing layer")
            bd, ld = boxes.reported_dims, logits.reported_dims
            if len(bd) != 2 or bd[1] != BOX_COLUMNS or bd[0] == 0 or ref_count(bd) != boxes_elements(boxes):
                return ParseOutcome.rejected(f"bad boxes {bd}")
            if len(ld) != 2 or ld[1] != params.logit_columns or ld[0] != bd[0] or ref_count(ld) != boxes_elements(logits):
                return ParseOutcome.rejected(f"bad logits {ld}")
            if boxes.reported_type not in ref.FLOAT_TYPES or logits.reported_type not in ref.FLOAT_TYPES:
                return ParseOutcome.rejected("bad type")
            score, cls = activated_scores(ref.layer_view(logits), params.activation, params.no_object)
            box = ref.layer_view(boxes)
            keep = ref.passes_threshold(cls, score, case.params) & (cls < params.num_classes)
            x1, y1, x2, y2 = center_corners(box[:, 0], box[:, 1], box[:, 2], box[:, 3], case.network)
            keep &= ref.all_finite(x1, y1, x2, y2)
            return ParseOutcome(True, ref.boxes_to_detections(x1[keep], y1[keep], x2[keep], y2[keep], cls[keep],
                                                              score[keep], case.network))

    def strategy(self, params: DetrParams):
        return _detr_cases(params)

    def bench_case(self, params: DetrParams, density: float, rng) -> ParserCase:
        q = params.num_queries or 300
        k = params.logit_columns
        logits = rng.uniform(-6, -4, (q, k)).astype(np.float32)
        if params.no_object:
            logits[:, -1] = 4.0
        hits = rng.random(q) < density
        logits[hits, rng.integers(0, params.num_classes, int(hits.sum()))] = 8.0
        boxes = rng.uniform(0.1, 0.5, (q, 4)).astype(np.float32)
        return ParserCase((Layer(params.logits_name, logits), Layer(params.boxes_name, boxes)),
                          NetworkInfo(params.input_width, params.input_height),
                          DetectionParams.uniform(params.num_classes, 0.25))

    def explain(self, case: ParserCase, params: DetrParams) -> list[dict[str, Any]]:
        logits, boxes = self._find(case, params)
        if logits is None or boxes is None or len(logits.reported_dims) != 2 or len(boxes.reported_dims) != 2:
            return []
        with np.errstate(all="ignore"):
            lv, bv = ref.layer_view(logits), ref.layer_view(boxes)
            if lv.shape[1] != params.logit_columns or bv.shape[1] != BOX_COLUMNS or lv.shape[0] != bv.shape[0]:
                return []
            score, cls = activated_scores(lv, params.activation, params.no_object)
        return [{"query": i, "cx": float(b[0]), "cy": float(b[1]), "w": float(b[2]), "h": float(b[3]),
                 "best class": int(c), "score": float(s), "threshold": float(case.params.precluster_threshold(int(c)))}
                for i, (b, s, c) in enumerate(zip(bv[:16], score, cls))]


def ref_count(dims) -> int:
    """element_count of the C++: the product of the dims (0 when there are none or more than 8)."""
    if not dims or len(dims) > 8:
        return 0
    count = 1
    for d in dims:
        count *= int(d)
    return count if count <= 0xFFFFFFFF else 0


def boxes_elements(layer: Layer) -> int:
    """numElements as the harness reports it: the product of the reported dims."""
    return ref_count(layer.reported_dims)


@st.composite
def normalized_box(draw) -> tuple[float, float, float, float]:
    """cx, cy, w, h normalized: inside, straddling an edge, tiny, huge, negative size, non-finite."""
    kind = draw(st.sampled_from(["inside", "inside", "inside", "edge", "tiny", "huge", "negative", "nonfinite"]))
    if kind == "inside":
        return (draw(f32(0, 1)), draw(f32(0, 1)), draw(f32(0.01, 1)), draw(f32(0.01, 1)))
    if kind == "edge":
        return (draw(st.sampled_from([0.0, 1.0])) + draw(f32(-0.1, 0.1)), draw(f32(0, 1)),
                draw(f32(0.01, 0.3)), draw(f32(0.01, 0.3)))
    if kind == "tiny":
        return (draw(f32(0, 1)), draw(f32(0, 1)), draw(f32(0, 0.003)), draw(f32(0, 0.003)))
    if kind == "huge":
        return (draw(f32(-1e30, 1e30)), draw(f32(-1e30, 1e30)), draw(f32(0, 3e38)), draw(f32(0, 3e38)))
    if kind == "negative":
        return (draw(f32(0, 1)), draw(f32(0, 1)), draw(f32(-1, 0)), draw(f32(-1, 1)))
    box = [draw(f32(0, 1)), draw(f32(0, 1)), draw(f32(0.01, 1)), draw(f32(0.01, 1))]
    box[draw(st.integers(0, 3))] = draw(st.sampled_from([float("nan"), float("inf"), float("-inf")]))
    return tuple(box)


@st.composite
def _logit_row(draw, params: DetrParams, det: DetectionParams, seed: int) -> np.ndarray:
    """One query's K logits: noise, then a profile (an object near/above/below its threshold, no object,
    a tie, NaN, +-inf)."""
    k, c = params.logit_columns, params.num_classes
    rng = np.random.default_rng(seed)
    row = np.round(rng.uniform(-4, 0, k) * _QUANTUM) / _QUANTUM
    profile = draw(st.sampled_from(["object", "object", "object", "background", "tie", "nan", "inf"]))
    cls = draw(st.integers(0, c - 1))
    if profile in ("object", "tie"):
        value = draw(st.integers(-6 * int(_QUANTUM), 12 * int(_QUANTUM))) / _QUANTUM
        row[cls] = value
        if profile == "tie":
            row[draw(st.integers(0, c - 1))] = value
    elif profile == "background" and params.no_object:
        row[-1] = draw(st.integers(0, 12 * int(_QUANTUM))) / _QUANTUM
    elif profile == "nan":
        row[draw(st.integers(0, k - 1))] = np.nan
    elif profile == "inf":
        row[draw(st.integers(0, k - 1))] = draw(st.sampled_from([np.inf, -np.inf]))
    if params.activation == "none":  # already probabilities: a plain score per class
        probs = rng.uniform(0.0, 0.05, k)
        for assigned, value in draw(score_plan(c, det, "mixed")):
            probs[assigned] = value
        return probs.astype(np.float32)
    return row.astype(np.float32)


def away_from_thresholds(logits: np.ndarray, params: DetrParams, det: DetectionParams) -> np.ndarray:
    """Raise the best logit of every query whose score lies within 1e-4 (relative) of its class threshold,
    where NumPy's float32 exp and the C++ std::exp could round to different sides of it."""
    if params.activation == "none":
        return logits
    logits = logits.copy()
    for _ in range(64):
        with np.errstate(all="ignore"):
            score, cls = activated_scores(logits.astype(np.float32), params.activation, params.no_object)
            threshold = ref.threshold_of(cls, det)
            near = np.isfinite(score) & (threshold > 0) & (np.abs(score - threshold) <= np.float32(1e-4) * threshold)
        if not near.any():
            return logits
        rows = np.nonzero(near)[0]
        logits[rows, cls[rows]] = (logits[rows, cls[rows]].astype(np.float32) + np.float32(0.125)).astype(logits.dtype)
    return logits


@st.composite
def _detr_cases(draw, params: DetrParams, max_queries: int = 24) -> ParserCase:
    network = draw(networks)
    det = draw(detection_params(params.num_classes))
    count = draw(st.integers(1, max_queries))
    seed = draw(st.integers(0, 2**32 - 1))
    logits = np.stack([draw(_logit_row(params, det, seed + i)) for i in range(count)])
    boxes = np.array([draw(normalized_box()) for _ in range(count)], np.float32)
    with np.errstate(over="ignore"):
        logits = away_from_thresholds(logits.astype(draw(float_dtypes)), params, det)
        boxes = boxes.astype(draw(float_dtypes))
    renamed = draw(st.sampled_from(["named", "named", "logits renamed", "boxes renamed", "both renamed"]))
    if params.logit_columns == BOX_COLUMNS:
        renamed = "named"  # [Q, 4] logits and boxes look alike: only the names tell them apart
    layers = [Layer("engine_output_0" if renamed in ("logits renamed", "both renamed") else params.logits_name, logits),
              Layer("engine_output_1" if renamed in ("boxes renamed", "both renamed") else params.boxes_name, boxes)]
    if draw(st.booleans()):
        layers.reverse()
    return ParserCase(tuple(layers), network, det)


# ================================================================================================
# rtdetr-ultralytics: output0 [B, Q, 4+C] (before 8.4) or [B, Q, 6] (8.4+)
# ================================================================================================
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
        heads = _floats(model, 3)
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

    def reference(self, case: ParserCase, params: RtdetrParams) -> ParseOutcome:
        width = params.row_width
        with np.errstate(all="ignore"):
            layer = ref.find_layer(case.layers, params.output_name, lambda d: len(d) == 2 and d[1] == width)
            if layer is None:
                return ParseOutcome.rejected("no layer")
            dims = layer.reported_dims
            if layer.reported_type not in ref.FLOAT_TYPES or len(dims) != 2 or dims[1] != width or dims[0] == 0:
                return ParseOutcome.rejected(f"bad layer {dims}")
            rows = ref.layer_view(layer)
            if params.layout == "rows":
                valid, cls = ref.class_ids_from_float(rows[:, 5], params.num_classes, case.params.num_classes_configured)
                score = rows[:, 4]
            else:
                score, cls = ref.best_class(rows[:, 4:])
                valid = np.ones(len(rows), bool)
            keep = valid & ref.passes_threshold(cls, score, case.params)
            x1, y1, x2, y2 = center_corners(rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3], case.network)
            keep &= ref.all_finite(x1, y1, x2, y2)
            return ParseOutcome(True, ref.boxes_to_detections(x1[keep], y1[keep], x2[keep], y2[keep], cls[keep],
                                                              score[keep], case.network))

    def strategy(self, params: RtdetrParams):
        return _rtdetr_cases(params)

    def bench_case(self, params: RtdetrParams, density: float, rng) -> ParserCase:
        q = params.num_queries or 300
        rows = np.zeros((q, params.row_width), np.float32)
        rows[:, :4] = rng.uniform(0.1, 0.5, (q, 4))
        hits = rng.random(q) < density
        if params.layout == "rows":
            rows[:, 4] = np.where(hits, rng.uniform(0.3, 1.0, q), rng.uniform(0, 0.05, q))
            rows[:, 5] = rng.integers(0, params.num_classes, q)
        else:
            rows[:, 4:] = rng.uniform(0, 0.05, (q, params.num_classes))
            rows[hits, 4 + rng.integers(0, params.num_classes, int(hits.sum()))] = rng.uniform(0.3, 1.0, int(hits.sum()))
        return ParserCase((Layer(params.output_name, rows),), NetworkInfo(params.input_width, params.input_height),
                          DetectionParams.uniform(params.num_classes, 0.25))


@st.composite
def _rtdetr_cases(draw, params: RtdetrParams, max_queries: int = 24) -> ParserCase:
    network = draw(networks)
    det = draw(detection_params(params.num_classes))
    count = draw(st.integers(1, max_queries))
    rows = np.zeros((count, params.row_width), np.float32)
    seed = draw(st.integers(0, 2**32 - 1))
    if params.layout == "scores":
        rows[:, 4:] = np.random.default_rng(seed).uniform(0.0, 0.05, (count, params.num_classes))
    for i in range(count):
        rows[i, :4] = draw(normalized_box())
        if params.layout == "rows":
            cls = draw(float_class_id(params.num_classes))
            rows[i, 4], rows[i, 5] = draw(plain_score(det, cls)), cls
        else:
            for assigned, value in draw(score_plan(params.num_classes, det, "mixed")):
                rows[i, 4 + assigned] = value
    with np.errstate(over="ignore"):
        data = rows.astype(draw(float_dtypes))
    name = draw(st.sampled_from([params.output_name, params.output_name, "renamed_by_engine"]))
    return ParserCase((Layer(name, data),), network, det)


# ================================================================================================
# rtdetr-postprocessed: labels [B, K] int64, boxes [B, K, 4], scores [B, K]
# ================================================================================================
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
        if (_named(labels, LABEL_NAMES) and _named(boxes, BOXES_NAMES) and _named(scores, SCORE_NAMES)):
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

    def _find(self, case: ParserCase, params: PostprocessedParams):
        """As the C++: each by name, else by shape and type, never one layer twice."""
        int_types = (DataType.INT64, DataType.INT32)
        found: dict[str, Layer | None] = {}
        for role, name in (("labels", params.labels_name), ("boxes", params.boxes_name), ("scores", params.scores_name)):
            found[role] = next((layer for layer in case.layers if layer.name == name), None)
        tests = {
            "boxes": lambda l: len(l.reported_dims) == 2 and l.reported_dims[1] == BOX_COLUMNS,
            "labels": lambda l: len(l.reported_dims) == 1 and l.reported_type in int_types,
            "scores": lambda l: len(l.reported_dims) == 1 and l.reported_type in ref.FLOAT_TYPES,
        }
        for role in ("boxes", "labels", "scores"):
            if found[role] is None:
                taken = [v for v in found.values() if v is not None]
                found[role] = next((l for l in case.layers if all(l is not t for t in taken) and tests[role](l)), None)
        return found["labels"], found["boxes"], found["scores"]

    def reference(self, case: ParserCase, params: PostprocessedParams) -> ParseOutcome:
        with np.errstate(all="ignore"):
            labels, boxes, scores = self._find(case, params)
            if labels is None or boxes is None or scores is None:
                return ParseOutcome.rejected("missing layer")
            bd = boxes.reported_dims
            if len(bd) != 2 or bd[1] != BOX_COLUMNS or bd[0] == 0 or boxes.reported_type not in ref.FLOAT_TYPES:
                return ParseOutcome.rejected(f"bad boxes {bd}")
            k = bd[0]
            if labels.reported_dims != (k,) or labels.reported_type not in (DataType.INT64, DataType.INT32):
                return ParseOutcome.rejected("bad labels")
            if scores.reported_dims != (k,) or scores.reported_type not in ref.FLOAT_TYPES:
                return ParseOutcome.rejected("bad scores")
            lab = np.ascontiguousarray(labels.data).reshape(-1)[:k].astype(np.int64)
            score = ref.layer_view(scores)
            box = ref.layer_view(boxes)
            valid = (lab >= 0) & (lab < params.num_classes) & (lab < case.params.num_classes_configured)
            cls = np.where(valid, lab, 0)
            keep = valid & ref.passes_threshold(cls, score, case.params)
            x1, y1, x2, y2 = (box[:, j] for j in range(4))
            if params.box_units == "normalized":
                w, h = np.float32(case.network.width), np.float32(case.network.height)
                x1, x2 = (x1 * w).astype(np.float32), (x2 * w).astype(np.float32)
                y1, y2 = (y1 * h).astype(np.float32), (y2 * h).astype(np.float32)
            keep &= ref.all_finite(x1, y1, x2, y2)
            return ParseOutcome(True, ref.boxes_to_detections(x1[keep], y1[keep], x2[keep], y2[keep], cls[keep],
                                                              score[keep], case.network))

    def strategy(self, params: PostprocessedParams):
        return _post_cases(params)

    def bench_case(self, params: PostprocessedParams, density: float, rng) -> ParserCase:
        k = params.num_detections or 300
        boxes = np.zeros((k, 4), np.float32)
        boxes[:, :2] = rng.uniform(0, params.input_width - 200, (k, 2))
        boxes[:, 2:] = boxes[:, :2] + rng.uniform(4, 200, (k, 2))
        if params.box_units == "normalized":
            boxes /= np.float32(max(params.input_width, params.input_height))
        scores = np.where(rng.random(k) < density, rng.uniform(0.3, 1.0, k), rng.uniform(0, 0.05, k)).astype(np.float32)
        labels = rng.integers(0, params.num_classes, k).astype(np.int64)
        return ParserCase((Layer(params.labels_name, labels), Layer(params.boxes_name, boxes),
                           Layer(params.scores_name, scores)), NetworkInfo(params.input_width, params.input_height),
                          DetectionParams.uniform(params.num_classes, 0.25))


@st.composite
def _post_cases(draw, params: PostprocessedParams, max_detections: int = 24) -> ParserCase:
    network = draw(networks)
    det = draw(detection_params(params.num_classes))
    count = draw(st.integers(1, max_detections))
    labels = np.zeros(count, np.int64)
    scores = np.zeros(count, np.float32)
    boxes = np.zeros((count, 4), np.float32)
    for i in range(count):
        kind = draw(st.sampled_from(["valid", "valid", "valid", "negative", "too-large", "huge"]))
        labels[i] = {"valid": lambda: draw(st.integers(0, params.num_classes - 1)),
                     "negative": lambda: -1,
                     "too-large": lambda: draw(st.integers(params.num_classes, params.num_classes + 3)),
                     "huge": lambda: draw(st.sampled_from([2**31 + 5, -(2**40), 2**33]))}[kind]()
        scores[i] = draw(plain_score(det, float(max(0, min(labels[i], params.num_classes - 1)))))
        x1, y1, x2, y2 = draw(corner_box(network))
        if params.box_units == "normalized":
            x1, x2 = x1 / network.width, x2 / network.width
            y1, y2 = y1 / network.height, y2 / network.height
        boxes[i] = (x1, y1, x2, y2)
    label_type = draw(st.sampled_from([np.int64, np.int64, np.int32]))
    with np.errstate(over="ignore", invalid="ignore"):
        labels = labels.astype(label_type)  # TensorRT may narrow INT64 outputs to INT32 (wraps huge values)
        boxes = boxes.astype(draw(float_dtypes))
        scores = scores.astype(draw(float_dtypes))
    renamed = draw(st.sampled_from(["named", "named", "renamed"]))
    names = (params.labels_name, params.boxes_name, params.scores_name) if renamed == "named" else \
        ("engine_output_0", "engine_output_1", "engine_output_2")
    layers = [Layer(names[0], labels), Layer(names[1], boxes), Layer(names[2], scores)]
    order = draw(st.permutations(range(3)))
    return ParserCase(tuple(layers[j] for j in order), network, det)


@dsparsers.hookimpl
def register_architectures(register):
    register(Detr())
    register(RtdetrUltralytics())
    register(RtdetrPostprocessed())
