"""yolo-anchor-free (plugins/yolo_anchor_free.py): hand-computed cases for the anchor-free YOLO parser: the built
library and the reference decoder must both give the values worked out here by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsparsers.api.abi_types import DataType, DetectionParams, Layer, NetworkInfo, ParserCase
from parser_checks import objects, run_both

NAN, INF = float("nan"), float("inf")


def head(candidates, classes, *, layout="channels", dtype=np.float32):
    """candidates: (cx, cy, w, h, {class: score}); other scores are 0."""
    rows = np.zeros((len(candidates), 4 + classes), np.float32)
    for i, (cx, cy, w, h, scores) in enumerate(candidates):
        rows[i, :4] = (cx, cy, w, h)
        for cls, score in scores.items():
            rows[i, 4 + cls] = score
    data = rows.T if layout == "channels" else rows
    return np.ascontiguousarray(data).astype(dtype)


def case(data, *, classes, threshold=0.25, configured=None, thresholds=None, network=(640, 640), name="output0",
         extra_layers=()):
    configured = classes if configured is None else configured
    pre = tuple(thresholds) if thresholds is not None else (threshold,) * configured
    return ParserCase((*extra_layers, Layer(name, data)), NetworkInfo(*network),
                      DetectionParams(configured, pre, (0.0,) * configured))


@pytest.fixture(scope="module")
def yolo80(open_parser):
    return open_parser("yolo11", classes=80)


def test_single_box_is_converted_from_center_to_left_top(yolo80):
    got = run_both(yolo80, case(head([(100, 50, 20, 10, {2: 0.9})], 80), classes=80))
    assert got.accepted
    assert objects(got) == [(2, 90.0, 45.0, 20.0, 10.0, 0.9)]


def test_nothing_above_threshold_gives_no_objects(yolo80):
    got = run_both(yolo80, case(head([(100, 100, 20, 20, {0: 0.2}), (200, 200, 30, 30, {5: 0.249})], 80), classes=80))
    assert got.accepted and objects(got) == []


def test_everything_above_threshold_gives_one_object_per_candidate_in_order(yolo80):
    cands = [(50 + 10 * i, 60, 10, 12, {i % 80: 0.5 + i / 100}) for i in range(40)]
    got = run_both(yolo80, case(head(cands, 80), classes=80))
    assert [o[0] for o in objects(got)] == [i % 80 for i in range(40)]
    assert [o[1] for o in objects(got)] == [45.0 + 10 * i for i in range(40)]


def test_threshold_is_inclusive_and_best_class_wins(yolo80):
    got = run_both(yolo80, case(head([(320, 320, 64, 32, {3: 0.25, 7: 0.1}), (10, 10, 4, 4, {1: 0.6, 9: 0.7})], 80),
                                classes=80))
    assert objects(got) == [(3, 288.0, 304.0, 64.0, 32.0, 0.25), (9, 8.0, 8.0, 4.0, 4.0, 0.7)]


def test_per_class_thresholds_apply_to_the_best_class(yolo80):
    thresholds = [0.25] * 80
    thresholds[0], thresholds[1] = 0.5, 0.1
    cands = [(100, 100, 10, 10, {0: 0.3}), (200, 200, 10, 10, {1: 0.2}), (300, 300, 10, 10, {0: 0.55})]
    got = run_both(yolo80, case(head(cands, 80), classes=80, thresholds=thresholds))
    assert [(o[0], o[5]) for o in objects(got)] == [(1, 0.2), (0, 0.55)]


def test_short_threshold_vector_falls_back_to_nvinfer_default_without_overrun(yolo80):
    cands = [(100, 100, 10, 10, {0: 0.15}), (200, 200, 10, 10, {50: 0.19}), (300, 300, 10, 10, {50: 0.21})]
    got = run_both(yolo80, case(head(cands, 80), classes=80, thresholds=[0.1]))
    assert [(o[0], o[5]) for o in objects(got)] == [(0, 0.15), (50, 0.21)]  # class 50 uses 0.2
    empty = run_both(yolo80, case(head(cands, 80), classes=80, thresholds=[]))
    assert [(o[0], o[5]) for o in objects(empty)] == [(50, 0.21)]


def test_class_ids_beyond_configured_classes_are_dropped(yolo80):
    cands = [(100, 100, 10, 10, {2: 0.9}), (200, 200, 10, 10, {3: 0.9}), (300, 300, 10, 10, {79: 0.9})]
    got = run_both(yolo80, case(head(cands, 80), classes=80, configured=3))
    assert [o[0] for o in objects(got)] == [2]


def test_nan_and_inf_scores_never_produce_objects(yolo80):
    cands = [
        (100, 100, 10, 10, {0: NAN}),                # NaN only: dropped
        (200, 200, 10, 10, {0: NAN, 4: 0.8}),        # NaN loses to a real score
        (300, 300, 10, 10, {6: INF}),                # +inf is the best score but not finite: dropped
        (400, 400, 10, 10, {6: -INF, 8: 0.3}),       # -inf loses
    ]
    got = run_both(yolo80, case(head(cands, 80), classes=80))
    assert [(o[0], o[5]) for o in objects(got)] == [(4, 0.8), (8, 0.3)]


def test_nonfinite_box_values_drop_the_candidate(yolo80):
    cands = [(NAN, 100, 10, 10, {0: 0.9}), (100, INF, 10, 10, {0: 0.9}), (100, 100, -INF, 10, {0: 0.9}),
             (100, 100, 10, 10, {0: 0.9})]
    got = run_both(yolo80, case(head(cands, 80), classes=80))
    assert objects(got) == [(0, 95.0, 95.0, 10.0, 10.0, 0.9)]


def test_boxes_are_clipped_to_the_network_and_degenerate_ones_dropped(yolo80):
    cands = [
        (0, 0, 20, 40, {0: 0.9}),           # straddles the top-left corner: clipped to 10 x 20
        (630, 470, 40, 40, {1: 0.9}),       # straddles bottom-right of 640x480: 30 x 30
        (-100, 100, 50, 50, {2: 0.9}),      # fully outside: clips to zero width, dropped
        (320, 240, 0.9, 50, {3: 0.9}),      # under one pixel wide: dropped
        (320, 240, 1.0, 1.0, {4: 0.9}),     # exactly one pixel: kept
        (320, 240, -10, 10, {5: 0.9}),      # negative width: dropped
        (320, 240, 1e30, 1e30, {6: 0.9}),   # huge: the whole network
    ]
    got = run_both(yolo80, case(head(cands, 80), classes=80, network=(640, 480)))
    assert objects(got) == [(0, 0.0, 0.0, 10.0, 20.0, 0.9), (1, 610.0, 450.0, 30.0, 30.0, 0.9),
                            (4, 319.5, 239.5, 1.0, 1.0, 0.9), (6, 0.0, 0.0, 640.0, 480.0, 0.9)]


def test_fp16_output_is_read_exactly(yolo80):
    data = head([(100, 50, 20, 10, {2: 0.875}), (300.5, 200.25, 64, 32, {79: 0.5})], 80, dtype=np.float16)
    got = run_both(yolo80, case(data, classes=80))
    assert objects(got) == [(2, 90.0, 45.0, 20.0, 10.0, 0.875), (79, 268.5, 184.25, 64.0, 32.0, 0.5)]


def test_every_finite_positive_fp16_score_is_decoded_exactly(yolo80):
    """All 31744 half values from +0 to 65504 (subnormals included) as class-0 scores, threshold 0:
    each comes back as the confidence, bit for bit what NumPy's float16 -> float32 gives."""
    halves = np.arange(0x0000, 0x7C00, dtype=np.uint16).view(np.float16)
    data = np.zeros((84, halves.size), np.float16)
    data[0], data[1], data[2], data[3] = 100, 100, 10, 10
    data[4] = halves
    architecture, params, library = yolo80
    got = library.parse(case(data, classes=80, threshold=0.0))
    assert got.accepted and len(got.objects) == halves.size
    assert np.array_equal(got.objects["confidence"].view(np.uint32), halves.astype(np.float32).view(np.uint32))


