"""What Gst-nvinfer does with a detector's objects after the custom parser returns them.

A parser's objects are not what a DeepStream pipeline shows: nvinfer filters and clusters them first.
This module emulates that step in NumPy (facts from ../shared/specs/nvinfer-abi.md), so that a
parser's output can be compared with a framework's own post-processing (ultralytics' NMS, say):

1. **pre-cluster filter** (always): drop objects whose ``class_id >= num-detected-classes`` or whose
   confidence is below their class's ``pre-cluster-threshold`` (equality is kept);
2. **clustering**, by ``cluster-mode``:

   - ``2`` NMS, per class: stable sort by confidence, descending; a box is kept when its IoU
     (``inter / (a1 + a2 - inter)`` on left/top/width/height, no +1) with every box already kept for
     its class is ``<= nms-iou-threshold``; then confidence ``>`` ``post-cluster-threshold``
     (strict); then the first ``topk`` of the class (``-1``: all);
   - ``4`` none: objects bucketed by class; with ``topk = -1`` neither sorted nor cut, else stably
     sorted by confidence and cut to ``topk``;
   - ``0`` groupRectangles: exists only in OpenCV builds of nvinfer. Without OpenCV (quirk) nvinfer
     runs NMS with ``topk = 20`` and IoU ``0.5`` for every class, whatever the config says; that is
     what is emulated (the classes' post-cluster thresholds still apply);
   - ``1`` DBSCAN and ``3`` DBSCAN + NMS: the DBSCAN core is closed source: NotImplementedError;

3. **output** class-major: every object of class 0 first, then class 1, ...

Objects are NumPy structured arrays of :data:`dsparsers.api.abi_types.DETECTION_DTYPE` in network
pixels, as a parser returns them; the result is a new array of the same dtype. Arithmetic is float32,
as in nvinfer's C++. Mapping boxes back to frame pixels and the later filters (``detected-min-w``…)
are not part of this module.
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

    #: config key -> field name
    KEYS = {"pre-cluster-threshold": "pre_cluster_threshold", "post-cluster-threshold": "post_cluster_threshold",
            "nms-iou-threshold": "nms_iou_threshold", "topk": "topk"}


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
    """Step 1: objects whose class is below num-detected-classes and whose confidence is at least
    that class's pre-cluster-threshold, in their original order."""
    objects = _as_detections(objects)
    keep = objects["class_id"] < settings.num_classes
    for class_id in np.unique(objects["class_id"][keep]):
        threshold = np.float32(settings.attrs(int(class_id)).pre_cluster_threshold)
        mine = objects["class_id"] == class_id
        keep[mine] &= objects["confidence"][mine] >= threshold
    return objects[keep]


def iou(a, b) -> np.float32:
    """nvinfer's IoU of two objects (left/top/width/height, no +1), in float32; 0 when the union is 0."""
    f = np.float32
    left, top = max(f(a["left"]), f(b["left"])), max(f(a["top"]), f(b["top"]))
    right = min(f(a["left"]) + f(a["width"]), f(b["left"]) + f(b["width"]))
    bottom = min(f(a["top"]) + f(a["height"]), f(b["top"]) + f(b["height"]))
    inter = max(f(0), right - left) * max(f(0), bottom - top)
    union = f(a["width"]) * f(a["height"]) + f(b["width"]) * f(b["height"]) - inter
    return f(inter / union) if union > 0 else f(0)


def nms(objects: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS of one class's objects: stable sort by confidence (descending), keep an object when its
    IoU with every object kept so far is <= ``iou_threshold``. The kept objects, by confidence."""
    ordered = objects[np.argsort(-objects["confidence"], kind="stable")]
    threshold = np.float32(iou_threshold)
    kept: list[int] = []
    for i in range(len(ordered)):
        if all(iou(ordered[i], ordered[j]) <= threshold for j in kept):
            kept.append(i)
    return ordered[kept]


def cluster(objects: np.ndarray, settings: ClusterSettings) -> np.ndarray:
    """Step 2 and 3 for objects that passed the pre-cluster filter: per-class clustering, class-major."""
    objects = _as_detections(objects)
    mode = settings.cluster_mode
    if mode in (CLUSTER_DBSCAN, CLUSTER_DBSCAN_NMS_HYBRID):
        raise NotImplementedError(
            f"cluster-mode={mode} ({'DBSCAN' if mode == CLUSTER_DBSCAN else 'DBSCAN+NMS hybrid'}): nvinfer's DBSCAN "
            "core is closed source and is not emulated; use cluster-mode=2 (NMS) or 4 (none)")
    if mode not in (CLUSTER_GROUP_RECTANGLES, CLUSTER_NMS, CLUSTER_NONE):
        raise ValueError(f"cluster-mode={mode}: not an nvinfer cluster mode (0 to 4)")
    out = []
    for class_id in range(settings.num_classes):
        mine = objects[objects["class_id"] == class_id]
        if not len(mine):
            continue
        attrs = settings.attrs(class_id)
        if mode == CLUSTER_NONE:
            if attrs.topk >= 0:
                mine = mine[np.argsort(-mine["confidence"], kind="stable")][: attrs.topk]
        else:
            iou_threshold, topk = attrs.nms_iou_threshold, attrs.topk
            if mode == CLUSTER_GROUP_RECTANGLES:  # quirk: no OpenCV, so NMS with fixed settings
                iou_threshold, topk = GROUP_RECTANGLES_FALLBACK_IOU, GROUP_RECTANGLES_FALLBACK_TOPK
            mine = nms(mine, iou_threshold)
            mine = mine[mine["confidence"] > np.float32(attrs.post_cluster_threshold)]
            if topk >= 0:
                mine = mine[:topk]
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
