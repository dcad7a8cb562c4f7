"""The TensorRT NMS-plugin outputs (plugins/nms_plugin_outputs.py), one family registered three times:
efficientnms (EfficientNMS_TRT: TAO EfficientDet, YOLO exports ending in the plugin; int32 classes),
tao-batched-nms (BatchedNMS(Dynamic)_TRT: TAO YOLOv3/v4/v4-tiny/v5; float classes) and ssd-nms (NMS_TRT:
TAO SSD, DSSD, RetinaNet, FasterRCNN; [1, K, 7] records). Hand-computed cases checked against the built
parser and the reference decoder, and the matchers on graphs that end in the plugin nodes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from dsparsers.api.architecture import GenerateOptions
from dsparsers.cli import main
from dsparsers.errors import UsageError
from dsparsers.model.reader import load_model
from dsparsers.api.abi_types import DataType, DetectionParams, Layer, NetworkInfo, ParserCase
from parser_checks import objects, run_both

NAN, INF = float("nan"), float("inf")
EFF_NAMES = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
STANDARD = ("num_detections", "nmsed_boxes", "nmsed_scores", "nmsed_classes")
TAO = ("BatchedNMS", "BatchedNMS_1", "BatchedNMS_2", "BatchedNMS_3")
SSD_NAMES = ("NMS", "NMS_1")
BUFFER = np.zeros(256, np.float32)


# -- the family: one class, one template, three registrations ---------------------------------------

def test_one_class_registered_three_times_with_the_old_names(registry):
    from dsparsers.plugins.nms_plugin_outputs import NmsPluginOutputs

    expected = {"efficientnms": ("NvDsInferParseEfficientnms", "yolo-efficientnms"),
                "tao-batched-nms": ("NvDsInferParseTaoBatchedNms", "tao-yolov5"),
                "ssd-nms": ("NvDsInferParseSsdNms", "tao-ssd")}
    for name, (function, alias) in expected.items():
        provided = registry.get(alias)
        arch = provided.architecture
        assert type(arch) is NmsPluginOutputs and arch.name == name and provided.plugin == "nms_plugin_outputs"
        assert arch.function_name == function and arch.template == "nms_plugin_outputs.cpp.j2"
    assert registry.get("efficientnms").architecture.params_type is not \
        registry.get("ssd-nms").architecture.params_type  # each keeps the fields its dsparsers.json records


def test_plugin_modules_import_neither_numpy_nor_hypothesis():
    # registering, describing and rendering need neither (other plugins' modules are not loaded here)
    code = ("import sys, dsparsers, dsparsers.plugins.nms_plugin_outputs as m\n"
            "for v in m.VARIANTS:\n"
            "    a = m.NmsPluginOutputs(v)\n"
            "    a.template_context(a.head_params(None, dsparsers.GenerateOptions(requested_as=v.name)))\n"
            "assert 'numpy' not in sys.modules and 'hypothesis' not in sys.modules, "
            "[n for n in sys.modules if n.split('.')[0] in ('numpy', 'hypothesis')][:5]")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- efficientnms: hand-computed cases ----------------------------------------------------------------

def eff_case(rows, count=None, *, k=None, names=EFF_NAMES, order=(0, 1, 2, 3), network=(800, 400), classes=80,
             threshold=0.25, configured=None, dtype=np.float32):
    """rows: (a, b, c, d, score, class) with the box in the parser's own order; K rows, the rest zeros."""
    k = k or max(1, len(rows))
    boxes = np.zeros((k, 4), np.float32)
    scores = np.zeros(k, np.float32)
    ids = np.zeros(k, np.int32)
    for i, (a, b, c, d, score, cls) in enumerate(rows):
        boxes[i], scores[i], ids[i] = (a, b, c, d), score, cls
    count = len(rows) if count is None else count
    layers = [Layer(names[0], np.array([count], np.int32)), Layer(names[1], boxes.astype(dtype)),
              Layer(names[2], scores.astype(dtype)), Layer(names[3], ids)]
    configured = classes if configured is None else configured
    return ParserCase(tuple(layers[i] for i in order), NetworkInfo(*network),
                      DetectionParams.uniform(configured, threshold))


def batched_case(rows, count=None, *, k=None, names=STANDARD, order=(0, 1, 2, 3), network=(800, 400), classes=80,
                 threshold=0.25, configured=None, dtype=np.float32):
    """rows: (x1, y1, x2, y2, score, class); K rows in all (the rest padding: class -1, score 0)."""
    k = k or max(1, len(rows))
    boxes = np.zeros((k, 4), np.float32)
    scores = np.zeros(k, np.float32)
    ids = np.full(k, -1.0, np.float32)
    for i, (x1, y1, x2, y2, score, cls) in enumerate(rows):
        boxes[i], scores[i], ids[i] = (x1, y1, x2, y2), score, cls
    count = len(rows) if count is None else count
    layers = [Layer(names[0], np.array([count], np.int32)), Layer(names[1], boxes.astype(dtype)),
              Layer(names[2], scores.astype(dtype)), Layer(names[3], ids.astype(dtype))]
    configured = classes if configured is None else configured
    return ParserCase(tuple(layers[i] for i in order), NetworkInfo(*network),
                      DetectionParams.uniform(configured, threshold))


def ssd_case(rows, count=None, *, k=None, names=SSD_NAMES, reverse=False, network=(800, 400), classes=5,
             threshold=0.25, configured=None, dtype=np.float32):
    """rows: (label, confidence, x1, y1, x2, y2) normalized; K rows in all, the rest padding (label -1)."""
    k = k or max(1, len(rows))
    records = np.zeros((k, 7), np.float32)
    records[:, 1] = -1
    for i, row in enumerate(rows):
        records[i, 1:] = row
    count = len(rows) if count is None else count
    layers = [Layer(names[0], records.astype(dtype).reshape(1, k, 7)),
              Layer(names[1], np.array([count], np.int32).reshape(1, 1, 1))]
    if reverse:
        layers.reverse()
    configured = classes if configured is None else configured
    return ParserCase(tuple(layers), NetworkInfo(*network), DetectionParams.uniform(configured, threshold))


