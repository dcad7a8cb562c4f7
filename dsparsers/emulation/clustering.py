"""What Gst-nvinfer does with a detector's objects after the custom parser returns them.

A parser's objects are not what a DeepStream pipeline shows: nvinfer filters and clusters them first.
This module emulates that step in NumPy, following DeepStream 9.1's
``nvdsinfer_context_impl_output_parsing.cpp`` (``DetectPostprocessor``; the same in 6.2 for what is here):

1. **pre-cluster filter** (always, ``preClusteringThreshold``): drop objects whose ``class_id >=
   num-detected-classes`` or whose confidence is ``<`` their class's ``pre-cluster-threshold``; equality and
   NaN confidences are kept (``NaN < t`` is false);
2. **clustering**, by ``cluster-mode``:

   - ``2`` NMS (``clusterAndFillDetectionOutputNMS``), per class: ``std::stable_sort`` by confidence,
     descending; a box is kept when its IoU (``nonMaximumSuppression``'s ``computeIoU``) with every box kept
     so far is ``<= nms-iou-threshold``; then confidence ``>`` ``post-cluster-threshold`` (strict); then
     ``filterTopKOutputs`` (``topk``);
   - ``4`` none (``fillUnclusteredOutput``): objects bucketed by class, then ``filterTopKOutputs``: with
     ``topk`` unset (-1) neither sorted nor cut, else stably sorted and cut;
   - ``1`` DBSCAN (``clusterAndFillDetectionOutputDBSCAN``): the closed-source ``NvDsInferDBScanCluster``
     runs only for a class whose ``minBoxes > 0``; otherwise the class's objects are kept when confidence
     ``>=`` ``post-cluster-threshold`` (``<`` drops: equality and NaN kept), then ``filterTopKOutputs``;
   - ``3`` DBSCAN + NMS (``clusterAndFillDetectionOutputHybrid``): ``NvDsInferDBScanClusterHybrid`` only
     where ``minBoxes > 0``, then exactly mode 2;
   - ``0`` groupRectangles: exists only in OpenCV builds of nvinfer. Without OpenCV (quirk,
     ``nvdsinfer_context_impl.cpp``) nvinfer runs NMS with ``topk = 20`` and IoU ``0.5`` for every class,
     whatever the config says; that is what is emulated (the classes' post-cluster thresholds still apply);

   A class whose ``minBoxes > 0`` in mode 1 or 3 raises :class:`DBSCANNotEmulated` (the core is closed source).

3. **output** class-major: every object of class 0 first, then class 1, ...

Sorting is libstdc++'s ``std::stable_sort`` step by step (:func:`stable_sort_descending`), so that NaN
confidences, which the comparator ``a > b`` cannot order, land where nvinfer puts them. Objects are NumPy
structured arrays of :data:`dsparsers.api.abi_types.DETECTION_DTYPE` in network pixels, as a parser returns
them; the result is a new array of the same dtype. Arithmetic is float32, as in nvinfer's C++.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from dsparsers.api.abi_types import DETECTION_DTYPE

#: cluster-mode values
CLUSTER_GROUP_RECTANGLES = 0
CLUSTER_DBSCAN = 1
CLUSTER_NMS = 2
CLUSTER_DBSCAN_NMS_HYBRID = 3
CLUSTER_NONE = 4

#: what cluster-mode 0 turns into when nvinfer is built without OpenCV (quirk)
GROUP_RECTANGLES_FALLBACK_TOPK = 20
GROUP_RECTANGLES_FALLBACK_IOU = 0.5


@dataclass(frozen=True)
class ClassAttrs:
    """The clustering settings of one class (a ``[class-attrs-*]`` section); defaults are nvinfer's."""

    pre_cluster_threshold: float = 0.2
    post_cluster_threshold: float = 0.0
    nms_iou_threshold: float = 0.3
    topk: int = -1
    #: DBSCAN's minBoxes: 0 (the default) means nvinfer does not call DBSCAN for the class
    min_boxes: int = 0

    #: config key -> field name
    KEYS = {"pre-cluster-threshold": "pre_cluster_threshold", "post-cluster-threshold": "post_cluster_threshold",
            "nms-iou-threshold": "nms_iou_threshold", "topk": "topk", "minBoxes": "min_boxes"}


class DBSCANNotEmulated(NotImplementedError):
    """cluster-mode 1 or 3 with minBoxes > 0 for a class: nvinfer would run its closed-source DBSCAN."""


@dataclass(frozen=True)
class ClusterSettings:
    """Everything the post-parser step reads from an nvinfer config.

    ``all`` is ``[class-attrs-all]``; ``per_class`` maps a class id to its fully resolved settings
    (``[class-attrs-N]`` overrides the keys it names and inherits the others from ``all``; build
    them with :meth:`with_class`).
    """

    num_classes: int
    cluster_mode: int = CLUSTER_GROUP_RECTANGLES  # what nvinfer uses with no cluster-mode line
    all: ClassAttrs = field(default_factory=ClassAttrs)
    per_class: Mapping[int, ClassAttrs] = field(default_factory=dict)

    def attrs(self, class_id: int) -> ClassAttrs:
        """The settings that apply to ``class_id``."""
        return self.per_class.get(int(class_id), self.all)

    def with_class(self, class_id: int, **overrides) -> "ClusterSettings":
        """A copy where ``class_id`` overrides some of ``all``'s settings (field names as keywords)."""
        per_class = dict(self.per_class)
        per_class[int(class_id)] = dataclasses.replace(self.attrs(class_id), **overrides)
        return dataclasses.replace(self, per_class=per_class)


