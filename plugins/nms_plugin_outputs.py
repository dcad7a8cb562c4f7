"""The outputs of TensorRT's NMS plugins: EfficientNMS_TRT, BatchedNMS(Dynamic)_TRT and NMS_TRT.

The engine has already run NMS; the parser only reads the rows the plugin kept. One class,
``NmsPluginOutputs``, reads all three; it is registered once per plugin with an ``NmsVariant`` that
says what differs (names, op types, class id type, layout, node attributes, defaults):

- ``efficientnms`` (EfficientNMS_TRT: TAO EfficientDet, YOLO exports ending in the plugin), four outputs:
  ``num_detections`` [B, 1] INT32 (rows that hold detections), ``detection_boxes`` [B, K, 4] FLOAT/HALF
  box corners in the axis order and the space of the boxes that went in (TAO EfficientDet: y1, x1, y2, x2
  in network pixels, as deepstream_tao_apps' NvDsInferParseCustomEfficientDetTAO reads them; YOLO
  exports: x1, y1, x2, y2 pixels), ``detection_scores`` [B, K], ``detection_classes`` [B, K] INT32.
  Padding rows are zeros (class 0). K is the node's ``max_output_boxes``. No attribute says the axis
  order or whether coordinates are normalized (box_coding describes the INPUT boxes): -O box_order /
  -O coords, defaults from the alias, and a model whose image input is TAO EfficientDet's
  ``image_arrays:0`` is taken as y1 x1 y2 x2 pixels. The background_class attribute (-1: none) drops
  that class.
- ``tao-batched-nms`` (BatchedNMS_TRT / BatchedNMSDynamic_TRT: TAO YOLOv3/v4/v4-tiny/v5), four outputs:
  ``num_detections`` [B, 1] INT32, ``nmsed_boxes`` [B, K, 4] x1, y1, x2, y2 normalized
  (``isNormalized=1``, TAO YOLOv3/v4) or pixels (``isNormalized=0``, TAO's YOLOv5 sample),
  ``nmsed_scores`` [B, K], ``nmsed_classes`` [B, K] FLOAT class ids (padding: class -1, score 0). TAO's
  exporter names the node ``BatchedNMS_N`` and its outputs ``BatchedNMS``, ``BatchedNMS_1..3``, with
  numClasses and keepTopK (= nms_config.top_k, 200 in TAO's specs). Both name sets are looked for.
- ``ssd-nms`` (NMS_TRT, DetectionOutput: TAO SSD, DSSD, RetinaNet, FasterRCNN), two outputs: the
  detections [B, 1, K, 7] (nvinfer dims [1, K, 7]) of records ``image_id, label, confidence, xmin, ymin,
  xmax, ymax`` with corners normalized (padding: label -1), and the keep count [B, 1, 1, 1] INT32.
  TAO's exporters name the node ``NMS``, so the outputs are ``NMS`` and ``NMS_1``; K is keepTopK. TAO
  SSD sets backgroundLabelId=0 and numClasses = classes + 1: the label is kept as the class id (as
  deepstream_tao_apps' NvDsInferParseCustomNMSTLT does, num-detected-classes=5 for four KITTI classes),
  so the class count includes the background, labels.txt starts with it, and a row carrying the
  background label is dropped. ``-O background=none``: every label is a class.

Outputs are found from the plugin node's output order (names first when all are known), else by
name, else by shape. The parser finds its layers by name, else by type and shape (the head comment of
the generated source says how). The two FLOAT-classes [K] layers of BatchedNMS cannot be told apart by
shape: the first is the scores. With INT32 classes the count is told apart by its single element.

onnxruntime cannot run the plugin nodes, so recognition only reads names, shapes, op types and the
nodes' attributes. This module imports neither NumPy nor Hypothesis: the reference decoder, strategy,
bench input and ``explain`` live in ``nms_plugin_outputs_reference.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Mapping

import dsparsers
from dsparsers import Architecture, ConfigDefaults, GenerateOptions, HeadParams, Match, RoleNames, UsageError

if TYPE_CHECKING:
    from dsparsers import ModelInfo, NodeInfo, ParseOutcome, ParserCase, TensorInfo

RECORD = 7  # NMS_TRT records: image_id, label, confidence, xmin, ymin, xmax, ymax
BOX_ORDERS = {"xyxy": "x1 y1 x2 y2", "yxyx": "y1 x1 y2 x2 (TensorFlow order: TAO EfficientDet)"}
COORDS = ("pixels", "normalized")
TAO_INPUT = (960, 544)  # infer-dims=3;544;960 of deepstream_tao_apps' TAO samples
TAO_OFFSETS = (103.939, 116.779, 123.68)

#: the names each output goes by (the plugin's documentation first, then TAO's exporters)
EFFICIENT_NAMES = {"count": ("num_detections",), "boxes": ("detection_boxes",), "scores": ("detection_scores",),
                   "classes": ("detection_classes",)}
BATCHED_NAMES = {"count": ("num_detections", "BatchedNMS"), "boxes": ("nmsed_boxes", "BatchedNMS_1"),
                 "scores": ("nmsed_scores", "BatchedNMS_2"), "classes": ("nmsed_classes", "BatchedNMS_3")}
SSD_NAMES = {"detections": ("NMS",), "count": ("NMS_1",)}


# -- what a generated parser is specialised for (the fields dsparsers.json records) ------------------
@dataclass(frozen=True)
class EfficientNmsParams(RoleNames, HeadParams):
    box_order: str = "yxyx"
    coords: str = "pixels"
    background_class: int = -1
    max_output_boxes: int = 100  # max_output_boxes of the EfficientDet samples (TensorRT's and TAO's)
    count_name: str = "num_detections"
    boxes_name: str = "detection_boxes"
    scores_name: str = "detection_scores"
    classes_name: str = "detection_classes"

    known_names = EFFICIENT_NAMES


@dataclass(frozen=True)
class BatchedNmsParams(RoleNames, HeadParams):
    coords: str = "normalized"
    keep_top_k: int = 200  # TAO's nms_config.top_k in its sample specs; the plugin's keepTopK
    count_name: str = "num_detections"
    boxes_name: str = "nmsed_boxes"
    scores_name: str = "nmsed_scores"
    classes_name: str = "nmsed_classes"

    known_names = BATCHED_NAMES


@dataclass(frozen=True)
class SsdNmsParams(RoleNames, HeadParams):
    #: the label the plugin reserves for the background (backgroundLabelId), -1 for none
    background: int = 0
    keep_top_k: int = 200  # keepTopK = nms_config.max_total_detections in TAO's SSD sample specs
    detections_name: str = "NMS"
    count_name: str = "NMS_1"

    known_names = SSD_NAMES


# -- what differs between the plugins ---------------------------------------------------------------
@dataclass(frozen=True)
class AliasProfile:
    """Defaults of the exports some aliases name, where they differ from the variant's own."""

    aliases: tuple[str, ...]
    box_order: str | None = None
    coords: str | None = None  # model-less generation only: with a model, its node (or the variant) decides
    input_size: tuple[int, int] | None = None
    config: tuple[tuple[str, Any], ...] = ()  # ConfigDefaults fields replaced