@pytest.fixture(scope="module")
def effdet(open_parser):
    return open_parser("tao-efficientdet")


@pytest.fixture(scope="module")
def yolo(open_parser):
    return open_parser("yolo-efficientnms")


@pytest.fixture(scope="module")
def normalized(open_parser):
    return open_parser("efficient-nms", extra={"box_order": "xyxy", "coords": "normalized"})


@pytest.fixture(scope="module")
def yolov4(open_parser):
    return open_parser("tao-yolov4")


@pytest.fixture(scope="module")
def yolov5(open_parser):
    return open_parser("tao-yolov5")


@pytest.fixture(scope="module")
def ssd(open_parser):
    return open_parser("tao-ssd")


@pytest.fixture(scope="module")
def no_background(open_parser):
    return open_parser("ssd", classes=3, extra={"background": "none"})


def test_efficientnms_canonical_heads(effdet, yolo, normalized):
    p = effdet[1]
    assert (p.box_order, p.coords, p.num_classes, p.max_output_boxes, p.background_class) == \
        ("yxyx", "pixels", 80, 100, -1)
    assert (p.input_width, p.input_height) == (960, 544)
    assert (yolo[1].box_order, yolo[1].coords, yolo[1].input_width) == ("xyxy", "pixels", 640)
    assert (normalized[1].box_order, normalized[1].coords) == ("xyxy", "normalized")


def test_batched_canonical_heads(yolov4, yolov5):
    assert (yolov4[1].coords, yolov4[1].num_classes, yolov4[1].keep_top_k) == ("normalized", 80, 200)
    assert (yolov4[1].input_width, yolov4[1].input_height) == (960, 544)
    assert yolov5[1].coords == "pixels"  # the alias picks TAO's YOLOv5 (isNormalized=0) default


def test_ssd_canonical_head(ssd):
    _, params, _ = ssd
    assert (params.num_classes, params.background, params.keep_top_k) == (5, 0, 200)
    assert (params.input_width, params.input_height) == (960, 544)
    assert params.labels() == ["background", "class_1", "class_2", "class_3", "class_4"]


def test_efficientnms_box_orders_and_coordinate_spaces(effdet, yolo, normalized):
    # one box, left 50 top 100 right 250 bottom 300 on an 800x400 network: 200 x 200
    want = [(2, 50.0, 100.0, 200.0, 200.0, 0.9)]
    assert objects(run_both(effdet, eff_case([(100, 50, 300, 250, 0.9, 2)]))) == want      # y1 x1 y2 x2
    assert objects(run_both(yolo, eff_case([(50, 100, 250, 300, 0.9, 2)]))) == want        # x1 y1 x2 y2
    # normalized: x 0.0625 * 800 = 50, 0.3125 * 800 = 250; y 0.25 * 400 = 100, 0.75 * 400 = 300
    assert objects(run_both(normalized, eff_case([(0.0625, 0.25, 0.3125, 0.75, 0.9, 2)]))) == want
    # the same numbers read in the other order give another box: x 100..300, y 50..250
    assert objects(run_both(yolo, eff_case([(100, 50, 300, 250, 0.9, 2)]))) == [(2, 100.0, 50.0, 200.0, 200.0, 0.9)]


def test_batched_normalized_boxes_are_scaled_by_the_network(yolov4):
    # 800x400 network: x 0.125 -> 100, 0.5 -> 400; y 0.25 -> 100, 0.75 -> 300
    got = run_both(yolov4, batched_case([(0.125, 0.25, 0.5, 0.75, 0.9, 2)]))
    assert got.accepted and objects(got) == [(2, 100.0, 100.0, 300.0, 200.0, 0.9)]


def test_batched_pixel_boxes_are_taken_as_they_are(yolov5):
    got = run_both(yolov5, batched_case([(100, 50, 300, 250, 0.9, 2)]))
    assert objects(got) == [(2, 100.0, 50.0, 200.0, 200.0, 0.9)]


def test_ssd_normalized_records_are_scaled_by_the_network(ssd):
    # 800x400: x 0.125 -> 100, 0.5 -> 400; y 0.25 -> 100, 0.75 -> 300
    got = run_both(ssd, ssd_case([(2, 0.9, 0.125, 0.25, 0.5, 0.75)]))
    assert got.accepted and objects(got) == [(2, 100.0, 100.0, 300.0, 200.0, 0.9)]


# Three rows whose boxes are 0..400 x 0..200, 400..800 x 200..400 and 200..600 x 100..300 on 800x400, in each
# variant's own row format; then counts past K and below 0 (said once, not for every frame).
COUNT_CASES = {
    "effdet": (eff_case, [(0, 0, 200, 400, 0.9, 1), (200, 400, 400, 800, 0.8, 2), (100, 200, 300, 600, 0.7, 3)],
               5, -1, 'dsparsers[tao-efficientdet]: layer "num_detections" says 5 detections but there are 3 rows; '
                      'using 3'),
    "yolov4": (batched_case, [(0.0, 0.0, 0.5, 0.5, 0.9, 1), (0.5, 0.5, 1.0, 1.0, 0.8, 2),
                              (0.25, 0.25, 0.75, 0.75, 0.7, 3)],
               7, -5, 'dsparsers[tao-yolov4]: layer "num_detections" says 7 detections but there are 3 rows; '
                      'using 3'),
    "ssd": (ssd_case, [(1, 0.9, 0.0, 0.0, 0.5, 0.5), (2, 0.8, 0.5, 0.5, 1.0, 1.0), (3, 0.7, 0.25, 0.25, 0.75, 0.75)],
            9, -3, 'dsparsers[tao-ssd]: layer "NMS_1" says 9 detections but there are 3 rows; using 3'),
}


