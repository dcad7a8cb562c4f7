"""ssd-nms (TensorRT NMS_TRT outputs: TAO SSD, DSSD, RetinaNet, FasterRCNN): hand-computed cases checked
against the built parser and the reference decoder, and the matcher on graphs that end in the plugin node."""

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
NAMES = ("NMS", "NMS_1")


def case(rows, count=None, *, k=None, names=NAMES, reverse=False, network=(800, 400), classes=5, threshold=0.25,
         configured=None, dtype=np.float32):
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
def ssd(open_parser):
    return open_parser("tao-ssd")


@pytest.fixture(scope="module")
def no_background(open_parser):
    return open_parser("ssd", classes=3, extra={"background": "none"})


def test_canonical_head(ssd):
    _, params, _ = ssd
    assert (params.num_classes, params.background, params.keep_top_k) == (5, 0, 200)
    assert (params.input_width, params.input_height) == (960, 544)
    assert params.labels() == ["background", "class_1", "class_2", "class_3", "class_4"]


def test_normalized_records_are_scaled_by_the_network(ssd):
    # 800x400: x 0.125 -> 100, 0.5 -> 400; y 0.25 -> 100, 0.75 -> 300
    got = run_both(ssd, case([(2, 0.9, 0.125, 0.25, 0.5, 0.75)]))
    assert got.accepted and objects(got) == [(2, 100.0, 100.0, 300.0, 200.0, 0.9)]


def test_background_label_and_padding_are_never_objects(ssd, no_background):
    rows = [(0, 0.95, 0.1, 0.1, 0.9, 0.9),          # background label: dropped
            (-1, 0.95, 0.1, 0.1, 0.9, 0.9),         # padding label inside the count
            (0.5, 0.95, 0.1, 0.1, 0.9, 0.9),        # truncates to 0: the background
            (1, 0.5, 0.0, 0.0, 0.25, 0.5),          # kept: 0..200 x 0..200
            (5, 0.95, 0.1, 0.1, 0.9, 0.9),          # label >= the 5 classes
            (NAN, 0.95, 0.1, 0.1, 0.9, 0.9)]
    assert objects(run_both(ssd, case(rows, k=8))) == [(1, 0.0, 0.0, 200.0, 200.0, 0.5)]
    # without a background label, label 0 is a class (and 0.5 truncates to it); 3 classes
    got = run_both(no_background, case(rows, k=8, classes=3))
    assert objects(got) == [(0, 80.0, 40.0, 640.0, 320.0, 0.95), (0, 80.0, 40.0, 640.0, 320.0, 0.95),
                            (1, 0.0, 0.0, 200.0, 200.0, 0.5)]


def test_keep_count_is_clamped_and_rows_past_it_are_ignored(ssd, capfd):
    rows = [(1, 0.9, 0.0, 0.0, 0.5, 0.5), (2, 0.8, 0.5, 0.5, 1.0, 1.0), (3, 0.7, 0.25, 0.25, 0.75, 0.75)]
    first = (1, 0.0, 0.0, 400.0, 200.0, 0.9)
    second = (2, 400.0, 200.0, 400.0, 200.0, 0.8)
    third = (3, 200.0, 100.0, 400.0, 200.0, 0.7)
    assert objects(run_both(ssd, case(rows, 1))) == [first]
    assert objects(run_both(ssd, case(rows, 0))) == []
    capfd.readouterr()
    assert objects(run_both(ssd, case(rows, 9))) == [first, second, third]     # > K: K rows
    assert objects(run_both(ssd, case(rows, -3))) == []                         # negative: none
    assert objects(run_both(ssd, case(rows, 2**31 - 1))) == [first, second, third]
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines == ['dsparsers[tao-ssd]: layer "NMS_1" says 9 detections but there are 3 rows; using 3']


def test_image_id_is_not_read_and_scores_threshold_inclusive(ssd):
    records = [(2, 0.25, 0.0, 0.0, 0.5, 0.5), (3, 0.2499, 0.0, 0.0, 0.5, 0.5), (4, NAN, 0.0, 0.0, 0.5, 0.5),
               (1, INF, 0.0, 0.0, 0.5, 0.5)]
    c = case(records)
    c.layers[0].data[0, :, 0] = 7  # image_id of another frame: ignored
    assert [(o[0], o[5]) for o in objects(run_both(ssd, c))] == [(2, 0.25)]


def test_boxes_nonfinite_inverted_outside_tiny_and_clipped(ssd):
    rows = [(1, 0.9, NAN, 0, 0.5, 0.5),
            (1, 0.9, 0.5, 0.5, 0.25, 0.75),       # inverted
            (2, 0.9, 1.5, 1.5, 2.0, 2.0),         # outside
            (3, 0.9, -0.25, -0.5, 0.25, 0.5),     # straddles top-left: 0..200 x 0..200
            (4, 0.9, 0.5, 0.5, 0.5005, 0.6)]      # 0.4 px wide
    assert objects(run_both(ssd, case(rows))) == [(3, 0.0, 0.0, 200.0, 200.0, 0.9)]


