"""TensorRT EfficientNMS_TRT outputs: TAO EfficientDet, and YOLO exports that end in the plugin.

The plugin runs inside the engine and writes four outputs (plugin output order):

- ``num_detections`` [B, 1] INT32: rows of the next three that hold detections;
- ``detection_boxes`` [B, K, 4] FLOAT/HALF: box corners ("BoxCorner" whatever the input's box_coding),
  in the axis order and the space of the boxes that went in: TAO EfficientDet writes y1, x1, y2, x2 in
  network pixels (deepstream_tao_apps' NvDsInferParseCustomEfficientDetTAO reads them so); YOLO exports
  x1, y1, x2, y2 in pixels;
- ``detection_scores`` [B, K] FLOAT/HALF;
- ``detection_classes`` [B, K] INT32 (BatchedNMS writes FLOAT class ids: that is how the two are told
  apart). Rows past num_detections are padding.

K is the node's ``max_output_boxes``. The plugin's attributes (TensorRT's plugin README) are
score_threshold, iou_threshold, max_output_boxes, background_class (-1: none), score_activation,
class_agnostic and box_coding (0 BoxCorner, 1 BoxCenterSize, of the INPUT boxes). None of them says
the axis order or whether coordinates are normalized: those come from -O box_order / -O coords, with
defaults from the alias, and a model whose image input is TAO EfficientDet's ``image_arrays:0`` is
taken as y1 x1 y2 x2 pixels. Failing names, the count is the first INT32 layer with one element, the
boxes the first [K, 4] layer, the scores the first non-INT32 [K] layer and the classes the first INT32
[K] layer left.

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
from dsparsers.verification.strategies import corner_box, detection_params, networks, plain_score

NMS_OPS = ("EfficientNMS_TRT",)
ROLES = ("count", "boxes", "scores", "classes")
KNOWN_NAMES = {
    "count": ("num_detections",),
    "boxes": ("detection_boxes",),
    "scores": ("detection_scores",),
    "classes": ("detection_classes",),
}
BOX_ORDERS = {"xyxy": "x1 y1 x2 y2", "yxyx": "y1 x1 y2 x2 (TensorFlow order: TAO EfficientDet)"}
COORDS = {"pixels": "network pixels", "normalized": "0..1, scaled by the network width/height"}
#: aliases whose exports write x1 y1 x2 y2 pixels; the others default to TAO EfficientDet (y1 x1 y2 x2 pixels)
YOLO_ALIASES = ("yolo-efficientnms",)
TAO_EFFICIENTDET_INPUT = "image_arrays:0"  # uff-input-blob-name of deepstream_tao_apps' EfficientDet config
DEFAULT_MAX_OUTPUT_BOXES = 100  # max_output_boxes of the EfficientDet samples (TensorRT's and TAO's)


@dataclass(frozen=True)
class EfficientNmsParams(RoleNames, HeadParams):
    box_order: str = "yxyx"
    coords: str = "pixels"
    background_class: int = -1
    max_output_boxes: int = DEFAULT_MAX_OUTPUT_BOXES
    count_name: str = "num_detections"
    boxes_name: str = "detection_boxes"
    scores_name: str = "detection_scores"
    classes_name: str = "detection_classes"

    known_names = KNOWN_NAMES


def _nms_node(model: ModelInfo) -> NodeInfo | None:
    return model.output_node(NMS_OPS)


def _roles(model: ModelInfo) -> dict[str, TensorInfo] | None:
    """role -> output tensor: from the node's output order when there is one, else names, else shapes."""
    outputs = {t.name: t for t in model.outputs}
    by_name = {role: outputs[names[0]] for role, names in KNOWN_NAMES.items() if names[0] in outputs}
    node = _nms_node(model)
    if node is not None:
        ordered = [outputs[name] for name, n in model.producers.items() if n is node and name in outputs]
        if len(ordered) == 4:
            return by_name if len(by_name) == 4 else dict(zip(ROLES, ordered))
    if len(by_name) == 4:
        return by_name
    # shapes: [B, 1] int32, [B, K, 4] float, [B, K] float, [B, K] int32
    if len(outputs) != 4:
        return None
    ints = [t for t in model.outputs if t.rank == 2 and t.dtype == "int32"]
    counts = [t for t in ints if t.dim(1) == 1]
    boxes = [t for t in model.outputs if t.rank == 3 and t.dim(2) == 4 and t.dtype.startswith("float")]
    scores = [t for t in model.outputs if t.rank == 2 and t.dtype.startswith("float")]
    if len(ints) == 2 and len(counts) >= 1 and len(boxes) == 1 and len(scores) == 1:
        count = counts[0]
        classes = next(t for t in ints if t is not count)
        return {"count": count, "boxes": boxes[0], "scores": scores[0], "classes": classes}
    return None


