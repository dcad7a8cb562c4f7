"""TensorRT BatchedNMS_TRT / BatchedNMSDynamic_TRT outputs: TAO YOLOv3 / v4 / v4-tiny / v5 and others.

The NMS plugin runs inside the engine and writes four outputs (plugin output order):

- ``num_detections`` [B, 1] INT32: rows of the next three that hold detections;
- ``nmsed_boxes`` [B, K, 4] FLOAT: x1, y1, x2, y2, normalized 0..1 (``isNormalized=1``, TAO YOLOv3/v4)
  or network pixels (``isNormalized=0``, TAO's YOLOv5 sample);
- ``nmsed_scores`` [B, K] FLOAT;
- ``nmsed_classes`` [B, K] FLOAT (class ids as floats); padding rows have class -1 and score 0.

TAO's exporter (YOLOv3/v4) names the node ``BatchedNMS_N`` (op ``BatchedNMSDynamic_TRT``) and its outputs
``BatchedNMS``, ``BatchedNMS_1``, ``BatchedNMS_2``, ``BatchedNMS_3``, with attributes numClasses,
keepTopK (= nms_config.top_k, 200 in TAO's specs), topK = 2 * keepTopK, isNormalized=1, clipBoxes=1.
Both name sets are looked for; failing names, the count is the first INT32 layer, the boxes the
first [K, 4] layer, and of the 1-D [K] layers the first is the scores and the next the classes
(plugin output order: two [K] float layers cannot be told apart by shape).

onnxruntime cannot run the plugin node, so recognition only reads names, shapes, op types and the
node's attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from hypothesis import strategies as st

import dsparsers
from dsparsers.api import reference as ref
from dsparsers.api.architecture import Architecture, ConfigDefaults, GenerateOptions, HeadParams, Match, RoleNames
from dsparsers.errors import UsageError
from dsparsers.model.reader import ModelInfo, NodeInfo, TensorInfo
from dsparsers.api.abi_types import DataType, DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase
from dsparsers.verification.strategies import corner_box, detection_params, float_class_id, networks, plain_score

NMS_OPS = ("BatchedNMS_TRT", "BatchedNMSDynamic_TRT")
ROLES = ("count", "boxes", "scores", "classes")
#: the names each output goes by: TensorRT's plugin documentation, then TAO's exporter
KNOWN_NAMES = {
    "count": ("num_detections", "BatchedNMS"),
    "boxes": ("nmsed_boxes", "BatchedNMS_1"),
    "scores": ("nmsed_scores", "BatchedNMS_2"),
    "classes": ("nmsed_classes", "BatchedNMS_3"),
}
COORDS = {"normalized": "x1 y1 x2 y2 in 0..1, scaled by the network size (isNormalized=1)",
          "pixels": "x1 y1 x2 y2 in network pixels (isNormalized=0)"}
#: aliases whose exports write pixel coordinates (deepstream_tao_apps' YOLOv5 sample)
PIXEL_ALIASES = ("tao-yolov5",)
DEFAULT_KEEP_TOP_K = 200  # TAO's nms_config.top_k in its sample specs; the plugin's keepTopK
DEFAULT_INPUT = (960, 544)  # infer-dims=3;544;960 of deepstream_tao_apps' TAO YOLOv3/v4 samples


@dataclass(frozen=True)
class BatchedNmsParams(RoleNames, HeadParams):
    coords: str = "normalized"
    keep_top_k: int = DEFAULT_KEEP_TOP_K
    count_name: str = "num_detections"
    boxes_name: str = "nmsed_boxes"
    scores_name: str = "nmsed_scores"
    classes_name: str = "nmsed_classes"

    known_names = KNOWN_NAMES


def _nms_node(model: ModelInfo) -> NodeInfo | None:
    return model.output_node(NMS_OPS)


def _roles_by_name(model: ModelInfo) -> dict[str, TensorInfo]:
    found = {}
    for role, names in KNOWN_NAMES.items():
        for tensor in model.outputs:
            if tensor.name in names:
                found.setdefault(role, tensor)
    return found


def _roles(model: ModelInfo) -> dict[str, TensorInfo] | None:
    """role -> output tensor: from the NMS node's output order when there is one, else names, else shapes."""
    node = _nms_node(model)
    outputs = {t.name: t for t in model.outputs}
    if node is not None:
        # producers is filled node output by node output, so this is the plugin's output order
        ordered = [outputs[name] for name, n in model.producers.items() if n is node and name in outputs]
        if len(ordered) == 4:
            by_name = _roles_by_name(model)
            if len(by_name) == 4:
                return by_name
            return dict(zip(ROLES, ordered))
    found = _roles_by_name(model)
    if len(found) == 4:
        return found
    # shapes: [B, 1] int32, [B, K, 4] float, then two [B, K] floats in output order
    counts = [t for t in model.outputs if t.dtype == "int32" and t.rank == 2]
    boxes = [t for t in model.outputs if t.rank == 3 and t.dim(2) == 4 and t.dtype.startswith("float")]
    flat = [t for t in model.outputs if t.rank == 2 and t.dtype.startswith("float")]
    if len(outputs) == 4 and len(counts) == 1 and len(boxes) == 1 and len(flat) == 2:
        return {"count": counts[0], "boxes": boxes[0], "scores": flat[0], "classes": flat[1]}
    return None