def test_layer_is_found_by_name_among_others_and_by_shape_when_renamed(yolo80):
    other = Layer("aux", np.zeros((84, 3), np.float32))
    data = head([(100, 50, 20, 10, {2: 0.9})], 80)
    by_name = run_both(yolo80, case(data, classes=80, extra_layers=(Layer("x", np.zeros((2, 2), np.float32)),)))
    assert objects(by_name) == [(2, 90.0, 45.0, 20.0, 10.0, 0.9)]
    renamed = run_both(yolo80, case(data, classes=80, name="engine_output_1",
                                    extra_layers=(Layer("x", np.zeros((2, 2), np.float32)),)))
    assert objects(renamed) == [(2, 90.0, 45.0, 20.0, 10.0, 0.9)]
    # the named layer wins over an earlier layer of the right shape
    named_second = run_both(yolo80, ParserCase((Layer("aux", other.data), Layer("output0", data)),
                                               NetworkInfo(640, 640), DetectionParams.uniform(80, 0.25)))
    assert objects(named_second) == [(2, 90.0, 45.0, 20.0, 10.0, 0.9)]


@pytest.mark.parametrize("dims, dtype", [
    ((85, 10), None),            # one class too many: generated for another model
    ((84,), None),               # numDims 1
    ((1, 84, 10), None),         # batch dimension left in
    ((), None),                  # numDims 0
    ((84, 10, 1, 1, 1, 1, 1, 1), None),  # numDims 8
    ((84, 0), None),             # no candidates
    ((10, 84), None),            # transposed: a row-major head given to a channel-major parser
    ((84, 10), DataType.INT32),  # wrong data type
    ((84, 10), DataType.INT8),
])
def test_wrong_dims_or_type_return_false_without_reading(yolo80, dims, dtype):
    architecture, params, library = yolo80
    buffer = np.full(max(1, int(np.prod(dims)) if dims else 1) + 64, 0.9, np.float32)
    bad = ParserCase((Layer("output0", buffer, dims=dims, data_type=dtype),), NetworkInfo(640, 640),
                     DetectionParams.uniform(80, 0.25))
    got = library.parse(bad)
    assert not got.accepted and len(got.objects) == 0
    assert not architecture.reference(bad, params).accepted


