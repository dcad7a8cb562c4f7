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

Only dsparsers' public API is used: the Architecture contract, the hook markers, the NumPy reference
helpers (``dsparsers.api.reference``) and the Hypothesis building blocks (``dsparsers.verification.strategies``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

import dsparsers
from dsparsers.api import reference as ref
from dsparsers.api.architecture import Architecture, ConfigDefaults, GenerateOptions, HeadParams, Match
from dsparsers.emulation.datasets import COCO80
from dsparsers.errors import UsageError
from dsparsers.model.reader import ModelInfo, TensorInfo
from dsparsers.api.abi_types import DataType, DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase
from dsparsers.verification.strategies import detection_params, f32, float_dtypes, networks

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


def _sigmoid(values: np.ndarray) -> np.ndarray:
    """The C++ sigmoid: 1 / (1 + exp(-x)) in double, rounded to float."""
    with np.errstate(all="ignore"):
        return (1.0 / (1.0 + np.exp(-np.asarray(values, np.float64)))).astype(np.float32)


def peak_mask(plane: np.ndarray) -> np.ndarray:
    """Cells of one [H, W] class plane that no existing 3x3 neighbour exceeds (max-pool equality).

    A NaN cell is never a peak, and a NaN neighbour never blocks (NaN > v is false), exactly as the
    C++ compares. +-inf are ordinary values.
    """
    height, width = plane.shape
    padded = np.full((height + 2, width + 2), np.nan, np.float32)  # missing border neighbours never block
    padded[1:-1, 1:-1] = plane
    blocked = np.zeros(plane.shape, bool)
    with np.errstate(invalid="ignore"):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    blocked |= padded[1 + dy:1 + dy + height, 1 + dx:1 + dx + width] > plane
    return ~np.isnan(plane) & ~blocked


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

    # -- the reference ----------------------------------------------------------------------
    def find_layers(self, case: ParserCase, params: CenterNetParams) -> dict[str, Layer | None]:
        """Exactly the C++ lookup: each role by its names (name order, then layer order); the missing
        ones by shape, in role order, among the layers no role has taken."""
        found: dict[str, Layer | None] = {
            role: next((layer for name in params.names(role) for layer in case.layers if layer.name == name), None)
            for role in ROLES}
        shape_ok = {
            "heatmap": lambda d: len(d) == 3 and d[0] == params.num_classes,
            "wh": lambda d: len(d) == 3 and d[0] == 2,
            "reg": lambda d: len(d) == 3 and d[0] == 2,
        }
        for role in ROLES:
            if found[role] is None:
                found[role] = next((layer for layer in case.layers
                                    if not any(layer is other for other in found.values())
                                    and shape_ok[role](layer.reported_dims)), None)
        return found

    def reference(self, case: ParserCase, params: CenterNetParams) -> ParseOutcome:
        with np.errstate(all="ignore"):
            return self._reference(case, params)

    def _reference(self, case: ParserCase, params: CenterNetParams) -> ParseOutcome:
        found = self.find_layers(case, params)
        missing = [role for role in ROLES if found[role] is None]
        if missing:
            return ParseOutcome.rejected(f"missing {missing[0]}")
        dims = found["heatmap"].reported_dims
        if len(dims) != 3 or dims[0] != params.num_classes or dims[1] == 0 or dims[2] == 0:
            return ParseOutcome.rejected(f"heatmap dims {dims}")
        height, width = dims[1], dims[2]
        for role, channels in (("heatmap", params.num_classes), ("wh", 2), ("reg", 2)):
            layer = found[role]
            if layer.reported_dims != (channels, height, width):
                return ParseOutcome.rejected(f"{role} dims {layer.reported_dims}")
            if channels * height * width > 0xFFFFFFFF:
                return ParseOutcome.rejected(f"{role}: element count overflows")
            if layer.reported_type not in ref.FLOAT_TYPES:
                return ParseOutcome.rejected(f"{role} type {layer.reported_type.name}")
            if layer.data.nbytes == 0:
                return ParseOutcome.rejected(f"{role} has no buffer")
        heat = ref.layer_view(found["heatmap"])
        wh = ref.layer_view(found["wh"])
        reg = ref.layer_view(found["reg"])
        classes = min(params.num_classes, case.params.num_classes_configured)
        pieces = []
        for c in range(classes):
            plane = heat[c]
            peaks = peak_mask(plane)
            scores = _sigmoid(plane) if params.sigmoid == "logits" else plane
            keep = peaks & ref.passes_threshold(np.full(plane.shape, c, np.int64), scores, case.params)
            ys, xs = np.nonzero(keep)  # row-major, the C++ loop order (order does not matter to compare)
            if len(ys):
                pieces.append((c, ys, xs, scores[ys, xs]))
        if not pieces:
            return ParseOutcome(True)
        cls = np.concatenate([np.full(len(ys), c, np.int64) for c, ys, _, _ in pieces])
        ys = np.concatenate([p[1] for p in pieces])
        xs = np.concatenate([p[2] for p in pieces])
        score = np.concatenate([p[3] for p in pieces]).astype(np.float32)
        down = np.float32(params.down_ratio)
        cx = ((xs.astype(np.float32) + reg[0, ys, xs]) * down).astype(np.float32)
        cy = ((ys.astype(np.float32) + reg[1, ys, xs]) * down).astype(np.float32)
        half_w = ((wh[0, ys, xs] * down) * np.float32(0.5)).astype(np.float32)
        half_h = ((wh[1, ys, xs] * down) * np.float32(0.5)).astype(np.float32)
        x1, y1, x2, y2 = cx - half_w, cy - half_h, cx + half_w, cy + half_h
        finite = ref.all_finite(x1, y1, x2, y2)
        return ParseOutcome(True, ref.boxes_to_detections(x1[finite], y1[finite], x2[finite], y2[finite],
                                                          cls[finite], score[finite], case.network))

    # -- inputs -----------------------------------------------------------------------------
    def strategy(self, params: CenterNetParams):
        return _cases(params)

    def bench_case(self, params: CenterNetParams, density: float, rng) -> ParserCase:
        grid_w = params.grid_width or params.input_width // params.down_ratio
        grid_h = params.grid_height or params.input_height // params.down_ratio
        shape = (params.num_classes, grid_h, grid_w)
        heat = np.where(rng.random(shape) < density, rng.uniform(0.3, 1.0, shape),
                        rng.uniform(0.0, 0.05, shape)).astype(np.float32)
        if params.sigmoid == "logits":
            heat = np.log(heat / (1.0 - heat + 1e-6) + 1e-6).astype(np.float32)
        wh = rng.uniform(1.0, grid_w / 4, (2, grid_h, grid_w)).astype(np.float32)
        reg = rng.uniform(0.0, 1.0, (2, grid_h, grid_w)).astype(np.float32)
        layers = (Layer(params.heatmap_name, heat), Layer(params.wh_name, wh), Layer(params.reg_name, reg))
        return ParserCase(layers, NetworkInfo(params.input_width, params.input_height),
                          DetectionParams.uniform(params.num_classes, 0.25))

    def explain(self, case: ParserCase, params: CenterNetParams) -> list[dict[str, Any]]:
        found = self.find_layers(case, params)
        if any(found[r] is None for r in ROLES):
            return []
        dims = found["heatmap"].reported_dims
        if len(dims) != 3 or any(found[r].reported_dims != (d0, dims[1], dims[2])
                                 for r, d0 in (("heatmap", dims[0]), ("wh", 2), ("reg", 2))):
            return []
        heat, wh, reg = (ref.layer_view(found[r]) for r in ROLES)
        rows = []
        with np.errstate(all="ignore"):
            for c in range(heat.shape[0]):
                peaks = peak_mask(heat[c])
                for y, x in zip(*np.nonzero(peaks | ~np.isfinite(heat[c]))):
                    value = float(heat[c, y, x])
                    if np.isfinite(value) and value < 0:
                        continue
                    rows.append({"class": c, "x": int(x), "y": int(y), "value": value, "peak": bool(peaks[y, x]),
                                 "reg_x": float(reg[0, y, x]), "reg_y": float(reg[1, y, x]),
                                 "w": float(wh[0, y, x]), "h": float(wh[1, y, x])})
                    if len(rows) >= 16:
                        return rows
        return rows


# -- Hypothesis strategy ----------------------------------------------------------------------
CELL_KINDS = ("above", "above", "at", "below", "plateau", "beaten", "nan", "inf", "-inf", "nan-beside")
BOX_KINDS = ("normal", "normal", "normal", "tiny", "negative", "huge", "outside", "nonfinite")
HOSTILE = (None,) * 12 + ("wh-channels", "reg-grid", "heatmap-channels", "missing-reg", "int-type", "2-d")


@st.composite
def _cell(draw, grid_w: int, grid_h: int):
    """(x, y): borders and corners often."""
    x = draw(st.one_of(st.sampled_from([0, grid_w - 1]), st.integers(0, grid_w - 1)))
    y = draw(st.one_of(st.sampled_from([0, grid_h - 1]), st.integers(0, grid_h - 1)))
    return x, y


@st.composite
def _cases(draw, params: CenterNetParams) -> ParserCase:
    C = params.num_classes
    down = params.down_ratio
    grid_w, grid_h = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    det = draw(detection_params(C))
    network = draw(st.one_of(st.just(NetworkInfo(down * grid_w, down * grid_h)),
                             st.just(NetworkInfo(down * grid_w, down * grid_h)), networks))
    logits = params.sigmoid == "logits"
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)

    # Channels without drawn structure sit below every threshold (thresholds are >= 0), so that an
    # 80-class head stays a handful of objects per case; 1..5 active classes carry the structure.
    heat = rng.uniform(-0.05, -0.001, (C, grid_h, grid_w)).astype(np.float32)
    active = draw(st.lists(st.integers(0, C - 1), min_size=1, max_size=min(5, C), unique=True))
    for c in active:
        base = draw(st.sampled_from(["low", "random", "random", "flat", "negative"]))
        if base == "low":
            heat[c] = rng.uniform(0.0, 0.05, (grid_h, grid_w))
        elif base == "random":
            heat[c] = rng.uniform(0.0, 1.0, (grid_h, grid_w))
        elif base == "flat":  # a plateau: every cell equals its neighbourhood's max, so every cell is a peak
            heat[c] = draw(st.one_of(st.just(float(det.precluster_threshold(c))), f32(0.0, 1.0)))
    wh = rng.uniform(0.25, 1.5 * max(grid_w, grid_h), (2, grid_h, grid_w)).astype(np.float32)
    reg = rng.uniform(0.0, 1.0, (2, grid_h, grid_w)).astype(np.float32)

    features = draw(st.lists(st.tuples(st.sampled_from(active), _cell(grid_w, grid_h), st.sampled_from(CELL_KINDS),
                                       st.sampled_from(BOX_KINDS)), max_size=8))
    for c, (x, y), kind, box in features:
        threshold = float(det.precluster_threshold(c))
        above = draw(f32(min(1.0, threshold), 1.0))
        neighbours = [(x + dx, y + dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                      if (dx or dy) and 0 <= x + dx < grid_w and 0 <= y + dy < grid_h]
        other = draw(st.sampled_from(neighbours)) if neighbours else None
        if kind == "above":
            heat[c, y, x] = above
        elif kind == "at":
            heat[c, y, x] = threshold
        elif kind == "below":
            heat[c, y, x] = draw(f32(0.0, max(0.0, threshold - 1e-3))) if threshold > 0 else -0.5
        elif kind == "plateau":  # a tie between neighbours: both are peaks if nothing else beats them
            heat[c, y, x] = above
            if other:
                heat[c, other[1], other[0]] = above
        elif kind == "beaten":  # a neighbour one ulp higher: not a peak
            heat[c, y, x] = above
            if other:
                heat[c, other[1], other[0]] = np.nextafter(np.float32(above), np.float32(np.inf))
        elif kind == "nan":
            heat[c, y, x] = np.nan
        elif kind == "inf":
            heat[c, y, x] = np.inf
        elif kind == "-inf":
            heat[c, y, x] = -np.inf
        elif kind == "nan-beside":  # a NaN neighbour does not stop a peak
            heat[c, y, x] = above
            if other:
                heat[c, other[1], other[0]] = np.nan
        if box == "tiny":
            wh[:, y, x] = draw(f32(0.0, 0.3)), draw(f32(0.0, 0.3))
        elif box == "negative":
            wh[draw(st.integers(0, 1)), y, x] = draw(f32(-5.0, 0.0))
        elif box == "huge":
            wh[:, y, x] = draw(f32(1e3, 3e38)), draw(f32(1e3, 3e38))
        elif box == "outside":
            reg[:, y, x] = draw(f32(-40.0, 40.0)), draw(f32(-40.0, 40.0))
        elif box == "nonfinite":
            target = draw(st.sampled_from([wh, reg]))
            target[draw(st.integers(0, 1)), y, x] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if logits:  # the same structure as logits: probabilities p in (0, 1) map to log(p / (1 - p))
        with np.errstate(all="ignore"):
            squashed = np.clip(heat.astype(np.float64), 1e-6, 1 - 1e-6)
            mapped = np.log(squashed / (1.0 - squashed))
            heat = np.where(np.isfinite(heat) & (heat > 0) & (heat < 1), mapped,
                            np.where(heat <= 0, heat * 20.0 - 5.0, heat)).astype(np.float32)

    mixed = draw(st.sampled_from([False, False, False, True]))
    dtype = draw(float_dtypes)
    arrays = []
    with np.errstate(over="ignore"):
        for data in (heat, wh, reg):
            arrays.append(data.astype(draw(float_dtypes) if mixed else dtype))
    naming = draw(st.sampled_from(["own", "own", "known", "renamed"]))
    if naming == "own":
        names = [params.names(r)[0] for r in ROLES]
    elif naming == "known":
        names = [draw(st.sampled_from(params.names(r))) for r in ROLES]
    else:
        names = ["output_0", "output_1", "output_2"]
    layers = [Layer(n, a) for n, a in zip(names, arrays)]

    hostile = draw(st.sampled_from(HOSTILE))
    if hostile == "wh-channels":
        layers[1] = Layer(names[1], np.concatenate([arrays[1], arrays[1][:1]]))
    elif hostile == "reg-grid":
        layers[2] = Layer(names[2], np.concatenate([arrays[2], arrays[2][:, :1]], axis=1))
    elif hostile == "heatmap-channels":
        layers[0] = Layer(names[0], np.concatenate([arrays[0], arrays[0][:1]]))
    elif hostile == "missing-reg":
        layers.pop(2)
    elif hostile == "int-type":
        layers[2] = Layer(names[2], arrays[2].astype(np.float32), data_type=DataType.INT32)
    elif hostile == "2-d":
        layers[1] = Layer(names[1], arrays[1].reshape(2, -1))
    layers = draw(st.permutations(layers))
    return ParserCase(tuple(layers), network, det)


@dsparsers.hookimpl
def register_architectures(register):
    register(CenterNet())


@dsparsers.hookimpl
def template_dirs():
    return [TEMPLATE_DIR]
