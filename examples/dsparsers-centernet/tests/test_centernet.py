"""Tests of the CenterNet plugin, written as a plugin author writes them: hand-computed cases through
the built parser (dsparsers' pytest fixtures), agreement of the NumPy reference with the same hand
numbers, head recognition on a small ONNX graph, and dsparsers' ready-made conformance test."""

from __future__ import annotations

import numpy as np
import pytest

import dsparsers_centernet.plugin
from dsparsers import DetectionParams, GenerateOptions, Layer, NetworkInfo, ParserCase, UsageError, conformance_tests

test_conformance = conformance_tests(dsparsers_centernet.plugin)
# the same kit (and the hostile inputs) on a few-class and a logits parser
test_conformance_other_heads = conformance_tests(
    dsparsers_centernet.plugin, examples=150,
    variants={"3 classes": {"num_classes": 3}, "2 classes, logits": {"num_classes": 2, "extra": {"sigmoid": "logits"}}})

C, GW, GH = 3, 8, 6  # the hand cases: 3 classes on an 8 x 6 grid, network 32 x 24 (down ratio 4)
NETWORK = NetworkInfo(4 * GW, 4 * GH)


def maps(peaks=(), wh=(4.0, 2.0), reg=(0.5, 0.25)):
    """heatmap zeros except ``peaks`` [(class, x, y, value)]; wh and reg the same in every cell."""
    heat = np.zeros((C, GH, GW), np.float32)
    for c, x, y, value in peaks:
        heat[c, y, x] = value
    wh_map = np.empty((2, GH, GW), np.float32)
    wh_map[0], wh_map[1] = wh
    reg_map = np.empty((2, GH, GW), np.float32)
    reg_map[0], reg_map[1] = reg
    return heat, wh_map, reg_map


def case(heat, wh, reg, threshold=0.5, names=("hm", "wh", "reg"), order=(0, 1, 2), network=NETWORK):
    layers = [Layer(names[0], heat), Layer(names[1], wh), Layer(names[2], reg)]
    return ParserCase(tuple(layers[k] for k in order), network, DetectionParams.uniform(C, threshold))


def rows(outcome):
    """(class, left, top, width, height, confidence), sorted, rounded to 1e-4."""
    return sorted((int(o["class_id"]), *(round(float(o[f]), 4) for f in ("left", "top", "width", "height", "confidence")))
                  for o in outcome.objects)


@pytest.fixture
def parser(dsparsers_registry, dsparsers_build):
    registry = dsparsers_registry(dsparsers_centernet.plugin)
    built = dsparsers_build("centernet", registry, num_classes=C, input_size=(4 * GW, 4 * GH))

    def run(parser_case):
        """The library's outcome, checked against the reference decoder on the way."""
        actual = built.library.parse(parser_case)
        expected = built.architecture.reference(parser_case, built.params)
        assert actual.accepted == expected.accepted
        assert rows(actual) == rows(expected)
        return actual

    return run


def test_single_peak_by_hand(parser):
    # peak at (gx=3, gy=2), reg (0.5, 0.25), wh (4, 2):
    # centre ((3 + 0.5) * 4, (2 + 0.25) * 4) = (14, 9), size (4 * 4, 2 * 4) = (16, 8)
    # -> left 14 - 8 = 6, top 9 - 4 = 5, width 16, height 8
    outcome = parser(case(*maps([(1, 3, 2, 0.9)])))
    assert outcome.accepted
    assert rows(outcome) == [(1, 6.0, 5.0, 16.0, 8.0, round(float(np.float32(0.9)), 4))]


def test_layer_order_and_names_do_not_matter(parser):
    heat, wh, reg = maps([(1, 3, 2, 0.9)])
    expected = [(1, 6.0, 5.0, 16.0, 8.0, 0.9)]
    for order in [(2, 0, 1), (1, 2, 0), (2, 1, 0)]:
        assert rows(parser(case(heat, wh, reg, order=order))) == expected
    # CenterNet's long name for the heatmap is accepted too
    assert rows(parser(case(heat, wh, reg, names=("heatmap", "wh", "reg"), order=(1, 0, 2)))) == expected
    # renamed by the engine: heatmap by its C channels, then wh and reg by shape, in layer order
    assert rows(parser(case(heat, wh, reg, names=("a", "b", "c"), order=(1, 0, 2)))) == expected