@pytest.mark.cpp  # builds through request.getfixturevalue / its fixture
@pytest.mark.parametrize("parser", list(COUNT_CASES))
def test_count_is_clamped_and_rows_past_it_are_ignored(request, capfd, parser):
    opened = request.getfixturevalue(parser)
    case, rows, too_many, negative, line = COUNT_CASES[parser]
    first = (1, 0.0, 0.0, 400.0, 200.0, 0.9)
    second = (2, 400.0, 200.0, 400.0, 200.0, 0.8)
    third = (3, 200.0, 100.0, 400.0, 200.0, 0.7)
    assert objects(run_both(opened, case(rows, 1))) == [first]
    assert objects(run_both(opened, case(rows, 0))) == []
    capfd.readouterr()
    assert objects(run_both(opened, case(rows, too_many))) == [first, second, third]    # > K: K rows
    assert objects(run_both(opened, case(rows, negative))) == []                         # negative: none
    assert objects(run_both(opened, case(rows, 2**31 - 1))) == [first, second, third]
    lines = [text for text in capfd.readouterr().err.splitlines() if text.strip()]
    assert lines == [line]


def test_efficientnms_padding_rows_are_zeros_and_never_read(effdet):
    rows = [(0, 0, 200, 400, 0.9, 1), (200, 400, 400, 800, 0.8, 2), (100, 200, 300, 600, 0.7, 3)]
    first = (1, 0.0, 0.0, 400.0, 200.0, 0.9)
    # padding rows are zeros, class 0 with a score of 0; a row past the count with a real score is not read
    padded = eff_case(rows[:1] + [(0, 0, 0, 0, 0.0, 0), (0, 0, 400, 800, 0.99, 0)], 1)
    assert objects(run_both(effdet, padded)) == [first]


def test_batched_padding_rows_are_never_objects(yolov4):
    # num_detections covers padding rows (class -1, score 0, box 0) and a NaN class: none become objects
    rows = [(0.125, 0.25, 0.5, 0.75, 0.9, 2), (0, 0, 0, 0, 0.0, -1), (0.1, 0.1, 0.9, 0.9, 0.95, -1),
            (0.1, 0.1, 0.9, 0.9, 0.95, NAN)]
    assert objects(run_both(yolov4, batched_case(rows, 4, k=6))) == [(2, 100.0, 100.0, 300.0, 200.0, 0.9)]


def test_ssd_background_label_and_padding_are_never_objects(ssd, no_background):
    rows = [(0, 0.95, 0.1, 0.1, 0.9, 0.9),          # background label: dropped
            (-1, 0.95, 0.1, 0.1, 0.9, 0.9),         # padding label inside the count
            (0.5, 0.95, 0.1, 0.1, 0.9, 0.9),        # truncates to 0: the background
            (1, 0.5, 0.0, 0.0, 0.25, 0.5),          # kept: 0..200 x 0..200
            (5, 0.95, 0.1, 0.1, 0.9, 0.9),          # label >= the 5 classes
            (NAN, 0.95, 0.1, 0.1, 0.9, 0.9)]
    assert objects(run_both(ssd, ssd_case(rows, k=8))) == [(1, 0.0, 0.0, 200.0, 200.0, 0.5)]
    # without a background label, label 0 is a class (and 0.5 truncates to it); 3 classes
    got = run_both(no_background, ssd_case(rows, k=8, classes=3))
    assert objects(got) == [(0, 80.0, 40.0, 640.0, 320.0, 0.95), (0, 80.0, 40.0, 640.0, 320.0, 0.95),
                            (1, 0.0, 0.0, 200.0, 200.0, 0.5)]


def test_efficientnms_int32_class_ids(effdet):
    box = (0, 0, 200, 400)
    rows = [(*box, 0.9, 2), (*box, 0.9, 80), (*box, 0.9, 79), (*box, 0.9, -1), (*box, 0.9, 2**31 - 1),
            (*box, 0.9, -2**31), (*box, 0.9, 5)]
    assert [o[0] for o in objects(run_both(effdet, eff_case(rows)))] == [2, 79, 5]
    assert [o[0] for o in objects(run_both(effdet, eff_case(rows, configured=3)))] == [2]


def test_batched_class_ids_from_floats(yolov4):
    box = (0.0, 0.0, 0.5, 0.5)
    rows = [(*box, 0.9, 2.7),     # fractional: truncated to 2
            (*box, 0.9, 80.0),    # beyond the model's 80 classes
            (*box, 0.9, 79.0),
            (*box, 0.9, -0.5),    # negative
            (*box, 0.9, INF),
            (*box, 0.9, 5.0)]     # kept, until numClassesConfigured is 3
    got = run_both(yolov4, batched_case(rows))
    assert [o[0] for o in objects(got)] == [2, 79, 5]
    configured = run_both(yolov4, batched_case(rows, configured=3))
    assert [o[0] for o in objects(configured)] == [2]


@pytest.mark.cpp  # builds through request.getfixturevalue / its fixture
@pytest.mark.parametrize("parser, case, box", [("effdet", eff_case, (0, 0, 200, 400)),
                                               ("yolov4", batched_case, (0.0, 0.0, 0.5, 0.5))])
def test_scores_threshold_inclusive_and_nonfinite(request, parser, case, box):
    opened = request.getfixturevalue(parser)
    rows = [(*box, 0.25, 0), (*box, 0.2499, 1), (*box, NAN, 2), (*box, INF, 3), (*box, 1.0, 4)]
    assert [(o[0], o[5]) for o in objects(run_both(opened, case(rows)))] == [(0, 0.25), (4, 1.0)]


def test_ssd_image_id_is_not_read_and_scores_threshold_inclusive(ssd):
    records = [(2, 0.25, 0.0, 0.0, 0.5, 0.5), (3, 0.2499, 0.0, 0.0, 0.5, 0.5), (4, NAN, 0.0, 0.0, 0.5, 0.5),
               (1, INF, 0.0, 0.0, 0.5, 0.5)]
    c = ssd_case(records)
    c.layers[0].data[0, :, 0] = 7  # image_id of another frame: ignored
    assert [(o[0], o[5]) for o in objects(run_both(ssd, c))] == [(2, 0.25)]


