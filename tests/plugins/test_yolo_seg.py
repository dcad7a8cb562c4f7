"""YOLO-seg (ultralytics v8-seg / YOLO11-seg): recognition, the reference on hand-computed cases, the
generated parser against the reference with mask comparison, and broken parsers that must fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from dsparsers.api.architecture import GenerateOptions
from dsparsers.cli import main
from dsparsers.verification.conformance import run_conformance, run_hostile
from dsparsers.errors import UsageError
from dsparsers.model.reader import load_model
from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParserCase
from onnx_graphs import head_model, ultralytics_names
from plugin_imports import heavy_modules_loaded_by


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def seg_model(path, classes=80, size=640, task="segment", names=True):
    n = sum((size // s) ** 2 for s in (8, 16, 32))
    metadata = {"task": task, "imgsz": f"[{size}, {size}]", "stride": "32"}
    if names:
        metadata["names"] = ultralytics_names(classes)
    return head_model(path, [("output0", [1, 4 + classes + 32, n]), ("output1", [1, 32, size // 4, size // 4])],
                      inputs=(("images", [1, 3, size, size]),), metadata=metadata,
                      producer_ops={"output0": ["Concat", "Sigmoid"]})


@pytest.fixture(scope="module")
def arch(registry):
    return registry.get("yolo-seg").architecture


def params_for(arch, classes=1, **extra):
    return arch.head_params(None, GenerateOptions(classes, (8, 8), {k: str(v) for k, v in extra.items()}))


def case_of(head_rows, protos, network=NetworkInfo(8, 8), threshold=0.25, classes=1):
    """A case from candidate rows [N, 4+C+M] and protos [M, H, W]."""
    head = np.ascontiguousarray(np.asarray(head_rows, np.float32).T)
    return ParserCase((Layer("output0", head), Layer("output1", np.asarray(protos, np.float32))), network,
                      DetectionParams.uniform(classes, threshold))


# -- recognition ------------------------------------------------------------------------------
def test_recognises_an_ultralytics_seg_export(tmp_path, registry):
    model = load_model(seg_model(tmp_path / "seg.onnx"))
    ranked = registry.rank(model)
    assert ranked[0].architecture == "yolo-seg"
    assert "task=segment" in ranked[0].reason
    params = registry.get("yolo-seg").architecture.head_params(model, GenerateOptions())
    assert (params.num_classes, params.num_coefficients, params.num_candidates) == (80, 32, 8400)
    assert (params.output_name, params.protos_name) == ("output0", "output1")


def test_the_detection_head_does_not_claim_a_seg_export(tmp_path, registry):
    model = load_model(seg_model(tmp_path / "seg.onnx", classes=3))
    scores = {m.architecture: m.score for m in registry.rank(model)}
    assert scores.get("yolo-anchor-free", 0) < scores["yolo-seg"]


def test_class_count_from_the_dims_without_names(tmp_path, arch):
    model = load_model(seg_model(tmp_path / "seg.onnx", classes=3, names=False))
    assert arch.head_params(model, GenerateOptions()).num_classes == 3
    with pytest.raises(UsageError, match="--classes 5"):
        arch.head_params(model, GenerateOptions(num_classes=5))


@pytest.mark.parametrize("key,value", [("nms_iou", "1.5"), ("max_det", "0"), ("mask_resolution", "huge"),
                                       ("mask_resolution", "0x4")])
def test_bad_options_name_the_option(arch, key, value):
    with pytest.raises(UsageError, match=f"-O {key}={value}"):
        arch.head_params(None, GenerateOptions(extra={key: value}))


# -- the reference on hand-computed cases ------------------------------------------------------
# network 8x8, protos 2x2 (stride 4), one class, M = 2 coefficients
PROTOS = [[[0.0, 1.0], [2.0, -1.0]], [[0.5, 0.0], [-1.0, 1.0]]]


def test_mask_is_sigmoid_of_coefficients_dot_protos_over_the_box(arch):
    params = params_for(arch)
    params = type(params)(**{**params.__dict__, "num_coefficients": 2})
    # one candidate covering the whole network: box (0, 0)-(8, 8), coefficients (1, 2)
    outcome = arch.reference(case_of([[4, 4, 8, 8, 0.9, 1.0, 2.0]], PROTOS), params)
    assert outcome.accepted and len(outcome.objects) == 1
    obj = outcome.objects[0]
    assert (obj["left"], obj["top"], obj["width"], obj["height"]) == (0, 0, 8, 8)
    # proto resolution: ceil(8 / 4) = 2 cells a side, centred at x = 2, 6 -> proto columns 0, 1 exactly;
    # logits by hand: [[1*0 + 2*0.5, 1*1 + 2*0], [1*2 + 2*-1, 1*-1 + 2*1]] = [[1, 1], [0, 1]]
    expected = np.array([[sig(1), sig(1)], [sig(0), sig(1)]], np.float32)
    np.testing.assert_allclose(outcome.masks[0], expected, atol=1e-6)


def test_mask_samples_bilinearly_inside_a_smaller_box(arch):
    params = params_for(arch, mask_resolution="1x1")
    params = type(params)(**{**params.__dict__, "num_coefficients": 2})
    # box (2, 2)-(6, 6): the single cell's centre is (4, 4) -> proto coordinate 4/4 - 0.5 = 0.5 on both
    # axes: the mean of the four logits (1 + 1 + 0 + 1) / 4 = 0.75
    outcome = arch.reference(case_of([[4, 4, 4, 4, 0.9, 1.0, 2.0]], PROTOS), params)
    np.testing.assert_allclose(outcome.masks[0], [[sig(0.75)]], atol=1e-6)


def test_nms_keeps_the_best_of_overlapping_boxes_per_class(arch):
    params = params_for(arch, classes=2)
    params = type(params)(**{**params.__dict__, "num_coefficients": 2})
    rows = [
        # cx cy w h, class 0, class 1, coefficients
        [3, 4, 6, 8, 0.6, 0.0, 0, 0],   # (0,0)-(6,8), class 0
        [4, 4, 6, 8, 0.8, 0.0, 0, 0],   # (1,0)-(7,8): IoU with the first 40/56 = 0.714 > 0.45: suppresses it
        [3, 4, 6, 8, 0.0, 0.7, 0, 0],   # same box, class 1: another class, kept
        [6, 4, 4, 8, 0.5, 0.0, 0, 0],   # (4,0)-(8,8): IoU with the 0.8 box 24/56 = 0.43 <= 0.45: kept
    ]
    outcome = arch.reference(case_of(rows, PROTOS, classes=2), params)
    kept = sorted((int(o["class_id"]), float(o["left"]), round(float(o["confidence"]), 3)) for o in outcome.objects)
    assert kept == [(0, 1.0, 0.8), (0, 4.0, 0.5), (1, 0.0, 0.7)]
    assert len(outcome.masks) == 3


def test_max_det_keeps_the_highest_scores(arch):
    params = params_for(arch, classes=1, max_det=2)
    params = type(params)(**{**params.__dict__, "num_coefficients": 2})
    rows = [[1 + 2 * k, 1, 1.5, 1.5, 0.3 + 0.1 * k, 0, 0] for k in range(4)]  # disjoint boxes
    outcome = arch.reference(case_of(rows, PROTOS), params)
    assert sorted(np.round(outcome.objects["confidence"].astype(float), 3).tolist()) == [0.5, 0.6]


def test_refusals(arch):
    params = params_for(arch)
    params = type(params)(**{**params.__dict__, "num_coefficients": 2})
    good = case_of([[4, 4, 8, 8, 0.9, 1.0, 2.0]], PROTOS)
    assert not arch.reference(ParserCase(good.layers[:1], good.network, good.params), params).accepted
    wrong_protos = ParserCase((good.layers[0], Layer("output1", np.zeros((3, 2, 2), np.float32))), good.network,
                              good.params)
    assert not arch.reference(wrong_protos, params).accepted


# -- the generated parser against the reference -----------------------------------------------
def test_parser_matches_the_reference_with_masks(open_parser):
    architecture, params, library = open_parser("yolo11-seg", classes=3)
    report = run_conformance(library, architecture, params, examples=120, derandomize=True)
    assert report.mismatch is None, report.mismatch and report.mismatch.summary
    run_hostile(library, architecture, params, report)
    assert report.passed, [f.summary for f in report.hostile_failures]
    assert report.masks.compared > 50
    assert report.masks.worst_iou >= 0.99 and report.masks.worst_abs <= 1e-4


@pytest.mark.parametrize("resolution", ["network", "7x5"])
def test_other_mask_resolutions_match_the_reference(open_parser, resolution):
    architecture, params, library = open_parser("yolo11-seg", classes=2, extra={"mask_resolution": resolution})
    report = run_conformance(library, architecture, params, examples=40, derandomize=True)
    assert report.passed, report.mismatch and report.mismatch.summary
    assert report.masks.compared > 10


def _no_nms(source: str) -> str:
    assert "k.class_id == c.class_id && iou(k.box, c.box) > kNmsIou" in source
    return source.replace("k.class_id == c.class_id && iou(k.box, c.box) > kNmsIou", "false")


def _no_sigmoid(source: str) -> str:
    marker = "    dsparsers::activate(mask, static_cast<size_t>(mask_w) * mask_h);\n"
    assert marker in source
    return source.replace(marker, "")


def _uncropped(source: str) -> str:
    # the common bug: sample the mask over the whole network instead of over the object's box
    assert "bilinear_taps(box.x1, box.x2, mask_w" in source
    return (source.replace("bilinear_taps(box.x1, box.x2, mask_w", "bilinear_taps(net.x1, net.x2, mask_w")
                  .replace("bilinear_taps(box.y1, box.y2, mask_h", "bilinear_taps(net.y1, net.y2, mask_h"))


@pytest.mark.parametrize("bug,expected", [(_no_nms, "object"), (_no_sigmoid, "mask differs"),
                                          (_uncropped, "mask differs")])
def test_broken_parsers_fail_conformance(open_parser, bug, expected):
    architecture, params, library = open_parser("yolo11-seg", classes=3, source_patch=bug)
    report = run_conformance(library, architecture, params, examples=200, derandomize=True)
    assert not report.passed
    assert expected in report.mismatch.summary


def test_a_mask_size_in_floats_instead_of_bytes_is_reported(open_parser):
    architecture, params, library = open_parser("yolo11-seg", classes=3, source_patch=_bad_mask_size_in_support)
    report = run_conformance(library, architecture, params, examples=60, derandomize=True)
    assert not report.passed
    assert "mask_size" in report.mismatch.summary and "bytes" in report.mismatch.summary


def _bad_mask_size_in_support(source: str) -> str:
    # add_mask_object lives in mask_support.h; this parser writes its own object with the unit wrong
    marker = "    dsparsers::add_mask_object(objects, c.class_id, c.score, box, mask, mask_w, mask_h);"
    assert marker in source
    return source.replace(marker, marker + "\n    objects.back().mask_size = mask_w * mask_h;  // floats, not bytes")


# -- the generated files -----------------------------------------------------------------------
def test_config_asks_nvinfer_for_instance_masks(tmp_path):
    result = CliRunner().invoke(main, ["generate", "--arch", "yolo11-seg", "-O", "nms_iou=0.6", "-o", str(tmp_path / "g")])
    assert result.exit_code == 0, result.output
    config = (tmp_path / "g" / "config_infer_primary_yolo11_seg.txt").read_text()
    for line in ("network-type=3", "cluster-mode=4", "output-instance-mask=1", "segmentation-threshold=0.5",
                 "parse-bbox-instance-mask-func-name=NvDsInferParseYoloSeg"):
        assert f"\n{line}\n" in config
    assert "parse-bbox-func-name" not in config
    assert "IoU 0.6" in config  # the parser's own NMS threshold, in the cluster-mode comment
    source = (tmp_path / "g" / "nvdsparser_yolo11_seg.cpp").read_text()
    assert "constexpr float kNmsIou = 0.6f;" in source


# -- the plugin module ---------------------------------------------------------------------------
def test_plugin_module_imports_neither_numpy_nor_hypothesis():
    assert heavy_modules_loaded_by("dsparsers.plugins.yolo_seg") == []


def test_registered_by_the_plugin_module_named_after_it(registry):
    for name in ["yolo-seg", "yolo11-seg"]:
        assert registry.get(name).plugin == "yolo_seg"
