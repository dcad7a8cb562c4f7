"""The ultralytics anchor-free detection head (YOLOv3u/v5u/v8/v9/YOLO11/YOLO12, original YOLOv9):
``output0`` [B, 4+C, N] (channel-major, as ultralytics exports it) or [B, N, 4+C], cx cy w h in network
pixels then C sigmoid scores, no objectness. One detection per candidate: its best class.

The dense-head code it shares with yolo-anchor-based is in _yolo_dense_head.py (template
yolo_dense_head.cpp.j2), the reference decoder and strategy in _yolo_dense_head_reference.py.
"""

from __future__ import annotations

import dsparsers
from dsparsers import ConfigDefaults, anchor_points

from ._yolo_dense_head import DenseYoloHead


class AnchorFreeYolo(DenseYoloHead):
    name = "yolo-anchor-free"
    aliases = ("yolov8", "yolov9", "yolo11", "yolo12", "yolov5u", "yolov3u", "yolov6u", "ultralytics")
    summary = "ultralytics anchor-free detection head (v3u/v5u/v8/v9/11/12), original YOLOv9"
    head = "output0 [B, 4+C, N] or [B, N, 4+C]: cx cy w h (pixels), C sigmoid scores"
    config_defaults = ConfigDefaults(
        cluster_mode=2,
        why_cluster_mode="NMS: the head has one candidate per anchor point and no NMS of its own",
        why_preprocessing="ultralytics: RGB, 1/255, letterbox with centred padding",
        pre_cluster_threshold=0.25, nms_iou_threshold=0.45, topk=300)

    def evidence(self, model, layout, num_classes, count):
        score, why = 0.0, []
        size = model.input_size
        if size and count and count == anchor_points(*size):
            score += 0.1
            why.append(f"{count} candidates = strides 8/16/32 at {size[0]}x{size[1]}")
        upstream = model.upstream_ops(model.outputs[0].name, depth=3)
        if upstream[:1] == ["Concat"] and "Sigmoid" in upstream:
            score += 0.15
            why.append("Concat of boxes and Sigmoid scores (no objectness)")
        if model.task == "detect":
            score += 0.05
            why.append("task=detect")
        if model.metadata.get("end2end") == "True":
            score -= 0.4
            why.append("but metadata end2end=True")
        if layout == "rows" and not model.class_names:
            score -= 0.1
            why.append(f"[N, 4+C] without class names looks like [N, 5+C] with C={num_classes - 1} "
                       "(anchor-based): --arch yolo-anchor-free or --arch yolo-anchor-based settles it")
        return score, why


@dsparsers.hookimpl
def register_architectures(register):
    register(AnchorFreeYolo())
