"""Darknet YOLO grids: YOLOv3, YOLOv4 and their tiny forms, as darknet-to-ONNX converters export them.

Two or three RAW outputs [B, A*(5+C), H/s, W/s], A anchors per scale (3 in every darknet cfg). For
anchor a of cell (gx, gy) of an output with stride s, channel base a*(5+C):

    x = (sigmoid(tx) * sxy - (sxy - 1) / 2 + gx) * s      (y likewise with the vertical stride)
    w = exp(tw) * anchor_w                               (anchors in network pixels)
    score = sigmoid(objectness) * max_c sigmoid(class c)

An output's anchors (its mask) follow from its stride: the outputs sorted by stride ascending take the
mask groups in order. Defaults, checked against the darknet cfg files (pjreddie/darknet and the
AlexeyAB-format cfgs shipped by darknet-onnx converters):

| cfg | [net] size | anchors | masks (stride ascending) | scale_x_y |
|---|---|---|---|---|
| yolov3.cfg | 608 | 10,13 16,30 33,23 30,61 62,45 59,119 116,90 156,198 373,326 | 0,1,2 / 3,4,5 / 6,7,8 | 1 |
| yolov4.cfg | 608 | 12,16 19,36 40,28 36,75 76,55 72,146 142,110 192,243 459,401 | 0,1,2 / 3,4,5 / 6,7,8 | 1.2 / 1.1 / 1.05 |
| yolov3-tiny.cfg | 416 | 10,14 23,27 37,58 81,82 135,169 344,319 | 0,1,2 / 3,4,5 | 1 |
| yolov4-tiny.cfg | 416 | 10,14 23,27 37,58 81,82 135,169 344,319 | 1,2,3 / 3,4,5 | 1.05 / 1.05 |

YOLOv3 and YOLOv4 heads have identical shapes: the alias the user typed (``--arch yolov4``) or
``-O scale_x_y=`` / ``-O anchors=`` tells them apart; a bare ``yolo-darknet`` uses the YOLOv3 values.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

import dsparsers
from dsparsers.api import reference as ref
from dsparsers.api.architecture import Architecture, ConfigDefaults, GenerateOptions, HeadParams, Match
from dsparsers.emulation.datasets import COCO80
from dsparsers.errors import UsageError
from dsparsers.model.reader import ModelInfo, TensorInfo
from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase, detections
from dsparsers.verification.strategies import detection_params, f32, float_dtypes

BOX_CHANNELS = 4
OBJECTNESS_CHANNEL = 4
CLASS_CHANNEL = 5  # first class channel of an anchor
MAX_SCALES = 4

_V3_ANCHORS = ((10, 13), (16, 30), (33, 23), (30, 61), (62, 45), (59, 119), (116, 90), (156, 198), (373, 326))
_V4_ANCHORS = ((12, 16), (19, 36), (40, 28), (36, 75), (76, 55), (72, 146), (142, 110), (192, 243), (459, 401))
_TINY_ANCHORS = ((10, 14), (23, 27), (37, 58), (81, 82), (135, 169), (344, 319))


@dataclass(frozen=True)
class _Family:
    anchors: tuple[tuple[float, float], ...]
    masks: tuple[tuple[int, ...], ...]  # stride ascending
    scale_x_y: tuple[float, ...]
    strides: tuple[int, ...]
    size: int  # the cfg's [net] width = height


FAMILIES = {
    "yolov3": _Family(_V3_ANCHORS, ((0, 1, 2), (3, 4, 5), (6, 7, 8)), (1.0, 1.0, 1.0), (8, 16, 32), 608),
    "yolov4": _Family(_V4_ANCHORS, ((0, 1, 2), (3, 4, 5), (6, 7, 8)), (1.2, 1.1, 1.05), (8, 16, 32), 608),
    "yolov3-tiny": _Family(_TINY_ANCHORS, ((0, 1, 2), (3, 4, 5)), (1.0, 1.0), (16, 32), 416),
    "yolov4-tiny": _Family(_TINY_ANCHORS, ((1, 2, 3), (3, 4, 5)), (1.05, 1.05), (16, 32), 416),
}


@dataclass(frozen=True)
class DarknetParams(HeadParams):
    #: the cfg whose defaults were used (yolov3, yolov4, yolov3-tiny, yolov4-tiny)
    variant: str = "yolov3"
    #: every anchor (w, h) in network pixels, as the cfg's ``anchors=`` line
    anchors: tuple[tuple[float, float], ...] = _V3_ANCHORS
    #: per scale, stride ascending: the anchor indices it uses (the cfg's ``mask=``)
    masks: tuple[tuple[int, ...], ...] = ((0, 1, 2), (3, 4, 5), (6, 7, 8))
    #: per scale, stride ascending
    scale_x_y: tuple[float, ...] = (1.0, 1.0, 1.0)
    #: per scale, ascending: network pixels per grid cell
    strides: tuple[int, ...] = (8, 16, 32)
    #: per scale, stride ascending: the output names the parser looks for first
    output_names: tuple[str, ...] = ("output_0", "output_1", "output_2")

    def __post_init__(self):
        # dsparsers.json stores tuples as lists: rebuild the hashable, comparable form
        object.__setattr__(self, "anchors", tuple((float(w), float(h)) for w, h in self.anchors))
        object.__setattr__(self, "masks", tuple(tuple(int(i) for i in g) for g in self.masks))
        object.__setattr__(self, "scale_x_y", tuple(float(v) for v in self.scale_x_y))
        object.__setattr__(self, "strides", tuple(int(v) for v in self.strides))
        object.__setattr__(self, "output_names", tuple(str(v) for v in self.output_names))

    @property
    def num_scales(self) -> int:
        return len(self.masks)

    @property
    def anchors_per_scale(self) -> int:
        return len(self.masks[0])

    @property
    def anchor_channels(self) -> int:
        return CLASS_CHANNEL + self.num_classes

    @property
    def channels(self) -> int:
        return self.anchors_per_scale * self.anchor_channels

    def scale_anchors(self, scale: int) -> list[tuple[float, float]]:
        return [self.anchors[i] for i in self.masks[scale]]


def _numbers(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"-O {what}={text}: expected comma-separated numbers") from None
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise UsageError(f"-O {what}={text}: expected positive finite numbers")
    return values


def _parse_anchors(text: str) -> tuple[tuple[float, float], ...]:
    values = _numbers(text, "anchors")
    if len(values) % 2:
        raise UsageError(f"-O anchors={text}: expected w,h pairs (an even count of numbers), got {len(values)}")
    return tuple((values[i], values[i + 1]) for i in range(0, len(values), 2))


def _parse_masks(text: str) -> tuple[tuple[int, ...], ...]:
    groups = []
    for group in text.split(";"):
        try:
            groups.append(tuple(int(v) for v in group.split(",") if v.strip()))
        except ValueError:
            raise UsageError(f"-O masks={text}: expected groups of anchor indices, e.g. 0,1,2;3,4,5;6,7,8") from None
    return tuple(groups)


def _family_of(requested_as: str | None, scales: int | None) -> str:
    """The cfg defaults for the alias typed and the number of outputs (the model's or the masks')."""
    alias = (requested_as or "").lower()
    base = "yolov4" if alias.startswith("yolov4") else "yolov3"
    tiny = alias.endswith("-tiny") if scales is None else scales == 2
    return f"{base}-tiny" if tiny else base


def _grid_heads(model: ModelInfo) -> list[TensorInfo]:
    return [t for t in model.outputs if t.rank == 4 and t.dtype.startswith("float")]


def _sorted_by_stride(heads: list[TensorInfo]) -> list[TensorInfo]:
    """Largest grid (smallest stride) first; heads with symbolic grids keep the model's order."""
    if all(h.dim(2) for h in heads):
        return sorted(heads, key=lambda h: -h.dim(2))
    return list(heads)


