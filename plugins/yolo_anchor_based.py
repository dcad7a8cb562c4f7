"""Anchor-based YOLO heads with objectness: original YOLOv5, YOLOv7, YOLOR, YOLOX (decoded), original
YOLOv6. [B, N, 5+C]: cx cy w h in network pixels, objectness, C class probabilities; score = objectness x
best class probability. One detection per candidate: its best class.

The dense-head code it shares with yolo-anchor-free is in _yolo_dense_head.py (template
yolo_dense_head.cpp.j2), the reference decoder and strategy in _yolo_dense_head_reference.py.
"""

from __future__ import annotations

from dataclasses import replace

import dsparsers
from dsparsers import ConfigDefaults, anchor_points

from ._yolo_dense_head import DenseYoloHead


class AnchorBasedYolo(DenseYoloHead):
    name = "yolo-anchor-based"
    aliases = ("yolov5", "yolov7", "yolor", "yolox", "yolov6", "yolov5-original", "scaled-yolov4")
    summary = "anchor-based head with objectness: original YOLOv5, YOLOv7, YOLOR, YOLOX (decoded), YOLOv6 (original)"
    head = "output [B, N, 5+C]: cx cy w h (pixels), objectness, C class probabilities"
    objectness = True
    default_layout = "rows"
    options = {
        "layout": "rows ([N, 5+C], as exported) or channels ([5+C, N]); without --onnx only",
        "output": "output tensor name the parser looks for first (default output0)",
    }
    config_defaults = ConfigDefaults(
        cluster_mode=2,
        why_cluster_mode="NMS: the head has one candidate per anchor and no NMS of its own",
        why_preprocessing="YOLOv5/v7/YOLOR: RGB, 1/255, letterbox with centred padding (--arch yolox writes its own)",
        pre_cluster_threshold=0.25, nms_iou_threshold=0.45, topk=300)

    def defaults_for(self, requested_as):
        if requested_as == "yolox":
            # YOLOX feeds the network 0-255 BGR pixels (no normalisation, OpenCV channel order) and pads
            # its letterbox at the right and bottom only.
            return replace(self.config_defaults, net_scale_factor=1.0, model_color_format=1, symmetric_padding=False,
                           why_preprocessing="YOLOX: BGR, 0-255 pixels, letterbox padded right and bottom")
        return self.config_defaults

    def evidence(self, model, layout, num_classes, count):
        score, why = 0.0, []
        size = model.input_size
        if size and count:
            if count == anchor_points(*size, anchors=3):
                score += 0.2
                why.append(f"{count} candidates = 3 anchors x strides 8/16/32 at {size[0]}x{size[1]} (YOLOv5/v7/YOLOR)")
            elif count == anchor_points(*size):
                score += 0.05
                why.append(f"{count} candidates = strides 8/16/32 at {size[0]}x{size[1]} (YOLOX, YOLOv6: one per point)")
        if layout == "channels":
            score -= 0.1
        upstream = model.upstream_ops(model.outputs[0].name, depth=3)
        if upstream[:1] == ["Concat"] and upstream.count("Reshape") >= 3:
            score += 0.1
            why.append("Concat of the three scales")
        return score, why


@dsparsers.hookimpl
def register_architectures(register):
    register(AnchorBasedYolo())
