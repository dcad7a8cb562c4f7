"""dsparsers.emulation.clustering: nvinfer's post-parser step on hand-computed cases, one per rule and quirk."""

from __future__ import annotations

import numpy as np
import pytest

from dsparsers.api.abi_types import detections
from dsparsers.emulation.clustering import ClassAttrs, ClusterSettings, cluster, iou, nms, postprocess, precluster_filter
from dsparsers.emulation.config_reader import cluster_settings_of


def rows(objects):
    return [(int(o["class_id"]), float(o["left"]), float(o["top"]), float(o["width"]), float(o["height"]),
             round(float(o["confidence"]), 6)) for o in objects]


def nms_settings(num_classes=3, **attrs):
    return ClusterSettings(num_classes, 2, ClassAttrs(**{"pre_cluster_threshold": 0.0, **attrs}))


# -- pre-cluster filter -------------------------------------------------------------------------------
def test_precluster_drops_classes_past_num_detected_classes_and_scores_below_the_class_threshold():
    objects = detections([(0, 0, 0, 10, 10, 0.5), (1, 0, 0, 10, 10, 0.5), (3, 0, 0, 10, 10, 0.9),
                          (0, 0, 0, 10, 10, 0.19), (0, 0, 0, 10, 10, 0.2)])
    settings = ClusterSettings(3, 4, ClassAttrs(pre_cluster_threshold=0.2)).with_class(1, pre_cluster_threshold=0.6)
    kept = precluster_filter(objects, settings)
    # class 3 >= 3 classes dropped; class 1 needs 0.6; 0.19 < 0.2 dropped; 0.2 == threshold kept (>=)
    assert rows(kept) == [(0, 0, 0, 10, 10, 0.5), (0, 0, 0, 10, 10, 0.2)]


def test_precluster_threshold_equality_is_kept_in_float32():
    objects = detections([(0, 0, 0, 10, 10, 0.3)])  # stored as float32(0.3)
    assert len(precluster_filter(objects, ClusterSettings(1, 4, ClassAttrs(pre_cluster_threshold=0.3)))) == 1


def test_defaults_are_nvinfers():
    settings = ClusterSettings(80)
    assert settings.cluster_mode == 0
    assert settings.all == ClassAttrs(0.2, 0.0, 0.3, -1)


# -- IoU ----------------------------------------------------------------------------------------------
def test_iou_has_no_plus_one():
    a, b = detections([(0, 0, 0, 10, 10, 1), (0, 5, 0, 10, 10, 1)])
    # inter 5*10 = 50, union 100 + 100 - 50 = 150
    assert iou(a, b) == np.float32(50) / np.float32(150)
    c, d = detections([(0, 0, 0, 10, 10, 1), (0, 10, 0, 10, 10, 1)])  # touching edges: no overlap
    assert iou(c, d) == 0


def test_iou_of_zero_area_boxes_is_zero():
    a, b = detections([(0, 5, 5, 0, 0, 1), (0, 5, 5, 0, 0, 1)])
    assert iou(a, b) == 0


# -- cluster-mode 2 (NMS) -----------------------------------------------------------------------------
def test_nms_suppresses_above_the_threshold_and_keeps_iou_exactly_at_it():
    # IoU(A, B) = 50/150 = 1/3; IoU(A, C) = 0.5 exactly (inter 10*... see below)
    a = (0, 0, 0, 10, 10, 0.9)
    b = (0, 5, 0, 10, 10, 0.8)  # IoU with A: 1/3
    c = (0, 0, 0, 10, 20, 0.7)  # IoU with A: 100 / (100 + 200 - 100) = 0.5 exactly
    objects = detections([a, b, c])
    assert iou(objects[0], objects[2]) == np.float32(0.5)
    kept = nms(objects, 0.5)  # B: 1/3 <= 0.5 kept; C: 0.5 with A (kept, '<='), IoU(B, C) = 50/250 kept
    assert rows(kept) == [a, b, c]
    kept = nms(objects, 0.3)  # B: 1/3 > 0.3 suppressed; C: 0.5 > 0.3 suppressed
    assert rows(kept) == [a]