def precluster_filter(objects: np.ndarray, settings: ClusterSettings) -> np.ndarray:
    """Step 1 (``DetectPostprocessor::preClusteringThreshold``): drop an object when its class is not below
    num-detected-classes or its confidence is ``<`` its class's pre-cluster-threshold; equality and NaN are
    kept. The others in their original order."""
    objects = _as_detections(objects)
    keep = objects["class_id"] < settings.num_classes
    for class_id in np.unique(objects["class_id"][keep]):
        threshold = np.float32(settings.attrs(int(class_id)).pre_cluster_threshold)
        mine = objects["class_id"] == class_id
        keep[mine] &= ~(objects["confidence"][mine] < threshold)
    return objects[keep]


# -- libstdc++'s std::stable_sort ------------------------------------------------------------------
#
# nvinfer sorts with std::stable_sort and the comparator ``a.confidence > b.confidence``. For numbers any
# stable sort gives the same order; a NaN confidence compares false both ways, and then the result is
# whatever the algorithm's steps make of it. These are libstdc++'s steps (bits/stl_algo.h, GCC 9 to 14,
# when the temporary buffer is granted): the range is cut in two halves ((n + 1) / 2 first), each half is
# insertion-sorted in chunks of 7 then merged bottom-up through the buffer, and the halves are merged
# forwards when the first is not longer than the second, else backwards.

_CHUNK = 7


def _insertion_sort(items: list, lo: int, hi: int, before) -> None:
    for i in range(lo + 1, hi):
        value = items[i]
        if before(value, items[lo]):
            items[lo + 1:i + 1] = items[lo:i]
            items[lo] = value
        else:
            j = i
            while before(value, items[j - 1]):
                items[j] = items[j - 1]
                j -= 1
            items[j] = value


def _merge(a: list, b: list, before) -> list:
    """Forward merge: take from ``b`` only when it is strictly before the head of ``a``."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if before(b[j], a[i]):
            out.append(b[j])
            j += 1
        else:
            out.append(a[i])
            i += 1
    return out + a[i:] + b[j:]


def _merge_backward(a: list, b: list, before) -> list:
    """Backward merge: from the ends, take ``a``'s last when ``b``'s last is before it, else ``b``'s last."""
    if not a:
        return list(b)
    if not b:
        return list(a)
    out: list = []
    i, j = len(a) - 1, len(b) - 1
    while True:
        if before(b[j], a[i]):
            out.append(a[i])
            if i == 0:
                return b[:j + 1] + out[::-1]
            i -= 1
        else:
            out.append(b[j])
            if j == 0:
                return a[:i + 1] + out[::-1]
            j -= 1


def _merge_sort_with_buffer(items: list, before) -> list:
    items = list(items)
    n, step = len(items), _CHUNK
    for lo in range(0, n, step):
        _insertion_sort(items, lo, min(lo + step, n), before)
    while step < n:
        merged = []
        for lo in range(0, n, 2 * step):
            merged += _merge(items[lo:lo + step], items[lo + step:lo + 2 * step], before)
        items, step = merged, step * 2
    return items


def stable_sort_descending(confidences) -> list[int]:
    """The permutation ``std::stable_sort(..., [](a, b) { return a > b; })`` applies to ``confidences``
    (float32) in libstdc++: position k of the result is the index of the k-th element after sorting."""
    values = [np.float32(c) for c in confidences]

    def before(i: int, j: int) -> bool:
        return bool(values[i] > values[j])

    n = len(values)
    if n < 2:
        return list(range(n))
    middle = (n + 1) // 2
    first = _merge_sort_with_buffer(range(middle), before)
    second = _merge_sort_with_buffer(range(middle, n), before)
    if len(first) <= len(second):
        return _merge(first, second, before)
    return _merge_backward(first, second, before)


def _sorted(objects: np.ndarray) -> np.ndarray:
    return objects[stable_sort_descending(objects["confidence"])] if len(objects) > 1 else objects


def filter_topk(objects: np.ndarray, topk: int) -> np.ndarray:
    """``DetectPostprocessor::filterTopKOutputs``: nothing when topk < 0, else stable sort (descending
    confidence) and the first topk."""
    if topk < 0:
        return objects
    return _sorted(objects)[:topk]


def _overlap_1d(a_min, a_max, b_min, b_max):
    """nvinfer's overlap1D (float32): the pair with the larger start second; 0 when the first ends before
    the second starts, else min(ends) - the second's start (negative for a negative-width box)."""
    if a_min > b_min:
        a_min, b_min = b_min, a_min
        a_max, b_max = b_max, a_max
    if a_max < b_min:
        return np.float32(0)
    return (b_max if b_max < a_max else a_max) - b_min


