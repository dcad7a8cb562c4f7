"""TensorRT NMS_TRT (DetectionOutput) outputs: TAO SSD, DSSD, RetinaNet and FasterRCNN.

The plugin runs inside the engine and writes two outputs (plugin output order):

- the detections [B, 1, K, 7] FLOAT (nvinfer dims [1, K, 7]): one record per row,
  ``image_id, label, confidence, xmin, ymin, xmax, ymax``, corners normalized to 0..1 and saturated;
  rows past the keep count are padding (label -1);
- the keep count [B, 1, 1, 1] INT32 (nvinfer dims [1, 1, 1]): rows that hold detections.

TAO's exporters name the node ``NMS`` (op ``NMS_TRT``), so its outputs are ``NMS`` and ``NMS_1``
(deepstream_tao_apps' configs say output-blob-names=NMS). K is the node's keepTopK. TAO SSD sets
backgroundLabelId=0 and numClasses = classes + 1 ("add background"): the labels the plugin writes are
then 1..C for the real classes and never 0. dsparsers keeps the label as the class id, as
deepstream_tao_apps' NvDsInferParseCustomNMSTLT does (its configs say num-detected-classes=5 for four
KITTI classes plus background), so the class count is numClasses (background included), labels.txt
starts with the background, and a row that does carry the background label is dropped. With
``-O background=none`` every label is a class. Failing names, the detections are the first [1, K, 7]
layer and the count the first INT32 layer.

onnxruntime cannot run the plugin node, so recognition only reads names, shapes, op types and the
node's attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
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

NMS_OPS = ("NMS_TRT",)
ROLES = ("detections", "count")
#: the names each output goes by in TAO's exports (node "NMS": outputs NMS, NMS_1)
KNOWN_NAMES = {"detections": ("NMS",), "count": ("NMS_1",)}
RECORD = 7  # image_id, label, confidence, xmin, ymin, xmax, ymax
DEFAULT_KEEP_TOP_K = 200  # keepTopK = nms_config.max_total_detections in TAO's SSD sample specs
DEFAULT_CLASSES = 5  # deepstream_tao_apps' TAO SSD/DSSD/RetinaNet/FasterRCNN: 4 KITTI classes + background
DEFAULT_INPUT = (960, 544)  # infer-dims=3;544;960 in those samples


@dataclass(frozen=True)
class SsdNmsParams(RoleNames, HeadParams):
    #: the label the plugin reserves for the background (backgroundLabelId), -1 for none
    background: int = 0
    keep_top_k: int = DEFAULT_KEEP_TOP_K
    detections_name: str = "NMS"
    count_name: str = "NMS_1"

    known_names = KNOWN_NAMES


def _nms_node(model: ModelInfo) -> NodeInfo | None:
    return model.output_node(NMS_OPS)


def _is_records(t: TensorInfo) -> bool:
    return t.rank == 4 and t.dim(3) == RECORD and t.dim(1) in (None, 1) and not t.dtype.startswith("int")


def _is_count(t: TensorInfo) -> bool:
    return t.rank == 4 and all(t.dim(i) in (None, 1) for i in (1, 2, 3)) and t.dim(3) != RECORD


def _roles(model: ModelInfo) -> dict[str, TensorInfo] | None:
    """role -> output: the NMS node's outputs in plugin order, else names, else shapes."""
    outputs = {t.name: t for t in model.outputs}
    node = _nms_node(model)
    if node is not None:
        ordered = [outputs[name] for name, n in model.producers.items() if n is node and name in outputs]
        if len(ordered) == 2:
            return dict(zip(ROLES, ordered))
    by_name = {role: outputs[names[0]] for role, names in KNOWN_NAMES.items() if names[0] in outputs}
    if len(by_name) == 2 and _is_records(by_name["detections"]):
        return by_name
    records = [t for t in model.outputs if _is_records(t)]
    counts = [t for t in model.outputs if _is_count(t) and t.dtype == "int32"]
    if len(model.outputs) == 2 and len(records) == 1 and len(counts) == 1:
        return {"detections": records[0], "count": counts[0]}
    return None


def _background_of(node: NodeInfo | None) -> int | None:
    value = node.attributes.get("backgroundLabelId") if node is not None else None
    return (value if value >= 0 else -1) if isinstance(value, int) else None


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


