"""dsparsers run against NVIDIA's own code, rule by rule.

Every expected value here is derived by hand from DeepStream's sources (GitHub NVIDIA/DeepStream, 9.1 unless
said otherwise; DS 6.2 and 6.3 from copies of the SDK's sources); the file and function are named in
each test. The property tests at the end check clustering and back-projection over random frames against a
separate, plainer statement of the same rules.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dsparsers.api.abi_types import detections
from dsparsers.emulation.backproject import (DEEPSTREAM_VERSIONS, FrameFilters, SizeLimits, backproject,
                                              backproject_indexed)
from dsparsers.emulation.clustering import (ClassAttrs, ClusterSettings, DBSCANNotEmulated, cluster, iou,
                                            postprocess, precluster_filter, stable_sort_descending)
from dsparsers.emulation.config_reader import parse_keyfile, parse_labels, read_labels
from dsparsers.emulation.preprocess import compute_geometry
from dsparsers.errors import ConfigError

f32 = np.float32


def rows(objects):
    return [(int(o["class_id"]), float(o["left"]), float(o["top"]), float(o["width"]), float(o["height"]))
            for o in objects]


# A 640x480 frame letterboxed into 320x320 with symmetric padding: ratio 0.5, 40 rows of padding on top.
LETTERBOX = compute_geometry(640, 480, 320, 320, maintain_aspect_ratio=True, symmetric_padding=True)


def test_geometry_of_the_cases():
    assert (LETTERBOX.ratio_x, LETTERBOX.ratio_y, LETTERBOX.offset_left, LETTERBOX.offset_top) == (0.5, 0.5, 0, 40)


# -- back-projection: gstnvinfer_meta_utils.cpp, attach_metadata_detector -------------------------------------
def test_bottom_edge_drop_without_crop():
    # DS 9.1: `if (obj.top + obj.height > (frame height - roiBottomOffset)) continue;` (roi-bottom-offset 0).
    objects = detections([
        (0, 100, 250, 20, 30, 0.9),    # frame top (250-40)/0.5 = 420, height 60: bottom 480 == 480, kept
        (0, 100, 250, 20, 30.5, 0.9),  # bottom 481 > 480 (1 px into the letterbox's bottom padding): dropped
        (0, 300, 100, 30, 20, 0.9),    # frame left 600, width 60: right 660 past 640, kept (no right-edge drop)
    ])
    assert rows(backproject(objects, LETTERBOX, FrameFilters(), 640, 480)) == [
        (0, 200, 420, 40, 60), (0, 600, 120, 60, 40)]


def test_a_box_ending_on_the_network_bottom_is_dropped_by_float_rounding_in_stretch_mode():
    # Stretch 1920x1080 -> 640x640: ratio_y = 640/1080 (double). A parser that clips its box to the network
    # (height = 640 - top in float) gives top = 21.494768142700195, height = 618.5052490234375, bottom exactly
    # 640.0f. nvinfer: top = float(21.4947.../ratio) = 36.27242279f, height = 1043.72766113f, and their float
    # sum is 1080.00012207f > 1080, so `top + height > height - 0` drops it.
    g = compute_geometry(1920, 1080, 640, 640, maintain_aspect_ratio=False, symmetric_padding=False)
    top = f32(21.494768142700195)
    height = f32(f32(640) - top)
    assert f32(top + height) == f32(640)
    objects = detections([(0, 10, float(top), 50, float(height), 0.9)])
    assert rows(backproject(objects, g, FrameFilters(), 1920, 1080)) == []
    # the same box 1e-3 px shorter is kept
    kept = backproject(detections([(0, 10, float(top), 50, float(height) - 1e-3, 0.9)]), g, FrameFilters(), 1920, 1080)
    assert len(kept) == 1


def test_left_and_top_are_raised_to_zero_keeping_the_size_in_ds9_but_not_in_ds62():
    # DS 6.3 to 9.1: `if(obj.top < 0) obj.top = 0; if(obj.left < 0) obj.left = 0;` before the filters.
    # DS 6.2: that clamp is only in the crop branch; without it the negative top fails `obj.top <
    # roiTopOffset` (0) and the object is dropped.
    objects = detections([(0, -10, 20, 50, 60, 0.9)])  # frame left -20, top -40, 100 x 120
    assert rows(backproject(objects, LETTERBOX, FrameFilters(), 640, 480, deepstream="9.1")) == [(0, 0, 0, 100, 120)]
    assert rows(backproject(objects, LETTERBOX, FrameFilters(), 640, 480, deepstream="6.3")) == [(0, 0, 0, 100, 120)]
    assert rows(backproject(objects, LETTERBOX, FrameFilters(), 640, 480, deepstream="6.2")) == []
    # a negative left alone survives in 6.2, unclamped
    objects = detections([(0, -10, 60, 50, 60, 0.9)])  # frame left -20, top 40
    assert rows(backproject(objects, LETTERBOX, FrameFilters(), 640, 480, deepstream="6.2")) == [(0, -20, 40, 100, 120)]


def test_roi_offsets_drop_without_crop():
    # DS 9.1 and 6.2: `if (obj.top < roiTopOffset) continue;` and the bottom test against
    # height - roiBottomOffset, per class (GstNvInferDetectionFilterParams of the object's class).
    filters = FrameFilters(default_limits=SizeLimits(roi_top_offset=100, roi_bottom_offset=80),
                           per_class_limits={1: SizeLimits(roi_top_offset=0, roi_bottom_offset=0)})
    objects = detections([
        (0, 0, 90, 10, 10, 0.9),    # frame top 100 == 100: kept; bottom 120
        (0, 0, 89, 10, 10, 0.9),    # top 98 < 100: dropped
        (0, 0, 190, 10, 10, 0.9),   # top 300, bottom 320 > 480 - 80... no: 320 <= 400, kept
        (0, 0, 230, 10, 11, 0.9),   # top 380, bottom 402 > 400: dropped
        (1, 0, 41, 10, 10, 0.9),    # class 1: offsets 0, top 2: kept
    ])
    assert rows(backproject(objects, LETTERBOX, filters, 640, 480)) == [
        (0, 0, 100, 20, 20), (0, 0, 300, 20, 20), (1, 0, 2, 20, 20)]


def test_roi_bottom_offset_above_the_frame_height_wraps_and_drops_nothing():
    # frame.input_surf_params->height - roiBottomOffset is unsigned - unsigned: 480 - 500 wraps to 2^32 - 20
    filters = FrameFilters(default_limits=SizeLimits(roi_bottom_offset=500))
    assert len(backproject(detections([(0, 0, 250, 10, 100, 0.9)]), LETTERBOX, filters, 640, 480)) == 1


def test_crop_raises_top_keeping_height_and_trims_right_and_bottom_after_the_size_filters():
    # DS 9.1, crop_objects_to_roi_boundary: `if (top < roiTopOffset) top = roiTopOffset;` (height unchanged),
    # `if (left + width >= W) width = W - left;`, `if (top + height > H - roiBottomOffset) height = H - off - top;`
    # and all of it AFTER detected-min/max-w/h, which therefore see the uncropped size.
    filters = FrameFilters(crop_objects_to_roi_boundary=True,
                           default_limits=SizeLimits(max_h=130, roi_top_offset=100, roi_bottom_offset=50))
    objects = detections([
        (0, 10, 65, 20, 20, 0.9),     # frame top 50 < 100 -> 100, height 40 kept (bottom moves to 140)
        (0, 300, 200, 30, 60, 0.9),   # left 600 + 60 >= 640 -> width 40; top 320 + 120 > 430 -> height 110
        (0, 0, 200, 10, 70, 0.9),     # height 140 > max-h 130: dropped before it could be trimmed to 110
        (0, 310, 200, 10, 10, 0.9),   # left 620, width 20: 640 >= 640 -> width 640 - 620 = 20 (unchanged)
    ])
    assert rows(backproject(objects, LETTERBOX, filters, 640, 480)) == [
        (0, 20, 100, 40, 40), (0, 600, 320, 40, 110), (0, 620, 320, 20, 20)]
    # `>=`, in float: left 473.50754f + width 166.49248f rounds to 640.0f, so width becomes 640 - left =
    # 166.49246f, one float step less (a `>` would leave it)
    edge = detections([(0, 473.5075378417969 / 2, 100, 166.4924774169922 / 2, 10, 0.9)])
    assert rows(backproject(edge, LETTERBOX, filters, 640, 480)) == [(0, 473.5075378417969, 120, 166.49246215820312, 20)]


def test_ds62_clamps_left_and_top_only_when_cropping():
    # DS 6.2, crop_objects_to_roi_boundary branch: `if (obj.top < 0) obj.top = 0; if (obj.left < 0) obj.left =
    # 0;` then the roi-top-offset raise and the right/bottom trims, all after the size filters.
    filters = FrameFilters(crop_objects_to_roi_boundary=True, default_limits=SizeLimits(roi_top_offset=10))
    objects = detections([(0, -10, 20, 50, 60, 0.9),   # frame -20, -40, 100 x 120 -> 0, 0 -> top 10
                          (0, 100, 250, 20, 40, 0.9)])  # frame 200, 420, 40 x 80 -> height 480 - 420
    expected = [(0, 0, 10, 100, 120), (0, 200, 420, 40, 60)]
    assert rows(backproject(objects, LETTERBOX, filters, 640, 480, deepstream="6.2")) == expected
    assert rows(backproject(objects, LETTERBOX, filters, 640, 480, deepstream="9.1")) == expected


def test_size_filters_see_the_clamped_box_and_nan_passes_them():
    # DS 9.1: the clamp keeps the size, so detected-min-w sees 100 (not the 80 inside the frame); every
    # comparison with NaN is false, so a NaN width passes `width < min` and is attached.
    filters = FrameFilters(default_limits=SizeLimits(min_w=90))
    objects = detections([(0, -10, 60, 50, 10, 0.9), (0, 0, 60, float("nan"), 10, 0.9)])
    kept = backproject(objects, LETTERBOX, filters, 640, 480)
    assert rows(kept)[0] == (0, 0, 40, 100, 20) and np.isnan(kept["width"][1])


def test_positions_follow_the_kept_objects():
    objects = detections([(0, 0, 0, 10, 10, 0.9), (0, 0, 60, 10, 10, 0.9), (0, 0, 300, 10, 10, 0.9)])
    kept, positions = backproject_indexed(objects, LETTERBOX, FrameFilters(), 640, 480, deepstream="6.2")
    assert positions.tolist() == [1]  # 6.2: the first has top -80 < 0, the last reaches 540 > 480


# -- clustering: nvdsinfer_context_impl_output_parsing.cpp ----------------------------------------------------
def test_precluster_filter_keeps_nan():
    # DetectPostprocessor::preClusteringThreshold removes `confidence < threshold`; NaN < 0.2 is false.
    objects = detections([(0, 0, 0, 10, 10, float("nan")), (0, 0, 0, 10, 10, 0.1)])
    kept = precluster_filter(objects, ClusterSettings(1, 4))
    assert len(kept) == 1 and np.isnan(kept["confidence"][0])


def test_dbscan_mode_with_min_boxes_0_is_the_post_cluster_threshold_with_equality_then_topk():
    # clusterAndFillDetectionOutputDBSCAN: no NvDsInferDBScanCluster call (minBoxes 0), then remove_if
    # `confidence < postClusterThreshold` (0.3 == 0.3 stays, NaN stays), then filterTopKOutputs.
    objects = detections([(0, 0, 0, 10, 10, 0.3), (0, 1, 0, 10, 10, 0.5), (0, 2, 0, 10, 10, 0.2),
                          (0, 3, 0, 10, 10, 0.3), (1, 0, 0, 10, 10, 0.9)])
    base = ClassAttrs(pre_cluster_threshold=0.0, post_cluster_threshold=0.3)
    assert [r[1] for r in rows(cluster(objects, ClusterSettings(2, 1, base)))] == [0, 1, 3, 0]  # parser order, no sort
    topk = ClusterSettings(2, 1, ClassAttrs(0.0, 0.3, 0.3, 2))
    assert [r[1] for r in rows(cluster(objects, topk))] == [1, 0, 0]  # stable sort: 0.5, then the first 0.3
    nan = detections([(0, 0, 0, 10, 10, float("nan"))])
    assert len(cluster(nan, ClusterSettings(1, 1, base))) == 1
    assert len(cluster(nan, ClusterSettings(1, 2, base))) == 0  # NMS: `confidence > post` is false for NaN


def test_hybrid_mode_with_min_boxes_0_is_nms():
    # clusterAndFillDetectionOutputHybrid: no NvDsInferDBScanClusterHybrid call, then clusterAndFillDetectionOutputNMS
    objects = detections([(0, 0, 0, 10, 10, 0.9), (0, 1, 0, 10, 10, 0.8), (0, 50, 0, 10, 10, 0.7)])
    attrs = ClassAttrs(pre_cluster_threshold=0.0, nms_iou_threshold=0.5)
    assert rows(cluster(objects, ClusterSettings(1, 3, attrs))) == rows(cluster(objects, ClusterSettings(1, 2, attrs)))
    assert [r[1] for r in rows(cluster(objects, ClusterSettings(1, 3, attrs)))] == [0, 50]


def test_min_boxes_above_0_is_refused_only_for_the_class_that_has_objects():
    settings = ClusterSettings(2, 1, ClassAttrs(pre_cluster_threshold=0.0)).with_class(1, min_boxes=3)
    assert len(cluster(detections([(0, 0, 0, 10, 10, 0.9)]), settings)) == 1
    with pytest.raises(DBSCANNotEmulated, match="class 1: minBoxes=3"):
        cluster(detections([(1, 0, 0, 10, 10, 0.9)]), settings)


def test_nms_iou_is_nvinfers_overlap1d_even_for_degenerate_boxes():
    # nonMaximumSuppression's overlap1D does not clamp at 0 once the intervals are ordered, and computeIoU is
    # called as (candidate, kept box). Candidate a = 10x10 at 0, kept b = width -1, height -200 at x 2:
    # overlap x: (0,10) vs (2,1): min(1, 10) - 2 = -1; overlap y: (0,10) vs (0,-200): 10 < 0 false, so
    # min(-200, 10) - 0 = -200; inter = 200, union = 100 + 200 - 200 = 100: IoU 2. The other way round the
    # y test is (0,-200) vs (0,10): -200 < 0, overlap 0, IoU 0. (A clamped formula says 0 both ways.)
    a = detections([(0, 0, 0, 10, 10, 0.9)])[0]
    b = detections([(0, 2, 0, -1, -200, 0.95)])[0]
    assert iou(a, b) == f32(2.0) and iou(b, a) == f32(0.0)
    attrs = ClassAttrs(0.0, 0.0, 0.5)
    assert rows(cluster(detections([tuple(a), tuple(b)]), ClusterSettings(1, 2, attrs))) == [(0, 2, 0, -1, -200)]
    b_second = detections([(0, 2, 0, -1, -200, 0.8)])[0]  # b is now the candidate: IoU 0, both kept
    assert len(cluster(detections([tuple(a), tuple(b_second)]), ClusterSettings(1, 2, attrs))) == 2
    # ordinary boxes: 10x10 at 0 and 5: inter 50, union 150
    assert iou(a, detections([(0, 5, 0, 10, 10, 0.8)])[0]) == f32(50) / f32(150)


def test_stable_sort_with_nan_follows_libstdcxx_by_hand():
    # n = 3: halves [0, 1] and [2]; insertion sort of [0.1, NaN]: NaN > 0.1 false, stays; the halves are
    # merged backwards (2 > 1): last of the second (0.9) vs last of the first (NaN): 0.9 > NaN is false,
    # so 0.9 goes last; then the first half [0.1, NaN] in front.
    assert stable_sort_descending([0.1, float("nan"), 0.9]) == [0, 1, 2]
    assert stable_sort_descending([0.1, 0.5, 0.9]) == [2, 1, 0]


# -- config reader: gstnvinfer_property_parser.cpp ------------------------------------------------------------
@pytest.mark.parametrize("group, line, message", [
    ("class-attrs-all", "topk=-1", "topk: expected at least 0"),  # gst_nvinfer_parse_class_attrs: topK < 0
    ("class-attrs-all", "nms-iou-threshold=1.5", "nms-iou-threshold: expected at most 1"),
    ("class-attrs-2", "nms-iou-threshold=-0.1", "nms-iou-threshold: expected at least 0"),
    ("class-attrs-all", "pre-cluster-threshold=-0.5", "pre-cluster-threshold: expected at least 0"),
    ("class-attrs-all", "post-cluster-threshold=-1", "post-cluster-threshold: expected at least 0"),
    ("class-attrs-all", "threshold=-1", "threshold: expected at least 0"),
    ("class-attrs-all", "detected-min-w=-1", "detected-min-w: expected at least 0"),
    ("class-attrs-all", "roi-bottom-offset=-3", "roi-bottom-offset: expected at least 0"),
    ("class-attrs-all", "minBoxes=-1", "minBoxes: expected at least 0"),
    ("class-attrs-all", "border-color=1;0;0", "border-color: expected exactly 4 values"),
    ("property", "segmentation-threshold=-0.1", "segmentation-threshold: expected at least 0"),
    ("property", "batch-size=1025", "batch-size: expected at most 1024"),  # NVDSINFER_MAX_BATCH_SIZE
    ("property", "gie-unique-id=0", "gie-unique-id: expected at least 1"),  # uniqueID <= 0
])
def test_values_nvinfer_refuses(group, line, message):
    with pytest.raises(ConfigError, match=r"^c\.txt:\d+: " + message):
        parse_keyfile(f"[property]\nnum-detected-classes=3\n[{group}]\n{line}\n", "c.txt")


def test_boundary_values_nvinfer_accepts():
    c = parse_keyfile("[property]\nnum-detected-classes=0\n[class-attrs-all]\nnms-iou-threshold=1\ntopk=0\n"
                      "[class-attrs-1]\nnms-iou-threshold=0\n", "c.txt")
    assert c.get("topk", "class-attrs-all") == 0 and c.get("nms-iou-threshold", "class-attrs-1") == 0


def test_the_keys_nvinfer_reads_that_dsparsers_refused_are_accepted_without_warnings():
    # every CONFIG_GROUP_INFER_* key of gstnvinfer_property_parser.h that gst_nvinfer_parse_props or
    # gst_nvinfer_parse_class_attrs reads (these 19 used to be "unknown key" errors)
    text = """[property]
