"""The decoded-rows [K, 6] parser that yolo-end2end and deepstream-yolo share (plugins/_yolo_decoded_rows.py,
one template): hand-computed cases through the built parsers and the reference, for both registrations."""

from __future__ import annotations

import numpy as np
import pytest

from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParserCase
from parser_checks import objects, run_both

NAN, INF = float("nan"), float("inf")


def one_layer(name, data, classes, threshold=0.25, network=(640, 640), configured=None):
    configured = classes if configured is None else configured
    return ParserCase((Layer(name, np.ascontiguousarray(data)),), NetworkInfo(*network),
                      DetectionParams.uniform(configured, threshold))


# -- decoded rows [K, 6] -----------------------------------------------------------------------
@pytest.mark.parametrize("arch, name", [("yolo26", "output0"), ("deepstream-yolo", "output")])
def test_decoded_rows_are_read_as_corners_with_float_class_ids(open_parser, arch, name):
    parser = open_parser(arch, classes=80)
    rows = np.array([
        [10, 20, 110, 70, 0.9, 3],        # kept: 100 x 50
        [10, 20, 110, 70, 0.9, -1],       # padding class -1: dropped
        [10, 20, 110, 70, 0.9, 80],       # class out of range: dropped
        [10, 20, 110, 70, 0.9, NAN],      # NaN class: dropped
        [-50, 600, 30, 700, 0.5, 2.7],    # fractional class truncates to 2; clipped to 30 x 40 at 640x640
        [10, 20, 110, 70, 0.2, 1],        # below threshold
        [10, 20, 10.5, 70, 0.9, 1],       # half a pixel wide: dropped
        [NAN, 20, 110, 70, 0.9, 1],       # non-finite corner: dropped
    ], np.float32)
    got = run_both(parser, one_layer(name, rows, 80))
    assert objects(got) == [(3, 10.0, 20.0, 100.0, 50.0, 0.9), (2, 0.0, 600.0, 30.0, 40.0, 0.5)]


def test_decoded_rows_respect_configured_classes_and_fp16(open_parser):
    parser = open_parser("yolov10", classes=80)
    rows = np.array([[10, 20, 110, 70, 0.875, 3], [10, 20, 110, 70, 0.875, 5]], np.float16)
    got = run_both(parser, one_layer("output0", rows, 80, configured=4))
    assert objects(got) == [(3, 10.0, 20.0, 100.0, 50.0, 0.875)]


def test_decoded_rows_reject_other_widths(open_parser):
    parser = open_parser("yolo26", classes=80)
    assert not run_both(parser, one_layer("output0", np.zeros((300, 7), np.float32), 80)).accepted