@dataclass(frozen=True)
class MarkerInput:
    """An image input whose name identifies the exporter, and with it the box order and space."""

    name: str
    box_order: str
    coords: str
    exporter: str  # "TAO EfficientDet"


@dataclass(frozen=True)
class NmsVariant:
    name: str
    aliases: tuple[str, ...]
    summary: str
    head: str
    options: Mapping[str, str] = field(hash=False)
    config_defaults: ConfigDefaults
    params_type: type[HeadParams]
    nms_ops: tuple[str, ...]
    plugin: str  # "EfficientNMS": how messages name the plugin
    roles: tuple[str, ...]
    known_names: Mapping[str, tuple[str, ...]] = field(hash=False)
    #: NMS_TRT's [1, K, 7] records plus a keep count; else four outputs (count, boxes, scores, classes)
    records: bool
    #: class ids as INT32 (EfficientNMS); else as floats
    int_classes: bool
    outputs_text: str  # the match reason: what the outputs are
    named_text: str  # the match reason when names alone identify them
    expected_text: str  # the error when the outputs are not there
    node_attrs: tuple[str, ...]  # attributes quoted in the match reason
    keep_attr: str
    keep_field: str
    default_keep: int
    classes_attr: str | None  # None: the class count is not in the node
    classes_note: str = ""
    background_attr: str | None = None
    background_field: str | None = None
    default_background: int = -1
    #: labels.txt keeps the background's line (its label counts among the classes)
    background_labels: bool = False
    normalized_attr: str | None = None
    box_order: str = "xyxy"
    coords: str = "normalized"
    default_classes: int = 80
    input_size: tuple[int, int] = TAO_INPUT
    #: the image input may be NHWC (TAO EfficientDet's image_arrays:0 [B, H, W, 3])
    nhwc_input: bool = False
    marker: MarkerInput | None = None
    profiles: tuple[AliasProfile, ...] = ()


