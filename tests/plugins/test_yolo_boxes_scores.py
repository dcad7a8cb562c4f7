"""yolo-boxes-scores (YOLO-NAS, PP-YOLOE, DAMO-YOLO): hand-computed cases checked against the built parser
and the reference decoder, and the matcher on small ONNX graphs."""

from __future__ import annotations

import numpy as np
import pytest

from dsparsers.api.architecture import GenerateOptions
from dsparsers.errors import UsageError
from dsparsers.model.reader import load_model
from dsparsers.api.abi_types import DataType, DetectionParams, Layer, NetworkInfo, ParserCase
from onnx_graphs import head_model
from parser_checks import objects, run_both

NAN, INF = float("nan"), float("inf")


def head(candidates, classes, *, layout="rows", box_dtype=np.float32, score_dtype=np.float32):
    """candidates: (x1, y1, x2, y2, {class: score}); other scores are 0. -> (boxes [N, 4], scores)."""
    boxes = np.array([c[:4] for c in candidates], np.float32).reshape(-1, 4)
    scores = np.zeros((len(candidates), classes), np.float32)
    for i, (*_, by_class) in enumerate(candidates):
        for cls, score in by_class.items():
            scores[i, cls] = score
    if layout == "channels":
        scores = np.ascontiguousarray(scores.T)
    return boxes.astype(box_dtype), scores.astype(score_dtype)


def case(boxes, scores, *, classes=80, threshold=0.25, configured=None, network=(640, 640),
         names=("boxes", "scores"), reverse=False):
    configured = classes if configured is None else configured
    layers = [Layer(names[0], boxes), Layer(names[1], scores)]
    if reverse:
        layers.reverse()
    return ParserCase(tuple(layers), NetworkInfo(*network), DetectionParams.uniform(configured, threshold))


@pytest.fixture(scope="module")
def nas(open_parser):
    return open_parser("yolo-nas")


@pytest.fixture(scope="module")
def ppyoloe(open_parser):
    return open_parser("ppyoloe", classes=3, extra={"scores_layout": "channels"})


def test_canonical_head_is_yolo_nas_coco(nas):
    _, params, _ = nas
    assert (params.num_classes, params.input_width, params.input_height) == (80, 640, 640)
    assert (params.scores_layout, params.boxes_name, params.scores_name, params.num_candidates) == \
        ("rows", "boxes", "scores", 8400)


def test_corners_become_left_top_width_height(nas):
    got = run_both(nas, case(*head([(10, 20, 110, 70, {2: 0.9})], 80)))
    assert got.accepted and objects(got) == [(2, 10.0, 20.0, 100.0, 50.0, 0.9)]


def test_best_class_ties_nan_and_infinities(nas):
    cands = [
        (0, 0, 10, 10, {3: 0.5, 7: 0.5}),      # tie: the lower id wins
        (0, 0, 10, 10, {0: NAN, 5: 0.6}),      # NaN never wins
        (0, 0, 10, 10, {0: NAN}),              # only NaN (others 0 < 0.25): nothing
        (0, 0, 10, 10, {6: INF}),              # +inf is best but not finite: dropped
        (0, 0, 10, 10, {6: -INF, 8: 0.3}),     # -inf loses
    ]
    got = run_both(nas, case(*head(cands, 80)))
    assert [(o[0], o[5]) for o in objects(got)] == [(3, 0.5), (5, 0.6), (8, 0.3)]


def test_threshold_is_inclusive_and_unconfigured_classes_are_dropped(nas):
    cands = [(0, 0, 10, 10, {1: 0.25}), (0, 0, 10, 10, {1: 0.2499}), (0, 0, 10, 10, {5: 0.9}),
             (0, 0, 10, 10, {2: 0.9})]
    got = run_both(nas, case(*head(cands, 80), configured=3))
    assert [(o[0], o[5]) for o in objects(got)] == [(1, 0.25), (2, 0.9)]


def test_boxes_nonfinite_inverted_tiny_outside_and_clipped(nas):
    cands = [
        (NAN, 0, 10, 10, {0: 0.9}),            # non-finite corner: dropped
        (0, 0, INF, 10, {0: 0.9}),             # inf corner: dropped (never clipped to the edge)
        (50, 50, 40, 60, {0: 0.9}),            # inverted: negative width, dropped
        (100, 100, 100.5, 120, {0: 0.9}),      # half a pixel wide: dropped
        (-100, -100, -10, -10, {0: 0.9}),      # outside: clips to nothing
        (-10, -20, 30, 40, {1: 0.9}),          # straddles the top-left corner: clipped to 30 x 40
        (600, 450, 700, 500, {2: 0.9}),        # straddles bottom-right of 640x480: 40 x 30
        (10, 10, 11, 11, {3: 0.9}),            # exactly one pixel: kept
    ]
    got = run_both(nas, case(*head(cands, 80), network=(640, 480)))
    assert objects(got) == [(1, 0.0, 0.0, 30.0, 40.0, 0.9), (2, 600.0, 450.0, 40.0, 30.0, 0.9),
                            (3, 10.0, 10.0, 1.0, 1.0, 0.9)]