def test_fp16_outputs(effdet, yolov4):
    got = run_both(effdet, eff_case([(100, 50, 300, 250, 0.875, 2)], dtype=np.float16))
    assert objects(got) == [(2, 50.0, 100.0, 200.0, 200.0, 0.875)]
    got = run_both(yolov4, batched_case([(0.125, 0.25, 0.5, 0.75, 0.875, 2)], dtype=np.float16))
    assert objects(got) == [(2, 100.0, 100.0, 300.0, 200.0, 0.875)]


def test_ssd_classes_configured_and_fp16(ssd):
    rows = [(4, 0.875, 0.125, 0.25, 0.5, 0.75), (1, 0.875, 0.125, 0.25, 0.5, 0.75)]
    assert [o[0] for o in objects(run_both(ssd, ssd_case(rows, configured=3)))] == [1]
    got = run_both(ssd, ssd_case(rows, dtype=np.float16))
    assert objects(got) == [(4, 100.0, 100.0, 300.0, 200.0, 0.875), (1, 100.0, 100.0, 300.0, 200.0, 0.875)]


def test_efficientnms_boxes_nonfinite_inverted_outside_and_clipped(effdet):
    rows = [(NAN, 0, 100, 100, 0.9, 0),
            (0, 0, -INF, 100, 0.9, 1),
            (100, 100, 50, 300, 0.9, 2),        # inverted (y2 < y1)
            (500, 900, 600, 1000, 0.9, 3),      # outside
            (-50, -100, 100, 100, 0.9, 4),      # straddles top-left: 0..100 x 0..100
            (300, 700, 500, 900, 0.9, 5),       # straddles bottom-right: 700..800 x 300..400
            (10, 10, 10.5, 300, 0.9, 6)]        # 0.5 px high
    got = run_both(effdet, eff_case(rows))
    assert objects(got) == [(4, 0.0, 0.0, 100.0, 100.0, 0.9), (5, 700.0, 300.0, 100.0, 100.0, 0.9)]


def test_batched_boxes_nonfinite_inverted_outside_and_clipped(yolov4):
    rows = [(NAN, 0, 0.5, 0.5, 0.9, 0),
            (0, 0, 0.5, -INF, 0.9, 1),
            (0.5, 0.5, 0.25, 0.75, 0.9, 2),      # inverted
            (1.5, 1.5, 2.0, 2.0, 0.9, 3),        # outside
            (-0.25, -0.5, 0.25, 0.5, 0.9, 4),    # straddles top-left: 0..200 x 0..200
            (0.5, 0.5, 1.25, 1.5, 0.9, 5),       # straddles bottom-right: 400..800 x 200..400
            (0.5, 0.5, 0.5005, 0.6, 0.9, 6)]     # 0.4 px wide: dropped
    got = run_both(yolov4, batched_case(rows))
    assert objects(got) == [(4, 0.0, 0.0, 200.0, 200.0, 0.9), (5, 400.0, 200.0, 400.0, 200.0, 0.9)]


def test_ssd_boxes_nonfinite_inverted_outside_tiny_and_clipped(ssd):
    rows = [(1, 0.9, NAN, 0, 0.5, 0.5),
            (1, 0.9, 0.5, 0.5, 0.25, 0.75),       # inverted
            (2, 0.9, 1.5, 1.5, 2.0, 2.0),         # outside
            (3, 0.9, -0.25, -0.5, 0.25, 0.5),     # straddles top-left: 0..200 x 0..200
            (4, 0.9, 0.5, 0.5, 0.5005, 0.6)]      # 0.4 px wide
    assert objects(run_both(ssd, ssd_case(rows))) == [(3, 0.0, 0.0, 200.0, 200.0, 0.9)]


@pytest.mark.parametrize("names, order", [
    (EFF_NAMES, (3, 1, 0, 2)),                # named, shuffled binding order
    (EFF_NAMES, (2, 3, 1, 0)),
    (("a", "b", "c", "d"), (0, 1, 2, 3)),     # renamed, plugin order: found by type and shape
    (("a", "b", "c", "d"), (3, 2, 1, 0)),     # renamed, reversed: classes (INT32 [K]) are not the count ([1])
])
def test_efficientnms_layers_found_by_name_in_any_order_and_by_shape(effdet, names, order):
    rows = [(100, 50, 300, 250, 0.9, 2), (0, 0, 100, 200, 0.3, 7)]
    got = run_both(effdet, eff_case(rows, names=names, order=order))
    assert objects(got) == [(2, 50.0, 100.0, 200.0, 200.0, 0.9), (7, 0.0, 0.0, 200.0, 100.0, 0.3)]


@pytest.mark.parametrize("names, order", [
    (STANDARD, (3, 1, 0, 2)),                     # named, shuffled binding order
    (TAO, (2, 0, 3, 1)),                          # TAO's exporter names, shuffled
    (("a", "b", "c", "d"), (0, 1, 2, 3)),         # renamed, plugin order: found by type and shape
    (("a", "b", "c", "d"), (1, 0, 2, 3)),         # renamed, count and boxes swapped: still found
])
def test_batched_layers_found_by_name_in_any_order_and_by_shape(yolov4, names, order):
    rows = [(0.125, 0.25, 0.5, 0.75, 0.9, 2), (0.0, 0.0, 0.25, 0.25, 0.3, 7)]
    got = run_both(yolov4, batched_case(rows, names=names, order=order))
    assert objects(got) == [(2, 100.0, 100.0, 300.0, 200.0, 0.9), (7, 0.0, 0.0, 200.0, 100.0, 0.3)]


@pytest.mark.parametrize("names, reverse", [(SSD_NAMES, True), (("a", "b"), False), (("a", "b"), True)])
def test_ssd_layers_by_name_in_any_order_and_by_shape(ssd, names, reverse):
    got = run_both(ssd, ssd_case([(2, 0.9, 0.125, 0.25, 0.5, 0.75)], names=names, reverse=reverse))
    assert objects(got) == [(2, 100.0, 100.0, 300.0, 200.0, 0.9)]


# -- refusals ----------------------------------------------------------------------------------------

def _layers(names, defaults, **changes):
    """Layers named ``names`` with data/dims/type from ``defaults`` (role -> (data, dims, type)), changed."""
    specs = {**defaults, **changes}
    return tuple(Layer(name, data, dims=dims, data_type=dtype)
                 for name, (data, dims, dtype) in zip(names, specs.values()))