class TaoBatchedNms(Architecture):
    name = "tao-batched-nms"
    aliases = ("tao-yolov3", "tao-yolov4", "tao-yolov4-tiny", "tao-yolov5", "batched-nms", "batchednms")
    summary = "TensorRT BatchedNMS(Dynamic)_TRT outputs (TAO YOLOv3/v4/v4-tiny/v5): NMS already done in the engine"
    head = ("num_detections [B, 1] int32, nmsed_boxes [B, K, 4] xyxy (normalized or pixels), "
            "nmsed_scores [B, K], nmsed_classes [B, K] float")
    template = "tao_batched_nms.cpp.j2"
    options = {
        "coords": "normalized (TAO YOLOv3/v4, isNormalized=1) or pixels (isNormalized=0, TAO YOLOv5); "
                  "read from the NMS node when the model has one",
    }
    params_type = BatchedNmsParams
    # deepstream_tao_apps configs/nvinfer/yolov3_tao and yolov4_tao (pgie_yolov*_tao_config.txt):
    # net-scale-factor=1.0, offsets=103.939;116.779;123.68, model-color-format=1 (BGR),
    # maintain-aspect-ratio=1 (no symmetric-padding line), pre-cluster-threshold=0.3.
    config_defaults = ConfigDefaults(
        cluster_mode=4,
        why_cluster_mode="none: the engine's BatchedNMS plugin already ran per-class NMS and kept the top "
                         "keepTopK boxes; clustering them again would only drop or merge real objects",
        why_preprocessing="TAO YOLOv3/v4 (deepstream_tao_apps): BGR, mean offsets, no scaling, letterbox "
                          "top-left; --arch tao-yolov5 writes its own",
        net_scale_factor=1.0,
        offsets=(103.939, 116.779, 123.68),
        model_color_format=1,
        maintain_aspect_ratio=True,
        symmetric_padding=False,
        pre_cluster_threshold=0.3,
        nms_iou_threshold=0.5,
        topk=DEFAULT_KEEP_TOP_K,
    )

    # -- recognising the head ---------------------------------------------------------------
    def defaults_for(self, requested_as):
        if (requested_as or "") in PIXEL_ALIASES:  # TAO YOLOv5: RGB, 1/255, pixel coordinates
            return replace(self.config_defaults, net_scale_factor=1.0 / 255.0, offsets=None, model_color_format=0,
                           why_preprocessing="TAO YOLOv5: RGB, 1/255, letterbox top-left")
        return self.config_defaults

    def match(self, model: ModelInfo) -> Match | None:
        roles = _roles(model)
        node = _nms_node(model)
        if roles is None:
            return None
        count, boxes, scores, classes = (roles[r] for r in ROLES)
        if classes.dtype.startswith("int"):
            return None  # EfficientNMS_TRT writes int32 classes
        if boxes.rank != 3 or boxes.dim(2) != 4 or scores.rank != 2 or classes.rank != 2:
            return None
        k = boxes.dim(1)
        why = [f"{count.name} {count.shape_text()} {count.dtype}, {boxes.name} {boxes.shape_text()}, "
               f"{scores.name} {scores.shape_text()}, {classes.name} {classes.shape_text()} {classes.dtype}: "
               "the four outputs of TensorRT's BatchedNMS plugin (TAO YOLOv3/v4/v4-tiny/v5)"]
        score = 0.6
        if node is not None:
            score = 0.95
            coords = _coords_of(node)
            why.append(f"produced by a {node.op_type} node (domain {node.domain or 'default'!r}"
                       + (f", numClasses={node.attributes['numClasses']}" if "numClasses" in node.attributes else "")
                       + (f", keepTopK={node.attributes['keepTopK']}" if "keepTopK" in node.attributes else "")
                       + (f", isNormalized={node.attributes['isNormalized']} -> {coords} coordinates"
                          if coords else "") + ")")
        elif all(t.name in KNOWN_NAMES[r] for r, t in roles.items()):
            score = 0.8
            why.append("named as the plugin names them")
        if count.dtype != "int32":
            score -= 0.3
            why.append(f"but {count.name} is {count.dtype}, not int32")
        if k is not None and any(t.dim(1) not in (None, k) for t in (scores, classes)):
            return Match(0.0, why[0] + "; but K differs between boxes, scores and classes")
        return Match(round(max(0.0, min(score, 1.0)), 2), "; ".join(why))

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> BatchedNmsParams:
        options.check_extra(self)
        coords = options.extra.get("coords")
        if coords is not None and coords not in COORDS:
            raise UsageError(f"-O coords={coords}: expected one of {', '.join(COORDS)}")
        alias_coords = "pixels" if (options.requested_as or "") in PIXEL_ALIASES else "normalized"
        if model is None:
            num_classes = options.num_classes or 80
            width, height = options.input_size or DEFAULT_INPUT
            return BatchedNmsParams(num_classes, width, height, None, coords or alias_coords, DEFAULT_KEEP_TOP_K)
        roles = _roles(model)
        if roles is None:
            listed = ", ".join(f"{t.name} {t.shape_text()} {t.dtype}" for t in model.outputs)
            raise UsageError(f"{model.path}: expected the four BatchedNMS outputs (num_detections [B, 1] int32, "
                             f"nmsed_boxes [B, K, 4], nmsed_scores [B, K], nmsed_classes [B, K]); found {listed}")
        node = _nms_node(model)
        attrs = node.attributes if node is not None else {}
        from_node = _coords_of(node) if node is not None else None
        if coords and from_node and coords != from_node:
            raise UsageError(f"-O coords={coords}: the model's {node.op_type} node has "
                             f"isNormalized={attrs.get('isNormalized')} ({from_node} coordinates)")
        names = model.class_names
        num_classes = attrs.get("numClasses") if isinstance(attrs.get("numClasses"), int) else None
        if options.num_classes and num_classes and options.num_classes != num_classes:
            raise UsageError(f"--classes {options.num_classes}: the model's {node.op_type} node has "
                             f"numClasses={num_classes}")
        num_classes = num_classes or options.num_classes or (len(names) if names else None)
        if not num_classes:
            raise UsageError(f"{model.path}: the class count is not in the graph (no {'/'.join(NMS_OPS)} node with "
                             "numClasses): pass --classes")
        keep = attrs.get("keepTopK") if isinstance(attrs.get("keepTopK"), int) and attrs.get("keepTopK") > 0 else None
        keep = keep or roles["boxes"].dim(1) or DEFAULT_KEEP_TOP_K
        size = model.input_size or options.input_size or DEFAULT_INPUT
        return BatchedNmsParams(
            num_classes, size[0], size[1], tuple(names) if names and len(names) == num_classes else None,
            coords or from_node or "normalized", keep,
            roles["count"].name, roles["boxes"].name, roles["scores"].name, roles["classes"].name)

    def describe(self, params: BatchedNmsParams) -> str:
        return (f"{params.count_name} [1] int32, {params.boxes_name} [{params.keep_top_k}, 4] xyxy {params.coords}, "
                f"{params.scores_name} [{params.keep_top_k}], {params.classes_name} [{params.keep_top_k}], "
                f"{params.num_classes} classes, {params.input_width}x{params.input_height} input")

    # -- generation -------------------------------------------------------------------------
    def template_context(self, params: BatchedNmsParams) -> dict[str, Any]:
        return {"num_classes": params.num_classes, "normalized": params.coords == "normalized",
                "names": {role: list(params.names(role)) for role in ROLES}}

    # -- the reference ----------------------------------------------------------------------
    def reference(self, case: ParserCase, params: BatchedNmsParams) -> ParseOutcome:
        with np.errstate(all="ignore"):
            return self._reference(case, params)

    def _find(self, case: ParserCase, params: BatchedNmsParams) -> dict[str, Layer | None]:
        """Exactly the C++ lookup: every role by its names first, then by type and shape among the rest."""
        tests = {
            "count": lambda l: l.reported_type == DataType.INT32,
            "boxes": lambda l: len(l.reported_dims) == 2 and l.reported_dims[1] == 4,
            "scores": lambda l: len(l.reported_dims) == 1 and l.reported_type != DataType.INT32,
            "classes": lambda l: len(l.reported_dims) == 1 and l.reported_type != DataType.INT32,
        }
        return ref.find_roles(case.layers, {role: params.names(role) for role in ROLES}, tests)

    def _reference(self, case: ParserCase, params: BatchedNmsParams) -> ParseOutcome:
        found = self._find(case, params)
        if any(layer is None for layer in found.values()):
            return ParseOutcome.rejected("missing layer")
        count, boxes, scores, classes = (found[r] for r in ROLES)
        problem, k = ref.check_nms_outputs(count, boxes, scores, classes)
        if problem:
            return ParseOutcome.rejected(problem)
        if classes.reported_type not in ref.FLOAT_TYPES:
            return ParseOutcome.rejected("unsupported data type")
        raw = ref.first_int32(count)
        n = min(max(raw, 0), k)
        box = ref.layer_view(boxes)[:n]
        score = ref.layer_view(scores)[:n]
        valid, cls = ref.class_ids_from_float(ref.layer_view(classes)[:n], params.num_classes,
                                              case.params.num_classes_configured)
        keep = valid & ref.passes_threshold(cls, score, case.params)
        x1, y1, x2, y2 = (box[:, j] for j in range(4))
        keep &= ref.all_finite(x1, y1, x2, y2)
        if params.coords == "normalized":
            x1, y1, x2, y2 = ref.normalized_to_pixels(x1, y1, x2, y2, case.network)
        return ParseOutcome(True, ref.boxes_to_detections(x1[keep], y1[keep], x2[keep], y2[keep], cls[keep],
                                                          score[keep], case.network))

    def strategy(self, params: BatchedNmsParams):
        return _cases(params)

    def bench_case(self, params: BatchedNmsParams, density: float, rng) -> ParserCase:
        rows = params.keep_top_k
        kept = max(1, int(round(density * rows)))
        scale = np.float32(1.0) if params.coords == "normalized" else np.float32(min(params.input_width, params.input_height))
        corners = rng.uniform(0, 0.8, (rows, 2)).astype(np.float32)
        boxes = np.concatenate([corners, corners + rng.uniform(0.01, 0.2, (rows, 2)).astype(np.float32)], axis=1) * scale
        scores = np.where(np.arange(rows) < kept, rng.uniform(0.3, 1.0, rows), 0).astype(np.float32)
        classes = np.where(np.arange(rows) < kept, rng.integers(0, params.num_classes, rows), -1).astype(np.float32)
        layers = (Layer(params.count_name, np.array([kept], np.int32)), Layer(params.boxes_name, boxes.astype(np.float32)),
                  Layer(params.scores_name, scores), Layer(params.classes_name, classes))
        return ParserCase(layers, NetworkInfo(params.input_width, params.input_height),
                          DetectionParams.uniform(params.num_classes, 0.25))

    def explain(self, case: ParserCase, params: BatchedNmsParams) -> list[dict[str, Any]]:
        found = self._find(case, params)
        if any(layer is None for layer in found.values()):
            return []
        try:
            with np.errstate(all="ignore"):
                raw = ref.first_int32(found["count"])
                box, score, cls = (ref.layer_view(found[r]) for r in ("boxes", "scores", "classes"))
            rows = [{"row": i, "x1": float(b[0]), "y1": float(b[1]), "x2": float(b[2]), "y2": float(b[3]),
                     "score": float(s), "class (float)": float(c),
                     "counted": "yes" if i < raw else "no"}
                    for i, (b, s, c) in enumerate(zip(box[:16], score, cls))]
        except (ValueError, IndexError, TypeError):
            return []
        return rows


