"""yolo-end2end (plugins/yolo_end2end.py): NMS-free end-to-end heads (YOLOv10, YOLO26). The decoded-rows
parser it shares with deepstream-yolo is tested in test_yolo_decoded_rows.py, and selection among the YOLO
heads in test_yolo_look_alikes.py; here, what is the family's own."""

from __future__ import annotations

import pytest

from dsparsers.api.architecture import GenerateOptions
from dsparsers.generation.codegen import render_parser


@pytest.mark.parametrize("alias", ["yolo-end2end", "yolov10", "yolo26"])
def test_canonical_head_is_300_final_boxes_and_nvinfer_does_not_cluster(registry, alias):
    architecture = registry.get(alias).architecture
    assert architecture.name == "yolo-end2end"
    params = architecture.head_params(None, GenerateOptions(requested_as=alias))
    assert (params.output_name, params.num_rows, params.num_classes) == ("output0", 300, 80)
    assert architecture.describe(params) == "output0 [300, 6] x1 y1 x2 y2 score class, 80 classes, 640x640 input"
    generated = render_parser(architecture, params, requested_as=alias)
    config = generated.files[f"config_infer_primary_{alias.replace('-', '_')}.txt"].splitlines()
    assert "cluster-mode=4" in config
    source = next(text for name, text in generated.files.items() if name.endswith(".cpp"))
    assert "no clustering afterwards (cluster-mode=4)" in source