EFFICIENTNMS = NmsVariant(
    name="efficientnms",
    aliases=("efficientdet", "tao-efficientdet", "efficient-nms", "yolo-efficientnms"),
    summary=("TensorRT EfficientNMS_TRT outputs (TAO EfficientDet, YOLO exports ending in the plugin): "
             "NMS already done in the engine"),
    head=("num_detections [B, 1] int32, detection_boxes [B, K, 4] y1 x1 y2 x2 or x1 y1 x2 y2 (pixels or "
          "normalized), detection_scores [B, K], detection_classes [B, K] int32"),
    options={
        "box_order": "yxyx (TAO EfficientDet, the default) or xyxy (YOLO exports; --arch yolo-efficientnms): "
                     "EfficientNMS_TRT keeps the order of the boxes that went in and has no attribute saying it",
        "coords": "pixels (default) or normalized (0..1, scaled by the network size)",
    },
    # deepstream_tao_apps configs/nvinfer/efficientdet_tao/pgie_d0_tao_config.txt: net-scale-factor=1.0,
    # offsets=0;0;0, model-color-format=0 (RGB), network-input-order=1 (NHWC), maintain-aspect-ratio=1 (no
    # symmetric-padding line), infer-dims=3;544;960, cluster-mode=4.
    config_defaults=ConfigDefaults(
        cluster_mode=4,
        why_cluster_mode="none: the engine's EfficientNMS plugin already ran NMS and kept the top max_output_boxes "
                         "boxes; clustering them again would only drop or merge real objects",
        why_preprocessing="TAO EfficientDet (deepstream_tao_apps): RGB 0-255, letterbox top-left; NHWC input "
                          "(network-input-order=1); --arch yolo-efficientnms writes its own",
        net_scale_factor=1.0, offsets=None, model_color_format=0, maintain_aspect_ratio=True,
        symmetric_padding=False, pre_cluster_threshold=0.25, nms_iou_threshold=0.5, topk=100),
    params_type=EfficientNmsParams,
    nms_ops=("EfficientNMS_TRT",),
    plugin="EfficientNMS",
    roles=("count", "boxes", "scores", "classes"),
    known_names=EFFICIENT_NAMES,
    records=False,
    int_classes=True,
    outputs_text="the four outputs of TensorRT's EfficientNMS plugin (int32 classes; TAO EfficientDet)",
    named_text="named as the plugin names them",
    expected_text=("the four EfficientNMS outputs (num_detections [B, 1] int32, detection_boxes [B, K, 4], "
                   "detection_scores [B, K], detection_classes [B, K] int32)"),
    node_attrs=("max_output_boxes", "background_class", "box_coding", "class_agnostic"),
    keep_attr="max_output_boxes",
    keep_field="max_output_boxes",
    default_keep=100,
    classes_attr=None,
    background_attr="background_class",
    background_field="background_class",
    box_order="yxyx",
    coords="pixels",
    input_size=TAO_INPUT,  # TAO EfficientDet: infer-dims=3;544;960
    nhwc_input=True,
    marker=MarkerInput("image_arrays:0", "yxyx", "pixels", "TAO EfficientDet"),  # its uff-input-blob-name
    profiles=(AliasProfile(("yolo-efficientnms",), box_order="xyxy", coords="pixels", input_size=(640, 640),
                           config=(("net_scale_factor", 1.0 / 255.0), ("offsets", None), ("symmetric_padding", True),
                                   ("why_preprocessing", "YOLO exports ending in EfficientNMS: RGB, 1/255, "
                                                         "letterbox centred"))),),
)