class DarknetYolo(Architecture):
    name = "yolo-darknet"
    aliases = ("yolov3", "yolov4", "yolov3-tiny", "yolov4-tiny", "darknet")
    summary = "darknet YOLOv3 / YOLOv4 and their tiny forms (raw grid outputs from darknet-to-ONNX converters)"
    head = "2-3 outputs [B, A*(5+C), H/s, W/s], A = 3: raw tx ty tw th, objectness, C class logits per anchor"
    template = "yolo_darknet.cpp.j2"
    options = {
        "anchors": "every anchor as w,h pairs in network pixels, comma-separated (the cfg's anchors=)",
        "masks": "anchor indices per output, stride ascending, groups separated by ';' (e.g. 0,1,2;3,4,5;6,7,8)",
        "scale_x_y": "one value, or one per output stride ascending (yolov4: 1.2,1.1,1.05)",
        "outputs": "output tensor names, stride ascending, comma-separated (looked up first; shape is the fallback)",
    }
    params_type = DarknetParams
    # Darknet (AlexeyAB, the fork YOLOv4 comes from) stretches the image to the network size unless the
    # cfg sets letter_box=1, and DeepStream-Yolo's darknet config uses maintain-aspect-ratio=0: the boxes
    # the model learned are for a stretched image, so nvinfer must stretch too (no letterbox).
    config_defaults = ConfigDefaults(
        cluster_mode=2,
        why_cluster_mode="NMS: the grids give one candidate per anchor and cell, and no NMS of their own",
        why_preprocessing="darknet stretches the image to the network size (no letterbox), RGB, 1/255",
        maintain_aspect_ratio=False,
        symmetric_padding=False,
        pre_cluster_threshold=0.25,
        nms_iou_threshold=0.45,
        topk=300,
    )

    # -- recognising the head ---------------------------------------------------------------
    def match(self, model: ModelInfo) -> Match | None:
        heads = _grid_heads(model)
        if len(heads) not in (2, 3) or len(heads) != len(model.outputs):
            return None
        channels = {h.dim(1) for h in heads}
        if len(channels) != 1 or None in channels:
            return None
        c = channels.pop()
        if c % 3 or c // 3 <= CLASS_CHANNEL:
            return None
        num_classes = c // 3 - CLASS_CHANNEL
        ordered = _sorted_by_stride(heads)
        score = 0.5
        why = [f"{len(heads)} outputs [B, {c}, H, W] = 3 anchors x (5 + {num_classes} classes): darknet "
               f"{'tiny ' if len(heads) == 2 else ''}YOLO grids"]
        if all(h.dim(2) and h.dim(3) for h in heads):
            sizes = [(h.dim(2), h.dim(3)) for h in ordered]
            if any(a[0] != 2 * b[0] or a[1] != 2 * b[1] for a, b in zip(sizes, sizes[1:])):
                return Match(0.0, f"grids {', '.join(f'{w}x{h}' for h, w in sizes)} are not in ratio 2 as darknet scales are")
            score += 0.15
            why.append("grids " + "/".join(str(h) for h, _ in sizes) + " in ratio 2")
            size = model.input_size
            if size and all(size[0] % w == 0 and size[1] % h == 0 and size[0] // w == size[1] // h for h, w in sizes):
                strides = [size[0] // w for _, w in sizes]
                score += 0.1
                why.append(f"strides {'/'.join(map(str, strides))} at {size[0]}x{size[1]}")
        names = model.class_names
        if names and len(names) == num_classes:
            score += 0.05
            why.append(f"{num_classes} class names in metadata")
        if any("Sigmoid" in model.upstream_ops(h.name, depth=1) for h in heads):
            why.append("note: a Sigmoid feeds an output; the parser applies sigmoid to raw logits itself")
        why.append("yolov3 and yolov4 cannot be told apart from shapes (they differ in anchors and scale_x_y): "
                   "`--arch yolov4` or `-O scale_x_y=...` settles it; otherwise yolov3 defaults apply")
        return Match(round(min(score, 1.0), 2), "; ".join(why))

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> DarknetParams:
        options.check_extra(self)
        extra = options.extra
        masks = _parse_masks(extra["masks"]) if "masks" in extra else None
        heads: list[TensorInfo] = []
        if model is not None:
            heads = _sorted_by_stride(_grid_heads(model))
            if len(heads) not in (2, 3, 4) or len(heads) != len(model.outputs):
                raise UsageError(f"{model.path}: expected 2 or 3 outputs [B, A*(5+C), H, W] for {self.name}, found "
                                 + ", ".join(f"{t.name} {t.shape_text()}" for t in model.outputs))
            if masks is not None and len(masks) != len(heads):
                raise UsageError(f"-O masks={extra['masks']}: {len(masks)} groups but the model has {len(heads)} outputs")
        alias = (options.requested_as or "").lower()
        scales = len(heads) if heads else (len(masks) if masks is not None else None)
        if alias.endswith("-tiny") and scales not in (None, 2):
            raise UsageError(f"--arch {alias}: a tiny head has 2 outputs, {'the model' if heads else '-O masks'} "
                             f"has {scales}")
        variant = _family_of(alias, scales)
        family = FAMILIES[variant]
        anchors = _parse_anchors(extra["anchors"]) if "anchors" in extra else family.anchors
        masks = masks if masks is not None else family.masks
        if not 1 <= len(masks) <= MAX_SCALES or any(not g for g in masks):
            raise UsageError(f"-O masks={extra.get('masks')}: expected 1 to {MAX_SCALES} non-empty groups")
        if len({len(g) for g in masks}) != 1:
            raise UsageError(f"-O masks={extra.get('masks')}: every output must use the same number of anchors")
        if any(not 0 <= i < len(anchors) for g in masks for i in g):
            raise UsageError(f"masks {';'.join(','.join(map(str, g)) for g in masks)} index past the "
                             f"{len(anchors)} anchors (-O anchors=... and -O masks=... must agree)")
        if "scale_x_y" in extra:
            sxy = tuple(_numbers(extra["scale_x_y"], "scale_x_y"))
            if len(sxy) == 1:
                sxy = sxy * len(masks)
            if len(sxy) != len(masks):
                raise UsageError(f"-O scale_x_y={extra['scale_x_y']}: one value or {len(masks)} (one per output)")
        elif len(family.scale_x_y) == len(masks):
            sxy = family.scale_x_y
        else:
            sxy = (family.scale_x_y[0],) * len(masks)
        per_scale = len(masks[0])
        size = options.input_size or (family.size, family.size)
        names: tuple[str, ...] | None = None
        if model is None:
            num_classes = options.num_classes or 80
            class_names = COCO80 if num_classes == len(COCO80) else None
            strides = family.strides if len(family.strides) == len(masks) else \
                tuple(8 * 2 ** k for k in range(len(masks)))
        else:
            channels = {h.dim(1) for h in heads}
            if None in channels or len(channels) != 1:
                raise UsageError(f"{model.path}: outputs {', '.join(f'{h.name} {h.shape_text()}' for h in heads)} "
                                 "must share one fixed channel dim A*(5+C)")
            c = channels.pop()
            if c % per_scale or c // per_scale <= CLASS_CHANNEL:
                raise UsageError(f"{model.path}: channel dim {c} is not {per_scale} anchors x (5 + C)")
            num_classes = c // per_scale - CLASS_CHANNEL
            if options.num_classes and options.num_classes != num_classes:
                raise UsageError(f"--classes {options.num_classes}: the model's outputs have {num_classes} classes")
            size = model.input_size or size
            names_meta = model.class_names
            class_names = tuple(names_meta) if names_meta and len(names_meta) == num_classes else None
            strides = family.strides if len(family.strides) == len(masks) else \
                tuple(8 * 2 ** k for k in range(len(masks)))
            if all(h.dim(2) and h.dim(3) for h in heads):
                found = []
                for h in heads:
                    if size[0] % h.dim(3) or size[1] % h.dim(2) or size[0] // h.dim(3) != size[1] // h.dim(2):
                        raise UsageError(f"{model.path}: output {h.name} {h.shape_text()} does not divide the "
                                         f"{size[0]}x{size[1]} input into square cells")
                    found.append(size[0] // h.dim(3))
                if len(set(found)) != len(found):
                    raise UsageError(f"{model.path}: two outputs have the same stride {found}")
                strides = tuple(found)
            names = tuple(h.name for h in heads)
        if "outputs" in extra:
            names = tuple(v.strip() for v in extra["outputs"].split(","))
            if len(names) != len(masks) or not all(names):
                raise UsageError(f"-O outputs={extra['outputs']}: expected {len(masks)} names, stride ascending")
        if names is None:
            names = tuple(f"output_{k}" for k in range(len(masks)))
        if len(set(names)) != len(names):
            raise UsageError(f"output names {', '.join(names)} are not distinct")
        return DarknetParams(num_classes, size[0], size[1], class_names, variant, anchors, masks, sxy, strides, names)

    def describe(self, params: DarknetParams) -> str:
        sxy = "/".join(f"{v:g}" for v in params.scale_x_y)
        return (f"{params.variant} grids: {params.num_scales} outputs [{params.channels}, H, W] at strides "
                f"{'/'.join(map(str, params.strides))} (scale_x_y {sxy}), {params.num_classes} classes, "
                f"{params.input_width}x{params.input_height} input")

    # -- generation -------------------------------------------------------------------------
    def template_context(self, params: DarknetParams) -> dict[str, Any]:
        scales = []
        for k in range(params.num_scales):
            scales.append({
                "name": params.output_names[k],
                "stride": params.strides[k],
                "scale_x_y": _float_literal(params.scale_x_y[k]),
                "scale_x_y_text": f"{params.scale_x_y[k]:g}",
                "mask": ",".join(map(str, params.masks[k])),
                "anchors": [(_float_literal(w), _float_literal(h)) for w, h in params.scale_anchors(k)],
            })
        return {"num_classes": params.num_classes, "anchors_per_scale": params.anchors_per_scale,
                "scales": scales, "variant": params.variant}

    # -- the reference ----------------------------------------------------------------------
    def reference(self, case: ParserCase, params: DarknetParams) -> ParseOutcome:
        with np.errstate(all="ignore"):  # exp overflow, inf * 0 and friends are part of the contract
            return self._reference(case, params)

    def _reference(self, case: ParserCase, params: DarknetParams) -> ParseOutcome:
        chosen = select_layers(case.layers, params)
        if chosen is None:
            return ParseOutcome.rejected("missing output layer")
        grids = []
        for layer in chosen:
            dims = layer.reported_dims
            if len(dims) != 3 or dims[0] != params.channels or dims[1] == 0 or dims[2] == 0:
                return ParseOutcome.rejected(f"bad dims {dims}")
            if int(np.prod(dims, dtype=np.int64)) > 0xFFFFFFFF:
                return ParseOutcome.rejected("dims overflow")
            if layer.reported_type not in ref.FLOAT_TYPES:
                return ParseOutcome.rejected("unsupported data type")
            height, width = dims[1], dims[2]
            net = case.network
            if net.width % width or net.height % height:
                return ParseOutcome.rejected("grid does not divide the network")
            grids.append((net.width // width, net.height // height, layer))
        grids.sort(key=lambda g: g[0])  # stable, as the C++ insertion sort
        if [(sx, sy) for sx, sy, _ in grids] != [(s, s) for s in params.strides]:
            return ParseOutcome.rejected("strides do not match")
        found = [detections()]
        for k, (stride, _, layer) in enumerate(grids):
            for cls, score, x1, y1, x2, y2, keep in decode_scale(ref.layer_view(layer), k, stride, params, case):
                found.append(ref.boxes_to_detections(x1[keep], y1[keep], x2[keep], y2[keep], cls[keep], score[keep],
                                                     case.network))
        return ParseOutcome(True, np.concatenate(found))

    def strategy(self, params: DarknetParams):
        return _cases(params)

    def bench_case(self, params: DarknetParams, density: float, rng) -> ParserCase:
        """Full-size grids at the canonical input: a fraction ``density`` of the anchors score about 0.9
        (objectness and one class logit 3), the rest have objectness below 0.01."""
        width, height = params.input_width, params.input_height
        layers = []
        for k, stride in enumerate(params.strides):
            cells = (height // stride) * (width // stride)
            data = np.empty((params.anchors_per_scale, params.anchor_channels, cells), np.float32)
            data[:, 0:4] = rng.uniform(-2, 2, (params.anchors_per_scale, 4, cells))
            data[:, OBJECTNESS_CHANNEL] = rng.uniform(-8, -5, (params.anchors_per_scale, cells))
            data[:, CLASS_CHANNEL:] = rng.uniform(-8, -2, (params.anchors_per_scale, params.num_classes, cells))
            anchor, cell = np.nonzero(rng.random((params.anchors_per_scale, cells)) < density)
            data[anchor, OBJECTNESS_CHANNEL, cell] = 3.0
            data[anchor, CLASS_CHANNEL + rng.integers(0, params.num_classes, anchor.size), cell] = 3.0
            layers.append(Layer(params.output_names[k], data.reshape(params.channels, height // stride, width // stride)))
        return ParserCase(tuple(reversed(layers)), NetworkInfo(width, height),
                          DetectionParams.uniform(params.num_classes, 0.25))

    def explain(self, case: ParserCase, params: DarknetParams) -> list[dict[str, Any]]:
        """The best-scoring anchors of each output the parser would read (at most 24 rows)."""
        chosen = select_layers(case.layers, params)
        rows: list[dict[str, Any]] = []
        if chosen is None:
            return rows
        with np.errstate(all="ignore"):
            for layer in chosen:
                dims = layer.reported_dims
                if len(dims) != 3 or dims[0] != params.channels or 0 in dims or case.network.width % dims[2]:
                    continue
                stride = case.network.width // dims[2]
                if stride not in params.strides:
                    continue
                k = params.strides.index(stride)
                for a, (cls, score, x1, y1, x2, y2, keep) in enumerate(
                        decode_scale(ref.layer_view(layer), k, stride, params, case)):
                    for cell in np.argsort(-np.nan_to_num(score, nan=-1.0), kind="stable")[:4]:
                        rows.append({"layer": layer.name, "stride": stride, "anchor": a, "gx": int(cell % dims[2]),
                                     "gy": int(cell // dims[2]), "class": int(cls[cell]), "score": float(score[cell]),
                                     "threshold": float(case.params.precluster_threshold(int(cls[cell]))),
                                     "x1": float(x1[cell]), "y1": float(y1[cell]), "x2": float(x2[cell]),
                                     "y2": float(y2[cell]), "kept": bool(keep[cell])})
        return rows[:24]


def _float_literal(value: float) -> str:
    """A C++ float literal that parses to exactly np.float32(value) (what the reference uses)."""
    return f"{float(np.float32(value))!r}f"


def _head_shape(dims: tuple[int, ...], params: DarknetParams) -> bool:
    return len(dims) == 3 and dims[0] == params.channels


def select_layers(layers: tuple[Layer, ...], params: DarknetParams) -> list[Layer] | None:
    """The head's layers as the C++ picks them: each output name first; then, for names not found,
    the first layer of head shape ([A*(5+C), H, W]) not already taken. None when one is missing."""
    chosen: list[Layer | None] = [ref.find_layer(layers, name, lambda dims: False) for name in params.output_names]
    for k, name in enumerate(params.output_names):
        if chosen[k] is None:
            chosen[k] = next((layer for layer in layers if _head_shape(layer.reported_dims, params)
                              and not any(layer is c for c in chosen)), None)
            if chosen[k] is None:
                return None
    return chosen  # type: ignore[return-value]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (np.float32(1) / (np.float32(1) + np.exp(-x))).astype(np.float32)


def decode_scale(data: np.ndarray, scale: int, stride: int, params: DarknetParams, case: ParserCase, keep=True):
    """Per anchor of one output [A*(5+C), H, W] (float32), in the C++ order (anchor, then cell row-major):
    (class, score, x1, y1, x2, y2, kept) arrays over the cells; kept = passes the threshold and the box is
    finite (None when ``keep`` is false: the strategy only needs the values)."""
    per, k_channels = params.anchors_per_scale, params.anchor_channels
    height, width = data.shape[1], data.shape[2]
    planes = data.reshape(per, k_channels, height * width)
    cells = np.arange(height * width)
    gx = (cells % width).astype(np.float32)
    gy = (cells // width).astype(np.float32)
    sxy = np.float32(params.scale_x_y[scale])
    half_excess = (sxy - np.float32(1)) * np.float32(0.5)
    fstride = np.float32(stride)
    for a, (anchor_w, anchor_h) in enumerate(params.scale_anchors(scale)):
        t = planes[a]
        objectness = _sigmoid(t[OBJECTNESS_CHANNEL])
        best, cls = ref.best_class(_sigmoid(t[CLASS_CHANNEL:]).T)
        score = (objectness * best).astype(np.float32)
        kept = ref.passes_threshold(cls, score, case.params) if keep else None
        cx = (((_sigmoid(t[0]) * sxy).astype(np.float32) - half_excess + gx).astype(np.float32) * fstride)
        cy = (((_sigmoid(t[1]) * sxy).astype(np.float32) - half_excess + gy).astype(np.float32) * fstride)
        w = (np.exp(t[2]) * np.float32(anchor_w)).astype(np.float32)
        h = (np.exp(t[3]) * np.float32(anchor_h)).astype(np.float32)
        if keep:
            kept &= ref.all_finite(cx, cy, w, h)
        x1, y1, x2, y2 = ref.corners_from_center(cx, cy, w, h)
        yield cls, score, x1, y1, x2, y2, kept


# -- Hypothesis strategy ----------------------------------------------------------------------

_QUANTUM = 64.0  # logits are multiples of 1/64: distinct values are far apart after sigmoid, ties exact


def _q(value: float) -> float:
    return round(value * _QUANTUM) / _QUANTUM if math.isfinite(value) else value


def _logit(low: float, high: float):
    return f32(low, high).map(_q)


_PLAN_KINDS = ["object", "object", "object", "tie", "nan-class", "inf", "huge", "edge", "nonfinite-box"]
# Strategies built once: Hypothesis re-validates every new strategy object, which dominates small draws.
_OBJECTNESS = _logit(-4, 12)
_CLASS = _logit(-4, 8)
_CENTRE = _logit(-6, 6)
_SIZE = _logit(-4, 4)
_WIDE = _logit(1, 4)
_SIGNED_INF = st.sampled_from([float("inf"), float("-inf")])
_NONFINITE = st.sampled_from([float("nan"), float("inf"), float("-inf")])
_HUGE = st.sampled_from([100.0, 1e4, 1e30, -100.0, 1e38])
_PUSHED = st.sampled_from([-8.0, 8.0])


@st.composite
def _plan(draw, scales: int, anchors: int, classes: int):
    """One anchor of one cell set by hand: (scale, anchor, cell seed, {channel: value})."""
    kind = draw(st.sampled_from(_PLAN_KINDS))
    scale = draw(st.integers(0, scales - 1))
    anchor = draw(st.integers(0, anchors - 1))
    cell = draw(st.integers(0, 63))
    cls = draw(st.integers(0, classes - 1))
    values = {OBJECTNESS_CHANNEL: draw(_OBJECTNESS), CLASS_CHANNEL + cls: draw(_CLASS),
              0: draw(_CENTRE), 1: draw(_CENTRE), 2: draw(_SIZE), 3: draw(_SIZE)}
    if kind == "tie":
        values[CLASS_CHANNEL + draw(st.integers(0, classes - 1))] = values[CLASS_CHANNEL + cls]
    elif kind == "nan-class":
        values[CLASS_CHANNEL + draw(st.integers(0, classes - 1))] = float("nan")
        values[CLASS_CHANNEL + cls] = draw(_CLASS)
    elif kind == "inf":
        values[draw(st.sampled_from([OBJECTNESS_CHANNEL, CLASS_CHANNEL + cls, 0, 1]))] = draw(_SIGNED_INF)
    elif kind == "huge":  # exp overflows to inf (dropped), or underflows to a zero-size box (dropped)
        values[draw(st.sampled_from([2, 3]))] = draw(_HUGE)
    elif kind == "edge":  # a cell on the border, centre pushed out, a box wider than the cell
        cell = draw(st.sampled_from([0, 63]))
        values[0], values[1] = draw(_PUSHED), draw(_PUSHED)
        values[2], values[3] = draw(_WIDE), draw(_WIDE)
    elif kind == "nonfinite-box":
        values[draw(st.integers(0, 3))] = draw(_NONFINITE)
    return scale, anchor, cell, values


@functools.lru_cache(maxsize=32)
def _plans(scales: int, anchors: int, classes: int, max_plans: int):
    return st.lists(_plan(scales, anchors, classes), max_size=max_plans)


def _nudge(arrays: list[np.ndarray], dtype, params: DarknetParams, network: NetworkInfo, det_params) -> None:
    """Move every candidate whose outcome could differ by one ulp between NumPy's float32 exp and the
    C++ std::exp away from the edge: a score within 1e-4 (relative) of its class threshold, or a clipped
    box within 1e-3 px of the 1-pixel minimum. Its objectness becomes -inf (score 0: clearly dropped)."""
    probe = ParserCase((), network, det_params)
    table = ref.threshold_of(np.arange(params.num_classes), det_params)
    with np.errstate(all="ignore"):
        for k, (array, stride) in enumerate(zip(arrays, params.strides)):
            data = array.astype(np.float32).reshape(params.channels, network.height // stride, network.width // stride)
            for a, (cls, score, x1, y1, x2, y2, _keep) in enumerate(
                    decode_scale(data, k, stride, params, probe, keep=False)):
                threshold = table[cls]
                near = np.isfinite(score) & (threshold > 0) & (np.abs(score - threshold) <= np.float32(1e-4) * threshold)
                cw = np.clip(x2, 0, np.float32(network.width)) - np.clip(x1, 0, np.float32(network.width))
                ch = np.clip(y2, 0, np.float32(network.height)) - np.clip(y1, 0, np.float32(network.height))
                near |= (np.abs(cw - 1) <= 1e-3) | (np.abs(ch - 1) <= 1e-3)
                planes = array.reshape(params.anchors_per_scale, params.anchor_channels, -1)
                planes[a, OBJECTNESS_CHANNEL, near] = -np.inf


@st.composite
def _cases(draw, params: DarknetParams, max_plans: int = 12) -> ParserCase:
    base = math.lcm(*params.strides)
    limit = max(1, (8 * min(params.strides)) // base)  # the finest grid stays within 8x8 cells
    network = NetworkInfo(base * draw(st.integers(1, limit)), base * draw(st.integers(1, limit)))
    det_params = draw(detection_params(params.num_classes))
    dtype = draw(float_dtypes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    per, channels = params.anchors_per_scale, params.anchor_channels
    arrays = []
    for stride in params.strides:
        width, height = network.width // stride, network.height // stride
        data = np.empty((per, channels, height * width), np.float32)
        data[:, 0:2] = rng.uniform(-4, 4, (per, 2, height * width))
        data[:, 2:4] = rng.uniform(-3, 3, (per, 2, height * width))
        data[:, OBJECTNESS_CHANNEL] = rng.uniform(-12, -3, (per, height * width))
        data[:, CLASS_CHANNEL:] = rng.uniform(-10, 0, (per, params.num_classes, height * width))
        arrays.append(np.round(data * _QUANTUM) / _QUANTUM)
    for scale, anchor, cell, values in draw(_plans(params.num_scales, params.anchors_per_scale,
                                                   params.num_classes, max_plans)):
        target = arrays[scale]
        cell = min(cell, target.shape[2] - 1)
        for channel, value in values.items():
            target[anchor, channel, cell] = value
    with np.errstate(over="ignore"):  # huge float32 logits become inf in float16, as a real FP16 engine would
        arrays = [a.astype(dtype) for a in arrays]
    _nudge(arrays, dtype, params, network, det_params)
    layers = []
    for k, (array, stride) in enumerate(zip(arrays, params.strides)):
        name = draw(st.sampled_from([params.output_names[k], params.output_names[k], f"engine_output_{k}"]))
        shaped = array.reshape(params.channels, network.height // stride, network.width // stride)
        layers.append(Layer(name, np.ascontiguousarray(shaped)))
    order = draw(st.permutations(range(len(layers))))
    layers = [layers[i] for i in order]
    if draw(st.integers(0, 4)) == 0:  # an unrelated binding (e.g. an auxiliary output) among the head's
        layers.insert(draw(st.integers(0, len(layers))), Layer("aux", np.zeros((2, 3), np.float32)))
    return ParserCase(tuple(layers), network, det_params)


@dsparsers.hookimpl
def register_architectures(register):
    register(DarknetYolo())