def _image_input(model: ModelInfo) -> TensorInfo | None:
    return next((t for t in model.inputs if t.rank == 4), None)


def _input_size(model: ModelInfo) -> tuple[int, int] | None:
    """(width, height): NHWC inputs (TAO EfficientDet's image_arrays:0 [B, H, W, 3]) as well as NCHW."""
    image = _image_input(model)
    if image is not None and image.dim(3) in (1, 3) and image.dim(1) not in (1, 3) and image.dim(1) and image.dim(2):
        return (image.dim(2), image.dim(1))
    return model.input_size


def _choice(options: GenerateOptions, key: str, allowed: dict) -> str | None:
    value = options.extra.get(key)
    if value is not None and value not in allowed:
        raise UsageError(f"-O {key}={value}: expected one of {', '.join(allowed)}")
    return value


def _alias_defaults(requested_as: str | None) -> tuple[str, str, tuple[int, int]]:
    """(box order, coords, input size) of the family the user named."""
    if (requested_as or "") in YOLO_ALIASES:
        return "xyxy", "pixels", (640, 640)
    return "yxyx", "pixels", (960, 544)  # TAO EfficientDet: infer-dims=3;544;960


class EfficientNms(Architecture):
    name = "efficientnms"
    aliases = ("efficientdet", "tao-efficientdet", "efficient-nms", "yolo-efficientnms")
    summary = ("TensorRT EfficientNMS_TRT outputs (TAO EfficientDet, YOLO exports ending in the plugin): "
               "NMS already done in the engine")
    head = ("num_detections [B, 1] int32, detection_boxes [B, K, 4] y1 x1 y2 x2 or x1 y1 x2 y2 (pixels or "
            "normalized), detection_scores [B, K], detection_classes [B, K] int32")
    template = "efficientnms.cpp.j2"
    options = {
        "box_order": "yxyx (TAO EfficientDet, the default) or xyxy (YOLO exports; --arch yolo-efficientnms): "
                     "EfficientNMS_TRT keeps the order of the boxes that went in and has no attribute saying it",
        "coords": "pixels (default) or normalized (0..1, scaled by the network size)",
    }
    params_type = EfficientNmsParams
    # deepstream_tao_apps configs/nvinfer/efficientdet_tao/pgie_d0_tao_config.txt: net-scale-factor=1.0,
    # offsets=0;0;0, model-color-format=0 (RGB), network-input-order=1 (NHWC), maintain-aspect-ratio=1 (no
    # symmetric-padding line), infer-dims=3;544;960, cluster-mode=4.
    config_defaults = ConfigDefaults(
        cluster_mode=4,
        why_cluster_mode="none: the engine's EfficientNMS plugin already ran NMS and kept the top max_output_boxes "
                         "boxes; clustering them again would only drop or merge real objects",
        why_preprocessing="TAO EfficientDet (deepstream_tao_apps): RGB 0-255, letterbox top-left; NHWC input "
                          "(network-input-order=1); --arch yolo-efficientnms writes its own",
        net_scale_factor=1.0,
        offsets=None,
        model_color_format=0,
        maintain_aspect_ratio=True,
        symmetric_padding=False,
        pre_cluster_threshold=0.25,
        nms_iou_threshold=0.5,
        topk=DEFAULT_MAX_OUTPUT_BOXES,
    )

    def defaults_for(self, requested_as):
        if (requested_as or "") in YOLO_ALIASES:  # ultralytics-style input: RGB 1/255, centred letterbox
            return replace(self.config_defaults, net_scale_factor=1.0 / 255.0, offsets=None, symmetric_padding=True,
                           why_preprocessing="YOLO exports ending in EfficientNMS: RGB, 1/255, letterbox centred")
        return self.config_defaults

    # -- recognising the head ---------------------------------------------------------------
    def match(self, model: ModelInfo) -> Match | None:
        roles = _roles(model)
        if roles is None:
            return None
        count, boxes, scores, classes = (roles[r] for r in ROLES)
        if classes.dtype.startswith("float"):
            return None  # BatchedNMS_TRT writes float class ids
        if boxes.rank != 3 or boxes.dim(2) != 4 or scores.rank != 2 or classes.rank != 2:
            return None
        node = _nms_node(model)
        why = [f"{count.name} {count.shape_text()} {count.dtype}, {boxes.name} {boxes.shape_text()}, "
               f"{scores.name} {scores.shape_text()}, {classes.name} {classes.shape_text()} {classes.dtype}: "
               "the four outputs of TensorRT's EfficientNMS plugin (int32 classes; TAO EfficientDet)"]
        score = 0.6
        if node is not None:
            score = 0.95
            attrs = node.attributes
            details = [f"domain {node.domain or 'default'!r}"]
            details += [f"{key}={attrs[key]}" for key in ("max_output_boxes", "background_class", "box_coding",
                                                           "class_agnostic") if key in attrs]
            why.append(f"produced by an {node.op_type} node ({', '.join(details)})")
        elif all(t.name in KNOWN_NAMES[r] for r, t in roles.items()):
            score = 0.8
            why.append("named as the plugin names them")
        image = _image_input(model)
        if image is not None and image.name == TAO_EFFICIENTDET_INPUT:
            why.append(f"input {image.name} {image.shape_text()}: TAO EfficientDet (boxes y1 x1 y2 x2 in pixels)")
        if count.dtype != "int32" or classes.dtype != "int32":
            score -= 0.3
            why.append("but the count or the classes are not int32")
        k = boxes.dim(1)
        if k is not None and any(t.dim(1) not in (None, k) for t in (scores, classes)):
            return Match(0.0, why[0] + "; but K differs between boxes, scores and classes")
        return Match(round(max(0.0, min(score, 1.0)), 2), "; ".join(why))

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> EfficientNmsParams:
        options.check_extra(self)
        order = _choice(options, "box_order", BOX_ORDERS)
        coords = _choice(options, "coords", COORDS)
        alias_order, alias_coords, alias_size = _alias_defaults(options.requested_as)
        if model is None:
            width, height = options.input_size or alias_size
            return EfficientNmsParams(options.num_classes or 80, width, height, None, order or alias_order,
                                      coords or alias_coords)
        roles = _roles(model)
        if roles is None:
            listed = ", ".join(f"{t.name} {t.shape_text()} {t.dtype}" for t in model.outputs)
            raise UsageError(f"{model.path}: expected the four EfficientNMS outputs (num_detections [B, 1] int32, "
                             "detection_boxes [B, K, 4], detection_scores [B, K], detection_classes [B, K] int32); "
                             f"found {listed}")
        node = _nms_node(model)
        attrs = node.attributes if node is not None else {}
        image = _image_input(model)
        if image is not None and image.name == TAO_EFFICIENTDET_INPUT:
            if order == "xyxy":
                raise UsageError(f"-O box_order=xyxy: the model's input {image.name} is TAO EfficientDet's, whose "
                                 "boxes are y1 x1 y2 x2")
            alias_order, alias_coords = "yxyx", "pixels"
        names = model.class_names
        num_classes = options.num_classes or (len(names) if names else None)
        if not num_classes:
            raise UsageError(f"{model.path}: the class count is not in the graph (EfficientNMS_TRT has no class-count "
                             "attribute): pass --classes")
        background = attrs.get("background_class")
        background = background if isinstance(background, int) and background >= 0 else -1
        keep = attrs.get("max_output_boxes")
        keep = keep if isinstance(keep, int) and keep > 0 else (roles["boxes"].dim(1) or DEFAULT_MAX_OUTPUT_BOXES)
        size = _input_size(model) or options.input_size or alias_size
        return EfficientNmsParams(
            num_classes, size[0], size[1], tuple(names) if names and len(names) == num_classes else None,
            order or alias_order, coords or alias_coords, background, keep,
            roles["count"].name, roles["boxes"].name, roles["scores"].name, roles["classes"].name)

    def describe(self, params: EfficientNmsParams) -> str:
        order = "y1 x1 y2 x2" if params.box_order == "yxyx" else "x1 y1 x2 y2"
        k = params.max_output_boxes
        bg = f", background class {params.background_class} dropped" if params.background_class >= 0 else ""
        return (f"{params.count_name} [1] int32, {params.boxes_name} [{k}, 4] {order} {params.coords}, "
                f"{params.scores_name} [{k}], {params.classes_name} [{k}] int32, {params.num_classes} classes{bg}, "
                f"{params.input_width}x{params.input_height} input")

    # -- generation -------------------------------------------------------------------------
    def template_context(self, params: EfficientNmsParams) -> dict[str, Any]:
        return {"num_classes": params.num_classes, "yxyx": params.box_order == "yxyx",
                "normalized": params.coords == "normalized", "background": params.background_class,
                "names": {role: list(params.names(role)) for role in ROLES}}

    # -- the reference ----------------------------------------------------------------------
    def reference(self, case: ParserCase, params: EfficientNmsParams) -> ParseOutcome:
        with np.errstate(all="ignore"):
            return self._reference(case, params)

    def _find(self, case: ParserCase, params: EfficientNmsParams) -> dict[str, Layer | None]:
        """Exactly the C++ lookup: every role by its names first, then by type and shape among the rest."""
        tests = {
            "count": lambda l: l.reported_type == DataType.INT32 and ref.element_count(l.reported_dims) == 1,
            "boxes": lambda l: len(l.reported_dims) == 2 and l.reported_dims[1] == 4,
            "scores": lambda l: len(l.reported_dims) == 1 and l.reported_type != DataType.INT32,
            "classes": lambda l: len(l.reported_dims) == 1 and l.reported_type == DataType.INT32,
        }
        return ref.find_roles(case.layers, {role: params.names(role) for role in ROLES}, tests)

    def _reference(self, case: ParserCase, params: EfficientNmsParams) -> ParseOutcome:
        found = self._find(case, params)
        if any(layer is None for layer in found.values()):
            return ParseOutcome.rejected("missing layer")
        count, boxes, scores, classes = (found[r] for r in ROLES)
        problem, k = ref.check_nms_outputs(count, boxes, scores, classes)
        if problem:
            return ParseOutcome.rejected(problem)
        if classes.reported_type != DataType.INT32:
            return ParseOutcome.rejected("classes not INT32")
        n = min(max(ref.first_int32(count), 0), k)
        box = ref.layer_view(boxes)[:n]
        score = ref.layer_view(scores)[:n]
        ids = np.frombuffer(np.ascontiguousarray(classes.data).tobytes()[:4 * k], np.int32)[:n].astype(np.int64)
        configured = case.params.num_classes_configured
        valid = (ids >= 0) & (ids < params.num_classes) & (ids < configured)
        if params.background_class >= 0:
            valid &= ids != params.background_class
        cls = np.where(valid, ids, 0)
        keep = valid & ref.passes_threshold(cls, score, case.params)
        if params.box_order == "yxyx":
            y1, x1, y2, x2 = (box[:, j] for j in range(4))
        else:
            x1, y1, x2, y2 = (box[:, j] for j in range(4))
        keep &= ref.all_finite(x1, y1, x2, y2)
        if params.coords == "normalized":
            x1, y1, x2, y2 = ref.normalized_to_pixels(x1, y1, x2, y2, case.network)
        return ParseOutcome(True, ref.boxes_to_detections(x1[keep], y1[keep], x2[keep], y2[keep], cls[keep],
                                                          score[keep], case.network))

    def strategy(self, params: EfficientNmsParams):
        return _cases(params)

    def bench_case(self, params: EfficientNmsParams, density: float, rng) -> ParserCase:
        rows = params.max_output_boxes
        kept = max(1, int(round(density * rows)))
        scale = np.float32(1.0) if params.coords == "normalized" else np.float32(min(params.input_width,
                                                                                   params.input_height))
        corners = rng.uniform(0, 0.8, (rows, 2)).astype(np.float32)
        boxes = np.concatenate([corners, corners + rng.uniform(0.01, 0.2, (rows, 2)).astype(np.float32)], axis=1) * scale
        scores = np.where(np.arange(rows) < kept, rng.uniform(0.3, 1.0, rows), 0).astype(np.float32)
        classes = np.where(np.arange(rows) < kept, rng.integers(0, params.num_classes, rows), 0).astype(np.int32)
        layers = (Layer(params.count_name, np.array([kept], np.int32)), Layer(params.boxes_name, boxes.astype(np.float32)),
                  Layer(params.scores_name, scores), Layer(params.classes_name, classes))
        return ParserCase(layers, NetworkInfo(params.input_width, params.input_height),
                          DetectionParams.uniform(params.num_classes, 0.25))

    def explain(self, case: ParserCase, params: EfficientNmsParams) -> list[dict[str, Any]]:
        found = self._find(case, params)
        if any(layer is None for layer in found.values()):
            return []
        try:
            with np.errstate(all="ignore"):
                raw = ref.first_int32(found["count"])
                box, score = ref.layer_view(found["boxes"]), ref.layer_view(found["scores"])
                ids = np.ascontiguousarray(found["classes"].data).view(np.int32).reshape(-1)
            names = ("y1", "x1", "y2", "x2") if params.box_order == "yxyx" else ("x1", "y1", "x2", "y2")
            return [{"row": i, **{n: float(v) for n, v in zip(names, b)}, "score": float(s), "class": int(c),
                     "counted": "yes" if i < raw else "no"}
                    for i, (b, s, c) in enumerate(zip(box[:16], score, ids))]
        except (ValueError, IndexError, TypeError):
            return []