class SsdNms(Architecture):
    name = "ssd-nms"
    aliases = ("tao-ssd", "tao-dssd", "tao-retinanet", "tao-fasterrcnn", "ssd", "dssd", "retinanet", "nms-trt")
    summary = ("TensorRT NMS_TRT (DetectionOutput) outputs (TAO SSD, DSSD, RetinaNet, FasterRCNN): "
               "NMS already done in the engine")
    head = ("NMS [B, 1, K, 7]: image_id, label, confidence, x1 y1 x2 y2 (normalized); "
            "NMS_1 keep count [B, 1, 1, 1] int32")
    template = "ssd_nms.cpp.j2"
    options = {
        "background": "the label reserved for the background (TAO: 0, labels 1..C are the classes and the class "
                      "count includes it) or none; read from the NMS_TRT node's backgroundLabelId when present",
    }
    params_type = SsdNmsParams
    # deepstream_tao_apps configs/nvinfer/{ssd,dssd,retinanet,frcnn}_tao/pgie_*_tao_config.txt:
    # net-scale-factor=1.0, offsets=103.939;116.779;123.68, model-color-format=1 (BGR),
    # maintain-aspect-ratio=0 (ssd, retinanet), infer-dims=3;544;960, pre-cluster-threshold=0.3
    # (0.6 for FasterRCNN), no cluster-mode line.
    config_defaults = ConfigDefaults(
        cluster_mode=4,
        why_cluster_mode="none: the engine's NMS_TRT plugin already ran per-class NMS and kept the top keepTopK "
                         "boxes; clustering them again would only drop or merge real objects",
        why_preprocessing="TAO SSD/DSSD/RetinaNet/FasterRCNN (deepstream_tao_apps): BGR, mean offsets, no scaling, "
                          "stretched to the network (maintain-aspect-ratio=0)",
        net_scale_factor=1.0,
        offsets=(103.939, 116.779, 123.68),
        model_color_format=1,
        maintain_aspect_ratio=False,
        symmetric_padding=False,
        pre_cluster_threshold=0.3,
        nms_iou_threshold=0.5,
        topk=DEFAULT_KEEP_TOP_K,
    )

    # -- recognising the head ---------------------------------------------------------------
    def match(self, model: ModelInfo) -> Match | None:
        roles = _roles(model)
        if roles is None:
            return None
        det, count = roles["detections"], roles["count"]
        node = _nms_node(model)
        if node is None and not _is_records(det):
            return None
        why = [f"{det.name} {det.shape_text()} {det.dtype}, {count.name} {count.shape_text()} {count.dtype}: "
               "the two outputs of TensorRT's NMS_TRT plugin ([B, 1, K, 7] records image_id, label, confidence, "
               "x1 y1 x2 y2 and a keep count; TAO SSD/DSSD/RetinaNet/FasterRCNN)"]
        score = 0.6
        if node is not None:
            score = 0.95
            attrs = node.attributes
            details = [f"domain {node.domain or 'default'!r}"]
            details += [f"{key}={attrs[key]}" for key in ("numClasses", "keepTopK", "backgroundLabelId",
                                                           "isNormalized") if key in attrs]
            why.append(f"produced by a {node.op_type} node ({', '.join(details)})")
            if det.rank and not _is_records(det):
                score -= 0.3
                why.append(f"but {det.name} is not [B, 1, K, 7]")
        elif det.name in KNOWN_NAMES["detections"] and count.name in KNOWN_NAMES["count"]:
            score = 0.8
            why.append("named as TAO's exporters name them")
        if count.dtype != "int32":
            score -= 0.3
            why.append(f"but {count.name} is {count.dtype}, not int32")
        return Match(round(max(0.0, min(score, 1.0)), 2), "; ".join(why))

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> SsdNmsParams:
        options.check_extra(self)
        background = _background_option(options)
        if model is None:
            num_classes = options.num_classes or DEFAULT_CLASSES
            width, height = options.input_size or DEFAULT_INPUT
            background = 0 if background is None else background
            return SsdNmsParams(num_classes, width, height, _names(None, num_classes, background), background)
        roles = _roles(model)
        if roles is None:
            listed = ", ".join(f"{t.name} {t.shape_text()} {t.dtype}" for t in model.outputs)
            raise UsageError(f"{model.path}: expected the two NMS_TRT outputs (NMS [B, 1, K, 7] records and "
                             f"NMS_1 [B, 1, 1, 1] int32 keep count); found {listed}")
        node = _nms_node(model)
        attrs = node.attributes if node is not None else {}
        if attrs.get("isNormalized") == 0:
            raise UsageError(f"{model.path}: the {node.op_type} node has isNormalized=0; this parser reads the "
                             "normalized records TAO's exporters produce (isNormalized=1)")
        from_node = _background_of(node)
        if background is not None and from_node is not None and background != from_node:
            raise UsageError(f"-O background={options.extra['background']}: the model's {node.op_type} node has "
                             f"backgroundLabelId={attrs.get('backgroundLabelId')}")
        background = from_node if from_node is not None else (0 if background is None else background)
        num_classes = attrs.get("numClasses") if isinstance(attrs.get("numClasses"), int) else None
        if options.num_classes and num_classes and options.num_classes != num_classes:
            raise UsageError(f"--classes {options.num_classes}: the model's {node.op_type} node has "
                             f"numClasses={num_classes} (background included)")
        names = model.class_names
        num_classes = num_classes or options.num_classes or (len(names) if names else None)
        if not num_classes:
            raise UsageError(f"{model.path}: the class count is not in the graph (no NMS_TRT node with numClasses): "
                             "pass --classes (background included when the model has one)")
        keep = attrs.get("keepTopK") if isinstance(attrs.get("keepTopK"), int) and attrs.get("keepTopK") > 0 else None
        det = roles["detections"]
        keep = keep or (det.dim(2) if det.rank == 4 else None) or DEFAULT_KEEP_TOP_K
        size = model.input_size or options.input_size or DEFAULT_INPUT
        return SsdNmsParams(num_classes, size[0], size[1], _names(names, num_classes, background), background, keep,
                            det.name, roles["count"].name)

    def describe(self, params: SsdNmsParams) -> str:
        bg = f"label {params.background} is the background" if params.background >= 0 else "no background label"
        return (f"{params.detections_name} [1, {params.keep_top_k}, 7] image_id label confidence x1 y1 x2 y2 "
                f"normalized, {params.count_name} [1, 1, 1] int32, {params.num_classes} classes ({bg}), "
                f"{params.input_width}x{params.input_height} input")

    # -- generation -------------------------------------------------------------------------
    def template_context(self, params: SsdNmsParams) -> dict[str, Any]:
        return {"num_classes": params.num_classes, "background": params.background,
                "names": {role: list(params.names(role)) for role in ROLES}}

    # -- the reference ----------------------------------------------------------------------
    def reference(self, case: ParserCase, params: SsdNmsParams) -> ParseOutcome:
        with np.errstate(all="ignore"):
            return self._reference(case, params)

    def _find(self, case: ParserCase, params: SsdNmsParams) -> dict[str, Layer | None]:
        """Exactly the C++ lookup: every role by its names first, then by type and shape among the rest."""
        tests = {
            "detections": lambda l: len(l.reported_dims) == 3 and l.reported_dims[2] == RECORD,
            "count": lambda l: l.reported_type == DataType.INT32,
        }
        return ref.find_roles(case.layers, {role: params.names(role) for role in ROLES}, tests)

    def _reference(self, case: ParserCase, params: SsdNmsParams) -> ParseOutcome:
        found = self._find(case, params)
        if any(layer is None for layer in found.values()):
            return ParseOutcome.rejected("missing layer")
        det, count = found["detections"], found["count"]
        if count.reported_type != DataType.INT32 or ref.element_count(count.reported_dims) < 1:
            return ParseOutcome.rejected("bad count layer")
        dims = det.reported_dims
        if len(dims) != 3 or dims[0] != 1 or dims[2] != RECORD or dims[1] == 0 or ref.element_count(dims) == 0:
            return ParseOutcome.rejected(f"bad detections dims {dims}")
        if det.reported_type not in ref.FLOAT_TYPES:
            return ParseOutcome.rejected("unsupported data type")
        k = dims[1]
        n = min(max(ref.first_int32(count), 0), k)
        rows = ref.layer_view(det).reshape(k, RECORD)[:n]
        valid, cls = ref.class_ids_from_float(rows[:, 1], params.num_classes, case.params.num_classes_configured)
        if params.background >= 0:
            valid &= cls != params.background
        score = rows[:, 2]
        keep = valid & ref.passes_threshold(cls, score, case.params)
        x1, y1, x2, y2 = (rows[:, j] for j in range(3, 7))
        keep &= ref.all_finite(x1, y1, x2, y2)
        x1, y1, x2, y2 = ref.normalized_to_pixels(x1, y1, x2, y2, case.network)
        return ParseOutcome(True, ref.boxes_to_detections(x1[keep], y1[keep], x2[keep], y2[keep], cls[keep],
                                                          score[keep], case.network))

    def strategy(self, params: SsdNmsParams):
        return _cases(params)

    def bench_case(self, params: SsdNmsParams, density: float, rng) -> ParserCase:
        k = params.keep_top_k
        kept = max(1, int(round(density * k)))
        records = np.zeros((k, RECORD), np.float32)
        records[:, 1] = -1.0
        first = 1 if params.background == 0 else 0
        corners = rng.uniform(0, 0.8, (kept, 2)).astype(np.float32)
        records[:kept, 1] = rng.integers(first, max(first + 1, params.num_classes), kept)
        records[:kept, 2] = rng.uniform(0.3, 1.0, kept)
        records[:kept, 3:5] = corners
        records[:kept, 5:7] = corners + rng.uniform(0.01, 0.2, (kept, 2)).astype(np.float32)
        layers = (Layer(params.detections_name, records.reshape(1, k, RECORD)),
                  Layer(params.count_name, np.array([kept], np.int32).reshape(1, 1, 1)))
        return ParserCase(layers, NetworkInfo(params.input_width, params.input_height),
                          DetectionParams.uniform(params.num_classes, 0.25))

    def explain(self, case: ParserCase, params: SsdNmsParams) -> list[dict[str, Any]]:
        found = self._find(case, params)
        if any(layer is None for layer in found.values()):
            return []
        try:
            with np.errstate(all="ignore"):
                raw = ref.first_int32(found["count"])
                rows = ref.layer_view(found["detections"]).reshape(-1, RECORD)
            return [{"row": i, "image_id": float(r[0]), "label": float(r[1]), "confidence": float(r[2]),
                     "x1": float(r[3]), "y1": float(r[4]), "x2": float(r[5]), "y2": float(r[6]),
                     "counted": "yes" if i < raw else "no"} for i, r in enumerate(rows[:16])]
        except (ValueError, IndexError, TypeError):
            return []