def test_no_layers_at_all_returns_false(yolo80):
    architecture, params, library = yolo80
    empty = ParserCase((), NetworkInfo(640, 640), DetectionParams.uniform(80, 0.25))
    assert not library.parse(empty).accepted
    assert not architecture.reference(empty, params).accepted


def test_refusals_are_one_clear_line_on_stderr(yolo80, capfd):
    _, _, library = yolo80
    library.parse(ParserCase((Layer("output0", np.zeros((85, 4), np.float32)),), NetworkInfo(640, 640),
                             DetectionParams.uniform(80, 0.25)))
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines == ['dsparsers[yolo11]: layer "output0" has dims [85, 4]; expected [84, N] (4 box + 80 classes): '
                     'was this parser generated for this model?']


@pytest.mark.parametrize("classes", [1, 1000])
def test_extreme_class_counts(open_parser, classes):
    parser = open_parser("yolo11", classes=classes)
    cands = [(100, 100, 10, 10, {classes - 1: 0.9}), (200, 200, 10, 10, {0: 0.95}), (300, 300, 10, 10, {0: 0.1})]
    got = run_both(parser, case(head(cands, classes), classes=classes))
    assert objects(got) == [(classes - 1, 95.0, 95.0, 10.0, 10.0, 0.9), (0, 195.0, 195.0, 10.0, 10.0, 0.95)]


def test_row_major_layout(open_parser):
    parser = open_parser("yolo11", classes=80, extra={"layout": "rows"})
    data = head([(100, 50, 20, 10, {2: 0.9}), (5, 5, 4, 4, {1: 0.1})], 80, layout="rows")
    assert data.shape == (2, 84)
    got = run_both(parser, case(data, classes=80))
    assert objects(got) == [(2, 90.0, 45.0, 20.0, 10.0, 0.9)]


def test_abi8_build_returns_the_same_objects(open_parser):
    parser = open_parser("yolo11", classes=80, abi=8)
    assert parser[2].abi == 8
    got = run_both(parser, case(head([(100, 50, 20, 10, {2: 0.9})], 80), classes=80))
    assert objects(got) == [(2, 90.0, 45.0, 20.0, 10.0, 0.9)]
    assert math.isclose(float(got.objects[0]["rotation_angle"]), 0.0)


def test_a_configured_class_count_unlike_the_model_s_is_reported_once(open_parser, capfd):
    parser = open_parser("yolo11", classes=13)
    data = head([(100, 50, 20, 10, {5: 0.9}), (200, 50, 20, 10, {1: 0.9})], 13)
    capfd.readouterr()
    for _ in range(2):  # class 5 is past num-detected-classes=3: dropped, every frame; the line comes once
        assert objects(run_both(parser, case(data, classes=13, configured=3))) == [(1, 190.0, 45.0, 20.0, 10.0, 0.9)]
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines == ["dsparsers[yolo11]: num-detected-classes is 3 but the model has 13 classes; ids >= 3 are dropped"]
