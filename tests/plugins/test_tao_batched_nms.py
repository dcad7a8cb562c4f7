"""tao-batched-nms (BatchedNMS_TRT / BatchedNMSDynamic_TRT outputs): hand-computed cases checked against the
built parser and the reference decoder, and the matcher on ONNX graphs holding the plugin node."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from dsparsers.api.architecture import GenerateOptions
from dsparsers.errors import UsageError
from dsparsers.model.reader import load_model
from dsparsers.api.abi_types import DataType, DetectionParams, Layer, NetworkInfo, ParserCase
from parser_checks import objects, run_both

NAN, INF = float("nan"), float("inf")
STANDARD = ("num_detections", "nmsed_boxes", "nmsed_scores", "nmsed_classes")
TAO = ("BatchedNMS", "BatchedNMS_1", "BatchedNMS_2", "BatchedNMS_3")


def case(rows, count=None, *, k=None, names=STANDARD, order=(0, 1, 2, 3), network=(800, 400), classes=80,
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


@pytest.fixture(scope="module")
def yolov4(open_parser):
    return open_parser("tao-yolov4")


@pytest.fixture(scope="module")
def yolov5(open_parser):
    return open_parser("tao-yolov5")


def test_canonical_heads(yolov4, yolov5):
    assert (yolov4[1].coords, yolov4[1].num_classes, yolov4[1].keep_top_k) == ("normalized", 80, 200)
    assert (yolov4[1].input_width, yolov4[1].input_height) == (960, 544)
    assert yolov5[1].coords == "pixels"  # the alias picks TAO's YOLOv5 (isNormalized=0) default


def test_normalized_boxes_are_scaled_by_the_network(yolov4):
    # 800x400 network: x 0.125 -> 100, 0.5 -> 400; y 0.25 -> 100, 0.75 -> 300
    got = run_both(yolov4, case([(0.125, 0.25, 0.5, 0.75, 0.9, 2)]))
    assert got.accepted and objects(got) == [(2, 100.0, 100.0, 300.0, 200.0, 0.9)]


def test_pixel_boxes_are_taken_as_they_are(yolov5):
    got = run_both(yolov5, case([(100, 50, 300, 250, 0.9, 2)]))
    assert objects(got) == [(2, 100.0, 50.0, 200.0, 200.0, 0.9)]


def test_count_is_clamped_and_rows_past_it_are_ignored(yolov4, capfd):
    rows = [(0.0, 0.0, 0.5, 0.5, 0.9, 1), (0.5, 0.5, 1.0, 1.0, 0.8, 2), (0.25, 0.25, 0.75, 0.75, 0.7, 3)]
    first = (1, 0.0, 0.0, 400.0, 200.0, 0.9)
    second = (2, 400.0, 200.0, 400.0, 200.0, 0.8)
    third = (3, 200.0, 100.0, 400.0, 200.0, 0.7)
    assert objects(run_both(yolov4, case(rows, 1))) == [first]
    assert objects(run_both(yolov4, case(rows, 0))) == []
    capfd.readouterr()
    assert objects(run_both(yolov4, case(rows, 7))) == [first, second, third]    # > K: K rows
    assert objects(run_both(yolov4, case(rows, -5))) == []                        # negative: none
    assert objects(run_both(yolov4, case(rows, 2**31 - 1))) == [first, second, third]
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines == ['dsparsers[tao-yolov4]: layer "num_detections" says 7 detections but there are 3 rows; '
                     'using 3']  # said once, not for every frame


def test_padding_rows_are_never_objects(yolov4):
    # num_detections covers padding rows (class -1, score 0, box 0) and a NaN class: none become objects
    rows = [(0.125, 0.25, 0.5, 0.75, 0.9, 2), (0, 0, 0, 0, 0.0, -1), (0.1, 0.1, 0.9, 0.9, 0.95, -1),
            (0.1, 0.1, 0.9, 0.9, 0.95, NAN)]
    assert objects(run_both(yolov4, case(rows, 4, k=6))) == [(2, 100.0, 100.0, 300.0, 200.0, 0.9)]


def test_class_ids_from_floats(yolov4):
    box = (0.0, 0.0, 0.5, 0.5)
    rows = [(*box, 0.9, 2.7),     # fractional: truncated to 2
            (*box, 0.9, 80.0),    # beyond the model's 80 classes
            (*box, 0.9, 79.0),
            (*box, 0.9, -0.5),    # negative
            (*box, 0.9, INF),
            (*box, 0.9, 5.0)]     # kept, until numClassesConfigured is 3
    got = run_both(yolov4, case(rows))
    assert [o[0] for o in objects(got)] == [2, 79, 5]
    configured = run_both(yolov4, case(rows, configured=3))
    assert [o[0] for o in objects(configured)] == [2]


def test_scores_threshold_inclusive_and_nonfinite(yolov4):
    box = (0.0, 0.0, 0.5, 0.5)
    rows = [(*box, 0.25, 0), (*box, 0.2499, 1), (*box, NAN, 2), (*box, INF, 3), (*box, 1.0, 4)]
    assert [(o[0], o[5]) for o in objects(run_both(yolov4, case(rows)))] == [(0, 0.25), (4, 1.0)]


def test_boxes_nonfinite_inverted_outside_and_clipped(yolov4):
    rows = [(NAN, 0, 0.5, 0.5, 0.9, 0),
            (0, 0, 0.5, -INF, 0.9, 1),
            (0.5, 0.5, 0.25, 0.75, 0.9, 2),      # inverted
            (1.5, 1.5, 2.0, 2.0, 0.9, 3),        # outside
            (-0.25, -0.5, 0.25, 0.5, 0.9, 4),    # straddles top-left: 0..200 x 0..200
            (0.5, 0.5, 1.25, 1.5, 0.9, 5),       # straddles bottom-right: 400..800 x 200..400
            (0.5, 0.5, 0.5005, 0.6, 0.9, 6)]     # 0.4 px wide: dropped
    got = run_both(yolov4, case(rows))
    assert objects(got) == [(4, 0.0, 0.0, 200.0, 200.0, 0.9), (5, 400.0, 200.0, 400.0, 200.0, 0.9)]


@pytest.mark.parametrize("names, order", [
    (STANDARD, (3, 1, 0, 2)),                     # named, shuffled binding order
    (TAO, (2, 0, 3, 1)),                          # TAO's exporter names, shuffled
    (("a", "b", "c", "d"), (0, 1, 2, 3)),         # renamed, plugin order: found by type and shape
    (("a", "b", "c", "d"), (1, 0, 2, 3)),         # renamed, count and boxes swapped: still found
])
def test_layers_found_by_name_in_any_order_and_by_shape(yolov4, names, order):
    rows = [(0.125, 0.25, 0.5, 0.75, 0.9, 2), (0.0, 0.0, 0.25, 0.25, 0.3, 7)]
    got = run_both(yolov4, case(rows, names=names, order=order))
    assert objects(got) == [(2, 100.0, 100.0, 300.0, 200.0, 0.9), (7, 0.0, 0.0, 200.0, 100.0, 0.3)]


def test_fp16_outputs(yolov4):
    got = run_both(yolov4, case([(0.125, 0.25, 0.5, 0.75, 0.875, 2)], dtype=np.float16))
    assert objects(got) == [(2, 100.0, 100.0, 300.0, 200.0, 0.875)]


def _layers(count=(np.array([1], np.int32), None, None), boxes=(np.zeros((3, 4), np.float32), None, None),
            scores=(np.zeros(3, np.float32), None, None), classes=(np.zeros(3, np.float32), None, None)):
    return tuple(Layer(name, data, dims=dims, data_type=dtype)
                 for name, (data, dims, dtype) in zip(STANDARD, (count, boxes, scores, classes)))


BUFFER = np.zeros(64, np.float32)


@pytest.mark.parametrize("layers", [
    _layers(count=(BUFFER, (1,), DataType.FLOAT)),          # count not INT32
    _layers(count=(np.array([1], np.int32), (), None)),      # count with no elements
    _layers(count=(np.array([1], np.int32), (0,), None)),
    _layers(boxes=(BUFFER, (3, 5), None)),                   # boxes not [K, 4]
    _layers(boxes=(BUFFER, (0, 4), None)),                   # K = 0
    _layers(boxes=(BUFFER, (1, 3, 4), None)),                # batch dimension left in
    _layers(scores=(BUFFER, (4,), None)),                    # K differs
    _layers(classes=(BUFFER, (3, 1), None)),                 # classes [K, 1]
    _layers(classes=(np.zeros(3, np.int32), None, None)),    # classes INT32 (EfficientNMS style)
    _layers(boxes=(BUFFER, (3, 4), DataType.INT8)),
    _layers()[:3],                                            # a layer missing
], ids=lambda layers: ",".join(f"{l.name}{list(l.reported_dims)}{l.reported_type.name}" for l in layers))
def test_wrong_dims_or_types_return_false(yolov4, layers):
    architecture, params, library = yolov4
    bad = ParserCase(layers, NetworkInfo(800, 400), DetectionParams.uniform(80, 0.25))
    got = library.parse(bad)
    assert not got.accepted and len(got.objects) == 0
    assert not architecture.reference(bad, params).accepted


def test_refusal_is_one_clear_line(yolov4, capfd):
    _, _, library = yolov4
    capfd.readouterr()
    library.parse(ParserCase(_layers(scores=(BUFFER, (4,), None)), NetworkInfo(800, 400),
                             DetectionParams.uniform(80, 0.25)))
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines == ['dsparsers[tao-yolov4]: layer "nmsed_scores" has dims [4]; expected [3] like the boxes layer '
                     '"nmsed_boxes" [3, 4]']


# -- recognising exports ----------------------------------------------------------------------------

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


def test_plugin_node_with_pixels_is_detected(tmp_path, registry):
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


def test_plugin_node_normalized_static_plugin_and_standard_names(tmp_path, registry):
    model = load_model(nms_model(tmp_path / "v4.onnx", op="BatchedNMS_TRT", names=STANDARD, normalized=1))
    arch = registry.get("tao-yolov4").architecture
    verdict = arch.match(model)
    assert verdict.score >= 0.9 and "BatchedNMS_TRT" in verdict.reason
    params = arch.head_params(model, GenerateOptions(requested_as="tao-yolov4"))
    assert (params.coords, params.count_name, params.classes_name) == ("normalized", "num_detections", "nmsed_classes")


def test_names_without_the_node(tmp_path, registry):
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


def test_efficient_nms_outputs_are_not_this_head(tmp_path, registry):
    model = load_model(nms_model(tmp_path / "eff.onnx", op="EfficientNMS_TRT", classes_type=TensorProto.INT32,
                                 names=("num_detections", "detection_boxes", "detection_scores", "detection_classes")))
    assert registry.get("tao-batched-nms").architecture.match(model) is None