def test_classes_configured_and_fp16(ssd):
    rows = [(4, 0.875, 0.125, 0.25, 0.5, 0.75), (1, 0.875, 0.125, 0.25, 0.5, 0.75)]
    assert [o[0] for o in objects(run_both(ssd, case(rows, configured=3)))] == [1]
    got = run_both(ssd, case(rows, dtype=np.float16))
    assert objects(got) == [(4, 100.0, 100.0, 300.0, 200.0, 0.875), (1, 100.0, 100.0, 300.0, 200.0, 0.875)]


@pytest.mark.parametrize("names, reverse", [(NAMES, True), (("a", "b"), False), (("a", "b"), True)])
def test_layers_by_name_in_any_order_and_by_shape(ssd, names, reverse):
    got = run_both(ssd, case([(2, 0.9, 0.125, 0.25, 0.5, 0.75)], names=names, reverse=reverse))
    assert objects(got) == [(2, 100.0, 100.0, 300.0, 200.0, 0.9)]


BUFFER = np.zeros(256, np.float32)


def _layers(det=(np.zeros((1, 3, 7), np.float32), None, None), count=(np.zeros((1, 1, 1), np.int32), None, None)):
    return tuple(Layer(name, data, dims=dims, data_type=dtype) for name, (data, dims, dtype) in zip(NAMES, (det, count)))


@pytest.mark.parametrize("layers", [
    _layers(det=(BUFFER, (3, 7), None)),                     # batch-less [K, 7]
    _layers(det=(BUFFER, (1, 3, 6), None)),                  # not 7 per record
    _layers(det=(BUFFER, (2, 3, 7), None)),                  # [2, K, 7]
    _layers(det=(BUFFER, (1, 0, 7), None)),                  # K = 0
    _layers(det=(BUFFER, (1, 1, 3, 7), None)),               # batch dimension left in
    _layers(det=(np.zeros((1, 3, 7), np.int32), None, None)),  # records INT32
    _layers(det=(BUFFER, (1, 3, 7), DataType.INT8)),
    _layers(count=(BUFFER, (1, 1, 1), DataType.FLOAT)),      # count FLOAT
    _layers(count=(BUFFER, (), None)),                       # count with no elements
    _layers()[:1],                                            # count missing
    _layers()[1:],                                            # records missing
], ids=lambda layers: ",".join(f"{l.name}{list(l.reported_dims)}{l.reported_type.name}" for l in layers))
def test_wrong_dims_or_types_return_false(ssd, layers):
    architecture, params, library = ssd
    bad = ParserCase(layers, NetworkInfo(800, 400), DetectionParams.uniform(5, 0.25))
    got = library.parse(bad)
    assert not got.accepted and len(got.objects) == 0
    assert not architecture.reference(bad, params).accepted


def test_refusal_is_one_clear_line(ssd, capfd):
    _, _, library = ssd
    capfd.readouterr()
    library.parse(ParserCase(_layers(det=(BUFFER, (1, 3, 6), None)), NetworkInfo(800, 400),
                             DetectionParams.uniform(5, 0.25)))
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines == ['dsparsers[tao-ssd]: detections layer "NMS" has dims [1, 3, 6]; expected [1, K, 7]']


# -- recognising exports that end in the plugin node -------------------------------------------------

def nms_trt_model(path, *, names=NAMES, keep=200, num_classes=5, background=0, normalized=1, count_type=np.int32,
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


def test_plugin_graph_is_ranked_first_with_a_specific_reason(tmp_path, registry):
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


def test_background_attribute_and_option(tmp_path, registry):
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


def test_names_and_shapes_without_the_node(tmp_path, registry):
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


def test_float_count_is_flagged(tmp_path, registry):
    verdict = registry.get("ssd-nms").architecture.match(load_model(nms_trt_model(tmp_path / "f.onnx",
                                                                                  count_type=np.float32)))
    assert verdict.score < 0.9 and "not int32" in verdict.reason


def test_other_nms_plugins_are_not_this_head(tmp_path, registry):
    from test_efficientnms import plugin_model

    arch = registry.get("ssd-nms").architecture
    for op, classes in (("EfficientNMS_TRT", np.int32), ("BatchedNMSDynamic_TRT", np.float32)):
        model = load_model(plugin_model(tmp_path / f"{op}.onnx", op=op, classes_type=classes))
        assert arch.match(model) is None, op
