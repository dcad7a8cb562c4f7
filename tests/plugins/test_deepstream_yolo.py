"""deepstream-yolo (plugins/deepstream_yolo.py): the DeepStream-Yolo export layout. The decoded-rows parser it
shares with yolo-end2end is tested in test_yolo_decoded_rows.py, and selection among the YOLO heads in
test_yolo_look_alikes.py; here, what is the family's own."""

from __future__ import annotations

import pytest

from dsparsers.api.architecture import GenerateOptions
from dsparsers.generation.codegen import render_parser


@pytest.mark.parametrize("size, rows", [((640, 640), 8400), ((1280, 736), 160 * 92 + 80 * 46 + 40 * 23)])
def test_canonical_head_is_one_row_per_anchor_point_and_nvinfer_clusters(registry, size, rows):
    architecture = registry.get("dsyolo").architecture
    assert architecture.name == "deepstream-yolo"
    params = architecture.head_params(None, GenerateOptions(input_size=size, requested_as="dsyolo"))
    assert (params.output_name, params.num_rows) == ("output", rows)
    generated = render_parser(architecture, params, requested_as="dsyolo")
    config = generated.files["config_infer_primary_dsyolo.txt"].splitlines()
    assert "cluster-mode=2" in config
    source = next(text for name, text in generated.files.items() if name.endswith(".cpp"))
    assert "nvinfer clusters (cluster-mode=2)" in source