def eff_layers(**changes):
    return _layers(EFF_NAMES, {"count": (np.array([1], np.int32), None, None),
                               "boxes": (np.zeros((3, 4), np.float32), None, None),
                               "scores": (np.zeros(3, np.float32), None, None),
                               "classes": (np.zeros(3, np.int32), None, None)}, **changes)


def batched_layers(**changes):
    return _layers(STANDARD, {"count": (np.array([1], np.int32), None, None),
                              "boxes": (np.zeros((3, 4), np.float32), None, None),
                              "scores": (np.zeros(3, np.float32), None, None),
                              "classes": (np.zeros(3, np.float32), None, None)}, **changes)


def ssd_layers(**changes):
    return _layers(SSD_NAMES, {"det": (np.zeros((1, 3, 7), np.float32), None, None),
                               "count": (np.zeros((1, 1, 1), np.int32), None, None)}, **changes)


WRONG = [
    ("effdet", eff_layers(classes=(np.zeros(3, np.float32), None, None))),  # FLOAT classes: BatchedNMS, not this
    ("effdet", eff_layers(classes=(BUFFER, (3,), DataType.HALF))),
    ("effdet", eff_layers(count=(BUFFER, (1,), DataType.FLOAT))),           # count not INT32
    ("effdet", eff_layers(count=(np.array([1], np.int32), (), None))),      # count with no elements
    ("effdet", eff_layers(boxes=(BUFFER, (3, 5), None))),                   # boxes not [K, 4]
    ("effdet", eff_layers(boxes=(BUFFER, (0, 4), None))),                   # K = 0
    ("effdet", eff_layers(boxes=(BUFFER, (1, 3, 4), None))),                # batch dimension left in
    ("effdet", eff_layers(boxes=(BUFFER, (3, 4), DataType.INT32))),
    ("effdet", eff_layers(scores=(BUFFER, (4,), None))),                    # K differs
    ("effdet", eff_layers(scores=(np.zeros(3, np.int32), None, None))),     # scores INT32
    ("effdet", eff_layers(classes=(np.zeros((3, 1), np.int32), None, None))),
    ("effdet", eff_layers()[:3]),                                            # a layer missing
    ("yolov4", batched_layers(count=(BUFFER, (1,), DataType.FLOAT))),       # count not INT32
    ("yolov4", batched_layers(count=(np.array([1], np.int32), (), None))),  # count with no elements
    ("yolov4", batched_layers(count=(np.array([1], np.int32), (0,), None))),
    ("yolov4", batched_layers(boxes=(BUFFER, (3, 5), None))),               # boxes not [K, 4]
    ("yolov4", batched_layers(boxes=(BUFFER, (0, 4), None))),               # K = 0
    ("yolov4", batched_layers(boxes=(BUFFER, (1, 3, 4), None))),            # batch dimension left in
    ("yolov4", batched_layers(scores=(BUFFER, (4,), None))),                # K differs
    ("yolov4", batched_layers(classes=(BUFFER, (3, 1), None))),             # classes [K, 1]
    ("yolov4", batched_layers(classes=(np.zeros(3, np.int32), None, None))),  # classes INT32 (EfficientNMS style)
    ("yolov4", batched_layers(boxes=(BUFFER, (3, 4), DataType.INT8))),
    ("yolov4", batched_layers()[:3]),                                        # a layer missing
    ("ssd", ssd_layers(det=(BUFFER, (3, 7), None))),                        # batch-less [K, 7]
    ("ssd", ssd_layers(det=(BUFFER, (1, 3, 6), None))),                     # not 7 per record
    ("ssd", ssd_layers(det=(BUFFER, (2, 3, 7), None))),                     # [2, K, 7]
    ("ssd", ssd_layers(det=(BUFFER, (1, 0, 7), None))),                     # K = 0
    ("ssd", ssd_layers(det=(BUFFER, (1, 1, 3, 7), None))),                  # batch dimension left in
    ("ssd", ssd_layers(det=(np.zeros((1, 3, 7), np.int32), None, None))),   # records INT32
    ("ssd", ssd_layers(det=(BUFFER, (1, 3, 7), DataType.INT8))),
    ("ssd", ssd_layers(count=(BUFFER, (1, 1, 1), DataType.FLOAT))),         # count FLOAT
    ("ssd", ssd_layers(count=(BUFFER, (), None))),                          # count with no elements
    ("ssd", ssd_layers()[:1]),                                               # count missing
    ("ssd", ssd_layers()[1:]),                                               # records missing
]


@pytest.mark.cpp  # builds through request.getfixturevalue / its fixture
@pytest.mark.parametrize("parser, layers", WRONG, ids=lambda v: v if isinstance(v, str) else ",".join(
    f"{l.name}{list(l.reported_dims)}{l.reported_type.name}" for l in v))
def test_wrong_dims_or_types_return_false(request, parser, layers):
    architecture, params, library = request.getfixturevalue(parser)
    bad = ParserCase(layers, NetworkInfo(800, 400), DetectionParams.uniform(params.num_classes, 0.25))
    got = library.parse(bad)
    assert not got.accepted and len(got.objects) == 0
    assert not architecture.reference(bad, params).accepted


