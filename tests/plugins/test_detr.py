"""detr (DETR, Deformable DETR, DINO, TAO DDETR / PeopleNet Transformer): hand-computed cases through the
built parsers and the reference, the activation variants' conformance, and how inspection reads the
activation from the graph and tells the head from look-alikes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsparsers.api.architecture import GenerateOptions
from dsparsers.api.selection import choose
from dsparsers.errors import UsageError
from dsparsers.verification.conformance import run_conformance
from detr_cases import F, INF, NAN, case, config_lines, graph
from parser_checks import objects, run_both
from plugin_imports import heavy_modules_loaded_by

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

LN3 = math.log(3.0)


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
])
def test_variants_conform(open_parser, arch, classes, extra):
    architecture, params, library = open_parser(arch, classes=classes, extra=extra)
    report = run_conformance(library, architecture, params, examples=60, derandomize=True)
    assert report.passed, report.mismatch.summary


# -- recognising the head ------------------------------------------------------------------------
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


def test_detr_preprocessing_defaults(registry):
    assert {"cluster-mode=4", "offsets=123.675;116.28;103.53", "maintain-aspect-ratio=1",
            "symmetric-padding=0"} <= config_lines(registry, "detr")
    assert {"cluster-mode=4", "maintain-aspect-ratio=0"} <= config_lines(registry, "peoplenet-transformer")


@pytest.mark.parametrize("module", ["dsparsers.plugins.detr", "dsparsers.plugins._detr_common"])
def test_plugin_module_imports_neither_numpy_nor_hypothesis(module):
    assert heavy_modules_loaded_by(module) == []


def test_registered_by_the_plugin_module_named_after_it(registry):
    for name in ["detr", "deformable-detr", "peoplenet-transformer"]:
        assert registry.get(name).plugin == "detr"
