"""Anchor-based [N, 5+C] and decoded-rows [K, 6] heads: hand-computed cases through the built parsers
and the references, and how inspection tells the look-alike YOLO heads apart."""

from __future__ import annotations

import numpy as np
import pytest

from dsparsers.errors import ModelError, UsageError
from dsparsers.model.reader import load_model
from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParserCase
from dsparsers.api.selection import choose
from onnx_graphs import head_model, ultralytics_names
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


def test_anchor_based_rejects_an_anchor_free_tensor(open_parser):
    parser = open_parser("yolov5", classes=80)
    got = run_both(parser, one_layer("output0", np.zeros((10, 84), np.float32), 80))
    assert not got.accepted


# -- decoded rows [K, 6] -----------------------------------------------------------------------
@pytest.mark.parametrize("arch, name", [("yolo26", "output0"), ("deepstream-yolo", "output")])
def test_decoded_rows_are_read_as_corners_with_float_class_ids(open_parser, arch, name):
    parser = open_parser(arch, classes=80)
    rows = np.array([
        [10, 20, 110, 70, 0.9, 3],        # kept: 100 x 50
        [10, 20, 110, 70, 0.9, -1],       # padding class -1: dropped
        [10, 20, 110, 70, 0.9, 80],       # class out of range: dropped
        [10, 20, 110, 70, 0.9, NAN],      # NaN class: dropped
        [-50, 600, 30, 700, 0.5, 2.7],    # fractional class truncates to 2; clipped to 30 x 40 at 640x640
        [10, 20, 110, 70, 0.2, 1],        # below threshold
        [10, 20, 10.5, 70, 0.9, 1],       # half a pixel wide: dropped
        [NAN, 20, 110, 70, 0.9, 1],       # non-finite corner: dropped
    ], np.float32)
    got = run_both(parser, one_layer(name, rows, 80))
    assert objects(got) == [(3, 10.0, 20.0, 100.0, 50.0, 0.9), (2, 0.0, 600.0, 30.0, 40.0, 0.5)]


def test_decoded_rows_respect_configured_classes_and_fp16(open_parser):
    parser = open_parser("yolov10", classes=80)
    rows = np.array([[10, 20, 110, 70, 0.875, 3], [10, 20, 110, 70, 0.875, 5]], np.float16)
    got = run_both(parser, one_layer("output0", rows, 80, configured=4))
    assert objects(got) == [(3, 10.0, 20.0, 100.0, 50.0, 0.875)]


def test_decoded_rows_reject_other_widths(open_parser):
    parser = open_parser("yolo26", classes=80)
    assert not run_both(parser, one_layer("output0", np.zeros((300, 7), np.float32), 80)).accepted


# -- telling look-alike heads apart ------------------------------------------------------------
def model(tmp_path, shape, *, name="output0", metadata=None, ops=("Concat", "Sigmoid"), axis=1, size=640):
    return load_model(head_model(tmp_path / "m.onnx", [(name, shape)], inputs=(("images", [1, 3, size, size]),),
                                 metadata=metadata or {}, producer_ops={name: list(ops)}, concat_axis=axis))


def names(count):
    return {"names": ultralytics_names(count)}


@pytest.mark.parametrize("shape, metadata, ops, expected", [
    ([1, 84, 8400], names(80), ("Concat", "Sigmoid"), "yolo-anchor-free"),
    ([1, 84, 8400], {}, ("Concat", "Sigmoid"), "yolo-anchor-free"),
    ([1, 8400, 84], names(80), ("Transpose",), "yolo-anchor-free"),
    ([1, 25200, 85], names(80), ("Concat", "Reshape"), "yolo-anchor-based"),
    ([1, 25200, 85], {}, ("Concat", "Reshape"), "yolo-anchor-based"),
    ([1, 8400, 85], names(80), ("Concat", "Sigmoid"), "yolo-anchor-based"),
    ([1, 300, 6], {**names(80), "end2end": "True", "task": "detect"}, ("Concat", "TopK"), "yolo-end2end"),
    ([1, 8400, 6], {}, ("Concat", "ArgMax"), "deepstream-yolo"),
])
def test_look_alike_heads_are_told_apart(registry, tmp_path, shape, metadata, ops, expected):
    axis = 2 if shape[2] < shape[1] else 1
    info = model(tmp_path, shape, metadata=metadata, ops=ops, axis=axis,
                 name="output" if expected == "deepstream-yolo" else "output0")
    choice = choose(registry, info, None)
    assert choice.provided.architecture.name == expected, registry.rank(info)


@pytest.mark.parametrize("shape, candidates", [
    ([1, 8400, 85], ("yolo-anchor-based", "yolo-anchor-free")),   # YOLOX (C=80) or anchor-free rows with C=81
    ([1, 300, 6], ("yolo-end2end", "deepstream-yolo")),           # no metadata: K=300 rows of 6
])
def test_ambiguous_heads_name_the_candidates_and_the_option(registry, tmp_path, shape, candidates):
    info = model(tmp_path, shape, ops=("Concat", "Identity"), axis=2)
    with pytest.raises(UsageError) as raised:
        choose(registry, info, None)
    message = str(raised.value)
    assert "match several architectures" in message and message.endswith("--arch NAME settles it")
    for name in candidates:
        assert name in message


def test_yolo26_metadata_overrides_the_shape_of_an_anchor_free_head(registry, tmp_path):
    # a one-to-many [B, 84, 8400] head exported from an end-to-end model still parses as anchor-free
    info = model(tmp_path, [1, 84, 8400], metadata={**names(80), "end2end": "False", "task": "detect"})
    assert choose(registry, info, None).provided.architecture.name == "yolo-anchor-free"


def test_unrelated_heads_still_get_a_clear_no_match(registry, tmp_path):
    info = model(tmp_path, [1, 17, 2, 2], ops=("Identity",))
    with pytest.raises(ModelError, match="no architecture recognises its outputs output0 \\[1, 17, 2, 2\\]"):
        choose(registry, info, None)


def test_yolox_alias_gets_yolox_preprocessing(registry):
    from dsparsers.api.architecture import GenerateOptions
    from dsparsers.generation.codegen import render_parser

    architecture = registry.get("yolox").architecture
    params = architecture.head_params(None, GenerateOptions(requested_as="yolox"))
    config = render_parser(architecture, params, requested_as="yolox").files["config_infer_primary_yolox.txt"]
    assert {"net-scale-factor=1.0", "model-color-format=1", "maintain-aspect-ratio=1",
            "symmetric-padding=0"} <= set(config.splitlines())