@pytest.mark.cpp  # builds through request.getfixturevalue / its fixture
@pytest.mark.parametrize("parser, layers, line", [
    ("effdet", eff_layers(classes=(np.zeros(3, np.float32), None, None)),
     'dsparsers[tao-efficientdet]: classes layer "detection_classes" has data type FLOAT; expected INT32 '
     '(EfficientNMS class ids)'),
    ("yolov4", batched_layers(scores=(BUFFER, (4,), None)),
     'dsparsers[tao-yolov4]: layer "nmsed_scores" has dims [4]; expected [3] like the boxes layer "nmsed_boxes" '
     '[3, 4]'),
    ("ssd", ssd_layers(det=(BUFFER, (1, 3, 6), None)),
     'dsparsers[tao-ssd]: detections layer "NMS" has dims [1, 3, 6]; expected [1, K, 7]'),
    ("ssd", ssd_layers()[1:],
     'dsparsers[tao-ssd]: no detections layer among 1 layers (looked for "NMS", then a [1, K, 7] layer)'),
    ("yolov4", batched_layers()[:3],
     'dsparsers[tao-yolov4]: no classes layer among 3 layers (looked for "nmsed_classes", then by type and shape)'),
], ids=["efficientnms-float-classes", "batched-k-differs", "ssd-record-width", "ssd-missing", "batched-missing"])
def test_refusal_is_one_clear_line(request, capfd, parser, layers, line):
    _, params, library = request.getfixturevalue(parser)
    capfd.readouterr()
    library.parse(ParserCase(layers, NetworkInfo(800, 400), DetectionParams.uniform(params.num_classes, 0.25)))
    lines = [text for text in capfd.readouterr().err.splitlines() if text.strip()]
    assert lines == [line]


# -- recognising exports that end in the plugin nodes ------------------------------------------------

def plugin_model(path, *, op="EfficientNMS_TRT", domain="TRT", names=EFF_NAMES, keep=100, classes_type=np.int32,
                 background=-1, input_name="images", input_shape=(1, 3, 640, 640), with_node=True):
    """A graph built with onnx-graphsurgeon that ends in an NMS plugin node with its real attributes."""
    image = gs.Variable(input_name, np.float32, list(input_shape))
    boxes_in, scores_in = gs.Variable("boxes_in", np.float32, None), gs.Variable("scores_in", np.float32, None)
    outputs = [gs.Variable(names[0], np.int32, [1, 1]), gs.Variable(names[1], np.float32, [1, keep, 4]),
               gs.Variable(names[2], np.float32, [1, keep]), gs.Variable(names[3], classes_type, [1, keep])]
    nodes = [gs.Node("Identity", inputs=[image], outputs=[boxes_in]), gs.Node("Identity", inputs=[image],
                                                                              outputs=[scores_in])]
    if op == "EfficientNMS_TRT":
        attrs = {"plugin_version": "1", "background_class": background, "max_output_boxes": keep,
                 "score_threshold": 0.25, "iou_threshold": 0.45, "score_activation": 0, "class_agnostic": 0,
                 "box_coding": 0}
    else:  # BatchedNMS(Dynamic)_TRT as TAO YOLOv4 writes it
        attrs = {"shareLocation": 1, "backgroundLabelId": -1, "numClasses": 80, "topK": 2 * keep, "keepTopK": keep,
                 "scoreThreshold": 0.001, "iouThreshold": 0.5, "isNormalized": 1, "clipBoxes": 1}
    if with_node:
        nodes.append(gs.Node(op, name="nms", domain=domain, attrs=attrs, inputs=[boxes_in, scores_in], outputs=outputs))
    else:
        nodes += [gs.Node("Identity", inputs=[boxes_in], outputs=[t]) for t in outputs]
    graph = gs.Graph(nodes=nodes, inputs=[image], outputs=outputs, opset=13)
    onnx.save(gs.export_onnx(graph), str(path))
    return path


def nms_model(path, *, op="BatchedNMSDynamic_TRT", domain="com.nvidia.tensorrt", names=TAO, normalized=1,
              num_classes=4, keep=100, classes_type=TensorProto.FLOAT, with_node=True):
    """A TAO-style graph: Input -> boxes [1, N, 1, 4] and scores [1, N, C] -> the NMS plugin node."""
    inputs = [helper.make_tensor_value_info("Input", TensorProto.FLOAT, [1, 3, 544, 960])]
    nodes = [helper.make_node("Identity", ["Input"], ["box_data"]), helper.make_node("Identity", ["Input"], ["cls_data"])]
    outputs = [helper.make_tensor_value_info(names[0], TensorProto.INT32, [1, 1]),
               helper.make_tensor_value_info(names[1], TensorProto.FLOAT, [1, keep, 4]),
               helper.make_tensor_value_info(names[2], TensorProto.FLOAT, [1, keep]),
               helper.make_tensor_value_info(names[3], classes_type, [1, keep])]
    if with_node:
        nodes.append(helper.make_node(op, ["box_data", "cls_data"], list(names), name="BatchedNMS_N", domain=domain,
                                      shareLocation=1, backgroundLabelId=-1, numClasses=num_classes, topK=2 * keep,
                                      keepTopK=keep, scoreThreshold=0.001, iouThreshold=0.5,
                                      isNormalized=normalized, clipBoxes=1, scoreBits=16))
    else:
        nodes += [helper.make_node("Identity", ["Input"], [n]) for n in names]
    graph = helper.make_graph(nodes, "tao", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(domain, 1)])
    onnx.save(model, str(path))
    return path


def nms_trt_model(path, *, names=SSD_NAMES, keep=200, num_classes=5, background=0, normalized=1, count_type=np.int32,
                  with_node=True, domain="com.nvidia.tensorrt"):
    """A TAO SSD-style graph built with onnx-graphsurgeon: loc/conf/priors -> NMS_TRT -> NMS, NMS_1."""
    image = gs.Variable("Input", np.float32, [1, 3, 544, 960])
    loc, conf, priors = (gs.Variable(n, np.float32, None) for n in ("loc_data", "conf_data", "prior_data"))
    det = gs.Variable(names[0], np.float32, [1, 1, keep, 7])
    count = gs.Variable(names[1], count_type, [1, 1, 1, 1])
    nodes = [gs.Node("Identity", inputs=[image], outputs=[t]) for t in (loc, conf, priors)]
    if with_node:
        nodes.append(gs.Node("NMS_TRT", name="NMS", domain=domain, inputs=[loc, conf, priors], outputs=[det, count],
                             attrs={"shareLocation": 1, "varianceEncodedInTarget": 0, "backgroundLabelId": background,
                                    "confidenceThreshold": 0.01, "nmsThreshold": 0.6, "topK": 200, "keepTopK": keep,
                                    "numClasses": num_classes, "inputOrder": [1, 2, 0], "confSigmoid": 1,
                                    "isNormalized": normalized, "codeType": 3, "scoreConverter": "SIGMOID"}))
    else:
        nodes += [gs.Node("Identity", inputs=[loc], outputs=[det]), gs.Node("Identity", inputs=[conf], outputs=[count])]
    graph = gs.Graph(nodes=nodes, inputs=[image], outputs=[det, count], opset=13)
    onnx.save(gs.export_onnx(graph), str(path))
    return path