def test_threshold_is_inclusive(parser):
    at = parser(case(*maps([(0, 1, 1, 0.5)]), threshold=0.5))
    assert [r[0] for r in rows(at)] == [0]
    below = parser(case(*maps([(0, 1, 1, float(np.nextafter(np.float32(0.5), np.float32(0))))]), threshold=0.5))
    assert rows(below) == []


def test_plateau_both_peaks_and_a_higher_neighbour_wins(parser):
    # equal neighbours: each equals its own 3x3 max, so both are peaks (max-pool equality)
    tie = parser(case(*maps([(2, 4, 3, 0.7), (2, 5, 3, 0.7)], wh=(1.0, 1.0), reg=(0.5, 0.5))))
    assert [(r[0], r[1], r[2]) for r in rows(tie)] == [(2, 16.0, 12.0), (2, 20.0, 12.0)]
    # a diagonal neighbour one step higher suppresses the lower cell; other classes do not interact
    beaten = parser(case(*maps([(2, 4, 3, 0.7), (2, 5, 4, 0.8), (0, 4, 3, 0.6)], wh=(1.0, 1.0), reg=(0.5, 0.5))))
    assert [(r[0], r[1], r[2]) for r in rows(beaten)] == [(0, 16.0, 12.0), (2, 20.0, 16.0)]
    # two cells apart: both local maxima
    apart = parser(case(*maps([(2, 2, 3, 0.7), (2, 4, 3, 0.8)], wh=(1.0, 1.0))))
    assert len(rows(apart)) == 2


def test_border_peaks_compare_with_existing_neighbours_only(parser):
    heat, wh, reg = maps([(0, 0, 0, 0.6), (0, GW - 1, GH - 1, 0.6)], wh=(2.0, 2.0), reg=(0.5, 0.5))
    # (0, 0): centre (2, 2), size 8 -> left -2 clipped to 0, width 6
    # (7, 5): centre (30, 22), size 8 -> right 34 clipped to 32, bottom 26 clipped to 24
    assert rows(parser(case(heat, wh, reg))) == [(0, 0.0, 0.0, 6.0, 6.0, 0.6), (0, 26.0, 18.0, 6.0, 6.0, 0.6)]


def test_nan_is_never_a_peak_and_never_blocks(parser):
    heat, wh, reg = maps([(1, 3, 2, 0.9)])
    heat[1, 2, 4] = np.nan  # right of the peak: does not block it
    heat[1, 5, 7] = np.nan  # a NaN alone is not a detection
    assert rows(parser(case(heat, wh, reg))) == [(1, 6.0, 5.0, 16.0, 8.0, 0.9)]
    heat[1, 2, 3] = np.nan  # the peak itself NaN: nothing, and its neighbours (zeros) stay below threshold
    assert rows(parser(case(heat, wh, reg))) == []


def test_infinite_scores_and_boxes_are_dropped(parser):
    heat, wh, reg = maps([(1, 3, 2, np.inf), (0, 6, 4, 0.9)])
    # (6, 4): centre (26, 17), size (16, 8) -> left 18, top 13, right 34 clipped to 32 -> width 14
    assert rows(parser(case(heat, wh, reg))) == [(0, 18.0, 13.0, 14.0, 8.0, 0.9)]  # +inf score: not finite
    wh[0, 4, 6] = np.nan  # the finite peak's width NaN: its box is dropped
    assert rows(parser(case(heat, wh, reg))) == []


def test_half_outputs(parser):
    heat, wh, reg = maps([(1, 3, 2, 0.75)])
    outcome = parser(case(heat.astype(np.float16), wh.astype(np.float16), reg))
    assert rows(outcome) == [(1, 6.0, 5.0, 16.0, 8.0, 0.75)]