def test_layers_found_in_any_binding_order_and_by_shape_when_renamed(nas):
    boxes, scores = head([(10, 20, 110, 70, {2: 0.9})], 80)
    want = [(2, 10.0, 20.0, 100.0, 50.0, 0.9)]
    assert objects(run_both(nas, case(boxes, scores, reverse=True))) == want
    for names in (("out_a", "scores"), ("boxes", "out_b"), ("out_a", "out_b")):
        for reverse in (False, True):
            assert objects(run_both(nas, case(boxes, scores, names=names, reverse=reverse))) == want, (names, reverse)


def test_real_export_names(open_parser):
    """super-gradients' decoding-module names, and DAMO-YOLO's (scores called `output`), as the model gives them."""
    boxes, scores = head([(10, 20, 110, 70, {2: 0.9})], 80)
    nas_named = open_parser("yolo-nas", extra={"boxes": "pre_nms_bboxes_xyxy", "scores": "pre_nms_scores"})
    got = run_both(nas_named, case(boxes, scores, names=("pre_nms_bboxes_xyxy", "pre_nms_scores"), reverse=True))
    assert objects(got) == [(2, 10.0, 20.0, 100.0, 50.0, 0.9)]


def test_channel_major_scores_pp_yoloe(ppyoloe):
    boxes, scores = head([(10, 20, 110, 70, {2: 0.9}), (5, 5, 50, 50, {0: 0.4, 1: 0.7}), (1, 1, 9, 9, {0: 0.1})], 3,
                         layout="channels")
    assert scores.shape == (3, 3)
    got = run_both(ppyoloe, case(boxes, scores, classes=3, reverse=True))
    assert objects(got) == [(2, 10.0, 20.0, 100.0, 50.0, 0.9), (1, 5.0, 5.0, 45.0, 45.0, 0.7)]


def test_fp16_and_fp32_layers_mixed(nas):
    for box_dtype, score_dtype in ((np.float16, np.float32), (np.float32, np.float16), (np.float16, np.float16)):
        boxes, scores = head([(10.5, 20.25, 110, 70, {79: 0.875})], 80, box_dtype=box_dtype, score_dtype=score_dtype)
        assert objects(run_both(nas, case(boxes, scores))) == [(79, 10.5, 20.25, 99.5, 49.75, 0.875)]


@pytest.mark.parametrize("boxes_dims, scores_dims, scores_type", [
    ((3, 5), (3, 80), None),         # boxes not [N, 4]
    ((3, 4), (3, 81), None),         # one class too many
    ((3, 4), (4, 80), None),         # N differs
    ((3, 4), (80, 3), None),         # channel-major scores given to a row-major parser
    ((0, 4), (0, 80), None),         # no candidates
    ((3, 4), (3, 80), DataType.INT32),
    ((3, 4, 1), (3, 80), None),      # batch dimension left in
])
def test_wrong_dims_or_types_return_false(nas, boxes_dims, scores_dims, scores_type):
    architecture, params, library = nas
    buffer = np.full(4096, 0.9, np.float32)
    bad = ParserCase((Layer("boxes", buffer, dims=boxes_dims), Layer("scores", buffer, dims=scores_dims,
                                                                      data_type=scores_type)),
                     NetworkInfo(640, 640), DetectionParams.uniform(80, 0.25))
    got = library.parse(bad)
    assert not got.accepted and len(got.objects) == 0
    assert not architecture.reference(bad, params).accepted


def test_missing_layer_and_one_line_on_stderr(nas, capfd):
    architecture, params, library = nas
    boxes, _ = head([(10, 20, 110, 70, {2: 0.9})], 80)
    only_boxes = ParserCase((Layer("boxes", boxes),), NetworkInfo(640, 640), DetectionParams.uniform(80, 0.25))
    capfd.readouterr()
    assert not library.parse(only_boxes).accepted
    assert not architecture.reference(only_boxes, params).accepted
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines == ['dsparsers[yolo-nas]: no scores layer: none named "scores" and none of shape [N, C] among 1 layers']


def test_four_classes_need_the_names(open_parser):
    parser = open_parser("yolo-nas", classes=4)
    boxes, scores = head([(10, 20, 110, 70, {2: 0.9})], 4)
    assert objects(run_both(parser, case(boxes, scores, classes=4, reverse=True))) == [(2, 10.0, 20.0, 100.0, 50.0, 0.9)]
    # scores named, boxes renamed: the other [N, 4] layer is the boxes
    assert objects(run_both(parser, case(boxes, scores, classes=4, names=("x", "scores")))) == \
        [(2, 10.0, 20.0, 100.0, 50.0, 0.9)]
    # both renamed: [N, 4] and [N, 4] cannot be told apart; the parser refuses to guess
    assert not run_both(parser, case(boxes, scores, classes=4, names=("x", "y"))).accepted


