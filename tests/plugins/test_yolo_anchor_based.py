"""yolo-anchor-based (plugins/yolo_anchor_based.py): [N, 5+C] heads with objectness, hand-computed cases
through the built parser and the reference, and the YOLOX preprocessing alias."""

from __future__ import annotations

import numpy as np

from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParserCase
from parser_checks import objects, run_both

NAN, INF = float("nan"), float("inf")


def one_layer(name, data, classes, threshold=0.25, network=(640, 640), configured=None):
    configured = classes if configured is None else configured
    return ParserCase((Layer(name, np.ascontiguousarray(data)),), NetworkInfo(*network),
                      DetectionParams.uniform(configured, threshold))


# -- anchor-based [N, 5+C] ---------------------------------------------------------------------
def anchor_rows(candidates, classes):
    rows = np.zeros((len(candidates), 5 + classes), np.float32)
    for i, (box, obj, scores) in enumerate(candidates):
        rows[i, :4], rows[i, 4] = box, obj
        for cls, value in scores.items():
            rows[i, 5 + cls] = value
    return rows


def test_anchor_based_score_is_objectness_times_class_probability(open_parser):
    parser = open_parser("yolov5", classes=80)
    data = anchor_rows([((100, 50, 20, 10), 0.5, {2: 0.8}),     # 0.4: kept
                        ((200, 50, 20, 10), 0.3, {3: 0.8}),     # 0.24: below 0.25
                        ((300, 50, 20, 10), 1.0, {4: 0.3, 9: 0.5}),  # best class 9, 0.5
                        ((400, 50, 20, 10), NAN, {5: 0.9}),     # NaN objectness: dropped
                        ((500, 50, 20, 10), INF, {6: 0.9})], 80)  # inf score: dropped
    got = run_both(parser, one_layer("output0", data, 80))
    assert objects(got) == [(2, 90.0, 45.0, 20.0, 10.0, 0.4), (9, 290.0, 45.0, 20.0, 10.0, 0.5)]


def test_anchor_based_channel_major_best_class_skips_nan_and_keeps_the_lower_class_on_ties(open_parser):
    parser = open_parser("yolov5", classes=80, extra={"layout": "channels"})
    data = anchor_rows([((100, 50, 20, 10), 0.5, {2: 0.8}),                 # 0.4: kept
                        ((200, 50, 20, 10), 1.0, {1: NAN, 3: 0.6}),          # NaN never wins: class 3, 0.6
                        ((300, 50, 20, 10), 1.0, {4: 0.5, 9: 0.5}),          # tie: the lower class, 4
                        ((400, 50, 20, 10), 0.3, {5: 0.8}),                  # 0.24: below 0.25
                        ((500, 50, 20, 10), 1.0, {0: NAN, 79: NAN})], 80)    # other classes 0: class 1, score 0
    got = run_both(parser, one_layer("output0", data.T, 80))
    assert objects(got) == [(2, 90.0, 45.0, 20.0, 10.0, 0.4), (3, 190.0, 45.0, 20.0, 10.0, 0.6),
                            (4, 290.0, 45.0, 20.0, 10.0, 0.5)]


def test_anchor_based_rejects_an_anchor_free_tensor(open_parser):
    parser = open_parser("yolov5", classes=80)
    got = run_both(parser, one_layer("output0", np.zeros((10, 84), np.float32), 80))
    assert not got.accepted


def test_yolox_alias_gets_yolox_preprocessing(registry):
    from dsparsers.api.architecture import GenerateOptions
    from dsparsers.generation.codegen import render_parser

    architecture = registry.get("yolox").architecture
    params = architecture.head_params(None, GenerateOptions(requested_as="yolox"))
    config = render_parser(architecture, params, requested_as="yolox").files["config_infer_primary_yolox.txt"]
    assert {"net-scale-factor=1.0", "model-color-format=1", "maintain-aspect-ratio=1",
            "symmetric-padding=0"} <= set(config.splitlines())
