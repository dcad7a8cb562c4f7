"""CenterNet ("Objects as Points", ctdet) heatmap heads, as a third-party dsparsers plugin.

The head is three outputs at a quarter of the input resolution (down ratio 4):

- ``hm`` [B, C, H/4, W/4]: one centre heatmap per class. CenterNet's own model returns it BEFORE the
  sigmoid (its detector applies ``sigmoid_()`` after the forward pass); exporters that append a
  Sigmoid node give probabilities. ``-O sigmoid=applied|logits`` says which; with a model, a Sigmoid
  node feeding the output decides.
- ``wh`` [B, 2, H/4, W/4]: box width and height in output-grid cells;
- ``reg`` [B, 2, H/4, W/4]: the sub-cell offset of the centre.

Decoding follows ctdet_decode: peaks are cells equal to the 3x3 max-pool of their class plane
(padding 1), centre = (x + reg_x, y + reg_y) * 4, size = wh * 4. The parser keeps every peak above
its class threshold (CenterNet's top-100 cut is left to nvinfer's ``topk``), so nvinfer must not
cluster: cluster-mode=4.

This module is what dsparsers loads to list and generate: the matcher, the parameters, the template
context, the config defaults and the hooks. It imports neither NumPy nor Hypothesis, so ``dsparsers
plugins`` and ``dsparsers generate`` stay fast and load none of the verification dependencies. That side
(reference decoder, Hypothesis strategy, benchmark frame, explain) is in ``reference.py``, which the
``CenterNet`` methods of the same names import on first use.

Only dsparsers' public API is used (``from dsparsers import ...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dsparsers
from dsparsers import COCO80, Architecture, ConfigDefaults, GenerateOptions, HeadParams, Match, UsageError

if TYPE_CHECKING:  # names for annotations only: the model reader and the ABI types import NumPy
    from types import ModuleType

    from dsparsers import ModelInfo, ParseOutcome, ParserCase, TensorInfo


TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

ROLES = ("heatmap", "wh", "reg")
#: names each output goes by: CenterNet's head names (hm, wh, reg), then the long form
KNOWN_NAMES = {"heatmap": ("hm", "heatmap"), "wh": ("wh",), "reg": ("reg",)}
SIGMOID = ("applied", "logits")
DOWN_RATIO = 4  # CenterNet's --down_ratio default; every ctdet backbone (DLA-34, ResNet, Hourglass) uses it
DEFAULT_INPUT = (512, 512)  # CenterNet's COCO default_resolution
DEFAULT_TOP_K = 100  # CenterNet's --K: "max number of output objects"

# CenterNet's COCO normalisation, applied to OpenCV (BGR) images: (x / 255 - mean) / std, per channel.
COCO_MEAN = (0.40789654, 0.44719302, 0.47026115)
COCO_STD = (0.28863828, 0.27408164, 0.27809835)


@dataclass(frozen=True)
class CenterNetParams(HeadParams):
    heatmap_name: str = "hm"
    wh_name: str = "wh"
    reg_name: str = "reg"
    sigmoid: str = "applied"
    down_ratio: int = DOWN_RATIO
    grid_width: int | None = None
    grid_height: int | None = None

    def names(self, role: str) -> tuple[str, ...]:
        """Names the parser tries for ``role``, in order: the model's own first."""
        own = getattr(self, f"{role}_name")
        return (own,) + tuple(n for n in KNOWN_NAMES[role] if n != own)


def _roles(model: ModelInfo) -> tuple[dict[str, TensorInfo], str] | None:
    """role -> output tensor, and how they were found ("names" or "shapes")."""
    found: dict[str, TensorInfo] = {}
    for role, names in KNOWN_NAMES.items():
        for name in names:
            tensor = model.output(name)
            if tensor is not None:
                found[role] = tensor
                break
    if len(found) == 3:
        return found, "names"
    rank4 = [t for t in model.outputs if t.rank == 4 and t.dtype.startswith("float")]
    if len(model.outputs) != 3 or len(rank4) != 3:
        return None
    pairs = [t for t in rank4 if t.dim(1) == 2]
    others = [t for t in rank4 if t.dim(1) != 2]
    if len(pairs) != 2 or len(others) != 1:
        return None
    # CenterNet's heads dict order: hm, wh, reg
    return {"heatmap": others[0], "wh": pairs[0], "reg": pairs[1]}, "shapes"


