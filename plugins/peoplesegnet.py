"""PeopleSegNet / TAO Mask R-CNN: boxes and per-class 28x28 instance masks (an instance-mask parser).

The exported model ends in two outputs:

- ``generate_detections`` [B, N, 6] FLOAT: per detection y1, x1, y2, x2 in network pixels, the class id
  (as a float) and the score; the model already ran NMS (N = its detection count, 100 for PeopleSegNet);
- ``mask_fcn_logits/BiasAdd`` [B, N, C, M, M] FLOAT: per detection and per class an M x M mask (M = 28)
  covering the detection's box. C is the MODEL's class count, background included (TAO Mask R-CNN
  counts categories + 1; PeopleSegNet has C = 2: background, person).

The mask of detection i is the slice [i, class_i], indexed with the model's C (the mask tensor's dims,
fixed at generation), never with num-detected-classes: a config whose class count differs from the
model's must not shift every slice. Class ids are accepted as ``class_from_float`` decides (finite,
>= 0, below C and num-detected-classes).

Masks: the slice is resampled bilinearly (half-pixel centres, clamped edges) from the detection's own
box onto the box clipped to the network, at ``-O mask_size=WxH`` (default M x M): nvdsosd stretches a
mask over its object's (clipped) rectangle, so the mask must cover exactly that rectangle. For a box
inside the network this is an identity resampling (up to rounding).

Logits or probabilities (an explicit choice): nvdsosd draws the mask pixels above the config's
segmentation-threshold, a probability (0.5) in the configs DeepStream ships, and TAO's mask output is
the logits of the last convolution (its name says BiasAdd). So the parser applies the sigmoid per
mask pixel by default; when the graph already ends the mask branch in a Sigmoid (the producer of the
mask output, looking through layout-only ops such as Reshape), it does not, since the values are
probabilities already. ``-O mask_activation=sigmoid|none`` overrides either. The decision and why are
in ``describe()`` (the generated files' head line) and in the config's segmentation-threshold comment.

Layers are found by name (the model's own, then TAO's), else the detections are the first [N, 6] layer
and the masks the first [N, C, M, M] layer (engine binding order and names can differ).

The reference decoder, strategy, bench case and explain rows are in ``peoplesegnet_reference`` (NumPy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import dsparsers
from dsparsers import Architecture, ConfigDefaults, GenerateOptions, HeadParams, Match, RoleNames, UsageError

if TYPE_CHECKING:
    from dsparsers import ModelInfo, ParseOutcome, ParserCase, TensorInfo

ROLES = ("detections", "masks")
#: the names TAO's exporter gives the two outputs (TensorFlow-style ":0" suffix tolerated)
KNOWN_NAMES = {
    "detections": ("generate_detections", "generate_detections:0"),
    "masks": ("mask_fcn_logits/BiasAdd", "mask_fcn_logits/BiasAdd:0"),
}
ROW = 6  # y1, x1, y2, x2, class, score
ACTIVATIONS = {"sigmoid": "the parser applies the sigmoid to each mask pixel (the model outputs logits)",
               "none": "mask values are passed on as the model outputs them"}
#: ops that only move or relabel data: a Sigmoid behind them still ends the mask branch
LAYOUT_OPS = ("Reshape", "Transpose", "Identity", "Squeeze", "Unsqueeze", "Flatten", "Cast")
MAX_MASK_SIDE = 2048  # dsparsers::kMaxMaskSide (mask_support.h)
# deepstream_tao_apps configs/nvinfer/peopleSegNet_tao/pgie_peopleSegNet_tao_config.txt (and the v2 one):
# infer-dims=3;576;960, num-detected-classes=2, net-scale-factor=0.017507, offsets=123.675;116.280;103.53,
# model-color-format=0, no maintain-aspect-ratio / symmetric-padding lines (nvinfer's default 0: the
# frame is stretched), cluster-mode=4, output-instance-mask=1, pre-cluster-threshold=0.8.
DEFAULT_INPUT = (960, 576)
DEFAULT_DETECTIONS = 100
DEFAULT_CLASSES = 2
DEFAULT_MASK_RESOLUTION = 28
PEOPLESEGNET_LABELS = ("background", "person")

WHY_THRESHOLD_SIGMOID = ("masks are probabilities: the parser applies the sigmoid to the model's mask logits, "
                         "and nvdsosd draws the pixels above this value")
WHY_THRESHOLD_GRAPH = ("masks are probabilities: the model's mask branch ends in a Sigmoid (the parser passes the "
                       "values on), and nvdsosd draws the pixels above this value")
WHY_THRESHOLD_NONE = ("-O mask_activation=none: masks are passed on as the model outputs them; if they are logits, "
                      "0.5 here means probability 0.62 (set 0.0 for probability 0.5)")


@dataclass(frozen=True)
class PeopleSegNetParams(RoleNames, HeadParams):
    #: N: detections per frame in the model (informational: the parser reads N from the dims)
    detections: int = DEFAULT_DETECTIONS
    #: M: the side of the model's square masks
    mask_resolution: int = DEFAULT_MASK_RESOLUTION
    #: the masks the parser outputs (-O mask_size=WxH; default M x M)
    mask_width: int = DEFAULT_MASK_RESOLUTION
    mask_height: int = DEFAULT_MASK_RESOLUTION
    #: "sigmoid" (the parser applies it) or "none" (values passed on)
    mask_activation: str = "sigmoid"
    #: how the activation was decided: "option", "graph-sigmoid", "graph-logits" or "canonical"
    activation_source: str = "canonical"
    detections_name: str = KNOWN_NAMES["detections"][0]
    masks_name: str = KNOWN_NAMES["masks"][0]

    known_names = KNOWN_NAMES


# -- recognising the head -------------------------------------------------------------------------
def _fits_detections(t: TensorInfo) -> bool:
    return t.rank == 3 and t.dim(2) == ROW


def _fits_masks(t: TensorInfo) -> bool:
    return t.rank == 5 and t.dim(3) is not None and t.dim(3) == t.dim(4)


def _heads(model: ModelInfo) -> tuple[TensorInfo, TensorInfo] | None:
    """(detections, masks) outputs: by TAO's names when they fit, else the first of each shape."""
    found = []
    for role, fits in (("detections", _fits_detections), ("masks", _fits_masks)):
        named = [t for t in model.outputs if t.name in KNOWN_NAMES[role] and fits(t)]
        shaped = [t for t in model.outputs if fits(t)]
        if not (named or shaped):
            return None
        found.append((named or shaped)[0])
    return found[0], found[1]