def _names(names, num_classes: int, background: int) -> tuple[str, ...] | None:
    if names and len(names) == num_classes:
        return tuple(names)
    if 0 <= background < num_classes:  # labels.txt: the background keeps its line, the rest class_<id>
        return tuple("background" if i == background else f"class_{i}" for i in range(background + 1))
    return None


@st.composite
def _record(draw, params: SsdNmsParams, det, network: NetworkInfo):
    x1, y1, x2, y2 = draw(corner_box(network))
    with np.errstate(all="ignore"):
        x1, x2 = (float(np.float32(v) / np.float32(network.width)) for v in (x1, x2))
        y1, y2 = (float(np.float32(v) / np.float32(network.height)) for v in (y1, y2))
    labels = [float_class_id(params.num_classes)]
    if params.background >= 0:
        labels.append(st.just(float(params.background)))
    label = draw(st.one_of(*labels))
    return (x1, y1, x2, y2), draw(plain_score(det, label)), label


@st.composite
def _cases(draw, params: SsdNmsParams, max_rows: int = 24) -> ParserCase:
    network = draw(networks)
    det = draw(detection_params(params.num_classes))
    rows = draw(st.lists(_record(params, det, network), min_size=0, max_size=max_rows))
    k = draw(st.integers(max(1, len(rows)), max(1, len(rows)) + 4))  # K >= kept rows: the rest is padding
    records = np.zeros((k, RECORD), np.float32)
    records[:, 1] = -1.0  # padding: label -1, confidence 0, box 0
    for i, (box, score, label) in enumerate(rows):
        records[i, 1], records[i, 2], records[i, 3:7] = label, score, box
    records[:, 0] = draw(st.sampled_from([0.0, 1.0, -1.0]))  # image_id is never read
    if draw(st.booleans()):  # garbage past the keep count must never become objects
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        start = len(rows)
        records[start:, 1] = rng.integers(0, params.num_classes, k - start)
        records[start:, 2] = rng.uniform(0.5, 1, k - start)
        records[start:, 3:7] = rng.uniform(0, 1, (k - start, 4))
    count_kind = draw(st.sampled_from(["exact", "exact", "exact", "zero", "negative", "too-large"]))
    count = {"exact": len(rows), "zero": 0}.get(count_kind)
    if count_kind == "negative":
        count = draw(st.sampled_from([-1, -200, -(2**31)]))
    elif count_kind == "too-large":
        count = draw(st.sampled_from([k + 1, k + 100, 2**31 - 1]))
    with np.errstate(over="ignore"):
        records = records.astype(draw(st.sampled_from([np.float32, np.float16])))
    naming = draw(st.sampled_from(["own", "own", "tao", "renamed"]))
    if naming == "own":
        names = [params.detections_name, params.count_name]
    elif naming == "tao":
        names = [KNOWN_NAMES[r][0] for r in ROLES]
    else:
        names = ["engine_output_0", "engine_output_1"]
    layers = [Layer(names[0], records.reshape(1, k, RECORD)), Layer(names[1], np.array([count], np.int32).reshape(1, 1, 1))]
    if draw(st.booleans()):  # any binding order: by name, or by shape and type when renamed
        layers.reverse()
    return ParserCase(tuple(layers), network, det)


@dsparsers.hookimpl
def register_architectures(register):
    register(SsdNms())
