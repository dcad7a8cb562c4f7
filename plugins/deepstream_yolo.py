"""The DeepStream-Yolo export layout: one output [B, N, 6] with one row per anchor point (N = 8400 at 640):
x1 y1 x2 y2 (pixels), score, class id (float), the best class picked in the graph and no NMS, so nvinfer
clusters (cluster-mode=2).

Shares the decoded-rows class, template and reference with yolo-end2end (_yolo_decoded_rows.py); this
module holds what tells the DeepStream-Yolo export apart.
"""

from __future__ import annotations

import dsparsers
from dsparsers import ConfigDefaults, anchor_points

from ._yolo_decoded_rows import DecodedRows


class DeepStreamYolo(DecodedRows):
    name = "deepstream-yolo"
    aliases = ("dsyolo", "deepstream-yolo-export")
    summary = "the DeepStream-Yolo export layout: decoded boxes, best score and class per anchor point"
    head = "output [B, N, 6]: x1 y1 x2 y2 (pixels), score, class; one row per anchor point, no NMS"
    head_note = "One row per anchor point, best class chosen in the graph, no NMS: nvinfer clusters (cluster-mode=2)."
    default_output = "output"
    config_defaults = ConfigDefaults(
        cluster_mode=2,
        why_cluster_mode="NMS: the export keeps one row per anchor point and does no NMS",
        why_preprocessing="DeepStream-Yolo's configs: RGB, 1/255, letterbox with centred padding",
        pre_cluster_threshold=0.25, nms_iou_threshold=0.45, topk=300)

    def canonical_rows(self, width, height):
        return anchor_points(width, height)

    def evidence(self, model, head):
        score, why = 0.0, []
        rows, size = head.dim(1), model.input_size
        if rows and size and rows in (self.canonical_rows(*size), 3 * self.canonical_rows(*size)):
            score += 0.25
            why.append(f"{rows} rows = one per anchor point at {size[0]}x{size[1]}")
        if head.name == "output":
            score += 0.1
            why.append("named 'output' like DeepStream-Yolo's exports")
        ops = model.upstream_ops(head.name, depth=4)
        if any(op in ops for op in ("ArgMax", "ReduceMax")):
            score += 0.1
            why.append("ArgMax/ReduceMax over classes in the graph")
        if model.metadata.get("end2end") == "True":
            score -= 0.3
            why.append("but metadata end2end=True")
        if model.metadata.get("dsparsers_patched", "").startswith(self.name):
            score += 0.4
            why.append("decode head appended by `dsparsers patch`")
        return score, why


@dsparsers.hookimpl
def register_architectures(register):
    register(DeepStreamYolo())