def _mask_branch_ends_in_sigmoid(model: ModelInfo, masks: TensorInfo) -> tuple[bool, str]:
    """Whether the op producing the mask output, looking through layout-only ops, is a Sigmoid; and
    the producer chain as read (for the reason shown to the user)."""
    chain: list[str] = []
    name = masks.name
    for _ in range(8):
        node = model.producers.get(name)
        if node is None:
            break
        chain.append(node.op_type)
        if node.op_type not in LAYOUT_OPS or not node.inputs:
            break
        name = node.inputs[0]
    return bool(chain) and chain[-1] == "Sigmoid", " <- ".join(chain) or "no producer in the graph"


def _parse_mask_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if match is None:
        raise UsageError(f"-O mask_size={text}: expected WxH, e.g. 56x56")
    width, height = int(match.group(1)), int(match.group(2))
    if not (1 <= width <= MAX_MASK_SIDE and 1 <= height <= MAX_MASK_SIDE):
        raise UsageError(f"-O mask_size={text}: each side must be 1 to {MAX_MASK_SIDE}")
    return width, height


class PeopleSegNet(Architecture):
    name = "peoplesegnet"
    aliases = ("mask-rcnn-tao", "tao-mask-rcnn", "mrcnn", "tao-mrcnn", "peoplesegnet-v2")
    summary = ("TAO Mask R-CNN instance segmentation (PeopleSegNet): detections after NMS and a 28x28 mask per "
               "detection and class")
    head = ("generate_detections [B, N, 6] y1 x1 y2 x2 (pixels), class, score and mask_fcn_logits/BiasAdd "
            "[B, N, C, M, M] (M = 28, C with background)")
    template = "peoplesegnet.cpp.j2"
    parser_kind = "instance-mask"
    options = {
        "mask_activation": "sigmoid (the parser turns mask logits into probabilities; the default unless the graph's "
                           "mask branch ends in a Sigmoid) or none (values passed on as the model outputs them)",
        "mask_size": "WxH of the masks the parser outputs (default M x M, the model's 28x28)",
    }
    params_type = PeopleSegNetParams
    config_defaults = ConfigDefaults(
        network_type=3,
        cluster_mode=4,
        why_cluster_mode="none: Mask R-CNN ran NMS in the model, and nvinfer attaches instance masks only with "
                         "cluster-mode=4",
        net_scale_factor=0.017507,
        offsets=(123.675, 116.28, 103.53),
        model_color_format=0,
        maintain_aspect_ratio=False,
        symmetric_padding=False,
        why_preprocessing="PeopleSegNet as deepstream_tao_apps runs it (pgie_peopleSegNet_tao_config): RGB, ImageNet "
                          "means, scale 0.017507, no maintain-aspect-ratio line, so the frame is stretched",
        pre_cluster_threshold=0.8,
        nms_iou_threshold=0.5,
        topk=DEFAULT_DETECTIONS,
        segmentation_threshold=0.5,
        why_segmentation_threshold=WHY_THRESHOLD_SIGMOID,
    )

    def defaults_for_params(self, params: PeopleSegNetParams, requested_as: str | None) -> ConfigDefaults:
        """The segmentation-threshold comment says what the mask values are for these params."""
        defaults = self.defaults_for(requested_as)
        if params.mask_activation == "none":
            why = WHY_THRESHOLD_GRAPH if params.activation_source == "graph-sigmoid" else WHY_THRESHOLD_NONE
        else:
            why = WHY_THRESHOLD_SIGMOID
        return replace(defaults, why_segmentation_threshold=why)

    # -- recognising the head ---------------------------------------------------------------
    def match(self, model: ModelInfo) -> Match | None:
        heads = _heads(model)
        if heads is None:
            return None
        det, masks = heads
        why = [f"{det.name} {det.shape_text()} and {masks.name} {masks.shape_text()}: Mask R-CNN detections "
               "(y1 x1 y2 x2, class, score) and per-class square masks"]
        n_det, n_masks = det.dim(1), masks.dim(1)
        if n_det is not None and n_masks is not None and n_det != n_masks:
            return Match(0.0, why[0] + f"; but N differs ({n_det} detections, {n_masks} masks)")
        named = (det.name in KNOWN_NAMES["detections"]) + (masks.name in KNOWN_NAMES["masks"])
        if named == 2:
            score = 0.95
            why.append("named as TAO's Mask R-CNN exporter names them")
        elif named == 1:
            score = 0.8
            why.append("one output named as TAO's exporter names it")
        else:
            score = 0.6
            why.append("output names differ from TAO's (generate_detections, mask_fcn_logits/BiasAdd), "
                       "recognised by their shapes only")
        ends_in_sigmoid, chain = _mask_branch_ends_in_sigmoid(model, masks)
        why.append(f"mask branch {chain}: " + ("already probabilities (no sigmoid in the parser)" if ends_in_sigmoid
                                               else "logits (the parser applies the sigmoid)"))
        return Match(score, "; ".join(why))

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> PeopleSegNetParams:
        options.check_extra(self)
        forced = options.extra.get("mask_activation")
        if forced is not None and forced not in ACTIVATIONS:
            raise UsageError(f"-O mask_activation={forced}: expected one of {', '.join(ACTIVATIONS)}")
        size_text = options.extra.get("mask_size")
        mask_size = _parse_mask_size(size_text) if size_text is not None else None
        if model is None:
            num_classes = options.num_classes or DEFAULT_CLASSES
            width, height = options.input_size or DEFAULT_INPUT
            m = DEFAULT_MASK_RESOLUTION
            mask_w, mask_h = mask_size or (m, m)
            return PeopleSegNetParams(num_classes, width, height, _labels(None, num_classes), DEFAULT_DETECTIONS, m,
                                      mask_w, mask_h, forced or "sigmoid", "option" if forced else "canonical")
        heads = _heads(model)
        if heads is None:
            listed = ", ".join(f"{t.name} {t.shape_text()}" for t in model.outputs)
            raise UsageError(f"{model.path}: expected Mask R-CNN outputs generate_detections [B, N, 6] and "
                             f"mask_fcn_logits/BiasAdd [B, N, C, M, M]; found {listed}")
        det, masks = heads
        model_classes = masks.dim(2)
        if options.num_classes and model_classes and options.num_classes != model_classes:
            raise UsageError(f"--classes {options.num_classes}: the model's mask output {masks.name} "
                             f"{masks.shape_text()} has C = {model_classes} class slices (background included)")
        num_classes = model_classes or options.num_classes
        if not num_classes:
            raise UsageError(f"{model.path}: the class count of {masks.name} {masks.shape_text()} is not fixed: "
                             "pass --classes (background included)")
        m = masks.dim(3)
        mask_w, mask_h = mask_size or (m, m)
        ends_in_sigmoid, _ = _mask_branch_ends_in_sigmoid(model, masks)
        if forced:
            activation, source = forced, "option"
        else:
            activation, source = ("none", "graph-sigmoid") if ends_in_sigmoid else ("sigmoid", "graph-logits")
        width, height = model.input_size or options.input_size or DEFAULT_INPUT
        return PeopleSegNetParams(num_classes, width, height, _labels(model.class_names, num_classes),
                                  det.dim(1) or masks.dim(1) or DEFAULT_DETECTIONS, m, mask_w, mask_h, activation,
                                  source, det.name, masks.name)

    def describe(self, params: PeopleSegNetParams) -> str:
        n, c, m = params.detections, params.num_classes, params.mask_resolution
        how = {
            "option": f"-O mask_activation={params.mask_activation}",
            "graph-sigmoid": "the graph ends the mask branch in a Sigmoid",
            "graph-logits": "the graph outputs mask logits",
            "canonical": "PeopleSegNet outputs logits",
        }[params.activation_source]
        what = "sigmoid in the parser" if params.mask_activation == "sigmoid" else "values passed on"
        return (f"masks {params.mask_width}x{params.mask_height}, {what} ({how}); {params.detections_name} [{n}, 6] + "
                f"{params.masks_name} [{n}, {c}, {m}, {m}], {c} classes with background, "
                f"{params.input_width}x{params.input_height} input")

    # -- generation -------------------------------------------------------------------------
    def template_context(self, params: PeopleSegNetParams) -> dict[str, Any]:
        return {"num_classes": params.num_classes, "mask_resolution": params.mask_resolution,
                "mask_width": params.mask_width, "mask_height": params.mask_height,
                "apply_sigmoid": params.mask_activation == "sigmoid",
                "names": {role: list(params.names(role)) for role in ROLES}}

    # -- the verification side (NumPy, Hypothesis): peoplesegnet_reference -------------------
    def reference(self, case: ParserCase, params: PeopleSegNetParams) -> ParseOutcome:
        from . import peoplesegnet_reference

        return peoplesegnet_reference.reference(case, params)

    def strategy(self, params: PeopleSegNetParams):
        from . import peoplesegnet_reference

        return peoplesegnet_reference.cases(params)

    def bench_case(self, params: PeopleSegNetParams, density: float, rng) -> ParserCase:
        from . import peoplesegnet_reference

        return peoplesegnet_reference.bench_case(params, density, rng)

    def explain(self, case: ParserCase, params: PeopleSegNetParams) -> list[dict[str, Any]]:
        from . import peoplesegnet_reference

        return peoplesegnet_reference.explain(case, params)


def _labels(names: list[str] | None, num_classes: int) -> tuple[str, ...]:
    """The model's class names when they cover C; else PeopleSegNet's for C = 2; else background first."""
    if names and len(names) == num_classes:
        return tuple(names)
    if num_classes == len(PEOPLESEGNET_LABELS):
        return PEOPLESEGNET_LABELS
    return ("background",)


@dsparsers.hookimpl
def register_architectures(register):
    register(PeopleSegNet())