TAO_BATCHED_NMS = NmsVariant(
    name="tao-batched-nms",
    aliases=("tao-yolov3", "tao-yolov4", "tao-yolov4-tiny", "tao-yolov5", "batched-nms", "batchednms"),
    summary="TensorRT BatchedNMS(Dynamic)_TRT outputs (TAO YOLOv3/v4/v4-tiny/v5): NMS already done in the engine",
    head=("num_detections [B, 1] int32, nmsed_boxes [B, K, 4] xyxy (normalized or pixels), "
          "nmsed_scores [B, K], nmsed_classes [B, K] float"),
    options={
        "coords": "normalized (TAO YOLOv3/v4, isNormalized=1) or pixels (isNormalized=0, TAO YOLOv5); "
                  "read from the NMS node when the model has one",
    },
    # deepstream_tao_apps configs/nvinfer/yolov3_tao and yolov4_tao (pgie_yolov*_tao_config.txt):
    # net-scale-factor=1.0, offsets=103.939;116.779;123.68, model-color-format=1 (BGR),
    # maintain-aspect-ratio=1 (no symmetric-padding line), pre-cluster-threshold=0.3.
    config_defaults=ConfigDefaults(
        cluster_mode=4,
        why_cluster_mode="none: the engine's BatchedNMS plugin already ran per-class NMS and kept the top "
                         "keepTopK boxes; clustering them again would only drop or merge real objects",
        why_preprocessing="TAO YOLOv3/v4 (deepstream_tao_apps): BGR, mean offsets, no scaling, letterbox "
                          "top-left; --arch tao-yolov5 writes its own",
        net_scale_factor=1.0, offsets=TAO_OFFSETS, model_color_format=1, maintain_aspect_ratio=True,
        symmetric_padding=False, pre_cluster_threshold=0.3, nms_iou_threshold=0.5, topk=200),
    params_type=BatchedNmsParams,
    nms_ops=("BatchedNMS_TRT", "BatchedNMSDynamic_TRT"),
    plugin="BatchedNMS",
    roles=("count", "boxes", "scores", "classes"),
    known_names=BATCHED_NAMES,
    records=False,
    int_classes=False,
    outputs_text="the four outputs of TensorRT's BatchedNMS plugin (TAO YOLOv3/v4/v4-tiny/v5)",
    named_text="named as the plugin names them",
    expected_text=("the four BatchedNMS outputs (num_detections [B, 1] int32, nmsed_boxes [B, K, 4], "
                   "nmsed_scores [B, K], nmsed_classes [B, K])"),
    node_attrs=("numClasses", "keepTopK", "isNormalized"),
    keep_attr="keepTopK",
    keep_field="keep_top_k",
    default_keep=200,
    classes_attr="numClasses",
    normalized_attr="isNormalized",
    coords="normalized",
    profiles=(AliasProfile(("tao-yolov5",), coords="pixels",  # TAO YOLOv5: RGB, 1/255, pixel coordinates
                           config=(("net_scale_factor", 1.0 / 255.0), ("offsets", None), ("model_color_format", 0),
                                   ("why_preprocessing", "TAO YOLOv5: RGB, 1/255, letterbox top-left"))),),
)

SSD_NMS = NmsVariant(
    name="ssd-nms",
    aliases=("tao-ssd", "tao-dssd", "tao-retinanet", "tao-fasterrcnn", "ssd", "dssd", "retinanet", "nms-trt"),
    summary=("TensorRT NMS_TRT (DetectionOutput) outputs (TAO SSD, DSSD, RetinaNet, FasterRCNN): "
             "NMS already done in the engine"),
    head=("NMS [B, 1, K, 7]: image_id, label, confidence, x1 y1 x2 y2 (normalized); "
          "NMS_1 keep count [B, 1, 1, 1] int32"),
    options={
        "background": "the label reserved for the background (TAO: 0, labels 1..C are the classes and the class "
                      "count includes it) or none; read from the NMS_TRT node's backgroundLabelId when present",
    },
    # deepstream_tao_apps configs/nvinfer/{ssd,dssd,retinanet,frcnn}_tao/pgie_*_tao_config.txt:
    # net-scale-factor=1.0, offsets=103.939;116.779;123.68, model-color-format=1 (BGR),
    # maintain-aspect-ratio=0 (ssd, retinanet), infer-dims=3;544;960, pre-cluster-threshold=0.3
    # (0.6 for FasterRCNN), no cluster-mode line.
    config_defaults=ConfigDefaults(
        cluster_mode=4,
        why_cluster_mode="none: the engine's NMS_TRT plugin already ran per-class NMS and kept the top keepTopK "
                         "boxes; clustering them again would only drop or merge real objects",
        why_preprocessing="TAO SSD/DSSD/RetinaNet/FasterRCNN (deepstream_tao_apps): BGR, mean offsets, no scaling, "
                          "stretched to the network (maintain-aspect-ratio=0)",
        net_scale_factor=1.0, offsets=TAO_OFFSETS, model_color_format=1, maintain_aspect_ratio=False,
        symmetric_padding=False, pre_cluster_threshold=0.3, nms_iou_threshold=0.5, topk=200),
    params_type=SsdNmsParams,
    nms_ops=("NMS_TRT",),
    plugin="NMS_TRT",
    roles=("detections", "count"),
    known_names=SSD_NAMES,
    records=True,
    int_classes=False,
    outputs_text=("the two outputs of TensorRT's NMS_TRT plugin ([B, 1, K, 7] records image_id, label, confidence, "
                  "x1 y1 x2 y2 and a keep count; TAO SSD/DSSD/RetinaNet/FasterRCNN)"),
    named_text="named as TAO's exporters name them",
    expected_text="the two NMS_TRT outputs (NMS [B, 1, K, 7] records and NMS_1 [B, 1, 1, 1] int32 keep count)",
    node_attrs=("numClasses", "keepTopK", "backgroundLabelId", "isNormalized"),
    keep_attr="keepTopK",
    keep_field="keep_top_k",
    default_keep=200,
    classes_attr="numClasses",
    classes_note=" (background included when the model has one)",
    background_attr="backgroundLabelId",
    background_field="background",
    default_background=0,
    background_labels=True,
    normalized_attr="isNormalized",
    coords="normalized",
    default_classes=5,  # deepstream_tao_apps' TAO SSD/DSSD/RetinaNet/FasterRCNN: 4 KITTI classes + background
)