def test_wrong_dims_return_false(parser):
    heat, wh, reg = maps([(1, 3, 2, 0.9)])
    bad_cases = {
        "wh grid": {"hm": heat, "wh": np.zeros((2, GH, GW + 1), np.float32), "reg": reg},
        "reg channels": {"hm": heat, "wh": wh, "reg": np.zeros((3, GH, GW), np.float32)},
        "heatmap classes": {"hm": np.zeros((C + 1, GH, GW), np.float32), "wh": wh, "reg": reg},
        "reg missing": {"hm": heat, "wh": wh},
        "heatmap 2-d": {"hm": heat.reshape(C, -1), "wh": wh, "reg": reg},
    }
    for what, layers in bad_cases.items():
        outcome = parser(ParserCase(tuple(Layer(n, a) for n, a in layers.items()), NETWORK,
                                    DetectionParams.uniform(C, 0.5)))
        assert not outcome.accepted, what


def test_logits_option(dsparsers_registry, dsparsers_build):
    registry = dsparsers_registry(dsparsers_centernet.plugin)
    built = dsparsers_build("ctdet", registry, num_classes=C, input_size=(4 * GW, 4 * GH), extra={"sigmoid": "logits"})
    heat, wh, reg = maps([(1, 3, 2, 0.0)])  # logit 0 -> score 0.5
    heat[:] = np.where(heat == 0, -4.0, heat)  # background logits: sigmoid(-4) = 0.018
    heat[1, 2, 3] = 0.0
    outcome = built.library.parse(case(heat, wh, reg, threshold=0.5))
    assert rows(outcome) == [(1, 6.0, 5.0, 16.0, 8.0, 0.5)]
    assert rows(built.architecture.reference(case(heat, wh, reg, threshold=0.5), built.params)) == rows(outcome)


def test_options_and_config_defaults():
    arch = dsparsers_centernet.plugin.CenterNet()
    params = arch.head_params(None, GenerateOptions())
    assert (params.num_classes, params.input_width, params.input_height, params.sigmoid) == (80, 512, 512, "applied")
    assert arch.params_from_dict({"num_classes": 3, "input_width": 32, "input_height": 24, "sigmoid": "logits"}).sigmoid == "logits"
    with pytest.raises(UsageError):
        arch.head_params(None, GenerateOptions(extra={"sigmoid": "maybe"}))
    with pytest.raises(UsageError):
        arch.head_params(None, GenerateOptions(extra={"unknown": "1"}))
    assert arch.config_defaults.cluster_mode == 4
    assert arch.config_defaults.model_color_format == 1  # CenterNet reads images with OpenCV: BGR


def _onnx_head(tmp_path, sigmoid=True, names=("hm", "wh", "reg"), classes=3, grid=(8, 6), size=(32, 24)):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    gw, gh = grid
    nodes, outputs = [], []
    for name, channels in zip(names, (classes, 2, 2)):
        raw = name + "_raw" if (sigmoid and channels == classes) else name
        value = helper.make_tensor(raw + "_value", TensorProto.FLOAT, [1, channels, gh, gw],
                                   np.zeros(channels * gh * gw, np.float32).tolist())
        nodes.append(helper.make_node("Constant", [], [raw], value=value))
        if raw != name:
            nodes.append(helper.make_node("Sigmoid", [raw], [name]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, channels, gh, gw]))
    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size[1], size[0]])
    model = helper.make_model(helper.make_graph(nodes, "centernet_head", [image], outputs))
    path = tmp_path / "centernet.onnx"
    onnx.save(model, str(path))
    # loading a model is not part of the plugin API (dsparsers does it for the plugin); the test does it itself
    from dsparsers import load_model

    return load_model(path)


def test_recognises_an_export(tmp_path):
    arch = dsparsers_centernet.plugin.CenterNet()
    model = _onnx_head(tmp_path)
    match = arch.match(model)
    assert match is not None and match.score >= 0.9, match
    params = arch.head_params(model, GenerateOptions())
    assert (params.num_classes, params.input_width, params.input_height, params.down_ratio, params.sigmoid) == (3, 32, 24, 4, "applied")
    assert (params.grid_width, params.grid_height) == (8, 6)

    raw = _onnx_head(tmp_path, sigmoid=False, names=("out0", "out1", "out2"))
    match = arch.match(raw)
    assert match is not None and 0.5 <= match.score < 0.9  # by shape only
    assert arch.head_params(raw, GenerateOptions()).sigmoid == "logits"  # no Sigmoid node: logits

    wrong = _onnx_head(tmp_path, size=(64, 24))
    assert arch.match(wrong).score < 0.9
    with pytest.raises(UsageError):
        arch.head_params(wrong, GenerateOptions())