def test_nms_only_compares_with_kept_boxes():
    # B overlaps A (suppressed); C overlaps B but not A: kept, because B was not kept
    a = (0, 0, 0, 10, 10, 0.9)
    b = (0, 6, 0, 10, 10, 0.8)  # IoU(A, B) = 40/160 = 0.25
    c = (0, 12, 0, 10, 10, 0.7)  # IoU(A, C) = 0, IoU(B, C) = 0.25
    assert rows(nms(detections([a, b, c]), 0.2)) == [a, c]


def test_nms_sort_is_stable_on_equal_confidences():
    # identical boxes and scores: the first in parser order survives
    first = (0, 0, 0, 10, 10, 0.5)
    second = (0, 1, 0, 10, 10, 0.5)  # IoU 90/110 > 0.5
    assert rows(nms(detections([first, second]), 0.5)) == [first]
    assert rows(nms(detections([second, first]), 0.5)) == [second]
    # and unsuppressed equal scores keep parser order
    far = (0, 100, 100, 10, 10, 0.5)
    assert rows(nms(detections([far, first]), 0.5)) == [far, first]


def test_nms_is_per_class():
    a = (0, 0, 0, 10, 10, 0.9)
    b = (1, 0, 0, 10, 10, 0.8)  # same box, other class: not suppressed
    assert rows(postprocess(detections([a, b]), nms_settings(nms_iou_threshold=0.5))) == [a, b]


def test_post_cluster_threshold_is_strict_and_applies_after_nms():
    a = (0, 0, 0, 10, 10, 0.5)
    b = (0, 1, 0, 10, 10, 0.9)  # suppresses A, then falls to the post-cluster threshold itself
    c = (0, 100, 0, 10, 10, 0.6)
    settings = nms_settings(nms_iou_threshold=0.5, post_cluster_threshold=0.6)
    # C's 0.6 == threshold: dropped ('>'); B 0.9 kept; A was suppressed by B before the threshold
    assert rows(postprocess(detections([a, b, c]), settings)) == [b]
    settings = nms_settings(nms_iou_threshold=0.5, post_cluster_threshold=0.95)
    # A is not resurrected when B falls to the threshold: NMS runs first
    assert rows(postprocess(detections([a, b, c]), settings)) == []


def test_topk_is_per_class_after_nms_and_by_confidence():
    objects = detections([(0, 0, 0, 10, 10, 0.3), (0, 50, 0, 10, 10, 0.9), (0, 100, 0, 10, 10, 0.6),
                          (1, 0, 0, 10, 10, 0.4), (1, 50, 0, 10, 10, 0.5), (0, 1, 0, 10, 10, 0.95)])
    settings = nms_settings(nms_iou_threshold=0.5, topk=2)
    # class 0 after NMS: 0.95, 0.9, 0.6 (0.3 suppressed by 0.95) -> top 2; class 1: both
    assert rows(postprocess(objects, settings)) == [(0, 1, 0, 10, 10, 0.95), (0, 50, 0, 10, 10, 0.9),
                                                    (1, 50, 0, 10, 10, 0.5), (1, 0, 0, 10, 10, 0.4)]


def test_per_class_overrides_inherit_the_rest_from_class_attrs_all():
    objects = detections([(0, 0, 0, 10, 10, 0.9), (0, 3, 0, 10, 10, 0.8), (1, 0, 0, 10, 10, 0.9),
                          (1, 3, 0, 10, 10, 0.8)])  # IoU 70/130 = 0.538
    settings = nms_settings(nms_iou_threshold=0.5, topk=5).with_class(1, nms_iou_threshold=0.6)
    assert settings.attrs(1).topk == 5 and settings.attrs(0).nms_iou_threshold == 0.5
    assert rows(postprocess(objects, settings)) == [(0, 0, 0, 10, 10, 0.9), (1, 0, 0, 10, 10, 0.9),
                                                    (1, 3, 0, 10, 10, 0.8)]


