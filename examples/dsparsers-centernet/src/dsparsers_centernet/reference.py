"""The verification side of the CenterNet plugin: the NumPy reference decoder, the Hypothesis strategy,
the benchmark frame and the mismatch explanation.

``plugin.py`` (the matcher, parameters, template context and config) imports nothing of this: the
``CenterNet`` methods ``reference``, ``strategy``, ``bench_case`` and ``explain`` import this module
when they are first called. Loading the plugin, as ``dsparsers plugins`` and ``dsparsers generate`` do,
therefore needs neither NumPy nor Hypothesis; ``conform``, ``fuzz``, ``bench`` and the tests load them.

Only dsparsers' public API is used: the ABI data types, the NumPy reference helpers
(``dsparsers.reference``) and the Hypothesis building blocks (``dsparsers.strategies``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from dsparsers import DataType, DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase, strategies
from dsparsers import reference as ref
from dsparsers_centernet.plugin import ROLES, CenterNetParams


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


def find_layers(case: ParserCase, params: CenterNetParams) -> dict[str, Layer | None]:
    """Exactly the C++ lookup: each role by its names (name order, then layer order); the missing
    ones by shape, in role order, among the layers no role has taken."""
    return ref.find_roles(case.layers, {role: params.names(role) for role in ROLES}, {
        "heatmap": lambda layer: len(layer.reported_dims) == 3 and layer.reported_dims[0] == params.num_classes,
        "wh": lambda layer: len(layer.reported_dims) == 3 and layer.reported_dims[0] == 2,
        "reg": lambda layer: len(layer.reported_dims) == 3 and layer.reported_dims[0] == 2,
    })


def reference(case: ParserCase, params: CenterNetParams) -> ParseOutcome:
    """What a correct parser returns for ``case``: ctdet_decode in float32, in the C++'s order."""
    with np.errstate(all="ignore"):
        return _reference(case, params)


def _reference(case: ParserCase, params: CenterNetParams) -> ParseOutcome:
    found = find_layers(case, params)
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


def bench_case(params: CenterNetParams, density: float, rng) -> ParserCase:
    """A full-size frame for ``dsparsers bench``: a fraction ``density`` of the cells above 0.25."""
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


def explain(case: ParserCase, params: CenterNetParams) -> list[dict[str, Any]]:
    """The peaks and non-finite cells of ``case`` (up to 16), for mismatch reports."""
    found = find_layers(case, params)
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
def cases(draw, params: CenterNetParams) -> ParserCase:
    C = params.num_classes
    down = params.down_ratio
    grid_w, grid_h = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    det = draw(strategies.detection_params(C))
    network = draw(st.one_of(st.just(NetworkInfo(down * grid_w, down * grid_h)),
                             st.just(NetworkInfo(down * grid_w, down * grid_h)), strategies.networks))
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
            heat[c] = draw(st.one_of(st.just(float(det.precluster_threshold(c))), strategies.f32(0.0, 1.0)))
    wh = rng.uniform(0.25, 1.5 * max(grid_w, grid_h), (2, grid_h, grid_w)).astype(np.float32)
    reg = rng.uniform(0.0, 1.0, (2, grid_h, grid_w)).astype(np.float32)

    features = draw(st.lists(st.tuples(st.sampled_from(active), _cell(grid_w, grid_h), st.sampled_from(CELL_KINDS),
                                       st.sampled_from(BOX_KINDS)), max_size=8))
    for c, (x, y), kind, box in features:
        threshold = float(det.precluster_threshold(c))
        above = draw(strategies.f32(min(1.0, threshold), 1.0))
        neighbours = [(x + dx, y + dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                      if (dx or dy) and 0 <= x + dx < grid_w and 0 <= y + dy < grid_h]
        other = draw(st.sampled_from(neighbours)) if neighbours else None
        if kind == "above":
            heat[c, y, x] = above
        elif kind == "at":
            heat[c, y, x] = threshold
        elif kind == "below":
            heat[c, y, x] = draw(strategies.f32(0.0, max(0.0, threshold - 1e-3))) if threshold > 0 else -0.5
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
            wh[:, y, x] = draw(strategies.f32(0.0, 0.3)), draw(strategies.f32(0.0, 0.3))
        elif box == "negative":
            wh[draw(st.integers(0, 1)), y, x] = draw(strategies.f32(-5.0, 0.0))
        elif box == "huge":
            wh[:, y, x] = draw(strategies.f32(1e3, 3e38)), draw(strategies.f32(1e3, 3e38))
        elif box == "outside":
            reg[:, y, x] = draw(strategies.f32(-40.0, 40.0)), draw(strategies.f32(-40.0, 40.0))
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
    dtype = draw(strategies.float_dtypes)
    arrays = []
    with np.errstate(over="ignore"):
        for data in (heat, wh, reg):
            arrays.append(data.astype(draw(strategies.float_dtypes) if mixed else dtype))
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
