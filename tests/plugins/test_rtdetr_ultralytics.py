"""rtdetr-ultralytics (ultralytics RT-DETR, [Q, 6] rows from 8.4, [Q, 4+C] scores before): hand-computed
cases through the built parsers and the reference, conformance, and how inspection tells its [B, 300, 6]
rows from the YOLO end-to-end head of the same shape."""

from __future__ import annotations

import numpy as np
import pytest

from dsparsers.api.architecture import GenerateOptions
from dsparsers.api.selection import choose
from dsparsers.verification.conformance import run_conformance
from detr_cases import F, NAN, case, config_lines, graph
from onnx_graphs import ultralytics_names
from parser_checks import objects, run_both
from plugin_imports import heavy_modules_loaded_by

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


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


# (the canonical parser conforms: tests/generation/test_all_architectures.py)
@pytest.mark.parametrize("arch, classes, extra", [("rtdetr", 3, {"layout": "scores"})])
def test_variants_conform(open_parser, arch, classes, extra):
    architecture, params, library = open_parser(arch, classes=classes, extra=extra)
    report = run_conformance(library, architecture, params, examples=60, derandomize=True)
    assert report.passed, report.mismatch.summary


# -- recognising the head ------------------------------------------------------------------------
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


def test_rtdetr_preprocessing_defaults(registry):
    assert {"cluster-mode=4", "maintain-aspect-ratio=0",
            "net-scale-factor=0.00392156862745098"} <= config_lines(registry, "rtdetr")


@pytest.mark.parametrize("module", ["dsparsers.plugins.rtdetr_ultralytics", "dsparsers.plugins._detr_common"])
def test_plugin_module_imports_neither_numpy_nor_hypothesis(module):
    assert heavy_modules_loaded_by(module) == []


def test_registered_by_the_plugin_module_named_after_it(registry):
    for name in ["rtdetr-ultralytics", "rtdetr"]:
        assert registry.get(name).plugin == "rtdetr_ultralytics"
