"""Anchor-free YOLO head: ultralytics YOLOv3u/v5u/v8/v9/YOLO11/YOLO12 and the original YOLOv9.

``output0`` is [B, 4+C, N] (channel-major, as ultralytics exports it) or [B, N, 4+C] (row-major, from
third-party exporters): rows cx, cy, w, h in network pixels, then C class scores with the sigmoid
already applied, no objectness. One detection per candidate: its best class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

import dsparsers
from dsparsers import reference as ref
from dsparsers.architecture import Architecture, ConfigDefaults, GenerateOptions, HeadParams, Match
from dsparsers.datasets import COCO80
from dsparsers.errors import UsageError
from dsparsers.model import ModelInfo
from dsparsers.parser_io import Layer, ParseOutcome, ParserCase
from dsparsers.strategies import detection_params, float_dtypes, networks, scored_candidates

BOX_CHANNELS = 4
STRIDES = (8, 16, 32)
LAYOUTS = {"channels": "[4+C, N] channel-major", "rows": "[N, 4+C] row-major"}


def candidates_at(width: int, height: int, strides=STRIDES) -> int:
    """Anchor points of a three-scale head: sum over strides of (W/s) * (H/s)."""
    return sum((width // s) * (height // s) for s in strides)


@dataclass(frozen=True)
class AnchorFreeParams(HeadParams):
    layout: str = "channels"
    output_name: str = "output0"
    num_candidates: int | None = None

    @property
    def channels(self) -> int:
        return BOX_CHANNELS + self.num_classes


class AnchorFreeYolo(Architecture):
    name = "yolo-anchor-free"
    aliases = ("yolov8", "yolov9", "yolo11", "yolo12", "yolov5u", "yolov3u", "yolov6u", "ultralytics")
    summary = "ultralytics anchor-free detection head (v3u/v5u/v8/v9/11/12), original YOLOv9"
    head = "output0 [B, 4+C, N] or [B, N, 4+C]: cx cy w h (pixels), C sigmoid scores"
    template = "yolo_anchor_free.cpp.j2"
    options = {
        "layout": "channels ([4+C, N], ultralytics) or rows ([N, 4+C]); without --onnx only",
        "output": "output tensor name the parser looks for first (default output0)",
    }
    params_type = AnchorFreeParams
    config_defaults = ConfigDefaults(
        cluster_mode=2,
        why_cluster_mode="NMS: the head has one candidate per anchor point and no NMS of its own",
        pre_cluster_threshold=0.25,
        nms_iou_threshold=0.45,
        topk=300,
    )

    # -- recognising the head ---------------------------------------------------------------
    def match(self, model: ModelInfo) -> Match | None:
        if model.task in ("pose", "obb", "segment", "classify"):
            return Match(0.0, f"metadata task={model.task!r}: a detection parser would misread this head")
        heads = [t for t in model.outputs if t.rank == 3]
        if len(model.outputs) != 1 or len(heads) != 1:
            return None
        head = heads[0]
        if not head.dtype.startswith("float"):
            return None
        found = _find_layout(head.dim(1), head.dim(2), model.class_names, concat_axis=_concat_axis(model, head.name))
        if found is None:
            return None
        layout, num_classes, from_names = found
        score = 0.55
        why = [f"{head.name} {head.shape_text()}: {BOX_CHANNELS} box + {num_classes} class "
               f"{'rows' if layout == 'channels' else 'columns'} ({LAYOUTS[layout]})"]
        if head.dim(1) is None and head.dim(2) is None:
            why.append(f"dims symbolic: C from the names, layout from the Concat axis")
        if from_names:
            score += 0.2
            why.append(f"{num_classes} class names in metadata")
        count = head.dim(2) if layout == "channels" else head.dim(1)
        size = model.input_size
        if size and count and count == candidates_at(*size):
            score += 0.1
            why.append(f"{count} candidates = strides 8/16/32 at {size[0]}x{size[1]}")
        upstream = model.upstream_ops(head.name, depth=3)
        if upstream[:1] == ["Concat"] and "Sigmoid" in upstream:
            score += 0.1
            why.append("Concat of boxes and Sigmoid scores (no objectness)")
        if model.task == "detect":
            score += 0.05
            why.append("task=detect")
        if layout == "rows":
            score -= 0.1  # row-major heads have look-alikes (anchor-based [N, 5+C]) that metadata must settle
        return Match(round(min(score, 1.0), 2), "; ".join(why))

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> AnchorFreeParams:
        options.check_extra(self)
        if model is None:
            num_classes = options.num_classes or 80
            width, height = options.input_size or (640, 640)
            layout = options.extra.get("layout", "channels")
            if layout not in LAYOUTS:
                raise UsageError(f"-O layout={layout}: expected one of {', '.join(LAYOUTS)}")
            names = COCO80 if num_classes == len(COCO80) else None  # the canonical head is COCO-trained
            return AnchorFreeParams(num_classes, width, height, names, layout,
                                    options.extra.get("output", "output0"), candidates_at(width, height))
        if "layout" in options.extra:
            raise UsageError("-O layout: the layout is read from the model; drop the option when using --onnx")
        heads = [t for t in model.outputs if t.rank == 3]
        if len(heads) != 1:
            raise UsageError(f"{model.path}: expected one output of rank 3 for {self.name}, found "
                             + ", ".join(f"{t.name} {t.shape_text()}" for t in model.outputs))
        head = heads[0]
        axis = _concat_axis(model, head.name)
        found = _find_layout(head.dim(1), head.dim(2), model.class_names, concat_axis=axis)
        if options.num_classes and found and found[1] != options.num_classes and head.dim(1) and head.dim(2):
            raise UsageError(f"--classes {options.num_classes}: the model's {head.name} {head.shape_text()} "
                             f"has {found[1]} classes")
        if options.num_classes:
            found = _find_layout(head.dim(1), head.dim(2), model.class_names, options.num_classes, axis)
        if found is None:
            raise UsageError(f"{model.path}: output {head.name} {head.shape_text()} is not a [B, 4+C, N] "
                             "or [B, N, 4+C] head (when its dims are symbolic, --classes tells C)")
        layout, num_classes, _ = found
        size = model.input_size or options.input_size or (640, 640)
        names = model.class_names
        count = head.dim(2) if layout == "channels" else head.dim(1)
        return AnchorFreeParams(
            num_classes, size[0], size[1],
            tuple(names) if names and len(names) == num_classes else None,
            layout, options.extra.get("output", head.name), count)

    def describe(self, params: AnchorFreeParams) -> str:
        shape = f"[{params.channels}, {params.num_candidates or 'N'}]" if params.layout == "channels" \
            else f"[{params.num_candidates or 'N'}, {params.channels}]"
        return f"{params.output_name} {shape} {'channel' if params.layout == 'channels' else 'row'}-major, {params.num_classes} classes, " \
               f"{params.input_width}x{params.input_height} input"

    # -- generation -------------------------------------------------------------------------
    def template_context(self, params: AnchorFreeParams) -> dict[str, Any]:
        return {"num_classes": params.num_classes, "layout": params.layout, "output_name": params.output_name}

    # -- the reference ----------------------------------------------------------------------
    def reference(self, case: ParserCase, params: AnchorFreeParams) -> ParseOutcome:
        with np.errstate(all="ignore"):  # inf - inf and friends are part of the contract, not accidents
            return self._reference(case, params)

    def _reference(self, case: ParserCase, params: AnchorFreeParams) -> ParseOutcome:
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
        rows = data.T if params.layout == "channels" else data  # [N, 4+C]
        best, cls = ref.best_class(rows[:, BOX_CHANNELS:])
        keep = ref.keep_scores(best, cls, case.params)
        cx, cy, w, h = (rows[:, k] for k in range(BOX_CHANNELS))
        keep &= ref.all_finite(cx, cy, w, h)
        x1, y1, x2, y2 = ref.corners_from_center(cx[keep], cy[keep], w[keep], h[keep])
        return ParseOutcome(True, ref.boxes_to_detections(x1, y1, x2, y2, cls[keep], best[keep], case.network))

    def strategy(self, params: AnchorFreeParams):
        return _cases(params)

    def explain(self, case: ParserCase, params: AnchorFreeParams) -> list[dict[str, Any]]:
        layer = case.layers[0]
        if len(layer.reported_dims) != 2:
            return []
        data = ref.layer_view(layer)
        rows = data.T if params.layout == "channels" else data
        best, cls = ref.best_class(rows[:, BOX_CHANNELS:])
        return [{"candidate": i, "cx": float(r[0]), "cy": float(r[1]), "w": float(r[2]), "h": float(r[3]),
                 "best class": int(c), "score": float(b),
                 "threshold": float(case.params.precluster_threshold(int(c)))}
                for i, (r, b, c) in enumerate(zip(rows[:16], best, cls))]


def _concat_axis(model: ModelInfo, tensor: str) -> int | None:
    """The axis of the Concat that produces ``tensor`` (rank 3, normalised to 1 or 2), if it is one."""
    node = model.producers.get(tensor)
    if node is None or node.op_type != "Concat" or not isinstance(node.attributes.get("axis"), int):
        return None
    return node.attributes["axis"] % 3


def _find_layout(dim1: int | None, dim2: int | None, names: list[str] | None,
                 num_classes: int | None = None, concat_axis: int | None = None) -> tuple[str, int, bool] | None:
    """(layout, C, whether C agrees with the class names) for a [B, dim1, dim2] output, or None.

    Fixed dims decide; when both are symbolic (dynamic exports), the class count must come from
    the names or --classes and the layout from the axis of the Concat that joins boxes and scores.
    """
    expected = num_classes or (len(names) if names else None)
    agrees = bool(names) and expected is not None and len(names) == expected
    if expected:
        if dim1 == BOX_CHANNELS + expected:
            return "channels", expected, agrees
        if dim2 == BOX_CHANNELS + expected:
            return "rows", expected, agrees
        if dim1 is None and dim2 is None and concat_axis in (1, 2):
            return ("channels" if concat_axis == 1 else "rows"), expected, agrees
        if num_classes:
            return None
    candidates = [(d, layout) for d, layout in ((dim1, "channels"), (dim2, "rows")) if d and d > BOX_CHANNELS]
    if not candidates:
        return None
    if len(candidates) == 2:
        candidates.sort()  # the class dimension is the smaller one (N is thousands)
    dim, layout = candidates[0]
    return layout, dim - BOX_CHANNELS, False


@st.composite
def _cases(draw, params: AnchorFreeParams, max_candidates: int = 24) -> ParserCase:
    network = draw(networks)
    det_params = draw(detection_params(params.num_classes))
    boxes, scores = draw(scored_candidates(params.num_classes, det_params, network, max_candidates))
    rows = np.concatenate([boxes, scores], axis=1)  # [N, 4+C]
    with np.errstate(over="ignore"):  # huge float32 boxes become inf in float16, as a real FP16 engine would
        data = np.ascontiguousarray(rows.T if params.layout == "channels" else rows).astype(draw(float_dtypes))
    name = draw(st.sampled_from([params.output_name, params.output_name, "renamed_by_engine"]))
    return ParserCase((Layer(name, data),), network, det_params)


@dsparsers.hookimpl
def register_architectures(register):
    register(AnchorFreeYolo())