num-detected-classes=2
is-classifier=0
tensor-meta-pool-size=6
auto-inc-mem=1
max-gpu-mem-per=90
dump-input-tensor=0
dump-output-tensor=0
overwrite-input-tensor=0
overwrite-output-tensor=0
ip-tensor-file=in.bin
op-tensor-files=a.bin;b.bin
raw-output-file-write=0
parse-segmentation-func-name=Seg
segmentation-output-order=1
strongly-typed=1
dynamic-properties=a=1;b=2
warmup-engine=1
stabilize-buffer-count=3
[class-attrs-all]
border-color=1;0;0;1
bg-color=0;0;0;0.5
"""
    c = parse_keyfile(text, "c.txt")
    assert c.warnings == []
    assert c.get("op-tensor-files") == ["a.bin", "b.bin"] and c.get("border-color", "class-attrs-all") == [1, 0, 0, 1]


def test_legacy_keys_select_what_nvinfer_selects():
    # gst_nvinfer_parse_props: enable-dbscan=1 sets NVDSINFER_CLUSTER_DBSCAN unless cluster-mode is set;
    # is-classifier becomes network-type when network-type is absent
    assert parse_keyfile("[property]\nnum-detected-classes=1\nenable-dbscan=1\n").cluster_settings().cluster_mode == 1
    assert parse_keyfile("[property]\nnum-detected-classes=1\nenable-dbscan=1\ncluster-mode=2\n").cluster_mode() == 2
    assert parse_keyfile("[property]\nis-classifier=1\n").network_type() == 1
    assert parse_keyfile("[property]\nis-classifier=1\nnetwork-type=0\n").network_type() == 0


def test_threshold_and_pre_cluster_threshold_the_later_wins():
    # gst_nvinfer_parse_class_attrs walks g_key_file_get_keys in file order; both keys set preClusterThreshold
    first = parse_keyfile("[property]\nnum-detected-classes=1\n[class-attrs-all]\nthreshold=0.4\npre-cluster-threshold=0.6\n")
    second = parse_keyfile("[property]\nnum-detected-classes=1\n[class-attrs-all]\npre-cluster-threshold=0.6\nthreshold=0.4\n")
    assert first.cluster_settings().all.pre_cluster_threshold == 0.6
    assert second.cluster_settings().all.pre_cluster_threshold == 0.4


def test_class_groups_are_read_as_strtoull_reads_them():
    # gst_nvinfer_parse_config_file: class_index = g_ascii_strtoull(rest) -> "5x" is class 5; "x" is invalid
    c = parse_keyfile("[property]\nnum-detected-classes=6\n[class-attrs-5x]\ntopk=2\n")
    assert c.class_attr(5, "topk") == 2
    with pytest.raises(ConfigError, match="invalid group"):
        parse_keyfile("[property]\nnum-detected-classes=6\n[class-attrs-x]\ntopk=2\n")
    with pytest.raises(ConfigError, match="num-detected-classes=6"):
        parse_keyfile("[property]\nnum-detected-classes=6\n[class-attrs-6]\ntopk=2\n").cluster_settings()


def test_labels_as_nvinfer_reads_them(tmp_path):
    # nvdsinfer_context_impl.cpp, InferPostprocessor::parseLabelsFile: getline on '\n', `if (line.empty())
    # continue;`, split on ';'; a detector's label is m_Labels[c][0]. Nothing is stripped.
    text = "person;human\n\ncar\n  \nbus\r\nlast"
    assert parse_labels(text) == [["person", "human"], ["car"], ["  "], ["bus\r"], ["last"]]
    path = tmp_path / "labels.txt"
    path.write_bytes(text.encode())
    assert read_labels(path) == ["person", "car", "  ", "bus\r", "last"]


@given(st.lists(st.text(max_size=20), min_size=1, max_size=8))
def test_generated_labels_read_back_one_per_class(names):
    # `generate` writes labels.txt through label_text: nvinfer must read one label per class, each the name
    from dsparsers.generation.escaping import label_text

    text = "".join(label_text(n, f"class_{i}") + "\n" for i, n in enumerate(names))
    labels = parse_labels(text)
    assert len(labels) == len(names) and all(len(tokens) == 1 for tokens in labels)
    assert [t[0] for t in labels] == [label_text(n, f"class_{i}") for i, n in enumerate(names)]


def test_run_refuses_instance_masks_without_cluster_mode_4_and_dbscan_with_min_boxes(tmp_path):
    # gstnvinfer.cpp, gst_nvinfer_start: output_instance_mask && clusterMode != NVDSINFER_CLUSTER_NONE fails,
    # for any network-type (a detector too), and with no cluster-mode line (mode 0)
    from dsparsers.emulation.run import settings_from_config

    config = tmp_path / "c.txt"
    config.write_text("[property]\nnum-detected-classes=1\noutput-instance-mask=1\ncluster-mode=2\n")
    with pytest.raises(ConfigError, match=r"c\.txt:4: cluster-mode: output-instance-mask=1 with cluster mode 2"):
        settings_from_config(config)
    config.write_text("[property]\nnum-detected-classes=1\noutput-instance-mask=1\n")
    with pytest.raises(ConfigError, match="with cluster mode 0"):
        settings_from_config(config)
    config.write_text("[property]\nnum-detected-classes=2\nenable-dbscan=1\n[class-attrs-1]\nminBoxes=2\n")
    with pytest.raises(ConfigError, match=r"enable-dbscan: cluster mode 1 with minBoxes > 0 \(class 1\)"):
        settings_from_config(config)
    # minBoxes 0: DBSCAN does not run, so run goes on (to the missing onnx-file here)
    config.write_text("[property]\nnum-detected-classes=2\ncluster-mode=1\nunknown-key=3\n")
    with pytest.raises(ConfigError, match="onnx-file is not set"):
        settings_from_config(config)


def test_segmentation_threshold_defaults_to_nvinfers_zero():
    # NvDsInferContext_ResetInitParams memsets the init params: segmentationThreshold 0 unless configured
    from dsparsers.emulation.run import RunSettings

    config = parse_keyfile("[property]\nnum-detected-classes=1\n")
    assert RunSettings(config, Path("m.onnx"), Path("l.so"), "f", []).segmentation_threshold == 0.0


# -- libstdc++'s std::stable_sort, the real one ---------------------------------------------------------------
SORT_PROGRAM = r"""
#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>
int main() {
  int n;
  while (std::scanf("%d", &n) == 1) {
    std::vector<std::pair<float, int>> v;
    for (int i = 0; i < n; ++i) { unsigned bits; std::scanf("%x", &bits); float f; __builtin_memcpy(&f, &bits, 4);
                                  v.emplace_back(f, i); }
    // the comparator of nvinfer's clusterAndFillDetectionOutputNMS and filterTopKOutputs
    std::stable_sort(v.begin(), v.end(), [](const std::pair<float, int>& a, const std::pair<float, int>& b) {
      return a.first > b.first; });
    for (auto& p : v) std::printf("%d ", p.second);
    std::printf("\n");
  }
}
"""


@pytest.mark.cpp
def test_stable_sort_order_is_libstdcxx_including_nan(tmp_path):
    source = tmp_path / "sort.cpp"
    source.write_text(SORT_PROGRAM)
    subprocess.run(["g++", "-O2", "-std=c++14", "-o", str(tmp_path / "sort"), str(source)], check=True)
    rng = np.random.default_rng(7)
    cases = []
    for n in list(range(0, 40)) + [57, 100, 129, 300]:
        for _ in range(6):
            values = rng.choice(np.array([0.1, 0.2, 0.5, 0.9, np.nan, 0.3], np.float32), n)
            if n and rng.random() < 0.5:
                values = rng.random(n).astype(np.float32)
                values[rng.random(n) < 0.2] = np.nan
            cases.append(values.astype(np.float32))
    stdin = "".join(f"{len(v)} " + " ".join(f"{x:08x}" for x in v.view(np.uint32)) + "\n" for v in cases)
    output = subprocess.run([str(tmp_path / "sort")], input=stdin, capture_output=True, text=True, check=True).stdout
    for values, line in zip(cases, output.splitlines()):
        assert stable_sort_descending(values) == [int(i) for i in line.split()], values.tolist()


# -- properties over random frames ----------------------------------------------------------------------------
coords = st.integers(-40, 700).map(float) | st.floats(-50, 700, width=32)
sizes = st.integers(-5, 400).map(float) | st.floats(0, 400, width=32)
scores = st.sampled_from([0.1, 0.2, 0.3, 0.5, 0.5, 0.7, 0.9]) | st.floats(0, 1, width=32)
objects_strategy = st.lists(st.tuples(st.integers(0, 3), coords, coords, sizes, sizes, scores), max_size=25)


def plain_iou(a, b):
    """The IoU for non-negative sizes, written the usual way (float32)."""
    inter = max(f32(0), min(f32(a[1] + a[3]), f32(b[1] + b[3])) - max(a[1], b[1])) * \
        max(f32(0), min(f32(a[2] + a[4]), f32(b[2] + b[4])) - max(a[2], b[2]))
    union = f32(f32(a[3] * a[4]) + f32(b[3] * b[4])) - f32(inter)
    return f32(0) if union == 0 else f32(f32(inter) / union)


def plain_postprocess(objects, mode, num_classes, pre, post, iou_threshold, topk):
    """nvinfer's steps for numbers (no NaN), with Python's stable sort and list comprehensions."""
    objects = [tuple(f32(v) if k else int(v) for k, v in enumerate(o)) for o in objects]
    out = []
    for c in range(num_classes):
        mine = [o for o in objects if o[0] == c and not o[5] < f32(pre)]
        by_score = sorted(mine, key=lambda o: -o[5])
        if mode == 4:
            mine = mine if topk < 0 else by_score[:topk]
        elif mode == 1:
            mine = [o for o in mine if o[5] >= f32(post)]
            mine = mine if topk < 0 else sorted(mine, key=lambda o: -o[5])[:topk]
        else:
            kept = []
            for o in by_score:
                if all(plain_iou(o, k) <= f32(iou_threshold) for k in kept):
                    kept.append(o)
            kept = [o for o in kept if o[5] > f32(post)]
            mine = kept if topk < 0 else kept[:topk]
        out += mine
    return [(o[0], float(o[1]), float(o[2]), float(o[3]), float(o[4]), float(o[5])) for o in out]


@settings(max_examples=150, deadline=None)
@given(objects_strategy, st.sampled_from([1, 2, 3, 4]), st.integers(1, 4), st.sampled_from([0.0, 0.2, 0.5]),
       st.sampled_from([0.0, 0.3, 0.5]), st.sampled_from([0.0, 0.3, 0.5, 1.0]), st.sampled_from([-1, 0, 1, 3]))
def test_clustering_matches_a_plain_statement_of_nvinfers_rules(objects, mode, num_classes, pre, post, iou_t, topk):
    objects = [o for o in objects if o[3] >= 0 and o[4] >= 0]  # the plain IoU is for real boxes
    settings_ = ClusterSettings(num_classes, mode, ClassAttrs(pre, post, iou_t, topk))
    got = postprocess(detections(objects), settings_)
    got = [(int(o["class_id"]), float(o["left"]), float(o["top"]), float(o["width"]), float(o["height"]),
            float(o["confidence"])) for o in got]
    assert got == plain_postprocess(objects, mode, num_classes, pre, post, iou_t, topk)
    if mode == 3:
        nms = postprocess(detections(objects), ClusterSettings(num_classes, 2, ClassAttrs(pre, post, iou_t, topk)))
        assert len(nms) == len(got)


@given(st.lists(st.sampled_from([0.1, 0.5, 0.5, 0.9, 0.3]) | st.floats(0, 1, width=32), max_size=60))
def test_stable_sort_without_nan_is_a_stable_sort(values):
    values = [f32(v) for v in values]
    assert stable_sort_descending(values) == sorted(range(len(values)), key=lambda i: -values[i])


def plain_backproject(objects, g, width, height, limits: SizeLimits, crop: bool, ds: str):
    """attach_metadata_detector restated over whole columns (NumPy float32 arrays)."""
    o = detections(objects)
    left = ((o["left"] - f32(g.offset_left)).astype(np.float64) / g.ratio_x + g.crop_left).astype(np.float32)
    top = ((o["top"] - f32(g.offset_top)).astype(np.float64) / g.ratio_y + g.crop_top).astype(np.float32)
    w = (o["width"].astype(np.float64) / g.ratio_x).astype(np.float32)
    h = (o["height"].astype(np.float64) / g.ratio_y).astype(np.float32)
    if ds != "6.2" or crop:  # 6.2 clamps in the crop branch, after the size filters, which do not look at it
        left, top = np.where(left < 0, f32(0), left), np.where(top < 0, f32(0), top)
    keep = ~((w < limits.min_w) | (h < limits.min_h) | ((limits.max_w > 0) & (w > limits.max_w))
             | ((limits.max_h > 0) & (h > limits.max_h)))
    bottom = f32((height - limits.roi_bottom_offset) % 2**32)
    if crop:
        top = np.where(top < f32(limits.roi_top_offset), f32(limits.roi_top_offset), top)
        w = np.where((left + w) >= f32(width), f32(width) - left, w)
        h = np.where((top + h) > bottom, bottom - top, h)
    else:
        keep &= ~((top < f32(limits.roi_top_offset)) | ((top + h) > bottom))
    return [(int(c), float(a), float(b), float(x), float(y))
            for c, a, b, x, y in zip(o["class_id"][keep], left[keep], top[keep], w[keep], h[keep])]


frames = st.tuples(st.integers(2, 2000), st.integers(2, 2000), st.sampled_from([(320, 320), (640, 640), (640, 384)]),
                   st.booleans(), st.booleans())
limits_strategy = st.builds(SizeLimits, st.sampled_from([0, 10]), st.sampled_from([0, 10]), st.sampled_from([0, 300]),
                            st.sampled_from([0, 300]), st.sampled_from([0, 50]), st.sampled_from([0, 50, 3000]))


@settings(max_examples=150, deadline=None)
@given(frames, objects_strategy, limits_strategy, st.booleans(), st.sampled_from(DEEPSTREAM_VERSIONS))
def test_backprojection_matches_a_plain_statement_over_random_frames(frame, objects, limits, crop, ds):
    width, height, (net_w, net_h), letterbox, symmetric = frame
    g = compute_geometry(width, height, net_w, net_h, maintain_aspect_ratio=letterbox, symmetric_padding=symmetric)
    filters = FrameFilters(crop_objects_to_roi_boundary=crop, default_limits=limits)
    got = rows(backproject(detections(objects), g, filters, width, height, deepstream=ds))
    assert got == plain_backproject(objects, g, width, height, limits, crop, ds)
    for _, left, top, w, h in got:  # what nvinfer guarantees about what it attaches
        if ds != "6.2" or crop:
            assert left >= 0 and top >= 0 and (top >= limits.roi_top_offset or not crop)
        if not crop:
            assert top >= limits.roi_top_offset and f32(f32(top) + f32(h)) <= f32((height - limits.roi_bottom_offset) % 2**32)