def _coords_of(node: NodeInfo | None) -> str | None:
    value = node.attributes.get("isNormalized") if node is not None else None
    if isinstance(value, int):
        return "normalized" if value else "pixels"
    return None


@st.composite
def _row(draw, params: BatchedNmsParams, det, network: NetworkInfo):
    x1, y1, x2, y2 = draw(corner_box(network))
    if params.coords == "normalized":
        with np.errstate(all="ignore"):
            x1, x2 = (float(np.float32(v) / np.float32(network.width)) for v in (x1, x2))
            y1, y2 = (float(np.float32(v) / np.float32(network.height)) for v in (y1, y2))
    cls = draw(float_class_id(params.num_classes))
    return (x1, y1, x2, y2), draw(plain_score(det, cls)), cls


@st.composite
def _cases(draw, params: BatchedNmsParams, max_rows: int = 24) -> ParserCase:
    network = draw(networks)
    det = draw(detection_params(params.num_classes))
    rows = draw(st.lists(_row(params, det, network), min_size=0, max_size=max_rows))
    k = draw(st.integers(max(1, len(rows)), max(1, len(rows)) + 4))  # K >= valid rows: the rest is padding
    boxes = np.zeros((k, 4), np.float32)
    scores = np.zeros(k, np.float32)
    classes = np.full(k, -1.0, np.float32)  # padding rows: class -1, score 0, box 0
    for i, (box, score, cls) in enumerate(rows):
        boxes[i], scores[i], classes[i] = box, score, cls
    if draw(st.booleans()):  # garbage past num_detections must never be read as objects
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        start = len(rows)
        boxes[start:] = rng.uniform(0, 1, (k - start, 4))
        scores[start:] = rng.uniform(0.5, 1, k - start)
        classes[start:] = rng.integers(0, params.num_classes, k - start)
    count_kind = draw(st.sampled_from(["exact", "exact", "exact", "zero", "negative", "too-large"]))
    count = {"exact": len(rows), "zero": 0}.get(count_kind)
    if count_kind == "negative":
        count = draw(st.sampled_from([-1, -200, -(2**31)]))
    elif count_kind == "too-large":
        count = draw(st.sampled_from([k + 1, k + 100, 2**31 - 1]))
    with np.errstate(over="ignore"):
        boxes = boxes.astype(draw(st.sampled_from([np.float32, np.float16])))
        scores = scores.astype(draw(st.sampled_from([np.float32, np.float16])))
        classes = classes.astype(draw(st.sampled_from([np.float32, np.float16])))
    naming = draw(st.sampled_from(["own", "own", "tao", "standard", "renamed"]))
    if naming == "own":
        names = [params.count_name, params.boxes_name, params.scores_name, params.classes_name]
    elif naming in ("tao", "standard"):
        names = [KNOWN_NAMES[r][1 if naming == "tao" else 0] for r in ROLES]
    else:
        names = [f"engine_output_{i}" for i in range(4)]
    layers = [Layer(names[0], np.array([count], np.int32)), Layer(names[1], boxes), Layer(names[2], scores),
              Layer(names[3], classes)]
    if naming != "renamed":  # named layers may come in any binding order
        order = draw(st.permutations(range(4)))
        layers = [layers[i] for i in order]
    return ParserCase(tuple(layers), network, det)


@dsparsers.hookimpl
def register_architectures(register):
    register(TaoBatchedNms())
