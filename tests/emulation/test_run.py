"""`dsparsers run` end to end through the CLI: a small ONNX model whose YOLO11 head output is known,
the real generated parser, and detections in frame pixels computed by hand.

The model outputs output0 [B, 84, 6]: six candidates (cx, cy, w, h, 80 scores) that do not depend on
the picture, except candidate A's score, which is 0.5 + 0.4 * (mean of the frame's network input).
On a 640x480 picture in a 320x320 letterbox (ratio 0.5, 40 rows of padding on top, black padding):
a white picture gives mean 320*240 / 320² = 0.75, so A scores 0.8; a black one gives 0.5.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import read_manifest

NET = 320
#: (cx, cy, w, h, class, score) in network pixels
CANDIDATES = [
    (160, 160, 100, 50, 0, None),   # A: score from the picture; network box 110, 135, 100, 50
    (165, 160, 100, 50, 0, 0.7),    # B: IoU with A = 95*50 / (5000 + 5000 - 4750) = 0.905: one suppresses the other
    (50, 100, 40, 40, 2, 0.6),      # C: 30, 80, 40, 40
    (200, 200, 20, 20, 1, 0.2),     # D: below pre-cluster-threshold 0.25
    (40, 50, 40, 40, 3, 0.65),      # E: 20, 30, 40, 40: top in the padding
    (300, 280, 40, 40, 5, 0.5),     # F: 280, 260, 40, 40: bottom past the picture
]
# expected frame boxes: left = l / 0.5, top = (t - 40) / 0.5 clamped at 0 (size kept), sizes doubled
A = (0, 220.0, 190.0, 200.0, 100.0)
B = (0, 230.0, 190.0, 200.0, 100.0)
C = (2, 60.0, 80.0, 80.0, 80.0)
E = (3, 40.0, 0.0, 80.0, 80.0)     # (30 - 40) / 0.5 = -20 -> 0; height stays 80
F = (5, 560.0, 440.0, 80.0, 80.0)  # bottom 520 > 480: DS 9.1 drops it (gstnvinfer_meta_utils.cpp)
F_CROPPED = (5, 560.0, 440.0, 80.0, 40.0)  # with crop-objects-to-roi-boundary: height 480 - 440


def head_model(path: Path, batch: int | str = 1, channels: int = 84) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    const = np.zeros((1, channels, len(CANDIDATES)), np.float32)
    gain = np.zeros_like(const)
    for i, (cx, cy, w, h, cls, score) in enumerate(CANDIDATES):
        const[0, :4, i] = (cx, cy, w, h)
        if 4 + cls < channels:
            if score is None:
                const[0, 4 + cls, i], gain[0, 4 + cls, i] = 0.5, 0.4
            else:
                const[0, 4 + cls, i] = score
    nodes = [helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=1),  # [B, 1, 1, 1]
             helper.make_node("Reshape", ["mean", "shape"], ["mean3"]),
             helper.make_node("Mul", ["mean3", "gain"], ["scaled"]),
             helper.make_node("Add", ["scaled", "const"], ["output0"])]
    graph = helper.make_graph(
        nodes, "head", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, NET, NET])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, channels, len(CANDIDATES)])],
        [numpy_helper.from_array(const, "const"), numpy_helper.from_array(gain, "gain"),
         numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    names = model.metadata_props.add()  # 80 class names, as ultralytics writes them: C is unambiguous
    names.key, names.value = "names", "{" + ", ".join(f"{i}: 'c{i}'" for i in range(80)) + "}"
    onnx.save(model, str(path))
    return path


def picture(path: Path, value: int, size=(640, 480)) -> Path:
    from PIL import Image

    Image.new("RGB", size, (value, value, value)).save(path)
    return path


@pytest.fixture(scope="module")
def setup(build_parser, tmp_path_factory):
    """(work dir, config path, library, white picture, black picture) with the canonical yolo11 parser."""
    _, _, result = build_parser("yolo11")
    directory = result.library.parent.parent
    manifest = read_manifest(directory)
    work = tmp_path_factory.mktemp("run")
    head_model(work / "head.onnx")
    head_model(work / "head_dynamic.onnx", batch="batch")
    labels = work / "labels.txt"
    labels.write_text("".join(f"name{i}\n" for i in range(80)))
    config = work / "config.txt"
    text = (directory / manifest["config"]).read_text()
    text = text.replace("onnx-file=model.onnx", "onnx-file=head.onnx").replace(
        f"custom-lib-path=build/{manifest['library']}", f"custom-lib-path={result.library}")
    config.write_text(text)
    return work, config, result.library, picture(work / "white.png", 255), picture(work / "black.png", 0)


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dsparsers.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def boxes(image_record):
    return [(d["class_id"], d["left"], d["top"], d["width"], d["height"]) for d in image_record["detections"]]


def test_run_with_the_generated_config(setup, tmp_path):
    work, config, _, white, _ = setup
    out = tmp_path / "out"
    run = cli("run", "--config", config, "--image", white, "-o", out)
    assert run.returncode == 0, run.stderr
    record = json.loads((out / "detections.json").read_text())
    (image,) = record["images"]
    assert (image["width"], image["height"], image["output"]) == (640, 480, "white.png")
    # class-major; B suppressed by A (0.8 > 0.7); D under 0.25; F reaches past the frame's bottom: dropped
    # (attach_metadata_detector: top + height > frame height - roi-bottom-offset; this test used to keep it)
    assert boxes(image) == [A, C, E]
    assert [d["label"] for d in image["detections"]] == ["name0", "name2", "name3"]
    assert image["detections"][0]["confidence"] == pytest.approx(0.8, abs=1e-5)
    assert image["parser_objects"] == 5  # D is dropped by the parser itself
    assert record["settings"]["clustering"]["cluster-mode"] == 2
    assert record["settings"]["deepstream"] == "9.1"
    assert "[property] gpu-id" in record["settings"]["ignored_keys"]
    from PIL import Image

    with Image.open(out / "white.png") as drawn:
        assert drawn.size == (640, 480)
        assert drawn.getpixel((220, 250)) != (255, 255, 255)  # A's left edge is drawn
    assert "white.png" in run.stdout and "name0 x1" in run.stdout


def test_several_pictures_in_one_batch_keep_their_own_outputs(setup, tmp_path):
    work, config, _, white, black = setup
    out = tmp_path / "out"
    run = cli("run", "--config", config, "--onnx", work / "head_dynamic.onnx", "--image", white, "--image", black,
              "--image", white, "-o", out)
    assert run.returncode == 0, run.stderr
    record = json.loads((out / "detections.json").read_text())
    assert record["settings"]["network"]["batch"] == "symbolic"
    first, second, third = record["images"]
    assert boxes(first) == boxes(third) == [A, C, E]
    # black picture: A scores 0.5, so B (0.7) wins the NMS
    assert boxes(second) == [B, C, E]
    assert [i["output"] for i in record["images"]] == ["white.png", "black.png", "white-2.png"]


def test_overrides_filters_and_per_class_attributes(setup, tmp_path):
    work, config, _, white, _ = setup
    out = tmp_path / "out"
    run = cli("run", "--config", config, "--image", white, "-o", out,
              "--set", "filter-out-class-ids=2", "--set", "class-attrs-5.pre-cluster-threshold=0.55",
              "--set", "class-attrs-all.detected-max-h=150")
    assert run.returncode == 0, run.stderr
    (image,) = json.loads((out / "detections.json").read_text())["images"]
    # C filtered out by id, F under its class's own threshold; A (100 high) and E pass max-h 150
    assert boxes(image) == [A, E]
    run = cli("run", "--config", config, "--image", white, "-o", out, "--set", "class-attrs-all.detected-max-h=99")
    (image,) = json.loads((out / "detections.json").read_text())["images"]
    assert boxes(image) == [C, E]


def test_crop_and_deepstream_release(setup, tmp_path):
    work, config, _, white, _ = setup
    out = tmp_path / "out"
    run = cli("run", "--config", config, "--image", white, "-o", out, "--set", "crop-objects-to-roi-boundary=1")
    assert run.returncode == 0, run.stderr
    (image,) = json.loads((out / "detections.json").read_text())["images"]
    assert boxes(image) == [A, C, E, F_CROPPED]  # DS 9.1: F's height trimmed to the frame, E's top clamped
    run = cli("run", "--config", config, "--image", white, "-o", out, "--force", "--deepstream-version", "6.2",
              "--set", "crop-objects-to-roi-boundary=1", "--set", "strongly-typed=1")
    assert run.returncode == 0, run.stderr
    record = json.loads((out / "detections.json").read_text())
    # DS 6.2 clamps E's top in its crop branch: the same objects
    assert boxes(record["images"][0]) == [A, C, E, F_CROPPED] and record["settings"]["deepstream"] == "6.2"
    assert "DeepStream 6.2 does not know strongly-typed" in run.stderr
    run = cli("run", "--config", config, "--image", white, "-o", out, "--force", "--deepstream-version", "6.2")
    assert run.returncode == 0, run.stderr
    # DS 6.2 without crop: no left/top clamp, so E's top -20 < roi-top-offset 0 drops it; F past the bottom too
    assert boxes(json.loads((out / "detections.json").read_text())["images"][0]) == [A, C]


def test_cluster_mode_4_keeps_both_overlapping_boxes(setup, tmp_path):
    work, config, _, white, _ = setup
    out = tmp_path / "out"
    run = cli("run", "--config", config, "--image", white, "-o", out, "--set", "cluster-mode=4")
    assert run.returncode == 0, run.stderr
    (image,) = json.loads((out / "detections.json").read_text())["images"]
    assert boxes(image) == [A, B, C, E]  # no NMS; class 0 in parser order
    # cluster-mode=1 with minBoxes 0 (clusterAndFillDetectionOutputDBSCAN skips DBSCAN): post-cluster-threshold
    # with equality, then topk; B (0.7) survives a 0.7 threshold that removes C (0.6) and E (0.65)
    run = cli("run", "--config", config, "--image", white, "-o", out, "--force", "--set", "cluster-mode=1",
              "--set", "class-attrs-all.post-cluster-threshold=0.7")
    assert run.returncode == 0, run.stderr
    (image,) = json.loads((out / "detections.json").read_text())["images"]
    assert boxes(image) == [A, B]


def test_yaml_config_with_relative_paths(setup, tmp_path):
    work, config, library, white, _ = setup
    yml = work / "config.yml"
    yml.write_text(f"""property:
  net-scale-factor: 0.00392156862745098
  onnx-file: head.onnx
  labelfile-path: labels.txt
  num-detected-classes: 80
  cluster-mode: 2
  maintain-aspect-ratio: 1
  symmetric-padding: true
  parse-bbox-func-name: NvDsInferParseYoloAnchorFree
  custom-lib-path: {library}