# -- recognising exports ----------------------------------------------------------------------------

def test_matches_yolo_nas_super_gradients_names(tmp_path, registry):
    path = head_model(tmp_path / "nas.onnx", [("pre_nms_bboxes_xyxy", [1, 8400, 4]), ("pre_nms_scores", [1, 8400, 80])],
                      producer_ops={"pre_nms_scores": ["Sigmoid"]})
    model = load_model(path)
    arch = registry.get("yolo-boxes-scores").architecture
    verdict = arch.match(model)
    assert verdict.score >= 0.85
    assert "YOLO-NAS, PP-YOLOE(+), DAMO-YOLO" in verdict.reason and "row-major" in verdict.reason
    params = arch.head_params(model, GenerateOptions(requested_as="yolo-nas"))
    assert (params.num_classes, params.scores_layout, params.boxes_name, params.scores_name, params.num_candidates) == \
        (80, "rows", "pre_nms_bboxes_xyxy", "pre_nms_scores", 8400)
    assert registry.rank(model)[0].architecture == "yolo-boxes-scores"


def test_matches_pp_yoloe_channel_major_scores(tmp_path, registry):
    path = head_model(tmp_path / "ppyoloe.onnx", [("concat_14.tmp_0", [1, 8400, 4]), ("tmp_20", [1, 80, 8400])],
                      inputs=(("image", [1, 3, 640, 640]), ("scale_factor", [1, 2])),
                      producer_ops={"tmp_20": ["Sigmoid"]})
    model = load_model(path)
    arch = registry.get("ppyoloe").architecture
    verdict = arch.match(model)
    assert verdict.score >= 0.7 and "channel-major" in verdict.reason and "PP-YOLOE" in verdict.reason
    params = arch.head_params(model, GenerateOptions(requested_as="ppyoloe"))
    assert (params.num_classes, params.scores_layout, params.boxes_name, params.scores_name) == \
        (80, "channels", "concat_14.tmp_0", "tmp_20")
    with pytest.raises(UsageError, match="scores_layout"):
        arch.head_params(model, GenerateOptions(extra={"scores_layout": "diagonal"}))
    with pytest.raises(UsageError, match="--classes 3"):
        arch.head_params(model, GenerateOptions(num_classes=3))


def test_matches_damo_yolo_whose_scores_are_called_output(tmp_path, registry):
    path = head_model(tmp_path / "damo.onnx", [("output", [1, 8400, 80]), ("1324", [1, 8400, 4])],
                      producer_ops={"output": ["Sigmoid"]})
    model = load_model(path)
    arch = registry.get("damo-yolo").architecture
    assert arch.match(model).score >= 0.7
    params = arch.head_params(model, GenerateOptions())
    assert (params.boxes_name, params.scores_name, params.scores_layout, params.num_classes) == \
        ("1324", "output", "rows", 80)


def test_symbolic_candidates_and_four_classes(tmp_path, registry):
    arch = registry.get("yolo-boxes-scores").architecture
    dynamic = load_model(head_model(tmp_path / "dyn.onnx", [("boxes", ["batch", "n", 4]), ("scores", ["batch", "n", 7])]))
    params = arch.head_params(dynamic, GenerateOptions())
    assert (params.num_classes, params.scores_layout, params.num_candidates) == (7, "rows", None)
    unnamed = load_model(head_model(tmp_path / "four.onnx", [("a", [1, 8400, 4]), ("b", [1, 8400, 4])]))
    verdict = arch.match(unnamed)
    assert verdict.score < 0.5 and "names" in verdict.reason
    with pytest.raises(UsageError, match="4 classes"):
        arch.head_params(unnamed, GenerateOptions())
    named = load_model(head_model(tmp_path / "four_named.onnx", [("scores", [1, 8400, 4]), ("boxes", [1, 8400, 4])]))
    params = arch.head_params(named, GenerateOptions())
    assert (params.boxes_name, params.scores_name, params.num_classes) == ("boxes", "scores", 4)


def test_does_not_match_other_heads(tmp_path, registry):
    arch = registry.get("yolo-boxes-scores").architecture
    from onnx_graphs import ultralytics_detect

    assert arch.match(load_model(ultralytics_detect(tmp_path / "y.onnx"))) is None
    detr = head_model(tmp_path / "detr.onnx", [("pred_logits", [1, 300, 91]), ("pred_boxes", [1, 300, 4])])
    assert arch.match(load_model(detr)) is None


def test_four_classes_roles_from_options(tmp_path, registry):
    arch = registry.get("yolo-boxes-scores").architecture
    unnamed = load_model(head_model(tmp_path / "four.onnx", [("a", [1, 8400, 4]), ("b", [1, 8400, 4])]))
    params = arch.head_params(unnamed, GenerateOptions(extra={"boxes": "b", "scores": "a"}))
    assert (params.boxes_name, params.scores_name, params.num_classes) == ("b", "a", 4)
