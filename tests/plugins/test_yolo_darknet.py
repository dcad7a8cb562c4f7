"""Darknet YOLO grids (yolov3, yolov4, tiny): hand-computed cases against the built parser and the
reference decoder, output order and names, refusals, options, and the matcher on ONNX graphs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx_graphs import head_model

from dsparsers.api.architecture import GenerateOptions
from dsparsers.errors import UsageError
from dsparsers.model.reader import load_model
from dsparsers.api.abi_types import DataType, DetectionParams, Layer, NetworkInfo, ParserCase
from dsparsers.api.selection import choose
from parser_checks import objects, run_both

NAN, INF = float("nan"), float("inf")
LOGIT_09 = math.log(9.0)  # sigmoid(ln 9) = 0.9
SURE = 30.0  # sigmoid(30) is 1.0f exactly: exp(-30) vanishes next to 1
OFF = -30.0  # sigmoid(-30) ~ 1e-13: never above a threshold

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def grid(size, entries, *, classes=80, anchors=3, dtype=np.float32):
    """One output [A*(5+C), H, W]. entries: (anchor, gx, gy, {channel within the anchor: value});
    channel 0-3 tx ty tw th, 4 objectness, 5+c class c. Everything else: zero box logits, OFF scores."""
    width, height = size if isinstance(size, tuple) else (size, size)
    data = np.zeros((anchors, 5 + classes, height, width), np.float32)
    data[:, 4:] = OFF
    for anchor, gx, gy, values in entries:
        for channel, value in values.items():
            data[anchor, channel, gy, gx] = value
    return data.reshape(anchors * (5 + classes), height, width).astype(dtype)


def det(classes=80, threshold=0.25, configured=None, thresholds=None):
    configured = classes if configured is None else configured
    pre = tuple(thresholds) if thresholds is not None else (threshold,) * configured
    return DetectionParams(configured, pre, (0.0,) * configured)


def v3_layers(entries_by_stride, network=416, names=("output_0", "output_1", "output_2"), order=(0, 1, 2), **kw):
    """The three yolov3 outputs at strides 8/16/32 for a square network, in binding order ``order``."""
    layers = [Layer(names[k], grid(network // s, entries_by_stride.get(s, []), **kw)) for k, s in enumerate((8, 16, 32))]
    return tuple(layers[i] for i in order)


@pytest.fixture(scope="module")
def yolov3(open_parser):
    return open_parser("yolov3")


@pytest.fixture(scope="module")
def yolov4(open_parser):
    return open_parser("yolov4")


# -- decoding, worked out by hand -------------------------------------------------------------------

def test_yolov3_box_from_cell_anchor_and_logits(yolov3):
    # stride-32 output (13x13 at 416) uses mask 6,7,8: its anchor 1 is anchor 7 = 156 x 198.
    # tx = ty = 0: centre ((3 + 0.5) * 32, (5 + 0.5) * 32) = (112, 176); tw = th = 0: the anchor's size.
    entries = {32: [(1, 3, 5, {4: LOGIT_09, 5 + 2: SURE})]}
    got = run_both(yolov3, ParserCase(v3_layers(entries), NetworkInfo(416, 416), det()))
    assert got.accepted
    assert objects(got) == [(2, 112 - 78.0, 176 - 99.0, 156.0, 198.0, 0.9)]


def test_width_and_height_scale_with_exp_of_the_logits(yolov3):
    # stride 8 (52x52), anchor 2 of mask 0,1,2 = 33 x 23; tw = ln 2 doubles w, th = -ln 2 halves h.
    # sigmoid(tx) = 0.25 at tx = -ln 3: x = (0.25 + 10) * 8 = 82; ty = ln 3: y = (0.75 + 4) * 8 = 38.
    entries = {8: [(2, 10, 4, {0: -math.log(3), 1: math.log(3), 2: math.log(2), 3: -math.log(2), 4: SURE, 5: SURE})]}
    got = run_both(yolov3, ParserCase(v3_layers(entries), NetworkInfo(416, 416), det()))
    assert objects(got) == [(0, 82 - 33.0, 38 - 5.75, 66.0, 11.5, 1.0)]


def test_yolov4_scale_x_y_stretches_the_centre_beyond_the_cell(yolov3, yolov4):
    # stride 8: yolov4 uses sxy 1.2 and anchor 0 = 12 x 16. tx = +30 (sigmoid 1), ty = -30 (sigmoid 0):
    # x = (1 * 1.2 - 0.1 + 0) * 8 = 8.8 and y = (0 * 1.2 - 0.1 + 2) * 8 = 15.2 -- out of the cell by 0.1 cell.
    # w = 12: left 2.8, width 12; h = 16: top 7.2, height 16.
    entries = {8: [(0, 0, 2, {0: SURE, 1: -SURE, 4: SURE, 5 + 7: 0.0})]}  # class 7 sigmoid 0.5
    case = ParserCase(v3_layers(entries), NetworkInfo(416, 416), det())
    assert objects(run_both(yolov4, case)) == [(7, 2.8, 7.2, 12.0, 16.0, 0.5)]
    # yolov3 (sxy 1, anchor 10 x 13): x = 1 * 8 = 8, y = 2 * 8 = 16
    assert objects(run_both(yolov3, case)) == [(7, 3.0, 9.5, 10.0, 13.0, 0.5)]


def test_yolov4_scale_x_y_is_per_stride(yolov4):
    # stride 32 uses sxy 1.05: tx = +30 -> (1.05 - 0.025) * 32 = 32.8 in cell 0; anchor 0 of mask 6,7,8 = 142 x 110
    entries = {32: [(0, 0, 0, {0: SURE, 1: SURE, 4: SURE, 5: 0.0})]}
    got = run_both(yolov4, ParserCase(v3_layers(entries), NetworkInfo(416, 416), det()))
    assert objects(got) == [(0, 0.0, 0.0, round(32.8 + 71, 4), round(32.8 + 55, 4), 0.5)]


@pytest.mark.parametrize("alias, anchor", [("yolov4-tiny", (23.0, 27.0)), ("yolov3-tiny", (10.0, 14.0))])
def test_tiny_heads_have_two_outputs_and_their_own_masks(open_parser, alias, anchor):
    # 416: 26x26 at stride 16 and 13x13 at stride 32. yolov4-tiny's stride-16 mask is 1,2,3 (anchor 1 =
    # 23 x 27), yolov3-tiny's is 0,1,2 (anchor 0 = 10 x 14). tx = ty = 0: (1.5 * 16, 0.5 * 16) = (24, 8)
    # with either sxy (0.5 * 1.05 - 0.025 = 0.5).
    parser = open_parser(alias)
    assert parser[1].num_scales == 2
    aw, ah = anchor
    layers = (Layer("output_1", grid(13, [])), Layer("output_0", grid(26, [(0, 1, 0, {4: SURE, 5 + 79: 0.0})])))
    got = run_both(parser, ParserCase(layers, NetworkInfo(416, 416), det()))
    top = max(0.0, 8 - ah / 2)  # yolov4-tiny's 27 px anchor is clipped at the top edge
    assert objects(got) == [(79, 24 - aw / 2, top, aw, 8 + ah / 2 - top, 0.5)]
    # a third layer is ignored by a two-output parser
    extra = run_both(parser, ParserCase(layers + (Layer("output_2", grid(52, [])),), NetworkInfo(416, 416), det()))
    assert objects(extra) == objects(got)


def test_non_square_network(yolov3):
    # 640 x 384: grids 80x48, 40x24, 20x12; the stride is 16 both ways. Cell (39, 23) of stride 16 is the
    # bottom-right corner: centre (632, 376), anchor 0 of mask 3,4,5 = 30 x 61 straddles both edges.
    layers = (Layer("output_0", grid((80, 48), [])), Layer("output_1", grid((40, 24), [(0, 39, 23, {4: SURE, 5: 0.0})])),
              Layer("output_2", grid((20, 12), [])))
    got = run_both(yolov3, ParserCase(layers, NetworkInfo(640, 384), det()))
    assert objects(got) == [(0, 617.0, 345.5, 23.0, 38.5, 0.5)]


# -- outputs: names pick the layers, strides pick the anchors --------------------------------------

@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (2, 1, 0), (1, 2, 0)])
@pytest.mark.parametrize("names", [("output_0", "output_1", "output_2"), ("conv_82", "conv_94", "conv_106"),
                                   ("output_2", "output_1", "output_0")])
def test_binding_order_and_names_do_not_change_the_result(yolov3, order, names):
    entries = {32: [(1, 3, 5, {4: LOGIT_09, 5 + 2: SURE})], 8: [(0, 0, 0, {4: SURE, 5: SURE})]}
    got = run_both(yolov3, ParserCase(v3_layers(entries, names=names, order=order), NetworkInfo(416, 416), det()))
    assert sorted(objects(got)) == [(0, 0.0, 0.0, 9.0, 10.5, 1.0), (2, 34.0, 77.0, 156.0, 198.0, 0.9)]


def test_named_layers_win_over_earlier_layers_of_the_same_shape(yolov3):
    decoy = Layer("decoy", grid(13, [(0, 0, 0, {4: SURE, 5: SURE})]))  # would give an object if read
    layers = (decoy,) + v3_layers({32: [(1, 3, 5, {4: LOGIT_09, 5 + 2: SURE})]})
    got = run_both(yolov3, ParserCase(layers, NetworkInfo(416, 416), det()))
    assert objects(got) == [(2, 34.0, 77.0, 156.0, 198.0, 0.9)]


# -- scores and thresholds --------------------------------------------------------------------------

def test_thresholds_ties_nan_and_configured_classes(yolov3):
    entries = {16: [
        (0, 0, 0, {4: SURE, 5 + 3: 0.0, 5 + 9: 0.0}),          # tie at 0.5: class 3 wins
        (0, 1, 0, {4: SURE, 5 + 4: NAN, 5 + 6: LOGIT_09}),      # NaN never wins
        (0, 2, 0, {4: NAN, 5 + 1: SURE}),                       # NaN objectness: dropped
        (0, 3, 0, {4: SURE, 5 + 5: INF}),                       # +inf logit: sigmoid 1
        (0, 4, 0, {4: SURE, 5 + 0: 0.0}),                       # 0.5, class 0's threshold is 0.5: kept (>=)
        (0, 5, 0, {4: SURE, 5 + 50: -2.0}),                     # 0.119 < 0.25: dropped
        (0, 6, 0, {4: SURE, 5 + 79: SURE}),                     # class 79: beyond a short vector, 0.2 applies
    ]}
    thresholds = [0.5] + [0.25] * 9
    got = run_both(yolov3, ParserCase(v3_layers(entries), NetworkInfo(416, 416), det(thresholds=thresholds)))
    assert [(o[0], o[5]) for o in objects(got)] == [(3, 0.5), (6, 0.9), (5, 1.0), (0, 0.5), (79, 1.0)]
    few = run_both(yolov3, ParserCase(v3_layers(entries), NetworkInfo(416, 416), det(configured=6)))
    assert [o[0] for o in objects(few)] == [3, 5, 0]  # 6 and 79 are not configured


def test_only_the_logits_that_can_matter_are_evaluated_and_the_result_is_the_same(yolov3):
    """The parser gates objectness on its logit and evaluates only the class logits within 1 of the
    largest (when that one's probability is in (0.001, 0.999)). Cases at the edges of both shortcuts:
    saturated classes whose logits differ by 10 but share the probability 1.0f (the lower class wins),
    a best probability just above 0.999 (every class is compared), a runner-up 0.99 below the best, and
    objectness logits a few float steps either side of logit(0.25)."""
    gate = np.float32(math.log(1.0 / 3.0))  # sigmoid = 0.25 = the threshold
    steps = [gate]
    for _ in range(3):
        steps = [np.nextafter(steps[0], np.float32(-1))] + steps + [np.nextafter(steps[-1], np.float32(1))]
    entries = {16: [
        (0, 0, 0, {4: SURE, 5 + 7: 30.0, 5 + 3: 20.0}),              # both 1.0f: class 3
        (0, 1, 0, {4: SURE, 5 + 2: 7.0, 5 + 9: 6.95}),               # 0.99909 and 0.99904: class 2
        (0, 2, 0, {4: SURE, 5 + 8: 1.0, 5 + 4: 0.01, 5 + 5: 1.0}),  # 8 and 5 tie: the lower id, 5
        (0, 3, 0, {4: SURE, 5 + 6: -6.0, 5 + 1: -6.99}),             # best 0.00247: runner-up inside the window
    ] + [(1, k, 0, {4: float(v), 5 + 0: SURE}) for k, v in enumerate(steps)]}
    case = ParserCase(v3_layers(entries), NetworkInfo(416, 416), det(threshold=0.0024))
    got = objects(run_both(yolov3, case))
    assert [o[0] for o in got[:4]] == [3, 2, 5, 6]
    strict = objects(run_both(yolov3, ParserCase(v3_layers(entries), NetworkInfo(416, 416), det(threshold=0.25))))
    near_gate = [o for o in strict if o[0] == 0]
    assert 1 <= len(near_gate) <= len(steps)  # the reference decides which of the boundary logits pass


def test_nonfinite_and_overflowing_boxes_are_dropped(yolov3):
    entries = {16: [
        (0, 0, 0, {0: NAN, 4: SURE, 5: SURE}),
        (0, 1, 0, {2: 100.0, 4: SURE, 5: SURE}),   # exp(100) overflows float: w = inf
        (0, 2, 0, {3: INF, 4: SURE, 5: SURE}),
        (0, 3, 0, {2: -100.0, 4: SURE, 5: SURE}),  # w ~ 0: under one pixel
        (0, 4, 0, {0: -INF, 1: INF, 4: SURE, 5: SURE}),  # sigmoid(+-inf) is finite: kept
    ]}
    got = run_both(yolov3, ParserCase(v3_layers(entries), NetworkInfo(416, 416), det()))
    # the last: x = (0 + 4) * 16 = 64, y = (1 + 0) * 16 = 16; anchor 3 = 30 x 61, clipped at the top
    assert objects(got) == [(0, 49.0, 0.0, 30.0, 16 + 30.5, 1.0)]


def test_fp16_outputs(yolov3):
    entries = {32: [(1, 3, 5, {4: SURE, 5 + 2: 0.0})], 16: [(2, 7, 7, {4: SURE, 5 + 1: SURE})]}
    got = run_both(yolov3, ParserCase(v3_layers(entries, dtype=np.float16), NetworkInfo(416, 416), det()))
    assert objects(got) == [(1, 120 - 29.5, 120 - 59.5, 59.0, 119.0, 1.0), (2, 34.0, 77.0, 156.0, 198.0, 0.5)]
    mixed = v3_layers(entries)[:2] + (Layer("output_2", v3_layers(entries, dtype=np.float16)[2].data),)
    assert objects(run_both(yolov3, ParserCase(mixed, NetworkInfo(416, 416), det()))) == objects(got)


# -- refusals --------------------------------------------------------------------------------------

def _replace(layers, index, **changes):
    layer = layers[index]
    fields = {"name": layer.name, "data": layer.data, "dims": layer.dims, "data_type": layer.data_type, **changes}
    return layers[:index] + (Layer(**fields),) + layers[index + 1:]


BASE = v3_layers({8: [(0, 0, 0, {4: SURE, 5: SURE})]})
BUFFER = np.full(600_000, 0.5, np.float32)


@pytest.mark.parametrize("what, layers, network", [
    ("one class too many", _replace(BASE, 2, data=BUFFER, dims=(258, 13, 13)), (416, 416)),
    ("batch dim left in", _replace(BASE, 2, data=BUFFER, dims=(1, 255, 13, 13)), (416, 416)),
    ("numDims 2", _replace(BASE, 2, data=BUFFER, dims=(255, 169)), (416, 416)),
    ("empty grid", _replace(BASE, 2, data=BUFFER, dims=(255, 0, 13)), (416, 416)),
    ("INT8", _replace(BASE, 1, data_type=DataType.INT8), (416, 416)),
    ("INT32", _replace(BASE, 0, data_type=DataType.INT32), (416, 416)),
    ("only two outputs", BASE[:2], (416, 416)),
    ("no layers", (), (416, 416)),
    ("grid does not divide the network", _replace(BASE, 2, data=BUFFER, dims=(255, 12, 12)), (416, 416)),
    ("strides 16/32/64", BASE, (832, 832)),
    ("two outputs at stride 8", _replace(BASE, 2, data=BASE[0].data), (416, 416)),
    ("non-square cells", _replace(BASE, 2, data=BUFFER, dims=(255, 26, 13)), (416, 416)),
    ("network of zero", BASE, (0, 0)),
])
def test_layers_it_cannot_read_return_false(yolov3, what, layers, network):
    architecture, params, library = yolov3
    case = ParserCase(layers, NetworkInfo(*network), det())
    got = library.parse(case)
    assert not got.accepted and len(got.objects) == 0, what
    assert not architecture.reference(case, params).accepted, what


def test_refusals_are_one_clear_line_on_stderr(yolov3, capfd):
    _, _, library = yolov3
    library.parse(ParserCase(BASE, NetworkInfo(832, 832), det()))
    library.parse(ParserCase(_replace(BASE, 1, data=BUFFER, dims=(256, 26, 26)), NetworkInfo(416, 416), det()))
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines == [
        "dsparsers[yolov3]: outputs have strides 16/32/64 on the 832x832 network; expected 8/16/32: "
        "was this parser generated for this model?",
        'dsparsers[yolov3]: layer "output_1" has dims [256, 26, 26]; expected [255, H, W] (3 anchors x (5 + 80 '
        'classes)): was this parser generated for this model?',
    ]


# -- options and defaults --------------------------------------------------------------------------

def params_for(registry, alias, model=None, **extra):
    architecture = registry.get(alias).architecture
    return architecture.head_params(model, GenerateOptions(extra=extra, requested_as=alias))


def test_family_defaults_follow_the_alias(registry):
    v3 = params_for(registry, "yolov3")
    assert (v3.variant, v3.anchors[0], v3.masks, v3.scale_x_y, v3.strides) == \
        ("yolov3", (10.0, 13.0), ((0, 1, 2), (3, 4, 5), (6, 7, 8)), (1.0, 1.0, 1.0), (8, 16, 32))
    v4 = params_for(registry, "yolov4")
    assert (v4.anchors[8], v4.scale_x_y, v4.input_width) == ((459.0, 401.0), (1.2, 1.1, 1.05), 608)
    tiny4 = params_for(registry, "yolov4-tiny")
    assert (tiny4.masks, tiny4.scale_x_y, tiny4.strides, tiny4.input_width) == \
        (((1, 2, 3), (3, 4, 5)), (1.05, 1.05), (16, 32), 416)
    assert params_for(registry, "yolov3-tiny").masks == ((0, 1, 2), (3, 4, 5))
    assert params_for(registry, "yolo-darknet").variant == params_for(registry, "darknet").variant == "yolov3"


def test_options_override_the_defaults(registry):
    params = params_for(registry, "yolov3", anchors="1,2, 3,4, 5,6, 7,8", masks="0,1;2,3", scale_x_y="1.1")
    assert params.anchors == ((1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (7.0, 8.0))
    assert params.masks == ((0, 1), (2, 3)) and params.scale_x_y == (1.1, 1.1) and params.channels == 2 * 85
    assert params_for(registry, "yolov3", scale_x_y="1.2,1.1,1.05").scale_x_y == (1.2, 1.1, 1.05)
    assert params_for(registry, "yolov3", outputs="a,b,c").output_names == ("a", "b", "c")


@pytest.mark.parametrize("extra, message", [
    ({"anchors": "1,2,3"}, "w,h pairs"),
    ({"anchors": "1,x"}, "comma-separated numbers"),
    ({"masks": "0,1,2;3,4,5;6,7,9"}, "index past the 9 anchors"),
    ({"masks": "0,1,2;3,4"}, "same number of anchors"),
    ({"scale_x_y": "1.2,1.1"}, "one value or 3"),
    ({"scale_x_y": "-1"}, "positive finite"),
    ({"outputs": "a,b"}, "expected 3 names"),
    ({"outputs": "a,a,b"}, "not distinct"),
    ({"letterbox": "1"}, "not an option of yolo-darknet"),
])
def test_bad_options_are_usage_errors(registry, extra, message):
    with pytest.raises(UsageError, match=message):
        params_for(registry, "yolov3", **extra)


def test_manifest_round_trip(registry):
    import dataclasses
    import json

    architecture = registry.get("yolov4").architecture
    params = params_for(registry, "yolov4")
    stored = json.loads(json.dumps(dataclasses.asdict(params)))
    stored.pop("class_names")  # the manifest leaves them out (labels.txt has them)
    assert architecture.params_from_dict(stored) == dataclasses.replace(params, class_names=None)


def test_generated_source_lists_the_masks_by_stride(registry):
    from dsparsers.generation.codegen import render_parser

    architecture = registry.get("yolov4").architecture
    generated = render_parser(architecture, params_for(registry, "yolov4"), requested_as="yolov4")
    source = generated.files[generated.source_name]
    assert '{"output_0", 8, 1.2000000476837158f, {{12.0f, 16.0f}, {19.0f, 36.0f}, {40.0f, 28.0f}}},  // mask 0,1,2' \
        in source
    assert "// mask 6,7,8, scale_x_y 1.05" in source
    config = generated.files[generated.config_name]
    assert "maintain-aspect-ratio=0" in config and "cluster-mode=2" in config


# -- recognising the head in an ONNX model ----------------------------------------------------------

def darknet_model(path, sizes, *, size=416, channels=255, ops=None, metadata=None):
    outputs = [(f"conv_{i}", [1, channels, s, s]) for i, s in enumerate(sizes)]
    return load_model(head_model(path, outputs, inputs=(("input", [1, 3, size, size]),), metadata=metadata,
                                 producer_ops=ops))


def test_matcher_recognises_three_outputs_and_says_v3_v4_need_the_user(tmp_path, registry):
    model = darknet_model(tmp_path / "yolov4.onnx", [13, 26, 52])
    match = registry.get("yolo-darknet").architecture.match(model)
    assert match is not None and match.score >= 0.7
    assert "3 anchors x (5 + 80 classes)" in match.reason and "strides 8/16/32 at 416x416" in match.reason
    assert "cannot be told apart" in match.reason and "--arch yolov4" in match.reason and "scale_x_y" in match.reason
    choice = choose(registry, model, None)
    assert choice.provided.architecture.name == "yolo-darknet"
    params = choice.provided.architecture.head_params(model, GenerateOptions(requested_as=choice.requested_as))
    assert (params.variant, params.num_classes, params.strides) == ("yolov3", 80, (8, 16, 32))
    assert params.output_names == ("conv_2", "conv_1", "conv_0")  # stride ascending
    v4 = registry.get("yolov4").architecture.head_params(model, GenerateOptions(requested_as="yolov4"))
    assert v4.scale_x_y == (1.2, 1.1, 1.05)


def test_matcher_recognises_two_output_tiny(tmp_path, registry):
    model = darknet_model(tmp_path / "tiny.onnx", [26, 13], channels=3 * (5 + 2))
    match = registry.get("yolo-darknet").architecture.match(model)
    assert match is not None and "tiny" in match.reason and "strides 16/32" in match.reason
    params = registry.get("yolov4").architecture.head_params(model, GenerateOptions(requested_as="yolov4"))
    assert (params.variant, params.num_classes, params.masks, params.strides) == \
        ("yolov4-tiny", 2, ((1, 2, 3), (3, 4, 5)), (16, 32))
    assert params.output_names == ("conv_0", "conv_1")
    with pytest.raises(UsageError, match="a tiny head has 2 outputs"):
        registry.get("yolov3-tiny").architecture.head_params(
            darknet_model(tmp_path / "full.onnx", [13, 26, 52]), GenerateOptions(requested_as="yolov3-tiny"))


@pytest.mark.parametrize("sizes, channels", [
    ([13, 26, 52, 104], 255),  # four outputs
    ([13], 255),               # one output
    ([13, 26, 52], 256),       # not 3 x (5 + C)
])
def test_matcher_declines_other_heads(tmp_path, registry, sizes, channels):
    model = darknet_model(tmp_path / "m.onnx", sizes, channels=channels)
    assert registry.get("yolo-darknet").architecture.match(model) is None


def test_matcher_rejects_grids_not_in_ratio_two(tmp_path, registry):
    match = registry.get("yolo-darknet").architecture.match(darknet_model(tmp_path / "m.onnx", [13, 20, 52]))
    assert match is not None and match.score == 0.0 and "ratio 2" in match.reason
