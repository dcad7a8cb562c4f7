"""`dsparsers patch`: the patched model runs in onnxruntime and, parsed by the compact parser, gives the
same detections as the original model parsed by the stock parser."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from dsparsers.model.reader import load_model
from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParserCase
from dsparsers.api.selection import choose
from onnx_graphs import ultralytics_names

ort = pytest.importorskip("onnxruntime")


def runnable_head(path, *, channels=84, count=2100, transposed=False, opset=17):
    """A model whose input is the raw head (so onnxruntime can run it): raw -> Mul(1) -> output0."""
    shape = [1, count, channels] if transposed else [1, channels, count]
    graph = helper.make_graph(
        [helper.make_node("Mul", ["raw", "one"], ["output0"])], "head",
        [helper.make_tensor_value_info("raw", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, shape)],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    for key, value in {"names": ultralytics_names(channels - (5 if transposed else 4)), "task": "detect",
                       "imgsz": "[320, 320]"}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def raw_head(count, classes, objectness=False, seed=0):
    rng = np.random.default_rng(seed)
    offset = 5 if objectness else 4
    rows = np.zeros((count, offset + classes), np.float32)
    rows[:, 0:2] = rng.uniform(-20, 340, (count, 2))
    rows[:, 2:4] = rng.uniform(0.5, 120, (count, 2))
    if objectness:
        rows[:, 4] = rng.uniform(0, 1, count)
    rows[:, offset:] = rng.uniform(0, 0.2, (count, classes))
    hits = rng.random(count) < 0.08
    rows[hits, offset + rng.integers(0, classes, int(hits.sum()))] = rng.uniform(0.2, 1, int(hits.sum()))
    return rows


def sorted_objects(outcome):
    return sorted((int(o["class_id"]), *(float(o[f]) for f in ("left", "top", "width", "height", "confidence")))
                  for o in outcome.objects)


@pytest.mark.parametrize("opset, topk, arch", [(17, None, "yolo11"), (18, 400, "yolo11"), (13, None, "yolov5")])
def test_patched_model_gives_the_same_detections(tmp_path, open_parser, registry, opset, topk, arch):
    objectness = arch == "yolov5"
    channels = 85 if objectness else 84
    source = runnable_head(tmp_path / "m.onnx", channels=channels, transposed=objectness, opset=opset)
    patched = tmp_path / "patched.onnx"
    result = subprocess.run([sys.executable, "-m", "dsparsers.cli", "patch", str(source), "-o", str(patched),
                             "--arch", arch] + (["--topk", str(topk)] if topk else []), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--arch deepstream-yolo" in result.stdout
    info = load_model(patched)
    assert choose(registry, info, None).provided.architecture.name == "deepstream-yolo"

    rows = raw_head(2100, 80, objectness)
    raw = rows if objectness else np.ascontiguousarray(rows.T)
    original = ort.InferenceSession(str(source)).run(None, {"raw": raw[None]})[0][0]
    compact = ort.InferenceSession(str(patched)).run(None, {"raw": raw[None]})[0][0]
    assert compact.shape == (topk or 2100, 6)

    params = DetectionParams.uniform(80, 0.25)
    network = NetworkInfo(320, 320)
    _, _, stock = open_parser(arch, classes=80, extra={"layout": "rows" if objectness else "channels"})
    _, _, fast = open_parser("deepstream-yolo", classes=80)
    expected = stock.parse(ParserCase((Layer("output0", original),), network, params))
    got = fast.parse(ParserCase((Layer("output", compact),), network, params))
    assert got.accepted and len(expected.objects) > 40
    assert sorted_objects(got) == sorted_objects(expected)


def test_patching_a_compact_head_is_refused(tmp_path):
    from onnx_graphs import head_model

    source = head_model(tmp_path / "e2e.onnx", [("output0", [1, 300, 6])], metadata={"end2end": "True", "task": "detect",
                                                                                     "names": ultralytics_names(80)})
    result = subprocess.run([sys.executable, "-m", "dsparsers.cli", "patch", str(source), "-o", str(tmp_path / "p.onnx")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "nothing to patch" in result.stderr
    assert not (tmp_path / "p.onnx").exists()


def test_patched_boxes_scores_model_gives_the_same_detections(tmp_path, open_parser):
    count, classes = 2100, 80
    graph = helper.make_graph(
        [helper.make_node("Identity", ["raw_boxes"], ["boxes"]), helper.make_node("Identity", ["raw_scores"], ["scores"])],
        "nas", [helper.make_tensor_value_info("raw_boxes", TensorProto.FLOAT, [1, count, 4]),
                helper.make_tensor_value_info("raw_scores", TensorProto.FLOAT, [1, count, classes])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, count, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, count, classes])])
    source = tmp_path / "nas.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(source))
    patched = tmp_path / "nas_patched.onnx"
    result = subprocess.run([sys.executable, "-m", "dsparsers.cli", "patch", str(source), "-o", str(patched),
                             "--arch", "yolo-nas"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

    rows = raw_head(count, classes)
    boxes = np.concatenate([rows[:, :2] - rows[:, 2:4] / 2, rows[:, :2] + rows[:, 2:4] / 2], axis=1).astype(np.float32)
    feed = {"raw_boxes": boxes[None], "raw_scores": rows[None, :, 4:].copy()}
    original = ort.InferenceSession(str(source)).run(["boxes", "scores"], feed)
    compact = ort.InferenceSession(str(patched)).run(None, feed)[0][0]
    params, network = DetectionParams.uniform(classes, 0.25), NetworkInfo(320, 320)
    _, _, stock = open_parser("yolo-nas", classes=classes)
    _, _, fast = open_parser("deepstream-yolo", classes=classes)
    expected = stock.parse(ParserCase((Layer("boxes", original[0][0]), Layer("scores", original[1][0])), network, params))
    got = fast.parse(ParserCase((Layer("output", compact),), network, params))
    assert got.accepted and len(expected.objects) > 40
    assert sorted_objects(got) == sorted_objects(expected)
