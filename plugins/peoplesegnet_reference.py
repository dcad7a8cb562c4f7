"""peoplesegnet's verification side: the NumPy reference decoder, the Hypothesis strategy, the bench case
and the explain rows (``plugins/peoplesegnet.py`` imports this module only when one of them runs)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from dsparsers import DETECTION_DTYPE, DetectionParams, Layer, NetworkInfo, ParseOutcome, ParserCase
from dsparsers import reference as ref
from dsparsers import strategies as sts

from .peoplesegnet import ROLES, ROW, PeopleSegNetParams


def find_layers(case: ParserCase, params: PeopleSegNetParams) -> dict[str, Layer | None]:
    """Exactly the C++ lookup: each output by its names first, then by shape among the rest."""
    m = params.mask_resolution
    tests = {
        "detections": lambda l: len(l.reported_dims) == 2 and l.reported_dims[1] == ROW,
        "masks": lambda l: len(l.reported_dims) == 4 and tuple(l.reported_dims[1:]) == (params.num_classes, m, m),
    }
    return ref.find_roles(case.layers, {role: params.names(role) for role in ROLES}, tests)


def reference(case: ParserCase, params: PeopleSegNetParams) -> ParseOutcome:
    with np.errstate(all="ignore"):
        return _reference(case, params)


def _reference(case: ParserCase, params: PeopleSegNetParams) -> ParseOutcome:
    found = find_layers(case, params)
    det, masks = found["detections"], found["masks"]
    if det is None or masks is None:
        return ParseOutcome.rejected("missing layer", with_masks=True)
    dd, md = tuple(det.reported_dims), tuple(masks.reported_dims)
    if len(dd) != 2 or dd[1] != ROW or ref.element_count(dd) == 0:
        return ParseOutcome.rejected(f"bad detections dims {dd}", with_masks=True)
    n, c, m = dd[0], params.num_classes, params.mask_resolution
    if md != (n, c, m, m) or ref.element_count(md) == 0:
        return ParseOutcome.rejected(f"bad masks dims {md}", with_masks=True)
    if det.reported_type not in ref.FLOAT_TYPES or masks.reported_type not in ref.FLOAT_TYPES:
        return ParseOutcome.rejected("unsupported data type", with_masks=True)
    if det.data.nbytes == 0 or masks.data.nbytes == 0:
        return ParseOutcome.rejected("no buffer", with_masks=True)
    rows = ref.layer_view(det)
    y1, x1, y2, x2, class_value, score = (rows[:, k] for k in range(ROW))
    valid, cls = ref.class_ids_from_float(class_value, c, case.params.num_classes_configured)
    keep = valid & ref.passes_threshold(cls, score, case.params) & ref.all_finite(x1, y1, x2, y2)
    slices = ref.layer_view(masks)  # [N, C, M, M]: the slice of row i is [i, class_i], C the model's
    objects, mask_list = [], []
    for i in np.flatnonzero(keep):
        box = (x1[i], y1[i], x2[i], y2[i])
        clipped, kept = ref.clipped_box(*box, case.network)
        if not kept:
            continue
        cx1, cy1, cx2, cy2 = clipped
        objects.append((int(cls[i]), cx1, cy1, np.float32(cx2 - cx1), np.float32(cy2 - cy1), score[i], 0.0))
        mask_list.append(ref.resample_mask(slices[i, cls[i]], box, clipped, params.mask_width, params.mask_height,
                                           params.mask_activation == "sigmoid"))
    return ParseOutcome(True, np.array(objects, DETECTION_DTYPE), masks=tuple(mask_list))


def bench_case(params: PeopleSegNetParams, density: float, rng) -> ParserCase:
    """Full-size outputs: a fraction ``density`` of the N detections above 0.25 (at least one), the
    rest below it, boxes 8-200 px inside the network, random mask logits."""
    n, c, m = params.detections, params.num_classes, params.mask_resolution
    rows = np.zeros((n, 6), np.float32)
    y1 = rng.uniform(0, params.input_height - 200, n)
    x1 = rng.uniform(0, params.input_width - 200, n)
    rows[:, 0], rows[:, 1] = y1, x1
    rows[:, 2], rows[:, 3] = y1 + rng.uniform(8, 200, n), x1 + rng.uniform(8, 200, n)
    rows[:, 4] = rng.integers(0, c, n)
    rows[:, 5] = rng.uniform(0, 0.2, n)
    hits = rng.random(n) < density
    hits[0] = True
    rows[hits, 5] = rng.uniform(0.3, 1.0, int(hits.sum()))
    masks = rng.normal(0, 2, (n, c, m, m)).astype(np.float32)
    return ParserCase((Layer(params.detections_name, rows), Layer(params.masks_name, masks)),
                      NetworkInfo(params.input_width, params.input_height),
                      DetectionParams.uniform(c, 0.25))


def explain(case: ParserCase, params: PeopleSegNetParams) -> list[dict[str, Any]]:
    det = find_layers(case, params)["detections"]
    if det is None or len(det.reported_dims) != 2 or det.reported_dims[1] != ROW:
        return []
    try:
        with np.errstate(all="ignore"):
            rows = ref.layer_view(det)
        return [{"row": i, "y1": float(r[0]), "x1": float(r[1]), "y2": float(r[2]), "x2": float(r[3]),
                 "class (float)": float(r[4]), "score": float(r[5]), "mask slice": f"[{i}, {r[4]:g}]"}
                for i, r in enumerate(rows[:16])]
    except (ValueError, IndexError, TypeError):
        return []


# -- the strategy ---------------------------------------------------------------------------------
@st.composite
def _row(draw, params: PeopleSegNetParams, det: DetectionParams, network: NetworkInfo):
    """One detection row (y1, x1, y2, x2, class, score): boxes inside, straddling (clipped), outside,
    tiny, huge or non-finite; class ids valid or not; scores below, at or above threshold; or all NaN."""
    if draw(st.integers(0, 9)) == 0:
        return (float("nan"),) * ROW
    x1, y1, x2, y2 = draw(sts.corner_box(network))
    cls = draw(sts.float_class_id(params.num_classes))
    return (y1, x1, y2, x2, cls, draw(sts.plain_score(det, cls)))


@st.composite
def cases(draw, params: PeopleSegNetParams, max_rows: int = 10) -> ParserCase:
    network = draw(sts.networks)
    det = draw(sts.detection_params(params.num_classes))
    rows = draw(st.lists(_row(params, det, network), min_size=0, max_size=max_rows))
    n = draw(st.integers(max(1, len(rows)), max(1, len(rows)) + 3))  # the rest: zero rows (class 0, score 0)
    detections = np.zeros((n, ROW), np.float32)
    for i, row in enumerate(rows):
        detections[i] = row
    c, m = params.num_classes, params.mask_resolution
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 4.0, 30.0]))  # logits near 0 (masks cut at 0.5 in between) to saturated
    masks = (rng.standard_normal((n, c, m, m)) * scale).astype(np.float32)
    if draw(st.integers(0, 7)) == 0:  # an engine can write non-finite mask values: they stay where they fall
        # (+-inf only through the sigmoid: conformance.mask_agreement counts inf vs inf as a difference)
        bad = [np.nan, np.inf, -np.inf] if params.mask_activation == "sigmoid" else [np.nan]
        flat = masks.reshape(-1)
        flat[rng.integers(0, flat.size, 3)] = rng.choice(np.array(bad, np.float32), 3)
    with np.errstate(over="ignore"):
        detections = detections.astype(draw(st.sampled_from([np.float32, np.float16])))
        masks = masks.astype(draw(st.sampled_from([np.float32, np.float16])))
    renamed = draw(st.sampled_from([False, False, True]))
    names = ("engine_output_0", "engine_output_1") if renamed else (params.detections_name, params.masks_name)
    layers = [Layer(names[0], detections), Layer(names[1], masks)]
    if draw(st.booleans()):  # engine binding order need not be the export's
        layers.reverse()
    return ParserCase(tuple(layers), network, det)