def iou(a, b) -> np.float32:
    """nvinfer's IoU of two objects (``nonMaximumSuppression``'s computeIoU), in float32: overlap1D on each
    axis, areas width * height, union = a1 + a2 - inter; 0 when the union is exactly 0."""
    f = np.float32
    with np.errstate(all="ignore"):
        al, at, aw, ah = f(a["left"]), f(a["top"]), f(a["width"]), f(a["height"])
        bl, bt, bw, bh = f(b["left"]), f(b["top"]), f(b["width"]), f(b["height"])
        overlap_x = f(_overlap_1d(al, f(al + aw), bl, f(bl + bw)))
        overlap_y = f(_overlap_1d(at, f(at + ah), bt, f(bt + bh)))
        inter = f(overlap_x * overlap_y)
        union = f(f(f(aw * ah) + f(bw * bh)) - inter)
        return f(0) if union == 0 else f(inter / union)


def nms(objects: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS of one class's objects (``nonMaximumSuppression``): stable sort by confidence
    (descending), keep an object when its IoU with every object kept so far is <= ``iou_threshold``
    (a NaN IoU suppresses). The kept objects, by confidence."""
    ordered = _sorted(objects)
    threshold = np.float32(iou_threshold)
    kept: list[int] = []
    for i in range(len(ordered)):
        if all(iou(ordered[i], ordered[j]) <= threshold for j in kept):
            kept.append(i)
    return ordered[kept]


def dbscan_classes(settings: ClusterSettings) -> list[int]:
    """The classes for which nvinfer would call its closed-source DBSCAN: cluster-mode 1 or 3 and minBoxes > 0."""
    if settings.cluster_mode not in (CLUSTER_DBSCAN, CLUSTER_DBSCAN_NMS_HYBRID):
        return []
    return [c for c in range(settings.num_classes) if settings.attrs(c).min_boxes > 0]


def cluster(objects: np.ndarray, settings: ClusterSettings) -> np.ndarray:
    """Step 2 and 3 for objects that passed the pre-cluster filter: per-class clustering, class-major."""
    objects = _as_detections(objects)
    mode = settings.cluster_mode
    if mode not in (CLUSTER_GROUP_RECTANGLES, CLUSTER_DBSCAN, CLUSTER_NMS, CLUSTER_DBSCAN_NMS_HYBRID, CLUSTER_NONE):
        raise ValueError(f"cluster-mode={mode}: not an nvinfer cluster mode (0 to 4)")
    out = []
    for class_id in range(settings.num_classes):
        mine = objects[objects["class_id"] == class_id]
        if not len(mine):
            continue
        attrs = settings.attrs(class_id)
        if mode in (CLUSTER_DBSCAN, CLUSTER_DBSCAN_NMS_HYBRID) and attrs.min_boxes > 0:
            raise DBSCANNotEmulated(
                f"cluster-mode={mode}, class {class_id}: minBoxes={attrs.min_boxes} makes nvinfer run its "
                "closed-source DBSCAN (NvDsInferDBScanCluster), which is not emulated; minBoxes=0 skips it")
        if mode == CLUSTER_NONE:
            mine = filter_topk(mine, attrs.topk)
        elif mode == CLUSTER_DBSCAN:  # minBoxes 0: no DBSCAN; '<' drops, so equality and NaN stay
            mine = filter_topk(mine[~(mine["confidence"] < np.float32(attrs.post_cluster_threshold))], attrs.topk)
        else:
            iou_threshold, topk = attrs.nms_iou_threshold, attrs.topk
            if mode == CLUSTER_GROUP_RECTANGLES:  # quirk: no OpenCV, so NMS with fixed settings
                iou_threshold, topk = GROUP_RECTANGLES_FALLBACK_IOU, GROUP_RECTANGLES_FALLBACK_TOPK
            mine = nms(mine, iou_threshold)
            mine = filter_topk(mine[mine["confidence"] > np.float32(attrs.post_cluster_threshold)], topk)
        out.append(mine)
    return np.concatenate(out) if out else objects[:0]


def postprocess(objects: np.ndarray, settings: ClusterSettings) -> np.ndarray:
    """What nvinfer attaches to the frame for these parser objects (network pixels): pre-cluster
    filter, clustering by ``settings.cluster_mode``, class-major order."""
    return cluster(precluster_filter(objects, settings), settings)


def _as_detections(objects: np.ndarray) -> np.ndarray:
    """``objects`` as a flat structured array with DETECTION_DTYPE's fields; extra fields (say, the index
    of each object's mask) are allowed and travel with their rows through every step."""
    objects = np.asarray(objects)
    fields = objects.dtype.fields or {}
    if any(name not in fields or fields[name][0] != DETECTION_DTYPE.fields[name][0] for name in DETECTION_DTYPE.names):
        raise TypeError(f"expected objects with the fields of dsparsers.api.abi_types.DETECTION_DTYPE, got {objects.dtype}")
    return objects.reshape(-1)