VARIANTS = (EFFICIENTNMS, TAO_BATCHED_NMS, SSD_NMS)


class NmsPluginOutputs(Architecture):
    """The outputs of a TensorRT NMS plugin, as ``variant`` describes them."""

    template = "nms_plugin_outputs.cpp.j2"

    def __init__(self, variant: NmsVariant):
        self.variant = variant
        self.name = variant.name
        self.aliases = variant.aliases
        self.summary = variant.summary
        self.head = variant.head
        self.options = dict(variant.options)
        self.params_type = variant.params_type
        self.config_defaults = variant.config_defaults

    def _profile(self, requested_as: str | None) -> AliasProfile:
        return next((p for p in self.variant.profiles if (requested_as or "") in p.aliases), AliasProfile(()))

    def defaults_for(self, requested_as):
        profile = self._profile(requested_as)
        return replace(self.config_defaults, **dict(profile.config)) if profile.config else self.config_defaults

    # -- recognising the head ---------------------------------------------------------------
    def _node(self, model: ModelInfo) -> NodeInfo | None:
        return model.output_node(self.variant.nms_ops)

    def _roles(self, model: ModelInfo) -> dict[str, TensorInfo] | None:
        """role -> output tensor: the node's outputs (by name when every name is known, else in plugin output
        order), else names, else shapes."""
        v = self.variant
        outputs = {t.name: t for t in model.outputs}
        by_name = {}
        for role in v.roles:
            found = next((t for t in model.outputs if t.name in v.known_names[role]), None)
            if found is not None:
                by_name[role] = found
        named = len(by_name) == len(v.roles) and (not v.records or _is_records(by_name["detections"]))
        node = self._node(model)
        if node is not None:
            # producers is filled node output by node output, so this is the plugin's output order
            ordered = [outputs[name] for name, n in model.producers.items() if n is node and name in outputs]
            if len(ordered) == len(v.roles):
                return by_name if named else dict(zip(v.roles, ordered))
        if named:
            return by_name
        if len(outputs) != len(v.roles):
            return None
        if v.records:
            records = [t for t in model.outputs if _is_records(t)]
            counts = [t for t in model.outputs if _is_count(t) and t.dtype == "int32"]
            if len(records) == 1 and len(counts) == 1:
                return {"detections": records[0], "count": counts[0]}
            return None
        # [B, 1] int32, [B, K, 4] float, [B, K] float scores and [B, K] classes (int32, or float after the scores)
        ints = [t for t in model.outputs if t.rank == 2 and t.dtype == "int32"]
        boxes = [t for t in model.outputs if t.rank == 3 and t.dim(2) == 4 and t.dtype.startswith("float")]
        flat = [t for t in model.outputs if t.rank == 2 and t.dtype.startswith("float")]
        if v.int_classes:
            counts = [t for t in ints if t.dim(1) == 1]
            if len(ints) == 2 and counts and len(boxes) == 1 and len(flat) == 1:
                classes = next(t for t in ints if t is not counts[0])
                return {"count": counts[0], "boxes": boxes[0], "scores": flat[0], "classes": classes}
        elif len(ints) == 1 and len(boxes) == 1 and len(flat) == 2:
            return {"count": ints[0], "boxes": boxes[0], "scores": flat[0], "classes": flat[1]}
        return None

    def _image_input(self, model: ModelInfo) -> TensorInfo | None:
        return next((t for t in model.inputs if t.rank == 4), None)

    def _marked(self, model: ModelInfo) -> TensorInfo | None:
        """The image input when its name identifies the exporter (variant.marker)."""
        image = self._image_input(model)
        marker = self.variant.marker
        return image if marker is not None and image is not None and image.name == marker.name else None

    def match(self, model: ModelInfo) -> Match | None:
        v = self.variant
        roles = self._roles(model)
        if roles is None:
            return None
        node = self._node(model)
        if v.records:
            if node is None and not _is_records(roles["detections"]):
                return None
        else:
            boxes, scores, classes = roles["boxes"], roles["scores"], roles["classes"]
            if classes.dtype.startswith("float" if v.int_classes else "int"):
                return None  # the other four-output plugin: EfficientNMS writes int32 classes, BatchedNMS floats
            if boxes.rank != 3 or boxes.dim(2) != 4 or scores.rank != 2 or classes.rank != 2:
                return None
        why = [", ".join(f"{t.name} {t.shape_text()} {t.dtype}" for t in roles.values()) + ": " + v.outputs_text]
        score = 0.6
        if node is not None:
            score = 0.95
            attrs = node.attributes
            details = [f"domain {node.domain or 'default'!r}"]
            for key in v.node_attrs:
                if key in attrs:
                    coords = _coords_of(node, key) if key == v.normalized_attr and "coords" in v.options else None
                    details.append(f"{key}={attrs[key]}" + (f" -> {coords} coordinates" if coords else ""))
            article = "an" if node.op_type[:1] in "AEIOU" else "a"
            why.append(f"produced by {article} {node.op_type} node ({', '.join(details)})")
            if v.records and roles["detections"].rank and not _is_records(roles["detections"]):
                score -= 0.3
                why.append(f"but {roles['detections'].name} is not [B, 1, K, {RECORD}]")
        elif all(t.name in v.known_names[r] for r, t in roles.items()):
            score = 0.8
            why.append(v.named_text)
        marked = self._marked(model)
        if marked is not None:
            why.append(f"input {marked.name} {marked.shape_text()}: {v.marker.exporter} (boxes "
                       f"{_order_text(v.marker.box_order)} in {v.marker.coords})")
        wrong = [roles[r] for r in (("count", "classes") if v.int_classes else ("count",)) if roles[r].dtype != "int32"]
        if wrong:
            score -= 0.3
            why.append("but " + " and ".join(f"{t.name} is {t.dtype}" for t in wrong) + ", not int32")
        if not v.records:
            k = roles["boxes"].dim(1)
            if k is not None and any(roles[r].dim(1) not in (None, k) for r in ("scores", "classes")):
                return Match(0.0, why[0] + "; but K differs between boxes, scores and classes")
        return Match(round(max(0.0, min(score, 1.0)), 2), "; ".join(why))

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> HeadParams:
        v = self.variant
        options.check_extra(self)
        order = _choice(options, "box_order", tuple(BOX_ORDERS))
        coords = _choice(options, "coords", (v.coords,) + tuple(c for c in COORDS if c != v.coords))
        background = _background_option(options)
        profile = self._profile(options.requested_as)
        alias_order = profile.box_order or v.box_order
        alias_size = profile.input_size or v.input_size
        if model is None:
            num_classes = options.num_classes or v.default_classes
            background = v.default_background if background is None else background
            return self._params(num_classes, options.input_size or alias_size, None, order or alias_order,
                                coords or profile.coords or v.coords, background, v.default_keep, None)
        roles = self._roles(model)
        if roles is None:
            listed = ", ".join(f"{t.name} {t.shape_text()} {t.dtype}" for t in model.outputs)
            raise UsageError(f"{model.path}: expected {v.expected_text}; found {listed}")
        node = self._node(model)
        attrs = node.attributes if node is not None else {}
        model_coords = v.coords
        marked = self._marked(model)
        if marked is not None:
            if order is not None and order != v.marker.box_order:
                raise UsageError(f"-O box_order={order}: the model's input {marked.name} is {v.marker.exporter}'s, "
                                 f"whose boxes are {_order_text(v.marker.box_order)}")
            alias_order, model_coords = v.marker.box_order, v.marker.coords
        from_node = _coords_of(node, v.normalized_attr)
        if from_node is not None and "coords" in v.options:
            if coords and coords != from_node:
                raise UsageError(f"-O coords={coords}: the model's {node.op_type} node has "
                                 f"{v.normalized_attr}={attrs.get(v.normalized_attr)} ({from_node} coordinates)")
            model_coords = from_node
        elif from_node is not None and from_node != v.coords:
            raise UsageError(f"{model.path}: the {node.op_type} node has {v.normalized_attr}="
                             f"{attrs.get(v.normalized_attr)}; this parser reads the {v.coords} coordinates TAO's "
                             f"exporters produce ({v.normalized_attr}={int(v.coords == 'normalized')})")
        bg_node = _background_of(node, v.background_attr)
        if background is not None and bg_node is not None and background != bg_node:
            raise UsageError(f"-O background={options.extra['background']}: the model's {node.op_type} node has "
                             f"{v.background_attr}={attrs.get(v.background_attr)}")
        background = bg_node if bg_node is not None else (v.default_background if background is None else background)
        from_attr = attrs.get(v.classes_attr) if v.classes_attr else None
        num_classes = from_attr if isinstance(from_attr, int) else None
        if options.num_classes and num_classes and options.num_classes != num_classes:
            raise UsageError(f"--classes {options.num_classes}: the model's {node.op_type} node has "
                             f"{v.classes_attr}={num_classes}{v.classes_note}")
        names = model.class_names
        num_classes = num_classes or options.num_classes or (len(names) if names else None)
        if not num_classes:
            where = (f"no {'/'.join(v.nms_ops)} node with {v.classes_attr}" if v.classes_attr else
                     f"{'/'.join(v.nms_ops)} has no class-count attribute")
            raise UsageError(f"{model.path}: the class count is not in the graph ({where}): "
                             f"pass --classes{v.classes_note}")
        keep = attrs.get(v.keep_attr)
        keep = keep if isinstance(keep, int) and keep > 0 else None
        keep = keep or self._rows(roles) or v.default_keep
        image_size = _nhwc_size(self._image_input(model)) if v.nhwc_input else None
        size = image_size or model.input_size or options.input_size or alias_size
        return self._params(num_classes, size, names, order or alias_order, coords or model_coords, background, keep,
                            {role: t.name for role, t in roles.items()})

    def _rows(self, roles: dict[str, TensorInfo]) -> int | None:
        """K, when the graph fixes it."""
        if self.variant.records:
            det = roles["detections"]
            return det.dim(2) if det.rank == 4 else None
        boxes = roles["boxes"]
        return boxes.dim(1) if boxes.rank >= 2 else None

    def _params(self, num_classes, size, names, box_order, coords, background, keep, role_names) -> HeadParams:
        v = self.variant
        values = {"box_order": box_order, "coords": coords, v.keep_field: keep}
        if v.background_field:
            values[v.background_field] = background
        values.update({f"{role}_name": name for role, name in (role_names or {}).items()})
        known = {f.name for f in fields(v.params_type)}
        labels = _names(names, num_classes, background if v.background_labels else -1)
        return v.params_type(num_classes, size[0], size[1], labels, **{k: x for k, x in values.items() if k in known})

    def head_settings(self, params: HeadParams) -> tuple[str, str, int, int]:
        """(box order, coords, background label (-1: none), K) of params, whichever variant made them."""
        v = self.variant
        background = getattr(params, v.background_field) if v.background_field else -1
        return (getattr(params, "box_order", "xyxy"), getattr(params, "coords", v.coords), background,
                getattr(params, v.keep_field))

    def describe(self, params: HeadParams) -> str:
        v = self.variant
        order, coords, background, k = self.head_settings(params)
        size = f"{params.input_width}x{params.input_height} input"
        if v.records:
            bg = f"label {background} is the background" if background >= 0 else "no background label"
            return (f"{params.detections_name} [1, {k}, 7] image_id label confidence x1 y1 x2 y2 normalized, "
                    f"{params.count_name} [1, 1, 1] int32, {params.num_classes} classes ({bg}), {size}")
        order_text = _order_text(order) if "box_order" in v.options else order
        bg = f", background class {background} dropped" if background >= 0 else ""
        classes_type = " int32" if v.int_classes else ""
        return (f"{params.count_name} [1] int32, {params.boxes_name} [{k}, 4] {order_text} {coords}, "
                f"{params.scores_name} [{k}], {params.classes_name} [{k}]{classes_type}, "
                f"{params.num_classes} classes{bg}, {size}")

    # -- generation -------------------------------------------------------------------------
    def template_context(self, params: HeadParams) -> dict[str, Any]:
        v = self.variant
        order, coords, background, _ = self.head_settings(params)
        return {"num_classes": params.num_classes, "records": v.records, "int_classes": v.int_classes,
                "yxyx": order == "yxyx", "normalized": coords == "normalized", "background": background,
                "plugin_ops": " / ".join(v.nms_ops), "roles": list(v.roles),
                "names": {role: list(params.names(role)) for role in v.roles}}

    # -- verification (NumPy and Hypothesis: nms_plugin_outputs_reference) -------------------
    def reference(self, case: ParserCase, params: HeadParams) -> ParseOutcome:
        from dsparsers.plugins import nms_plugin_outputs_reference as verification

        return verification.reference(self, case, params)

    def strategy(self, params: HeadParams):
        from dsparsers.plugins import nms_plugin_outputs_reference as verification

        return verification.cases(self, params)

    def bench_case(self, params: HeadParams, density: float, rng) -> ParserCase:
        from dsparsers.plugins import nms_plugin_outputs_reference as verification

        return verification.bench_case(self, params, density, rng)

    def explain(self, case: ParserCase, params: HeadParams) -> list[dict[str, Any]]:
        from dsparsers.plugins import nms_plugin_outputs_reference as verification

        return verification.explain(self, case, params)


