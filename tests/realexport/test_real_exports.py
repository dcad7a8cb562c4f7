"""The anchor-free reference and the built parser against ultralytics' own post-processing of a real
YOLO11n export's raw output (tests/fixtures/ultralytics: made by make_fixtures.py with ultralytics)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURES
from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParserCase

ULTRA = FIXTURES / "ultralytics"


@pytest.fixture(scope="module")
def recorded():
    return dict(np.load(ULTRA / "yolo11n_320_outputs.npz"))


def ultralytics_candidates_as_nvinfer_objects(rec, size=320):
    """ultralytics' pre-NMS candidates (xyxy, unclipped) put into nvinfer's form by the contract's rule:
    clip to the network, drop boxes under one pixel."""
    xyxy = np.clip(rec["cand_xyxy"], 0, size)
    width, height = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
    keep = (width >= 1) & (height >= 1)
    return (rec["cand_class"][keep], xyxy[keep, 0], xyxy[keep, 1], width[keep], height[keep], rec["cand_score"][keep])


def real_case(rec, dtype=np.float32):
    threshold = float(rec["conf_thres"])
    return ParserCase((Layer("output0", np.ascontiguousarray(rec["output0"][0]).astype(dtype)),),
                      NetworkInfo(320, 320), DetectionParams.uniform(80, threshold))


def assert_same_as_ultralytics(objects, rec):
    cls, left, top, width, height, score = ultralytics_candidates_as_nvinfer_objects(rec)
    assert len(objects) == len(cls) > 10
    np.testing.assert_array_equal(objects["class_id"], cls)
    np.testing.assert_allclose(objects["confidence"], score, rtol=0, atol=1e-7)
    for name, want in (("left", left), ("top", top), ("width", width), ("height", height)):
        np.testing.assert_allclose(objects[name], want, rtol=1e-6, atol=2e-4, err_msg=name)


def test_reference_agrees_with_ultralytics_candidates(registry, recorded):
    architecture = registry.get("yolo11").architecture
    params = architecture.head_params(None, __import__("dsparsers.api.architecture", fromlist=["x"]).GenerateOptions(
        num_classes=80, input_size=(320, 320)))
    outcome = architecture.reference(real_case(recorded), params)
    assert outcome.accepted
    assert_same_as_ultralytics(outcome.objects, recorded)


def test_built_parser_agrees_with_ultralytics_candidates(open_parser, recorded):
    _, _, library = open_parser("yolo11", classes=80)
    outcome = library.parse(real_case(recorded))
    assert outcome.accepted
    assert_same_as_ultralytics(outcome.objects, recorded)


def test_built_parser_on_fp16_engine_output_matches_the_reference(open_parser, recorded):
    architecture, params, library = open_parser("yolo11", classes=80)
    case = real_case(recorded, np.float16)
    got, want = library.parse(case), architecture.reference(case, params)
    assert got.accepted and len(got.objects) == len(want.objects) > 10
    for name in ("class_id", "left", "top", "width", "height", "confidence"):
        np.testing.assert_array_equal(got.objects[name], want.objects[name])


@pytest.mark.realexport
@pytest.mark.skipif(importlib.util.find_spec("ultralytics") is None or importlib.util.find_spec("torch") is None,
                    reason="needs ultralytics and torch to export a fresh model")
def test_fresh_ultralytics_export_end_to_end(tmp_path, open_parser):
    """Export yolo11n (random weights) with ultralytics now, run it in onnxruntime, and check the built
    parser against ultralytics' post-processing of that same run."""
    script = ULTRA / "make_fixtures.py"
    out = tmp_path / "fixtures"
    out.mkdir()
    run = subprocess.run([sys.executable, str(script), "--out", str(out), "--work", str(tmp_path / "work")],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    rec = dict(np.load(out / "yolo11n_320_outputs.npz"))
    _, _, library = open_parser("yolo11", classes=80)
    outcome = library.parse(real_case(rec))
    assert_same_as_ultralytics(outcome.objects, rec)
    generate = subprocess.run([sys.executable, "-m", "dsparsers.cli", "inspect", str(out / "yolo11n_320.onnx"), "--json"],
                              capture_output=True, text=True)
    assert '"architecture": "yolo-anchor-free"' in generate.stdout
