"""efficientnms (TensorRT EfficientNMS_TRT outputs: TAO EfficientDet, YOLO exports ending in the plugin):
hand-computed cases checked against the built parser and the reference decoder, and the matcher on graphs
that end in the plugin node."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from click.testing import CliRunner

from dsparsers.api.architecture import GenerateOptions
from dsparsers.cli import main
from dsparsers.errors import UsageError
from dsparsers.model.reader import load_model
from dsparsers.api.abi_types import DataType, DetectionParams, Layer, NetworkInfo, ParserCase
from parser_checks import objects, run_both

NAN, INF = float("nan"), float("inf")
NAMES = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")


def case(rows, count=None, *, k=None, names=NAMES, order=(0, 1, 2, 3), network=(800, 400), classes=80,
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


@pytest.fixture(scope="module")
def effdet(open_parser):
    return open_parser("tao-efficientdet")


@pytest.fixture(scope="module")
def yolo(open_parser):
    return open_parser("yolo-efficientnms")


@pytest.fixture(scope="module")
def normalized(open_parser):
    return open_parser("efficient-nms", extra={"box_order": "xyxy", "coords": "normalized"})


def test_canonical_heads(effdet, yolo, normalized):
    p = effdet[1]
    assert (p.box_order, p.coords, p.num_classes, p.max_output_boxes, p.background_class) == \
        ("yxyx", "pixels", 80, 100, -1)
    assert (p.input_width, p.input_height) == (960, 544)
    assert (yolo[1].box_order, yolo[1].coords, yolo[1].input_width) == ("xyxy", "pixels", 640)
    assert (normalized[1].box_order, normalized[1].coords) == ("xyxy", "normalized")


def test_box_orders_and_coordinate_spaces(effdet, yolo, normalized):
    # one box, left 50 top 100 right 250 bottom 300 on an 800x400 network: 200 x 200
    want = [(2, 50.0, 100.0, 200.0, 200.0, 0.9)]
    assert objects(run_both(effdet, case([(100, 50, 300, 250, 0.9, 2)]))) == want      # y1 x1 y2 x2
    assert objects(run_both(yolo, case([(50, 100, 250, 300, 0.9, 2)]))) == want        # x1 y1 x2 y2
    # normalized: x 0.0625 * 800 = 50, 0.3125 * 800 = 250; y 0.25 * 400 = 100, 0.75 * 400 = 300
    assert objects(run_both(normalized, case([(0.0625, 0.25, 0.3125, 0.75, 0.9, 2)]))) == want
    # the same numbers read in the other order give another box: x 100..300, y 50..250
    assert objects(run_both(yolo, case([(100, 50, 300, 250, 0.9, 2)]))) == [(2, 100.0, 50.0, 200.0, 200.0, 0.9)]


def test_count_is_clamped_and_padding_rows_are_ignored(effdet, capfd):
    rows = [(0, 0, 200, 400, 0.9, 1), (200, 400, 400, 800, 0.8, 2), (100, 200, 300, 600, 0.7, 3)]
    first = (1, 0.0, 0.0, 400.0, 200.0, 0.9)
    second = (2, 400.0, 200.0, 400.0, 200.0, 0.8)
    third = (3, 200.0, 100.0, 400.0, 200.0, 0.7)
    assert objects(run_both(effdet, case(rows, 1))) == [first]
    assert objects(run_both(effdet, case(rows, 0))) == []
    # padding rows are zeros, class 0 with a score of 0; a row past the count with a real score is not read
    padded = case(rows[:1] + [(0, 0, 0, 0, 0.0, 0), (0, 0, 400, 800, 0.99, 0)], 1)
    assert objects(run_both(effdet, padded)) == [first]
    capfd.readouterr()
    assert objects(run_both(effdet, case(rows, 5))) == [first, second, third]
    assert objects(run_both(effdet, case(rows, -1))) == []
    assert objects(run_both(effdet, case(rows, 2**31 - 1))) == [first, second, third]
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines == ['dsparsers[tao-efficientdet]: layer "num_detections" says 5 detections but there are 3 rows; '
                     'using 3']


def test_int32_class_ids(effdet):
    box = (0, 0, 200, 400)
    rows = [(*box, 0.9, 2), (*box, 0.9, 80), (*box, 0.9, 79), (*box, 0.9, -1), (*box, 0.9, 2**31 - 1),
            (*box, 0.9, -2**31), (*box, 0.9, 5)]
    assert [o[0] for o in objects(run_both(effdet, case(rows)))] == [2, 79, 5]
    assert [o[0] for o in objects(run_both(effdet, case(rows, configured=3)))] == [2]


def test_scores_threshold_inclusive_nonfinite_and_fp16(effdet):
    box = (0, 0, 200, 400)
    rows = [(*box, 0.25, 0), (*box, 0.2499, 1), (*box, NAN, 2), (*box, INF, 3), (*box, 1.0, 4)]
    assert [(o[0], o[5]) for o in objects(run_both(effdet, case(rows)))] == [(0, 0.25), (4, 1.0)]
    got = run_both(effdet, case([(100, 50, 300, 250, 0.875, 2)], dtype=np.float16))
    assert objects(got) == [(2, 50.0, 100.0, 200.0, 200.0, 0.875)]


def test_boxes_nonfinite_inverted_outside_and_clipped(effdet):
    rows = [(NAN, 0, 100, 100, 0.9, 0),
            (0, 0, -INF, 100, 0.9, 1),
            (100, 100, 50, 300, 0.9, 2),        # inverted (y2 < y1)
            (500, 900, 600, 1000, 0.9, 3),      # outside
            (-50, -100, 100, 100, 0.9, 4),      # straddles top-left: 0..100 x 0..100
            (300, 700, 500, 900, 0.9, 5),       # straddles bottom-right: 700..800 x 300..400
            (10, 10, 10.5, 300, 0.9, 6)]        # 0.5 px high
    got = run_both(effdet, case(rows))
    assert objects(got) == [(4, 0.0, 0.0, 100.0, 100.0, 0.9), (5, 700.0, 300.0, 100.0, 100.0, 0.9)]


@pytest.mark.parametrize("names, order", [
    (NAMES, (3, 1, 0, 2)),                    # named, shuffled binding order
    (NAMES, (2, 3, 1, 0)),
    (("a", "b", "c", "d"), (0, 1, 2, 3)),     # renamed, plugin order: found by type and shape
    (("a", "b", "c", "d"), (3, 2, 1, 0)),     # renamed, reversed: classes (INT32 [K]) are not the count ([1])
])
def test_layers_found_by_name_in_any_order_and_by_shape(effdet, names, order):
    rows = [(100, 50, 300, 250, 0.9, 2), (0, 0, 100, 200, 0.3, 7)]
    got = run_both(effdet, case(rows, names=names, order=order))
    assert objects(got) == [(2, 50.0, 100.0, 200.0, 200.0, 0.9), (7, 0.0, 0.0, 200.0, 100.0, 0.3)]


def _layers(count=(np.array([1], np.int32), None, None), boxes=(np.zeros((3, 4), np.float32), None, None),
            scores=(np.zeros(3, np.float32), None, None), classes=(np.zeros(3, np.int32), None, None)):
    return tuple(Layer(name, data, dims=dims, data_type=dtype)
                 for name, (data, dims, dtype) in zip(NAMES, (count, boxes, scores, classes)))


BUFFER = np.zeros(64, np.float32)


@pytest.mark.parametrize("layers", [
    _layers(classes=(np.zeros(3, np.float32), None, None)),  # FLOAT classes: BatchedNMS, not this head
    _layers(classes=(BUFFER, (3,), DataType.HALF)),
    _layers(count=(BUFFER, (1,), DataType.FLOAT)),           # count not INT32
    _layers(count=(np.array([1], np.int32), (), None)),      # count with no elements
    _layers(boxes=(BUFFER, (3, 5), None)),                   # boxes not [K, 4]
    _layers(boxes=(BUFFER, (0, 4), None)),                   # K = 0
    _layers(boxes=(BUFFER, (1, 3, 4), None)),                # batch dimension left in
    _layers(boxes=(BUFFER, (3, 4), DataType.INT32)),
    _layers(scores=(BUFFER, (4,), None)),                    # K differs
    _layers(scores=(np.zeros(3, np.int32), None, None)),     # scores INT32
    _layers(classes=(np.zeros((3, 1), np.int32), None, None)),
    _layers()[:3],                                            # a layer missing
], ids=lambda layers: ",".join(f"{l.name}{list(l.reported_dims)}{l.reported_type.name}" for l in layers))
def test_wrong_dims_or_types_return_false(effdet, layers):
    architecture, params, library = effdet
    bad = ParserCase(layers, NetworkInfo(800, 400), DetectionParams.uniform(80, 0.25))
    got = library.parse(bad)
    assert not got.accepted and len(got.objects) == 0
    assert not architecture.reference(bad, params).accepted


def test_refusal_is_one_clear_line(effdet, capfd):
    _, _, library = effdet
    capfd.readouterr()
    library.parse(ParserCase(_layers(classes=(np.zeros(3, np.float32), None, None)), NetworkInfo(800, 400),
                             DetectionParams.uniform(80, 0.25)))
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines == ['dsparsers[tao-efficientdet]: classes layer "detection_classes" has data type FLOAT; expected '
                     'INT32 (EfficientNMS class ids)']


# -- recognising exports that end in the plugin node -------------------------------------------------

def plugin_model(path, *, op="EfficientNMS_TRT", domain="TRT", names=NAMES, keep=100, classes_type=np.int32,
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


def test_plugin_graph_is_ranked_first_with_a_specific_reason(tmp_path, registry):
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


def test_tao_efficientdet_input_means_yxyx_and_nhwc_size(tmp_path, registry):
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


def test_names_and_shapes_without_the_node(tmp_path, registry):
    arch = registry.get("efficientnms").architecture
    named = arch.match(load_model(plugin_model(tmp_path / "n.onnx", with_node=False)))
    assert 0.7 <= named.score < 0.9 and "named as the plugin names them" in named.reason
    renamed = load_model(plugin_model(tmp_path / "r.onnx", names=("n", "b", "s", "c"), with_node=False))
    assert 0.5 <= arch.match(renamed).score < 0.7
    params = arch.head_params(renamed, GenerateOptions(num_classes=2))
    assert (params.count_name, params.boxes_name, params.scores_name, params.classes_name) == ("n", "b", "s", "c")


def test_never_confused_with_batched_nms_or_nms_trt(tmp_path, registry):
    from test_ssd_nms import nms_trt_model

    arch = registry.get("efficientnms").architecture
    batched = load_model(plugin_model(tmp_path / "b.onnx", op="BatchedNMSDynamic_TRT", classes_type=np.float32,
                                      names=("BatchedNMS", "BatchedNMS_1", "BatchedNMS_2", "BatchedNMS_3")))
    assert arch.match(batched) is None
    assert registry.rank(batched)[0].architecture == "tao-batched-nms"
    float_classes = load_model(plugin_model(tmp_path / "f.onnx", classes_type=np.float32, with_node=False))
    assert arch.match(float_classes) is None
    assert arch.match(load_model(nms_trt_model(tmp_path / "ssd.onnx"))) is None
    assert registry.get("tao-batched-nms").architecture.match(load_model(plugin_model(tmp_path / "e.onnx"))) is None


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


def test_background_class_rows_are_dropped(with_background):
    box = (100, 50, 300, 250)
    got = run_both(with_background, case([(*box, 0.9, 0), (*box, 0.8, 1)]))
    assert objects(got) == [(1, 50.0, 100.0, 200.0, 200.0, 0.8)]