def test_output_is_class_major():
    objects = detections([(2, 0, 0, 10, 10, 0.9), (0, 0, 0, 10, 10, 0.3), (1, 0, 0, 10, 10, 0.5),
                          (0, 50, 0, 10, 10, 0.8)])
    for mode in (0, 2, 4):
        kept = postprocess(objects, ClusterSettings(3, mode, ClassAttrs(pre_cluster_threshold=0.0)))
        assert list(kept["class_id"]) == [0, 0, 1, 2], mode


# -- cluster-mode 4 (none) ----------------------------------------------------------------------------
def test_mode_4_with_topk_minus_one_neither_sorts_nor_cuts_nor_suppresses():
    objects = detections([(1, 0, 0, 10, 10, 0.3), (0, 0, 0, 10, 10, 0.3), (0, 0, 0, 10, 10, 0.9),
                          (0, 0, 0, 10, 10, 0.5)])
    kept = postprocess(objects, ClusterSettings(2, 4, ClassAttrs(pre_cluster_threshold=0.0, post_cluster_threshold=0.6)))
    # class-major buckets in parser order; no NMS, no post-cluster threshold
    assert rows(kept) == [(0, 0, 0, 10, 10, 0.3), (0, 0, 0, 10, 10, 0.9), (0, 0, 0, 10, 10, 0.5),
                          (1, 0, 0, 10, 10, 0.3)]


def test_mode_4_topk_sorts_stably_and_cuts_per_class():
    objects = detections([(0, 1, 0, 10, 10, 0.5), (0, 2, 0, 10, 10, 0.9), (0, 3, 0, 10, 10, 0.5),
                          (1, 4, 0, 10, 10, 0.1)])
    kept = postprocess(objects, ClusterSettings(2, 4, ClassAttrs(pre_cluster_threshold=0.0, topk=2)))
    assert rows(kept) == [(0, 2, 0, 10, 10, 0.9), (0, 1, 0, 10, 10, 0.5), (1, 4, 0, 10, 10, 0.1)]


# -- cluster-mode 0 quirk, DBSCAN ---------------------------------------------------------------------
def test_mode_0_without_opencv_is_nms_with_topk_20_and_iou_half_whatever_the_config_says():
    a = (0, 0, 0, 10, 10, 0.9)
    b = (0, 0, 0, 10, 20, 0.8)  # IoU with A exactly 0.5: kept at IoU 0.5
    c = (0, 1, 0, 10, 10, 0.7)  # IoU with A 90/110 > 0.5: suppressed
    many = [(1, 20.0 * i, 0, 10, 10, 0.5 + 0.01 * i) for i in range(25)]  # no overlaps: 25 candidates
    settings = ClusterSettings(2, 0, ClassAttrs(pre_cluster_threshold=0.0, nms_iou_threshold=0.99, topk=100))
    kept = postprocess(detections([a, b, c] + many), settings)
    assert rows(kept[kept["class_id"] == 0]) == [a, b]
    ones = kept[kept["class_id"] == 1]
    assert len(ones) == 20  # topk 20, not the configured 100
    assert list(np.round(ones["confidence"], 2)) == [round(0.5 + 0.01 * i, 2) for i in range(24, 4, -1)]
    # with mode 2 the configured IoU 0.99 keeps C and topk 100 keeps all 25
    kept2 = postprocess(detections([a, b, c] + many), ClusterSettings(2, 2, settings.all))
    assert len(kept2[kept2["class_id"] == 0]) == 3 and len(kept2[kept2["class_id"] == 1]) == 25