class-attrs-all:
  pre-cluster-threshold: 0.25
  nms-iou-threshold: 0.45
""")
    out = tmp_path / "out"
    run = cli("run", "--config", yml, "--image", white, "-o", out, cwd=tmp_path)  # paths resolve against work/
    assert run.returncode == 0, run.stderr
    (image,) = json.loads((out / "detections.json").read_text())["images"]
    assert boxes(image) == [A, C, E]


def test_onnx_lib_func_form_takes_the_rest_from_the_generated_directory(setup, tmp_path):
    work, _, library, white, _ = setup
    out = tmp_path / "out"
    run = cli("run", "--onnx", work / "head.onnx", "--lib", library, "--func", "NvDsInferParseYoloAnchorFree",
              "--image", white, "-o", out)
    assert run.returncode == 0, run.stderr
    record = json.loads((out / "detections.json").read_text())
    assert boxes(record["images"][0]) == [A, C, E]
    assert record["images"][0]["detections"][0]["label"] == "person"  # the generated labels.txt (COCO)


def test_a_parser_that_returns_false_gives_the_frame_no_objects(setup, tmp_path):
    """nvinfer only logs a false return (quirk): the run goes on with an empty frame."""
    work, config, _, white, _ = setup
    head_model(work / "wrong.onnx", channels=10)  # [10, 6]: not the 84-channel head the parser wants
    out = tmp_path / "out"
    run = cli("run", "--config", config, "--onnx", work / "wrong.onnx", "--image", white, "-o", out)
    assert run.returncode == 0, run.stderr
    (image,) = json.loads((out / "detections.json").read_text())["images"]
    assert image["parser_returned"] is False and image["detections"] == []
    assert "the parser returned false" in " ".join(run.stderr.split())


@pytest.mark.parametrize("args, message", [
    (["--image", "{work}/missing.png"], "--image {work}/missing.png: no such file"),
    # nvdsinfer_context_impl_output_parsing.cpp: DBSCAN runs only where minBoxes > 0 (cluster-mode=1 alone used
    # to be refused here; with minBoxes 0 it is emulated exactly)
    (["--image", "{white}", "--set", "cluster-mode=1", "--set", "class-attrs-all.minBoxes=2"],
     "{config}: cluster-mode: cluster mode 1 with minBoxes > 0 (class 0 and others): nvinfer would run its closed-source DBSCAN"),
    (["--image", "{white}", "--set", "topkk=3"], "--set 'topkk=3': topkk is not an nvinfer key of [property]"),
    (["--image", "{white}", "--lib", "{work}/nope.so"], "--lib {work}/nope.so: no such file"),
])
def test_bad_input_is_one_line_and_nothing_is_written(setup, tmp_path, args, message):
    work, config, _, white, _ = setup
    fill = {"work": work, "white": white, "config": config}
    out = tmp_path / "out"
    run = cli("run", "--config", config, "-o", out, *[a.format(**fill) for a in args])
    assert run.returncode == 2, run.stderr
    line = run.stderr.strip()
    assert "\n" not in line and line.startswith("dsparsers: error: " + message.format(**fill)), line
    assert not out.exists()


def test_missing_labelfile_names_the_config_line(setup, tmp_path):
    work, config, _, white, _ = setup
    broken = work / "broken.txt"
    broken.write_text(config.read_text().replace("labelfile-path=labels.txt", "labelfile-path=gone.txt"))
    run = cli("run", "--config", broken, "--image", white, "-o", tmp_path / "out")
    assert run.returncode == 2
    line = [n for n, text in enumerate(broken.read_text().splitlines(), 1) if text.startswith("labelfile-path")][0]
    assert run.stderr.strip().startswith(f"dsparsers: error: {broken}:{line}: labelfile-path: no such file")


def test_conform_on_real_outputs(setup, build_parser):
    work, _, library, white, black = setup
    run = cli("conform", "--lib", library, "--func", "NvDsInferParseYoloAnchorFree", "--arch", "yolo11",
              "--onnx", work / "head.onnx", "--image", white, "--image", black)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS" in run.stdout and "white.png" in run.stdout and "black.png" in run.stdout


def test_demo_runs_end_to_end_and_says_the_boxes_mean_nothing(tmp_path):
    out = tmp_path / "demo"
    run = cli("run", "--demo", "-o", out)
    assert run.returncode == 0, run.stderr
    record = json.loads((out / "detections.json").read_text())
    assert "RANDOM" in record["demo"] and "meaningless" in run.stdout
    (image,) = record["images"]
    assert image["detections"] and (image["width"], image["height"]) == (640, 480)
    assert (out / image["output"]).is_file()
    assert record["settings"]["network"]["width"] == 320


def test_conform_on_the_model_outputs_takes_the_deepstream_release(setup, tmp_path):
    work, _, library, white, _ = setup
    base = ["conform", "--lib", library, "--func", "NvDsInferParseYoloAnchorFree", "--arch", "yolo11",
            "--onnx", work / "head.onnx", "--image", white]
    run = cli(*base, "--deepstream-version", "6.2")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS" in run.stdout
    run = cli(*base, "--deepstream-version", "7.3")
    assert run.returncode == 2 and "--deepstream-version" in run.stderr