@st.composite
def _int_class_id(draw, params: EfficientNmsParams) -> int:
    kind = draw(st.sampled_from(["valid", "valid", "valid", "valid", "negative", "too-large", "background"]))
    if kind == "valid":
        return draw(st.integers(0, params.num_classes - 1))
    if kind == "negative":
        return draw(st.sampled_from([-1, -2**31]))
    if kind == "too-large":
        return draw(st.one_of(st.integers(params.num_classes, params.num_classes + 5), st.just(2**31 - 1)))
    return params.background_class if params.background_class >= 0 else 0


@st.composite
def _row(draw, params: EfficientNmsParams, det, network: NetworkInfo):
    x1, y1, x2, y2 = draw(corner_box(network))
    if params.coords == "normalized":
        with np.errstate(all="ignore"):
            x1, x2 = (float(np.float32(v) / np.float32(network.width)) for v in (x1, x2))
            y1, y2 = (float(np.float32(v) / np.float32(network.height)) for v in (y1, y2))
    box = (y1, x1, y2, x2) if params.box_order == "yxyx" else (x1, y1, x2, y2)
    cls = draw(_int_class_id(params))
    return box, draw(plain_score(det, float(cls))), cls


@st.composite
def _cases(draw, params: EfficientNmsParams, max_rows: int = 24) -> ParserCase:
    network = draw(networks)
    det = draw(detection_params(params.num_classes))
    rows = draw(st.lists(_row(params, det, network), min_size=0, max_size=max_rows))
    k = draw(st.integers(max(1, len(rows)), max(1, len(rows)) + 4))  # K >= valid rows: the rest is padding
    boxes = np.zeros((k, 4), np.float32)
    scores = np.zeros(k, np.float32)
    classes = np.zeros(k, np.int32)  # padding rows: zeros (class 0!), only num_detections tells them apart
    for i, (box, score, cls) in enumerate(rows):
        boxes[i], scores[i], classes[i] = box, score, cls
    if draw(st.booleans()):  # garbage past num_detections must never be read as objects
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        start = len(rows)
        boxes[start:] = rng.uniform(0, 1, (k - start, 4)) * (1 if params.coords == "normalized" else 300)
        boxes[start:, 2:] += boxes[start:, :2]
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
    naming = draw(st.sampled_from(["own", "own", "standard", "renamed"]))
    if naming == "own":
        names = [params.count_name, params.boxes_name, params.scores_name, params.classes_name]
    elif naming == "standard":
        names = [KNOWN_NAMES[r][0] for r in ROLES]
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
    register(EfficientNms())