def _order_text(order: str) -> str:
    return "y1 x1 y2 x2" if order == "yxyx" else "x1 y1 x2 y2"


def _is_records(t: TensorInfo) -> bool:
    return t.rank == 4 and t.dim(3) == RECORD and t.dim(1) in (None, 1) and not t.dtype.startswith("int")


def _is_count(t: TensorInfo) -> bool:
    return t.rank == 4 and all(t.dim(i) in (None, 1) for i in (1, 2, 3)) and t.dim(3) != RECORD


def _nhwc_size(image: TensorInfo | None) -> tuple[int, int] | None:
    """(width, height) of an NHWC image input ([B, H, W, 3]); None for NCHW."""
    if image is not None and image.dim(3) in (1, 3) and image.dim(1) not in (1, 3) and image.dim(1) and image.dim(2):
        return (image.dim(2), image.dim(1))
    return None


def _coords_of(node: NodeInfo | None, attr: str | None) -> str | None:
    value = node.attributes.get(attr) if node is not None and attr else None
    if isinstance(value, int):
        return "normalized" if value else "pixels"
    return None


def _background_of(node: NodeInfo | None, attr: str | None) -> int | None:
    value = node.attributes.get(attr) if node is not None and attr else None
    return (value if value >= 0 else -1) if isinstance(value, int) else None


def _choice(options: GenerateOptions, key: str, allowed: tuple[str, ...]) -> str | None:
    value = options.extra.get(key)
    if value is not None and value not in allowed:
        raise UsageError(f"-O {key}={value}: expected one of {', '.join(allowed)}")
    return value


def _background_option(options: GenerateOptions) -> int | None:
    text = options.extra.get("background")
    if text is None:
        return None
    if text.strip().lower() in ("none", "-1"):
        return -1
    try:
        value = int(text)
    except ValueError:
        value = -2
    if value < 0:
        raise UsageError(f"-O background={text}: expected a label id (0 for TAO SSD) or none")
    return value


def _names(names, num_classes: int, background: int) -> tuple[str, ...] | None:
    if names and len(names) == num_classes:
        return tuple(names)
    if 0 <= background < num_classes:  # labels.txt: the background keeps its line, the rest class_<id>
        return tuple("background" if i == background else f"class_{i}" for i in range(background + 1))
    return None


@dsparsers.hookimpl
def register_architectures(register):
    for variant in VARIANTS:
        register(NmsPluginOutputs(variant))
