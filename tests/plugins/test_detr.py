"""DETR family (detr, rtdetr-ultralytics, rtdetr-postprocessed): hand-computed cases through the built
parsers and the references, variants' conformance, and how inspection tells them from look-alike heads
(above all RT-DETR's [B, 300, 6] rows from the YOLO end-to-end head of the same shape)."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from dsparsers.api.architecture import GenerateOptions
from dsparsers.verification.conformance import run_conformance
from dsparsers.errors import UsageError
from dsparsers.model.reader import load_model
from dsparsers.api.abi_types import DataType, DetectionParams, Layer, NetworkInfo, ParserCase
from dsparsers.api.selection import choose
from onnx_graphs import head_model, ultralytics_names
from parser_checks import objects, run_both

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

NAN, INF = float("nan"), float("inf")
LN3 = math.log(3.0)


def case(layers, classes, threshold=0.25, network=(640, 640), configured=None):
    configured = classes if configured is None else configured
    return ParserCase(tuple(Layer(n, np.ascontiguousarray(d)) for n, d in layers), NetworkInfo(*network),
                      DetectionParams.uniform(configured, threshold))


# -- detr: softmax with "no object" ------------------------------------------------------------
BOX = [0.5, 0.25, 0.2, 0.1]  # at 640x640: x1 = (0.5 - 0.1) * 640 = 256, y1 = (0.25 - 0.05) * 640 = 128, 128 x 64


def test_detr_softmax_skips_the_no_object_column(open_parser):
    parser = open_parser("detr", classes=2)  # logits [Q, 3]: two classes + no object
    logits = np.array([
        [0.0, LN3, 0.0],        # probs 0.2, 0.6, 0.2: class 1 at 0.6
        [0.0, 0.0, math.log(8.0)],  # probs 0.1, 0.1, 0.8: "no object" wins, best real class 0.1 < 0.25
        [LN3, LN3, 0.0],        # probs 3/7, 3/7, 1/7: tie goes to class 0 at 0.428571
        [NAN, 5.0, 0.0],        # a NaN logit poisons the softmax: dropped
        [0.0, INF, 0.0],        # inf - inf = NaN: dropped
    ], np.float32)
    boxes = np.array([BOX] * 5, np.float32)
    got = run_both(parser, case([("pred_logits", logits), ("pred_boxes", boxes)], 2))
    assert objects(got) == [(1, 256.0, 128.0, 128.0, 64.0, 0.6), (0, 256.0, 128.0, 128.0, 64.0, 0.4286)]


def test_detr_softmax_is_stable_for_large_logits_and_fp16(open_parser):
    parser = open_parser("detr", classes=2)
    # 1000 + [0, ln 3, 0] would overflow exp() without subtracting the maximum
    logits = (np.array([[0.0, LN3, 0.0]], np.float32) + np.float32(1000.0))
    got = run_both(parser, case([("pred_logits", logits), ("pred_boxes", np.array([BOX], np.float32))], 2))
    assert [o[5] for o in objects(got)] == [pytest.approx(0.6, abs=2e-4)]  # 1000 + ln 3 rounds in float32
    half = run_both(parser, case([("pred_logits", np.array([[0.0, LN3, 0.0]], np.float16)),
                                  ("pred_boxes", np.array([BOX], np.float16))], 2))
    assert len(objects(half)) == 1 and objects(half)[0][0] == 1


def test_detr_layers_swapped_and_renamed(open_parser):
    parser = open_parser("detr", classes=2)
    logits = np.array([[0.0, LN3, 0.0]], np.float32)
    boxes = np.array([BOX], np.float32)
    for layers in ([("pred_boxes", boxes), ("pred_logits", logits)],
                   [("engine_boxes", boxes), ("engine_logits", logits)]):
        got = run_both(parser, case(layers, 2))
        assert objects(got) == [(1, 256.0, 128.0, 128.0, 64.0, 0.6)]


@pytest.mark.parametrize("logits, boxes", [
    (np.zeros((3, 4), np.float32), np.zeros((3, 4), np.float32)),   # 3 classes + no object: not this parser's
    (np.zeros((3, 3), np.float32), np.zeros((2, 4), np.float32)),   # query counts disagree
    (np.zeros((3, 3), np.int32), np.zeros((3, 4), np.float32)),     # integer logits
])
def test_detr_refuses_wrong_dims_and_types(open_parser, logits, boxes):
    parser = open_parser("detr", classes=2)
    assert not run_both(parser, case([("pred_logits", logits), ("pred_boxes", boxes)], 2)).accepted


# -- detr: sigmoid (focal) and already activated --------------------------------------------------
def test_deformable_detr_uses_sigmoid_without_background(open_parser):
    parser = open_parser("deformable-detr", classes=3)
    assert parser[1].activation == "sigmoid" and not parser[1].no_object
    logits = np.array([
        [LN3, 0.0, -1.0],   # sigmoid(ln 3) = 0.75: class 0
        [-LN3, -2.0, -5.0],  # sigmoid(-ln 3) = 0.25 < 0.3: dropped
        [0.0, 0.0, LN3],    # class 2 (the last column is a real class here): 0.75
    ], np.float32)
    got = run_both(parser, case([("pred_logits", logits), ("pred_boxes", np.array([BOX] * 3, np.float32))], 3,
                                threshold=0.3))
    assert objects(got) == [(0, 256.0, 128.0, 128.0, 64.0, 0.75), (2, 256.0, 128.0, 128.0, 64.0, 0.75)]


def test_detr_with_activation_none_reads_probabilities(open_parser):
    parser = open_parser("detr", classes=2, extra={"activation": "none", "no_object": "1"})
    probs = np.array([[0.2, 0.6, 0.2], [0.1, 0.1, 0.8], [0.25, 0.1, 0.65]], np.float32)
    got = run_both(parser, case([("pred_logits", probs), ("pred_boxes", np.array([BOX] * 3, np.float32))], 2))
    assert objects(got) == [(1, 256.0, 128.0, 128.0, 64.0, 0.6), (0, 256.0, 128.0, 128.0, 64.0, 0.25)]


@pytest.mark.parametrize("arch, classes, extra", [
    ("detr", 3, {}), ("dino", 4, {}), ("detr", 4, {"activation": "sigmoid"}),
    ("detr", 5, {"activation": "none", "no_object": "1"}), ("detr", 5, {"activation": "none"}),
    ("rtdetr", 3, {"layout": "scores"}), ("rtdetrv2", 7, {"box_units": "normalized"}),
])
def test_variants_conform(open_parser, arch, classes, extra):
    architecture, params, library = open_parser(arch, classes=classes, extra=extra)
    report = run_conformance(library, architecture, params, examples=60, derandomize=True)
    assert report.passed, report.mismatch.summary


# -- rtdetr-ultralytics ------------------------------------------------------------------------
def test_rtdetr_rows_are_normalized_centres_not_pixel_corners(open_parser):
    rows = np.array([
        [0.5, 0.5, 0.25, 0.5, 0.9, 3],    # (0.5 - 0.125) * 640 = 240, (0.5 - 0.25) * 640 = 160: 160 x 320
        [0.5, 0.5, 0.25, 0.5, 0.9, -1],   # padding class: dropped
        [0.5, 0.5, 0.25, 0.5, 0.2, 3],    # below 0.25
        [NAN, 0.5, 0.25, 0.5, 0.9, 3],    # non-finite: dropped
    ], np.float32)
    got = run_both(open_parser("rtdetr", classes=80), case([("output0", rows)], 80))
    assert objects(got) == [(3, 240.0, 160.0, 160.0, 320.0, 0.9)]
    # the YOLO end-to-end parser reads the same row as corners (0.5, 0.5)-(0.25, 0.5) in pixels: nothing
    assert objects(run_both(open_parser("yolo26", classes=80), case([("output0", rows)], 80))) == []


def test_rtdetr_before_84_reads_class_scores(open_parser):
    parser = open_parser("rtdetr", classes=3, extra={"layout": "scores"})
    rows = np.array([[0.5, 0.5, 0.25, 0.5, 0.1, 0.7, 0.2], [0.5, 0.5, 0.25, 0.5, 0.1, 0.2, 0.2]], np.float32)
    got = run_both(parser, case([("renamed", rows)], 3))
    assert objects(got) == [(1, 240.0, 160.0, 160.0, 320.0, 0.7)]
    assert not run_both(parser, case([("output0", np.zeros((300, 6), np.float32))], 3)).accepted


# -- rtdetr-postprocessed ------------------------------------------------------------------------
@pytest.mark.parametrize("label_type", [np.int64, np.int32])
def test_postprocessed_reads_int64_or_int32_labels(open_parser, label_type):
    parser = open_parser("rtdetrv2", classes=80)
    labels = np.array([2, -1, 80, 5, 7], label_type)
    boxes = np.array([[10, 20, 110, 70]] * 4 + [[-50, 600, 30, 700]], np.float32)
    scores = np.array([0.9, 0.9, 0.9, 0.1, 0.5], np.float32)
    layers = [("scores", scores), ("labels", labels), ("boxes", boxes)]  # binding order differs from the export
    got = run_both(parser, case(layers, 80))
    assert objects(got) == [(2, 10.0, 20.0, 100.0, 50.0, 0.9), (7, 0.0, 600.0, 30.0, 40.0, 0.5)]
    renamed = run_both(parser, case([(f"out{i}", d) for i, (_, d) in enumerate(layers)], 80))
    assert objects(renamed) == objects(got)


def test_postprocessed_normalized_boxes_are_scaled(open_parser):
    parser = open_parser("rtdetrv2", classes=80, extra={"box_units": "normalized"})
    got = run_both(parser, case([("labels", np.array([1], np.int64)), ("boxes", np.array([[0.25, 0.5, 0.5, 1.0]],
                                 np.float32)), ("scores", np.array([0.8], np.float32))], 80, network=(640, 384)))
    assert objects(got) == [(1, 160.0, 192.0, 160.0, 192.0, 0.8)]


def test_postprocessed_refuses_float_labels_and_wrong_dims(open_parser):
    parser = open_parser("rtdetrv2", classes=80)
    ok = {"labels": np.array([1], np.int64), "boxes": np.array([[1, 2, 30, 40]], np.float32),
          "scores": np.array([0.8], np.float32)}
    for name, bad in (("labels", np.array([1.0], np.float32)), ("boxes", np.zeros((1, 5), np.float32)),
                      ("scores", np.array([0.8, 0.9], np.float32)), ("labels", np.array([1], np.int8))):
        layers = [(n, bad if n == name else d) for n, d in ok.items()]
        assert not run_both(parser, case(layers, 80)).accepted, name
    assert not run_both(parser, ParserCase((Layer("labels", ok["labels"], data_type=DataType.UINT8),
                                            Layer("boxes", ok["boxes"]), Layer("scores", ok["scores"])),
                                           NetworkInfo(640, 640), DetectionParams.uniform(80, 0.25))).accepted


# -- recognising the heads -----------------------------------------------------------------------
def graph(path, outputs, *, inputs=(("images", [1, 3, 640, 640], TensorProto.FLOAT),), metadata=None,
          grid_sample=False, producers=None):
    """Outputs (name, shape, elem type) fed from the first input; optionally a GridSample node (deformable
    attention) in the graph and a given op producing some outputs."""
    producers = producers or {}
    source = inputs[0][0]
    nodes = []
    if grid_sample:
        nodes.append(helper.make_node("GridSample", [source, "grid"], ["sampled"]))
        source = "sampled"
    for name, _shape, _elem in outputs:
        nodes.append(helper.make_node(producers.get(name, "Identity"), [source], [name]))
    g = helper.make_graph(nodes, "detr", [helper.make_tensor_value_info(n, e, s) for n, s, e in inputs],
                          [helper.make_tensor_value_info(n, e, s) for n, s, e in outputs])
    model = helper.make_model(g, producer_name="dsparsers-tests", opset_imports=[helper.make_opsetid("", 17)])
    for key, value in (metadata or {}).items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(path))
    return load_model(path)


F = TensorProto.FLOAT
RTDETR_META = {"description": "Ultralytics rtdetr-l model trained on coco.yaml", "head": "RTDETRDecoder",
               "task": "detect", "end2end": "False", "names": ultralytics_names(80), "version": "8.4.190"}
YOLO26_META = {"description": "Ultralytics YOLO26n model trained on coco.yaml", "head": "Detect", "task": "detect",
               "end2end": "True", "names": ultralytics_names(80), "version": "8.4.190"}


@pytest.mark.parametrize("metadata, grid_sample, expected", [
    (RTDETR_META, True, "rtdetr-ultralytics"),
    (RTDETR_META, False, "rtdetr-ultralytics"),                             # metadata alone
    ({"names": ultralytics_names(80), "task": "detect"}, True, "rtdetr-ultralytics"),  # graph alone
    (YOLO26_META, False, "yolo-end2end"),
])
def test_rtdetr_rows_and_yolo_end2end_rows_are_told_apart(registry, tmp_path, metadata, grid_sample, expected):
    info = graph(tmp_path / "m.onnx", [("output0", [1, 300, 6], F)], metadata=metadata, grid_sample=grid_sample)
    choice = choose(registry, info, None)
    assert choice.provided.architecture.name == expected, registry.rank(info)
    ranked = {m.architecture: m for m in registry.rank(info)}
    other = "yolo-end2end" if expected == "rtdetr-ultralytics" else "rtdetr-ultralytics"
    assert other not in ranked or ranked[other].score == 0.0
    if expected == "rtdetr-ultralytics":
        assert "RT-DETR" in ranked["yolo-end2end"].reason and "normalized" in ranked["yolo-end2end"].reason


def test_yolo_end2end_with_topk_is_not_taken_for_rtdetr(registry, tmp_path):
    # YOLO26 metadata with a GridSample somewhere (e.g. a custom backbone): end2end=True still decides
    info = graph(tmp_path / "m.onnx", [("output0", [1, 300, 6], F)], metadata=YOLO26_META, grid_sample=True)
    assert choose(registry, info, None).provided.architecture.name == "yolo-end2end"


def test_rtdetr_before_84_wins_over_yolo_heads(registry, tmp_path):
    meta = {**RTDETR_META, "version": "8.3.100"}
    del meta["head"]
    info = graph(tmp_path / "m.onnx", [("output0", [1, 300, 84], F)], metadata=meta)
    choice = choose(registry, info, None)
    assert choice.provided.architecture.name == "rtdetr-ultralytics", registry.rank(info)
    params = choice.provided.architecture.head_params(info, GenerateOptions())
    assert (params.layout, params.num_classes) == ("scores", 80)


def test_rtdetr_without_evidence_is_never_claimed_from_shape(registry, tmp_path):
    info = graph(tmp_path / "m.onnx", [("output0", [1, 300, 6], F)], metadata={"names": ultralytics_names(80)})
    assert "rtdetr-ultralytics" not in {m.architecture for m in registry.rank(info)}


@pytest.mark.parametrize("k, metadata, grid_sample, producer, activation, no_object, classes", [
    (92, {}, False, None, "softmax", True, 91),                                    # facebook DETR COCO
    (91, {}, True, None, "sigmoid", False, 91),                                    # Deformable DETR
    (4, {"names": "['a', 'b', 'c']"}, False, None, "softmax", True, 3),            # names = K - 1
    (3, {"names": "['a', 'b', 'c']"}, False, None, "sigmoid", False, 3),           # names = K
    (8, {}, False, "Softmax", "none", True, 7),                                    # softmax in the graph
    (8, {}, False, "Sigmoid", "none", False, 8),
])
def test_detr_activation_comes_from_the_graph(registry, tmp_path, k, metadata, grid_sample, producer, activation,
                                              no_object, classes):
    info = graph(tmp_path / "m.onnx", [("logits", [1, 100, k], F), ("pred_boxes", [1, 100, 4], F)],
                 metadata=metadata, grid_sample=grid_sample, producers={"logits": producer} if producer else None)
    choice = choose(registry, info, None)
    assert choice.provided.architecture.name == "detr", registry.rank(info)
    params = choice.provided.architecture.head_params(info, GenerateOptions())
    assert (params.activation, params.no_object, params.num_classes) == (activation, no_object, classes)
    reason = next(m.reason for m in registry.rank(info) if m.architecture == "detr")
    assert ("softmax" in reason.lower() or "sigmoid" in reason.lower() or "activated" in reason), reason


def test_detr_activation_option_and_alias(registry, tmp_path):
    info = graph(tmp_path / "m.onnx", [("pred_logits", [1, 300, 5], F), ("pred_boxes", [1, 300, 4], F)])
    arch = registry.get("detr").architecture
    assert arch.head_params(info, GenerateOptions()).activation == "softmax"  # plain DETR assumed
    assert "assumed" in arch.match(info).reason
    assert arch.head_params(info, GenerateOptions(extra={"activation": "sigmoid"})).num_classes == 5
    assert arch.head_params(info, GenerateOptions(requested_as="peoplenet-transformer")).activation == "sigmoid"
    with pytest.raises(UsageError, match="-O activation=relu"):
        arch.head_params(info, GenerateOptions(extra={"activation": "relu"}))


def test_detr_is_not_taken_for_yolo_boxes_scores(registry, tmp_path):
    info = graph(tmp_path / "m.onnx", [("pred_logits", [1, 300, 80], F), ("pred_boxes", [1, 300, 4], F)],
                 grid_sample=True)
    ranked = [m.architecture for m in registry.rank(info) if m.score > 0]
    assert ranked[0] == "detr" and "yolo-boxes-scores" not in ranked


def test_postprocessed_head_is_recognised(registry, tmp_path):
    info = graph(tmp_path / "m.onnx", [("labels", [1, 300], TensorProto.INT64), ("boxes", [1, 300, 4], F),
                                       ("scores", [1, 300], F)],
                 inputs=(("images", [1, 3, 640, 640], F), ("orig_target_sizes", [1, 2], TensorProto.INT64)))
    choice = choose(registry, info, None)
    assert choice.provided.architecture.name == "rtdetr-postprocessed"
    assert "orig_target_sizes" in choice.matches[0].reason
    with pytest.raises(UsageError, match="--classes"):
        choice.provided.architecture.head_params(info, GenerateOptions())
    params = choice.provided.architecture.head_params(info, GenerateOptions(num_classes=80))
    assert (params.num_detections, params.box_units) == (300, "pixels")


def test_family_preprocessing_defaults(registry):
    from dsparsers.generation.codegen import render_parser

    def config(arch):
        architecture = registry.get(arch).architecture
        params = architecture.head_params(None, GenerateOptions(requested_as=arch))
        generated = render_parser(architecture, params, requested_as=arch)
        return set(generated.files[generated.config_name].splitlines())

    assert {"cluster-mode=4", "offsets=123.675;116.28;103.53", "maintain-aspect-ratio=1",
            "symmetric-padding=0"} <= config("detr")
    assert {"cluster-mode=4", "maintain-aspect-ratio=0"} <= config("peoplenet-transformer")
    assert {"cluster-mode=4", "maintain-aspect-ratio=0", "net-scale-factor=0.00392156862745098"} <= config("rtdetr")
    assert "cluster-mode=4" in config("d-fine")