def test_mode_0_keeps_the_post_cluster_threshold():
    settings = ClusterSettings(1, 0, ClassAttrs(pre_cluster_threshold=0.0, post_cluster_threshold=0.5))
    assert rows(postprocess(detections([(0, 0, 0, 10, 10, 0.5), (0, 50, 0, 10, 10, 0.6)]), settings)) == [
        (0, 50, 0, 10, 10, 0.6)]


@pytest.mark.parametrize("mode", [1, 3])
def test_dbscan_runs_only_where_min_boxes_is_positive_and_is_not_emulated_there(mode):
    # nvdsinfer_context_impl_output_parsing.cpp, clusterAndFillDetectionOutputDBSCAN / ...Hybrid: the closed
    # NvDsInferDBScanCluster* is called only `if (minBoxes > 0)`; the default minBoxes is 0 (DEFAULT_MIN_BOXES)
    assert len(cluster(detections([(0, 0, 0, 10, 10, 0.9)]), ClusterSettings(1, mode))) == 1
    with pytest.raises(NotImplementedError, match="minBoxes=2"):
        cluster(detections([(0, 0, 0, 10, 10, 0.9)]), ClusterSettings(1, mode, ClassAttrs(min_boxes=2)))


def test_unknown_mode_and_wrong_dtype_are_refused():
    with pytest.raises(ValueError, match="cluster-mode=7"):
        cluster(detections([]), ClusterSettings(1, 7))
    with pytest.raises(TypeError, match="DETECTION_DTYPE"):
        postprocess(np.zeros(3, np.float32), ClusterSettings(1))


def test_empty_input_gives_an_empty_detection_array():
    kept = postprocess(detections([]), ClusterSettings(80, 2))
    assert kept.dtype == detections([]).dtype and len(kept) == 0


# -- reading a config ---------------------------------------------------------------------------------
def test_settings_from_an_nvinfer_config():
    text = """# comment
[property]
num-detected-classes=3
cluster-mode=2

[class-attrs-all]
pre-cluster-threshold=0.25
nms-iou-threshold=0.45
topk=300

[class-attrs-1]
# only this one differs
pre-cluster-threshold=0.6
"""
    settings = cluster_settings_of(text)
    assert settings.num_classes == 3 and settings.cluster_mode == 2
    assert settings.all == ClassAttrs(0.25, 0.0, 0.45, 300)
    assert settings.attrs(1) == ClassAttrs(0.6, 0.0, 0.45, 300)
    assert settings.attrs(2) == settings.all


def test_config_without_cluster_mode_gets_mode_0_and_nvinfer_defaults():
    settings = cluster_settings_of("[property]\nnum-detected-classes=4\n")
    assert settings.cluster_mode == 0 and settings.all == ClassAttrs()
    with pytest.raises(ValueError, match="num-detected-classes"):
        cluster_settings_of("[property]\ncluster-mode=2\n")


def test_extra_fields_travel_with_their_objects():
    """A field beyond DETECTION_DTYPE's (dsparsers run carries each object's mask index this way) stays
    with its row through the filter, NMS and the class-major reordering."""
    from dsparsers.api.abi_types import DETECTION_DTYPE

    tagged = np.zeros(4, np.dtype(DETECTION_DTYPE.descr + [("tag", "<i8")]))
    rows = [(1, 0, 0, 10, 10, 0.9), (0, 0, 0, 10, 10, 0.8), (1, 1, 0, 10, 10, 0.7), (0, 50, 50, 10, 10, 0.1)]
    for k, (c, left, top, w, h, conf) in enumerate(rows):
        tagged[k] = (c, left, top, w, h, conf, 0.0, 100 + k)
    out = postprocess(tagged, ClusterSettings(2, 2, ClassAttrs(pre_cluster_threshold=0.2, nms_iou_threshold=0.5)))
    # class 0 first (row 1; row 3 is under the threshold), then class 1 (row 0; row 2 overlaps it: IoU 0.82)
    assert out["tag"].tolist() == [101, 100]