def test_efficientnms_plugin_graph_is_ranked_first_with_a_specific_reason(tmp_path, registry):
    path = plugin_model(tmp_path / "yolo.onnx", keep=50)
    result = CliRunner().invoke(main, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    matches = json.loads(result.output)["matches"]
    assert matches[0]["architecture"] == "efficientnms" and matches[0]["score"] >= 0.9
    assert "EfficientNMS_TRT node (domain 'TRT', max_output_boxes=50, background_class=-1, box_coding=0" \
        in matches[0]["reason"]
    assert all(m["score"] < 0.5 for m in matches[1:])
    arch = registry.get("efficientnms").architecture
    with pytest.raises(UsageError, match="--classes"):
        arch.head_params(load_model(path), GenerateOptions())
    params = arch.head_params(load_model(path), GenerateOptions(num_classes=3, requested_as="yolo-efficientnms"))
    assert (params.box_order, params.coords, params.max_output_boxes, params.num_classes) == ("xyxy", "pixels", 50, 3)
    assert (params.input_width, params.input_height) == (640, 640)


def test_efficientnms_tao_efficientdet_input_means_yxyx_and_nhwc_size(tmp_path, registry):
    path = plugin_model(tmp_path / "effdet.onnx", input_name="image_arrays:0", input_shape=(1, 544, 960, 3),
                        background=0)
    model = load_model(path)
    arch = registry.get("efficientnms").architecture
    verdict = arch.match(model)
    assert verdict.score >= 0.9 and "TAO EfficientDet" in verdict.reason
    params = arch.head_params(model, GenerateOptions(num_classes=4, requested_as="yolo-efficientnms"))
    assert (params.box_order, params.input_width, params.input_height, params.background_class) == \
        ("yxyx", 960, 544, 0)
    with pytest.raises(UsageError, match="box_order=xyxy"):
        arch.head_params(model, GenerateOptions(num_classes=4, extra={"box_order": "xyxy"}))
    with pytest.raises(UsageError, match="coords"):
        arch.head_params(model, GenerateOptions(num_classes=4, extra={"coords": "metres"}))


def test_efficientnms_names_and_shapes_without_the_node(tmp_path, registry):
    arch = registry.get("efficientnms").architecture
    named = arch.match(load_model(plugin_model(tmp_path / "n.onnx", with_node=False)))
    assert 0.7 <= named.score < 0.9 and "named as the plugin names them" in named.reason
    renamed = load_model(plugin_model(tmp_path / "r.onnx", names=("n", "b", "s", "c"), with_node=False))
    assert 0.5 <= arch.match(renamed).score < 0.7
    params = arch.head_params(renamed, GenerateOptions(num_classes=2))
    assert (params.count_name, params.boxes_name, params.scores_name, params.classes_name) == ("n", "b", "s", "c")


def test_efficientnms_never_confused_with_batched_nms_or_nms_trt(tmp_path, registry):
    arch = registry.get("efficientnms").architecture
    batched = load_model(plugin_model(tmp_path / "b.onnx", op="BatchedNMSDynamic_TRT", classes_type=np.float32,
                                      names=("BatchedNMS", "BatchedNMS_1", "BatchedNMS_2", "BatchedNMS_3")))
    assert arch.match(batched) is None
    assert registry.rank(batched)[0].architecture == "tao-batched-nms"
    float_classes = load_model(plugin_model(tmp_path / "f.onnx", classes_type=np.float32, with_node=False))
    assert arch.match(float_classes) is None
    assert arch.match(load_model(nms_trt_model(tmp_path / "ssd.onnx"))) is None
    assert registry.get("tao-batched-nms").architecture.match(load_model(plugin_model(tmp_path / "e.onnx"))) is None


def test_batched_plugin_node_with_pixels_is_detected(tmp_path, registry):
    model = load_model(nms_model(tmp_path / "v5.onnx", normalized=0, num_classes=4, keep=100))
    arch = registry.get("tao-batched-nms").architecture
    verdict = arch.match(model)
    assert verdict.score >= 0.9
    assert "BatchedNMSDynamic_TRT" in verdict.reason and "isNormalized=0 -> pixels" in verdict.reason
    assert "com.nvidia.tensorrt" in verdict.reason
    params = arch.head_params(model, GenerateOptions(requested_as="tao-batched-nms"))
    assert (params.coords, params.num_classes, params.keep_top_k) == ("pixels", 4, 100)
    assert (params.count_name, params.boxes_name, params.scores_name, params.classes_name) == TAO
    assert (params.input_width, params.input_height) == (960, 544)
    assert registry.rank(model)[0].architecture == "tao-batched-nms"
    with pytest.raises(UsageError, match="isNormalized=0"):
        arch.head_params(model, GenerateOptions(extra={"coords": "normalized"}))
    with pytest.raises(UsageError, match="numClasses=4"):
        arch.head_params(model, GenerateOptions(num_classes=80))


def test_batched_plugin_node_normalized_static_plugin_and_standard_names(tmp_path, registry):
    model = load_model(nms_model(tmp_path / "v4.onnx", op="BatchedNMS_TRT", names=STANDARD, normalized=1))
    arch = registry.get("tao-yolov4").architecture
    verdict = arch.match(model)
    assert verdict.score >= 0.9 and "BatchedNMS_TRT" in verdict.reason
    params = arch.head_params(model, GenerateOptions(requested_as="tao-yolov4"))
    assert (params.coords, params.count_name, params.classes_name) == ("normalized", "num_detections", "nmsed_classes")


def test_batched_names_without_the_node(tmp_path, registry):
    model = load_model(nms_model(tmp_path / "names.onnx", names=STANDARD, with_node=False))
    arch = registry.get("tao-batched-nms").architecture
    verdict = arch.match(model)
    assert 0.7 <= verdict.score < 0.9 and "named as the plugin names them" in verdict.reason
    with pytest.raises(UsageError, match="--classes"):
        arch.head_params(model, GenerateOptions())
    params = arch.head_params(model, GenerateOptions(num_classes=3))
    assert (params.coords, params.num_classes, params.keep_top_k) == ("normalized", 3, 100)
    assert arch.head_params(model, GenerateOptions(num_classes=3, extra={"coords": "pixels"})).coords == "pixels"
    with pytest.raises(UsageError, match="coords"):
        arch.head_params(model, GenerateOptions(num_classes=3, extra={"coords": "metres"}))


def test_batched_efficient_nms_outputs_are_not_this_head(tmp_path, registry):
    model = load_model(nms_model(tmp_path / "eff.onnx", op="EfficientNMS_TRT", classes_type=TensorProto.INT32,
                                 names=EFF_NAMES))
    assert registry.get("tao-batched-nms").architecture.match(model) is None


def test_ssd_plugin_graph_is_ranked_first_with_a_specific_reason(tmp_path, registry):
    path = nms_trt_model(tmp_path / "ssd.onnx", keep=100, num_classes=4)
    result = CliRunner().invoke(main, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    matches = json.loads(result.output)["matches"]
    assert matches[0]["architecture"] == "ssd-nms" and matches[0]["score"] >= 0.9
    assert "NMS_TRT node (domain 'com.nvidia.tensorrt', numClasses=4, keepTopK=100, backgroundLabelId=0" \
        in matches[0]["reason"]
    assert all(m["score"] < 0.5 for m in matches[1:])
    model = load_model(path)
    params = registry.get("ssd-nms").architecture.head_params(model, GenerateOptions(requested_as="ssd-nms"))
    assert (params.num_classes, params.background, params.keep_top_k) == (4, 0, 100)
    assert (params.detections_name, params.count_name, params.input_width, params.input_height) == \
        ("NMS", "NMS_1", 960, 544)
    assert params.labels() == ["background", "class_1", "class_2", "class_3"]


def test_ssd_background_attribute_and_option(tmp_path, registry):
    arch = registry.get("ssd-nms").architecture
    model = load_model(nms_trt_model(tmp_path / "nobg.onnx", background=-1))
    assert arch.head_params(model, GenerateOptions()).background == -1
    with pytest.raises(UsageError, match="backgroundLabelId=-1"):
        arch.head_params(model, GenerateOptions(extra={"background": "0"}))
    with pytest.raises(UsageError, match="numClasses=5"):
        arch.head_params(model, GenerateOptions(num_classes=4))
    with pytest.raises(UsageError, match="background=x"):
        arch.head_params(None, GenerateOptions(extra={"background": "x"}))
    with pytest.raises(UsageError, match="isNormalized=0"):
        arch.head_params(load_model(nms_trt_model(tmp_path / "px.onnx", normalized=0)), GenerateOptions())


def test_ssd_names_and_shapes_without_the_node(tmp_path, registry):
    arch = registry.get("ssd-nms").architecture
    named = load_model(nms_trt_model(tmp_path / "named.onnx", with_node=False))
    verdict = arch.match(named)
    assert 0.7 <= verdict.score < 0.9 and "named as TAO's exporters name them" in verdict.reason
    with pytest.raises(UsageError, match="--classes"):
        arch.head_params(named, GenerateOptions())
    renamed = load_model(nms_trt_model(tmp_path / "renamed.onnx", names=("dets", "keep"), with_node=False))
    assert 0.5 <= arch.match(renamed).score < 0.7
    params = arch.head_params(renamed, GenerateOptions(num_classes=3, extra={"background": "none"}))
    assert (params.detections_name, params.count_name, params.background, params.keep_top_k) == ("dets", "keep", -1, 200)


def test_ssd_float_count_is_flagged(tmp_path, registry):
    verdict = registry.get("ssd-nms").architecture.match(load_model(nms_trt_model(tmp_path / "f.onnx",
                                                                                  count_type=np.float32)))
    assert verdict.score < 0.9 and "not int32" in verdict.reason


def test_ssd_other_nms_plugins_are_not_this_head(tmp_path, registry):
    arch = registry.get("ssd-nms").architecture
    for op, classes in (("EfficientNMS_TRT", np.int32), ("BatchedNMSDynamic_TRT", np.float32)):
        model = load_model(plugin_model(tmp_path / f"{op}.onnx", op=op, classes_type=classes))
        assert arch.match(model) is None, op


# -- a parser generated from a model: EfficientNMS background_class ----------------------------------

@pytest.fixture(scope="module")
def with_background(tmp_path_factory):
    """A parser generated for a model whose EfficientNMS node has background_class=0 (built like conftest's)."""
    from dsparsers.library.meson_build import build_directory
    from dsparsers.generation.codegen import render_parser
    from dsparsers.verification.loader import ParserLibrary
    from dsparsers.generation.output_dir import write_directory
    from dsparsers.api.registry import Registry

    root = tmp_path_factory.mktemp("effnms-bg")
    arch = Registry(load_entry_points=False).get("efficientnms").architecture
    model = load_model(plugin_model(root / "bg.onnx", background=0))
    params = arch.head_params(model, GenerateOptions(num_classes=80, requested_as="efficientnms"))
    assert params.background_class == 0
    generated = render_parser(arch, params, model=model, requested_as="efficientnms")
    write_directory(root / "parser", dict(generated.files))
    result = build_directory(root / "parser", deepstream_include="bundled")
    library = ParserLibrary(result.library, result.function, result.abi)
    yield arch, params, library
    library.close()


@pytest.mark.cpp  # builds through request.getfixturevalue / its fixture
def test_efficientnms_background_class_rows_are_dropped(with_background):
    box = (100, 50, 300, 250)
    got = run_both(with_background, eff_case([(*box, 0.9, 0), (*box, 0.8, 1)]))
    assert objects(got) == [(1, 50.0, 100.0, 200.0, 200.0, 0.8)]
