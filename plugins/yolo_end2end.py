"""NMS-free end-to-end YOLO heads: ultralytics YOLOv10 and YOLO26 (and any ultralytics model exported with
nms=True). One output [B, K, 6], K = 300: x1 y1 x2 y2 (pixels), score, class id (float), already one box
per object, so nvinfer must not cluster (cluster-mode=4).

Shares the decoded-rows class, template and reference with deepstream-yolo (_yolo_decoded_rows.py);
this module holds what tells the end-to-end head apart.
"""

from __future__ import annotations

import dsparsers
from dsparsers import ConfigDefaults

from ._yolo_decoded_rows import DecodedRows


class EndToEndYolo(DecodedRows):
    name = "yolo-end2end"
    aliases = ("yolov10", "yolo26", "yolo-e2e", "end2end", "yolo-nms")
    summary = "NMS-free end-to-end heads: ultralytics YOLOv10, YOLO26, exports with nms=True"
    head = "output0 [B, K, 6] (K = 300): x1 y1 x2 y2 (pixels), score, class; one box per object"
    head_note = "Already one box per object (end-to-end head): no clustering afterwards (cluster-mode=4)."
    config_defaults = ConfigDefaults(
        cluster_mode=4,
        why_cluster_mode="none: the end-to-end head already keeps one box per object; NMS would only remove true positives",
        why_preprocessing="ultralytics: RGB, 1/255, letterbox with centred padding",
        pre_cluster_threshold=0.25, nms_iou_threshold=0.45, topk=300)

    def canonical_rows(self, width, height):
        return 300

    def evidence(self, model, head):
        score, why = 0.0, []
        if model.metadata.get("end2end") == "True" and "dsparsers_patched" not in model.metadata:
            score += 0.35
            why.append("metadata end2end=True")
        if model.metadata.get("args", "").find("'nms': True") >= 0:
            score += 0.2
            why.append("exported with nms=True")
        rows = head.dim(1)
        if rows is not None and rows <= 1000:
            score += 0.1
            why.append(f"K={rows}: a top-K of final detections")
        ops = model.upstream_ops(head.name, depth=6)
        if any(op in ops for op in ("TopK", "GatherElements", "NonMaxSuppression")):
            score += 0.1
            why.append("TopK/Gather before the output (end-to-end selection)")
        if model.task == "detect":
            score += 0.05
            why.append("task=detect")
        return score, why


@dsparsers.hookimpl
def register_architectures(register):
    register(EndToEndYolo())
