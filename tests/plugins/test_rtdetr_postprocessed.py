"""rtdetr-postprocessed (lyuwenyu RT-DETR / RT-DETRv2, D-FINE with their post-processor: labels, boxes,
scores): hand-computed cases through the built parsers and the reference, conformance, and recognising
the head."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto

from dsparsers.api.abi_types import DataType, DetectionParams, Layer, NetworkInfo, ParserCase
from dsparsers.api.architecture import GenerateOptions
from dsparsers.api.selection import choose
from dsparsers.errors import UsageError
from dsparsers.verification.conformance import run_conformance
from detr_cases import F, case, config_lines, graph
from parser_checks import objects, run_both
from plugin_imports import heavy_modules_loaded_by

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


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


# (the canonical parser conforms: tests/generation/test_all_architectures.py)
@pytest.mark.parametrize("arch, classes, extra", [("rtdetrv2", 7, {"box_units": "normalized"})])
def test_variants_conform(open_parser, arch, classes, extra):
    architecture, params, library = open_parser(arch, classes=classes, extra=extra)
    report = run_conformance(library, architecture, params, examples=60, derandomize=True)
    assert report.passed, report.mismatch.summary


# -- recognising the head ------------------------------------------------------------------------
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


def test_postprocessed_preprocessing_defaults(registry):
    assert "cluster-mode=4" in config_lines(registry, "d-fine")


@pytest.mark.parametrize("module", ["dsparsers.plugins.rtdetr_postprocessed", "dsparsers.plugins._detr_common"])
def test_plugin_module_imports_neither_numpy_nor_hypothesis(module):
    assert heavy_modules_loaded_by(module) == []


def test_registered_by_the_plugin_module_named_after_it(registry):
    for name in ["rtdetr-postprocessed", "rtdetrv2", "d-fine"]:
        assert registry.get(name).plugin == "rtdetr_postprocessed"
