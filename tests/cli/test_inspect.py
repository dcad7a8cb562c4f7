"""Inspection: reading ONNX without weights, symbolic dims, metadata, ranking architectures, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from conftest import FIXTURES
from dsparsers.errors import ModelError
from dsparsers.model.reader import load_model, parse_class_names
from dsparsers.api.selection import choose
from onnx_graphs import head_model, ultralytics_detect

ULTRA = FIXTURES / "ultralytics"


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dsparsers.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_real_yolo11_export_is_read_with_metadata_and_producers():
    model = load_model(ULTRA / "yolo11n_320.onnx")  # weights were stripped: external data is never read
    assert [(t.name, t.shape, t.dtype) for t in model.inputs] == [("images", (1, 3, 320, 320), "float32")]
    assert [(t.name, t.shape, t.dtype) for t in model.outputs] == [("output0", (1, 84, 2100), "float32")]
    assert model.task == "detect" and model.input_size == (320, 320)
    assert model.class_names == [str(i) for i in range(80)]
    assert model.upstream_ops("output0", depth=2)[:3] == ["Concat", "Mul", "Sigmoid"]
    assert len(model.sha256) == 64


def test_symbolic_dims_are_kept():
    model = load_model(ULTRA / "yolo11n_320_dynamic.onnx")
    assert model.inputs[0].shape == ("batch", 3, "height", "width")
    assert model.outputs[0].shape == ("batch", "Concatoutput0_dim_1", "anchors")
    assert model.input_size == (320, 320)  # from imgsz metadata


@pytest.mark.parametrize("fixture", ["yolo11n_320.onnx", "yolov8n_320.onnx", "yolo11n_320_dynamic.onnx"])
def test_real_ultralytics_exports_are_recognised(registry, fixture):
    model = load_model(ULTRA / fixture)
    choice = choose(registry, model, None)
    assert choice.provided.architecture.name == "yolo-anchor-free"
    params = choice.provided.architecture.head_params(model, __import__("dsparsers.api.architecture", fromlist=["x"]).GenerateOptions())
    assert (params.num_classes, params.layout, params.output_name) == (80, "channels", "output0")
    assert (params.input_width, params.input_height) == (320, 320)


def test_model_with_external_data_loads_without_it(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(np.ones((4, 4), np.float32), "w")])
    model = helper.make_model(graph)
    onnx.save_model(model, str(tmp_path / "m.onnx"), save_as_external_data=True, location="w.bin", size_threshold=0)
    (tmp_path / "w.bin").unlink()
    info = load_model(tmp_path / "m.onnx")
    assert [t.name for t in info.inputs] == ["x"]  # initializers are not inputs


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"", "empty file"),
    (b"\x89PNG\r\n\x1a\n not a model", "not a readable ONNX model"),
])
def test_unreadable_models_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "model file.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert str(path) in str(info.value) and message in str(info.value) and info.value.exit_code == 2


def test_truncated_model_is_an_error(tmp_path):
    data = (ULTRA / "yolo11n_320.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="cut.onnx"):
        load_model(path)


def test_model_without_outputs_is_an_error(tmp_path):
    graph = helper.make_graph([], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])], [])
    path = tmp_path / "none.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ModelError, match="no outputs"):
        load_model(path)


def test_class_names_are_parsed_as_literals_never_evaluated():
    assert parse_class_names("{0: 'person', 1: 'car'}") == ["person", "car"]
    assert parse_class_names("['a', 'b']") == ["a", "b"]
    assert parse_class_names("__import__('os').system('true')") is None
    assert parse_class_names("{0: 'a', 2: 'c'}") is None  # not contiguous
    assert parse_class_names(None) is None


@pytest.mark.parametrize("transposed, layout", [(False, "channels"), (True, "rows")])
def test_both_layouts_are_recognised_from_shape_and_metadata(registry, tmp_path, transposed, layout):
    model = load_model(ultralytics_detect(tmp_path / "m.onnx", classes=80, transposed=transposed))
    matches = registry.rank(model)
    assert matches[0].architecture == "yolo-anchor-free" and matches[0].score > 0.5
    assert ("[4+C, N]" if layout == "channels" else "[N, 4+C]") in matches[0].reason


def test_without_metadata_the_smaller_dimension_is_the_channel_dimension(registry, tmp_path):
    model = load_model(head_model(tmp_path / "m.onnx", [("out", [1, 7, 2100])]))
    params = registry.get("yolo11").architecture.head_params(model, __import__("dsparsers.api.architecture", fromlist=["x"]).GenerateOptions())
    assert (params.num_classes, params.layout, params.output_name) == (3, "channels", "out")


def test_pose_export_is_not_taken_for_a_detector(registry, tmp_path):
    model = load_model(ultralytics_detect(tmp_path / "pose.onnx", classes=52, task="pose", names=False))
    with pytest.raises(ModelError) as info:
        choose(registry, model, None)
    message = str(info.value)
    assert "no architecture recognises its outputs output0 [1, 56, 8400] float32" in message
    assert "yolo-anchor-free (metadata task='pose': a detection parser would misread this head)" in message
    assert message.split("; closest: ", 1)[1]  # the near misses are listed


def test_inspect_json_lists_everything(tmp_path):
    result = cli("inspect", str(ULTRA / "yolov8n_320.onnx"), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["outputs"] == [{"name": "output0", "shape": [1, 84, 2100], "dtype": "float32"}]
    assert data["metadata"]["task"] == "detect"
    assert data["matches"][0]["architecture"] == "yolo-anchor-free"
    assert "2100 candidates = strides 8/16/32 at 320x320" in data["matches"][0]["reason"]


def test_inspect_text_and_no_match_message(tmp_path):
    text = cli("inspect", str(ULTRA / "yolo11n_320.onnx"), cwd=tmp_path)
    assert text.returncode == 0 and "matching architectures" in text.stdout and "Concat <- Mul" in text.stdout
    odd = head_model(tmp_path / "odd.onnx", [("a", [1, 4]), ("b", [1, 10, 10, 10])])
    result = cli("inspect", str(odd))
    assert result.returncode == 0
    assert "no architecture recognises these heads: a [1, 4] float32, b [1, 10, 10, 10] float32" in result.stdout
    assert "known heads: " in result.stdout and "yolo-anchor-free: output0 [B, 4+C, N]" in result.stdout


def test_inspect_of_a_bad_file_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    result = cli("inspect", str(bad))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and str(bad) in result.stderr
