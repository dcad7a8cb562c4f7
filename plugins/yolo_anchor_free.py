"""Dense YOLO heads: one candidate per anchor point, cx cy w h in network pixels then scores.

- anchor-free (ultralytics YOLOv3u/v5u/v8/v9/YOLO11/YOLO12, original YOLOv9): ``output0`` [B, 4+C, N]
  (channel-major, as ultralytics exports it) or [B, N, 4+C]; C sigmoid scores, no objectness.
- anchor-based (original YOLOv5, YOLOv7, YOLOR, YOLOX decoded, original YOLOv6): [B, N, 5+C] with an
  objectness column; score = objectness x best class probability.

One detection per candidate: its best class. Both share the template yolo_dense_head.cpp.j2.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
from hypothesis import strategies as st

import dsparsers
from dsparsers.api import reference as ref
from dsparsers.api.architecture import Architecture, anchor_points, ConfigDefaults, GenerateOptions, HeadParams, Match
from dsparsers.emulation.datasets import COCO80
from dsparsers.errors import UsageError
from dsparsers.model.reader import ModelInfo
from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase
from dsparsers.verification.strategies import detection_params, f32, float_dtypes, networks, nonfinite, scored_candidates

BOX_CHANNELS = 4


@dataclass(frozen=True)
class DenseHeadParams(HeadParams):
    layout: str = "channels"
    output_name: str = "output0"
    num_candidates: int | None = None
    objectness: bool = False

    @property
    def score_offset(self) -> int:
        return BOX_CHANNELS + (1 if self.objectness else 0)

    @property
    def channels(self) -> int:
        return self.score_offset + self.num_classes




class DenseYoloHead(Architecture):
    """Shared by the anchor-free and anchor-based heads; subclasses set the class attributes."""

    objectness: ClassVar[bool] = False
    default_layout: ClassVar[str] = "channels"
    template = "yolo_dense_head.cpp.j2"
    params_type = DenseHeadParams
    options = {
        "layout": "channels ([4+C, N]) or rows ([N, 4+C]); without --onnx only",
        "output": "output tensor name the parser looks for first (default output0)",
    }

    @property
    def offset(self) -> int:
        return BOX_CHANNELS + (1 if self.objectness else 0)

    @property
    def width_text(self) -> str:
        return "5+C" if self.objectness else "4+C"

    def layouts(self) -> dict[str, str]:
        return {"channels": f"[{self.width_text}, N] channel-major", "rows": f"[N, {self.width_text}] row-major"}

    # -- recognising the head ---------------------------------------------------------------
    def evidence(self, model: ModelInfo, layout: str, num_classes: int, count: int | None) -> tuple[float, list[str]]:
        """Score adjustments and reasons specific to the subclass."""
        return 0.0, []

    def match(self, model: ModelInfo) -> Match | None:
        if model.task in ("pose", "obb", "segment", "classify"):
            return Match(0.0, f"metadata task={model.task!r}: a detection parser would misread this head")
        heads = [t for t in model.outputs if t.rank == 3]
        if len(model.outputs) != 1 or len(heads) != 1 or not heads[0].dtype.startswith("float"):
            return None
        head = heads[0]
        found = self.find_layout(head.dim(1), head.dim(2), model.class_names, concat_axis=concat_axis(model, head.name))
        if found is None:
            return None
        layout, num_classes, from_names = found
        score = 0.5
        why = [f"{head.name} {head.shape_text()}: {self.offset} box{' + objectness' if self.objectness else ''} "
               f"+ {num_classes} class {'rows' if layout == 'channels' else 'columns'} ({self.layouts()[layout]})"]
        if head.dim(1) is None and head.dim(2) is None:
            why.append("dims symbolic: C from the names, layout from the Concat axis")
        if from_names:
            score += 0.2
            why.append(f"{num_classes} class names in metadata")
        count = head.dim(2) if layout == "channels" else head.dim(1)
        bonus, reasons = self.evidence(model, layout, num_classes, count)
        return Match(round(max(0.01, min(score + bonus, 1.0)), 2), "; ".join(why + reasons))

    def find_layout(self, dim1: int | None, dim2: int | None, names: list[str] | None,
                    num_classes: int | None = None, concat_axis: int | None = None) -> tuple[str, int, bool] | None:
        """(layout, C, whether C agrees with the class names) for a [B, dim1, dim2] output, or None.

        Fixed dims decide; when both are symbolic (dynamic exports), the class count must come from
        the names or --classes and the layout from the axis of the Concat that joins boxes and scores.
        Class names that fit neither dimension rule the head out.
        """
        expected = num_classes or (len(names) if names else None)
        agrees = bool(names) and expected is not None and len(names) == expected
        if expected:
            if dim1 == self.offset + expected:
                return "channels", expected, agrees
            if dim2 == self.offset + expected:
                return "rows", expected, agrees
            if dim1 is None and dim2 is None and concat_axis in (1, 2):
                return ("channels" if concat_axis == 1 else "rows"), expected, agrees
            return None
        candidates = [(d, layout) for d, layout in ((dim1, "channels"), (dim2, "rows")) if d and d > self.offset]
        if not candidates:
            return None
        candidates.sort()  # the class dimension is the smaller one (N is thousands)
        dim, layout = candidates[0]
        return layout, dim - self.offset, False

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> DenseHeadParams:
        options.check_extra(self)
        if model is None:
            num_classes = options.num_classes or 80
            width, height = options.input_size or (640, 640)
            layout = options.extra.get("layout", self.default_layout)
            if layout not in self.layouts():
                raise UsageError(f"-O layout={layout}: expected one of {', '.join(self.layouts())}")
            names = COCO80 if num_classes == len(COCO80) else None  # canonical heads are COCO-trained
            return DenseHeadParams(num_classes, width, height, names, layout, options.extra.get("output", "output0"),
                                   anchor_points(width, height, anchors=3 if self.objectness else 1), self.objectness)
        if "layout" in options.extra:
            raise UsageError("-O layout: the layout is read from the model; drop the option when using --onnx")
        heads = [t for t in model.outputs if t.rank == 3]
        if len(heads) != 1:
            raise UsageError(f"{model.path}: expected one output of rank 3 for {self.name}, found "
                             + ", ".join(f"{t.name} {t.shape_text()}" for t in model.outputs))
        head = heads[0]
        axis = concat_axis(model, head.name)
        found = self.find_layout(head.dim(1), head.dim(2), model.class_names, concat_axis=axis)
        if options.num_classes and found and found[1] != options.num_classes and head.dim(1) and head.dim(2):
            raise UsageError(f"--classes {options.num_classes}: the model's {head.name} {head.shape_text()} "
                             f"has {found[1]} classes")
        if options.num_classes or found is None:
            found = self.find_layout(head.dim(1), head.dim(2), None, options.num_classes, axis)
        if found is None:
            raise UsageError(f"{model.path}: output {head.name} {head.shape_text()} is not a [B, {self.width_text}, N] "
                             f"or [B, N, {self.width_text}] head (when its dims are symbolic, --classes tells C)")
        layout, num_classes, _ = found
        size = model.input_size or options.input_size or (640, 640)
        names = model.class_names
        count = head.dim(2) if layout == "channels" else head.dim(1)
        return DenseHeadParams(num_classes, size[0], size[1], tuple(names) if names and len(names) == num_classes else None,
                               layout, options.extra.get("output", head.name), count, self.objectness)

    def describe(self, params: DenseHeadParams) -> str:
        count = params.num_candidates or "N"
        shape = f"[{params.channels}, {count}]" if params.layout == "channels" else f"[{count}, {params.channels}]"
        kind = "channel" if params.layout == "channels" else "row"
        return (f"{params.output_name} {shape} {kind}-major{', objectness' if params.objectness else ''}, "
                f"{params.num_classes} classes, {params.input_width}x{params.input_height} input")

    # -- generation -------------------------------------------------------------------------
    def template_context(self, params: DenseHeadParams) -> dict[str, Any]:
        return {"num_classes": params.num_classes, "layout": params.layout, "output_name": params.output_name,
                "objectness": params.objectness}

    # -- the reference ----------------------------------------------------------------------
    def reference(self, case: ParserCase, params: DenseHeadParams) -> ParseOutcome:
        with np.errstate(all="ignore"):  # inf - inf and friends are part of the contract, not accidents
            return self._reference(case, params)

    def _reference(self, case: ParserCase, params: DenseHeadParams) -> ParseOutcome:
        axis = 0 if params.layout == "channels" else 1
        layer = ref.find_layer(case.layers, params.output_name,
                               lambda dims: len(dims) == 2 and dims[axis] == params.channels)
        if layer is None:
            return ParseOutcome.rejected(f"no output layer {params.output_name!r}")
        if layer.reported_type not in ref.FLOAT_TYPES:
            return ParseOutcome.rejected("unsupported data type")
        dims = layer.reported_dims
        if len(dims) != 2 or dims[axis] != params.channels or dims[1 - axis] == 0:
            return ParseOutcome.rejected(f"bad dims {dims}")
        data = ref.layer_view(layer)
        rows = data.T if params.layout == "channels" else data  # [N, offset+C]
        best, cls = ref.best_class(rows[:, params.score_offset:])
        if params.objectness:
            best = (rows[:, BOX_CHANNELS] * best).astype(np.float32)
        keep = ref.keep_scores(best, cls, case.params)
        cx, cy, w, h = (rows[:, k] for k in range(BOX_CHANNELS))
        keep &= ref.all_finite(cx, cy, w, h)
        x1, y1, x2, y2 = ref.corners_from_center(cx[keep], cy[keep], w[keep], h[keep])
        return ParseOutcome(True, ref.boxes_to_detections(x1, y1, x2, y2, cls[keep], best[keep], case.network))

    def strategy(self, params: DenseHeadParams):
        return _cases(params)

    def append_decode(self, graph, opset: int, params: DenseHeadParams, *, topk: int | None, source):
        """`dsparsers patch`: the decode of this parser, in the graph (same float32 operations)."""
        from dsparsers.model import patch

        head = patch.graph_output(graph, params.output_name, source)
        rows = patch.transpose_last(graph, head, "dsp_rows") if params.layout == "channels" else head
        score, class_id = patch.best_class(graph, opset, patch.slice_last(graph, rows, params.score_offset, None,
                                                                          "dsp_classes"))
        if params.objectness:
            score = graph.layer(op="Mul", inputs=[score, patch.slice_last(graph, rows, 4, 5, "dsp_objectness")],
                                outputs=["dsp_scaled_score"])[0]
        boxes = patch.corners(graph, patch.slice_last(graph, rows, 0, BOX_CHANNELS, "dsp_center_size"))
        return patch.compact_rows(graph, opset, boxes, score, class_id, batch=head.shape[0] if head.shape else None,
                                  topk=topk)

    def bench_case(self, params: DenseHeadParams, density: float, rng) -> ParserCase:
        from dsparsers.verification.bench import bench_candidates

        count = params.num_candidates or anchor_points(params.input_width, params.input_height)
        boxes, scores = bench_candidates(count, params.num_classes, params.input_width, params.input_height,
                                         density, rng)
        columns = [boxes] + ([np.ones((count, 1), np.float32)] if params.objectness else []) + [scores]
        rows = np.concatenate(columns, axis=1)
        data = np.ascontiguousarray(rows.T if params.layout == "channels" else rows)
        return ParserCase((Layer(params.output_name, data),), NetworkInfo(params.input_width, params.input_height),
                          DetectionParams.uniform(params.num_classes, 0.25))

    def explain(self, case: ParserCase, params: DenseHeadParams) -> list[dict[str, Any]]:
        layer = case.layers[0]
        if len(layer.reported_dims) != 2:
            return []
        data = ref.layer_view(layer)
        rows = data.T if params.layout == "channels" else data
        best, cls = ref.best_class(rows[:, params.score_offset:])
        return [{"candidate": i, "cx": float(r[0]), "cy": float(r[1]), "w": float(r[2]), "h": float(r[3]),
                 **({"objectness": float(r[4])} if params.objectness else {}),
                 "best class": int(c), "class score": float(b),
                 "threshold": float(case.params.precluster_threshold(int(c)))}
                for i, (r, b, c) in enumerate(zip(rows[:16], best, cls))]


class AnchorFreeYolo(DenseYoloHead):
    name = "yolo-anchor-free"
    aliases = ("yolov8", "yolov9", "yolo11", "yolo12", "yolov5u", "yolov3u", "yolov6u", "ultralytics")
    summary = "ultralytics anchor-free detection head (v3u/v5u/v8/v9/11/12), original YOLOv9"
    head = "output0 [B, 4+C, N] or [B, N, 4+C]: cx cy w h (pixels), C sigmoid scores"
    config_defaults = ConfigDefaults(
        cluster_mode=2,
        why_cluster_mode="NMS: the head has one candidate per anchor point and no NMS of its own",
        why_preprocessing="ultralytics: RGB, 1/255, letterbox with centred padding",
        pre_cluster_threshold=0.25, nms_iou_threshold=0.45, topk=300)

    def evidence(self, model, layout, num_classes, count):
        score, why = 0.0, []
        size = model.input_size
        if size and count and count == anchor_points(*size):
            score += 0.1
            why.append(f"{count} candidates = strides 8/16/32 at {size[0]}x{size[1]}")
        upstream = model.upstream_ops(model.outputs[0].name, depth=3)
        if upstream[:1] == ["Concat"] and "Sigmoid" in upstream:
            score += 0.15
            why.append("Concat of boxes and Sigmoid scores (no objectness)")
        if model.task == "detect":
            score += 0.05
            why.append("task=detect")
        if model.metadata.get("end2end") == "True":
            score -= 0.4
            why.append("but metadata end2end=True")
        if layout == "rows" and not model.class_names:
            score -= 0.1
            why.append(f"[N, 4+C] without class names looks like [N, 5+C] with C={num_classes - 1} "
                       "(anchor-based): --arch yolo-anchor-free or --arch yolo-anchor-based settles it")
        return score, why


class AnchorBasedYolo(DenseYoloHead):
    name = "yolo-anchor-based"
    aliases = ("yolov5", "yolov7", "yolor", "yolox", "yolov6", "yolov5-original", "scaled-yolov4")
    summary = "anchor-based head with objectness: original YOLOv5, YOLOv7, YOLOR, YOLOX (decoded), YOLOv6 (original)"
    head = "output [B, N, 5+C]: cx cy w h (pixels), objectness, C class probabilities"
    objectness = True
    default_layout = "rows"
    options = {
        "layout": "rows ([N, 5+C], as exported) or channels ([5+C, N]); without --onnx only",
        "output": "output tensor name the parser looks for first (default output0)",
    }
    config_defaults = ConfigDefaults(
        cluster_mode=2,
        why_cluster_mode="NMS: the head has one candidate per anchor and no NMS of its own",
        why_preprocessing="YOLOv5/v7/YOLOR: RGB, 1/255, letterbox with centred padding (--arch yolox writes its own)",
        pre_cluster_threshold=0.25, nms_iou_threshold=0.45, topk=300)

    def defaults_for(self, requested_as):
        if requested_as == "yolox":
            # YOLOX feeds the network 0-255 BGR pixels (no normalisation, OpenCV channel order) and pads
            # its letterbox at the right and bottom only.
            return replace(self.config_defaults, net_scale_factor=1.0, model_color_format=1, symmetric_padding=False,
                           why_preprocessing="YOLOX: BGR, 0-255 pixels, letterbox padded right and bottom")
        return self.config_defaults

    def evidence(self, model, layout, num_classes, count):
        score, why = 0.0, []
        size = model.input_size
        if size and count:
            if count == anchor_points(*size, anchors=3):
                score += 0.2
                why.append(f"{count} candidates = 3 anchors x strides 8/16/32 at {size[0]}x{size[1]} (YOLOv5/v7/YOLOR)")
            elif count == anchor_points(*size):
                score += 0.05
                why.append(f"{count} candidates = strides 8/16/32 at {size[0]}x{size[1]} (YOLOX, YOLOv6: one per point)")
        if layout == "channels":
            score -= 0.1
        upstream = model.upstream_ops(model.outputs[0].name, depth=3)
        if upstream[:1] == ["Concat"] and upstream.count("Reshape") >= 3:
            score += 0.1
            why.append("Concat of the three scales")
        return score, why


def concat_axis(model: ModelInfo, tensor: str) -> int | None:
    """The axis of the Concat that produces ``tensor`` (rank 3, normalised to 1 or 2), if it is one."""
    node = model.producers.get(tensor)
    if node is None or node.op_type != "Concat" or not isinstance(node.attributes.get("axis"), int):
        return None
    return node.attributes["axis"] % 3


@st.composite
def _cases(draw, params: DenseHeadParams, max_candidates: int = 24) -> ParserCase:
    network = draw(networks)
    det_params = draw(detection_params(params.num_classes))
    boxes, scores = draw(scored_candidates(params.num_classes, det_params, network, max_candidates))
    columns = [boxes]
    if params.objectness:
        objectness = draw(st.lists(st.one_of(st.just(1.0), f32(0.0, 1.0), nonfinite),
                                   min_size=len(boxes), max_size=len(boxes)))
        columns.append(np.array(objectness, np.float32).reshape(-1, 1))
    rows = np.concatenate(columns + [scores], axis=1)  # [N, offset+C]
    with np.errstate(over="ignore"):  # huge float32 boxes become inf in float16, as a real FP16 engine would
        data = np.ascontiguousarray(rows.T if params.layout == "channels" else rows).astype(draw(float_dtypes))
    name = draw(st.sampled_from([params.output_name, params.output_name, "renamed_by_engine"]))
    return ParserCase((Layer(name, data),), network, det_params)


@dsparsers.hookimpl
def register_architectures(register):
    register(AnchorFreeYolo())
    register(AnchorBasedYolo())