def _grid(roles: dict[str, TensorInfo]) -> tuple[int | None, int | None]:
    heatmap = roles["heatmap"]
    return heatmap.dim(3), heatmap.dim(2)


def _sigmoid_in_graph(model: ModelInfo, heatmap: TensorInfo) -> bool:
    return "Sigmoid" in model.upstream_ops(heatmap.name, depth=2)



class CenterNet(Architecture):
    name = "centernet"
    aliases = ("centernet-heatmap", "ctdet", "objects-as-points")
    summary = "CenterNet (Objects as Points) ctdet head: class heatmaps, size and offset maps at 1/4 resolution"
    head = "hm [B, C, H/4, W/4] heatmap (sigmoid applied or logits), wh [B, 2, H/4, W/4] size, reg [B, 2, H/4, W/4] offset"
    template = "centernet.cpp.j2"
    params_type = CenterNetParams
    options = {"sigmoid": "applied (the export ends in a Sigmoid) or logits (CenterNet's raw model output: "
                          "the parser applies the sigmoid); read from the graph when a model is given"}
    # CenterNet's detector: cv2 images (BGR), (x / 255 - mean) / std with the COCO mean/std above, an affine
    # warp that keeps the aspect ratio and centres the image (fix_res, 512x512). nvinfer has one
    # net-scale-factor for all channels: offsets = 255 * mean (per channel, BGR order), scale =
    # 1 / (255 * mean(std)) -- per-channel std differs by at most 3 % from that.
    config_defaults = ConfigDefaults(
        cluster_mode=4,
        why_cluster_mode="none: CenterNet's detections are heatmap peaks (3x3 local maxima), which replace NMS; "
                         "topk keeps the best per class, like CenterNet's top-100",
        net_scale_factor=round(1.0 / (255.0 * (sum(COCO_STD) / 3.0)), 7),
        offsets=tuple(round(255.0 * m, 3) for m in COCO_MEAN),
        model_color_format=1,
        maintain_aspect_ratio=True,
        symmetric_padding=True,
        why_preprocessing="CenterNet: BGR (OpenCV) images, (x/255 - mean)/std with COCO mean (0.408, 0.447, 0.470) "
                          "and std (0.289, 0.274, 0.278), averaged into one scale; aspect kept, image centred",
        pre_cluster_threshold=0.3,  # CenterNet's --vis_thresh default
        nms_iou_threshold=0.5,  # unused with cluster-mode=4
        topk=DEFAULT_TOP_K,
    )

    # -- recognising the head ---------------------------------------------------------------
    def match(self, model: ModelInfo) -> Match | None:
        found = _roles(model)
        if found is None:
            return None
        roles, how = found
        heatmap, wh, reg = (roles[r] for r in ROLES)
        text = ", ".join(f"{t.name} {t.shape_text()}" for t in (heatmap, wh, reg))
        if any(t.rank != 4 for t in (heatmap, wh, reg)):
            return Match(0.0, f"{text}: CenterNet's outputs are 4-D [B, C, H, W]")
        if wh.dim(1) not in (None, 2) or reg.dim(1) not in (None, 2):
            return Match(0.0, f"{text}: wh and reg must have 2 channels")
        if any(t.dim(k) != heatmap.dim(k) for t in (wh, reg) for k in (2, 3)):
            return Match(0.0, f"{text}: the three maps differ in H or W")
        why = [f"{text}: class heatmap, size and offset maps"]
        score = 0.85 if how == "names" else 0.5
        why.append("named hm/wh/reg as CenterNet names its heads" if how == "names" else "recognised by shape only")
        grid_w, grid_h = _grid(roles)
        size = model.input_size
        if size and grid_w and grid_h:
            if size == (DOWN_RATIO * grid_w, DOWN_RATIO * grid_h):
                score += 0.1
                why.append(f"input {size[0]}x{size[1]} = 4 x the {grid_w}x{grid_h} grid (down ratio 4)")
            else:
                score -= 0.3
                why.append(f"but input {size[0]}x{size[1]} is not 4 x the {grid_w}x{grid_h} grid")
        why.append("Sigmoid before the heatmap" if _sigmoid_in_graph(model, heatmap) else "heatmap logits (no Sigmoid)")
        return Match(round(max(0.0, min(score, 1.0)), 2), "; ".join(why))

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> CenterNetParams:
        options.check_extra(self)
        sigmoid = options.extra.get("sigmoid")
        if sigmoid is not None and sigmoid not in SIGMOID:
            raise UsageError(f"-O sigmoid={sigmoid}: expected one of {', '.join(SIGMOID)}")
        if model is None:
            num_classes = options.num_classes or 80
            width, height = options.input_size or DEFAULT_INPUT
            return CenterNetParams(num_classes, width, height, COCO80 if num_classes == 80 else None,
                                   sigmoid=sigmoid or "applied", grid_width=width // DOWN_RATIO,
                                   grid_height=height // DOWN_RATIO)
        found = _roles(model)
        if found is None:
            listed = ", ".join(f"{t.name} {t.shape_text()}" for t in model.outputs)
            raise UsageError(f"{model.path}: centernet needs outputs hm [B, C, H, W], wh [B, 2, H, W] and "
                             f"reg [B, 2, H, W]; the model has {listed}")
        roles, _ = found
        channels = roles["heatmap"].dim(1)
        if options.num_classes and channels and options.num_classes != channels:
            raise UsageError(f"--classes {options.num_classes}: the heatmap {roles['heatmap'].name} has {channels} channels")
        num_classes = channels or options.num_classes
        if not num_classes:
            raise UsageError(f"{model.path}: the heatmap's channel count is not fixed in the model: give --classes C")
        grid_w, grid_h = _grid(roles)
        size = model.input_size or options.input_size
        if size is None:
            size = (DOWN_RATIO * grid_w, DOWN_RATIO * grid_h) if grid_w and grid_h else DEFAULT_INPUT
        down = DOWN_RATIO
        if grid_w and grid_h:
            if size[0] % grid_w or size[1] % grid_h or size[0] // grid_w != size[1] // grid_h:
                raise UsageError(f"{model.path}: input {size[0]}x{size[1]} is not a whole multiple of the "
                                 f"{grid_w}x{grid_h} output grid")
            down = size[0] // grid_w
        names = model.class_names
        return CenterNetParams(
            num_classes, size[0], size[1], tuple(names) if names and len(names) == num_classes else None,
            roles["heatmap"].name, roles["wh"].name, roles["reg"].name,
            sigmoid or ("applied" if _sigmoid_in_graph(model, roles["heatmap"]) else "logits"),
            down, grid_w, grid_h)

    def describe(self, params: CenterNetParams) -> str:
        grid = (f"{params.grid_height}, {params.grid_width}" if params.grid_width and params.grid_height
                else "H/4, W/4")
        return (f"{params.heatmap_name} [{params.num_classes}, {grid}] heatmap ({params.sigmoid}), "
                f"{params.wh_name} [2, {grid}], {params.reg_name} [2, {grid}], {params.num_classes} classes, "
                f"{params.input_width}x{params.input_height} input, down ratio {params.down_ratio}")

    # -- generation -------------------------------------------------------------------------
    def template_context(self, params: CenterNetParams) -> dict[str, Any]:
        return {"num_classes": params.num_classes, "down_ratio": int(params.down_ratio),
                "logits": params.sigmoid == "logits",
                "names": {role: list(params.names(role)) for role in ROLES}}

    # -- verification: reference.py (NumPy, Hypothesis), imported on first use --------------
    def reference(self, case: ParserCase, params: CenterNetParams) -> ParseOutcome:
        return _verification().reference(case, params)

    def strategy(self, params: CenterNetParams):
        return _verification().cases(params)

    def bench_case(self, params: CenterNetParams, density: float, rng) -> ParserCase:
        return _verification().bench_case(params, density, rng)

    def explain(self, case: ParserCase, params: CenterNetParams) -> list[dict[str, Any]]:
        return _verification().explain(case, params)


def _verification() -> ModuleType:
    """dsparsers_centernet.reference, imported when a reference, strategy, bench frame or explanation is asked for."""
    from dsparsers_centernet import reference

    return reference


@dsparsers.hookimpl
def register_architectures(register):
    register(CenterNet())


@dsparsers.hookimpl
def template_dirs():
    return [TEMPLATE_DIR]
