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

The NumPy reference decoder, Hypothesis strategy, bench case and ``explain`` are in
yolo_darknet_reference.py.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dsparsers
from dsparsers import COCO80, Architecture, ConfigDefaults, GenerateOptions, HeadParams, Match, UsageError

if TYPE_CHECKING:
    from dsparsers import ModelInfo, ParseOutcome, ParserCase, TensorInfo

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

    # -- verification (NumPy and Hypothesis: yolo_darknet_reference, imported when used) --------
    def reference(self, case: ParserCase, params: DarknetParams) -> ParseOutcome:
        from . import yolo_darknet_reference as reference

        return reference.reference(case, params)

    def strategy(self, params: DarknetParams):
        from . import yolo_darknet_reference as reference

        return reference.cases(params)

    def bench_case(self, params: DarknetParams, density: float, rng) -> ParserCase:
        """Full-size grids at the canonical input: a fraction ``density`` of the anchors score about 0.9
        (objectness and one class logit 3), the rest have objectness below 0.01."""
        from . import yolo_darknet_reference as reference

        return reference.bench_case(params, density, rng)

    def explain(self, case: ParserCase, params: DarknetParams) -> list[dict[str, Any]]:
        """The best-scoring anchors of each output the parser would read (at most 24 rows)."""
        from . import yolo_darknet_reference as reference

        return reference.explain(case, params)


def _float_literal(value: float) -> str:
    """A C++ float literal that parses to exactly float32(value), the value the reference uses (round to
    nearest even, as NumPy's float32 conversion; inf past the float range)."""
    try:
        rounded = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        rounded = math.copysign(math.inf, value)
    return f"{rounded!r}f"


@dsparsers.hookimpl
def register_architectures(register):
    register(DarknetYolo())
