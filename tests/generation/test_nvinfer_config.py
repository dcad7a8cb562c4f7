"""Generated configs load in nvinfer as they are: infer-dims for symbolic inputs, --input checked against
the model, the batch, the engine file nvinfer writes and reads back, and every value in nvinfer's ranges.

Facts from NVIDIA's DeepStream 9.1 sources (GitHub NVIDIA/DeepStream, commit 581889df47d6):
- src/utils/nvdsinfer/nvdsinfer_model_builder.cpp, ``TrtModelBuilder::buildModel``: after building an
  engine from an ONNX model the suggested path is
  ``modelPath + "_b" + to_string(initParams.maxBatchSize) + "_" + devId + "_" + networkMode2Str(networkMode) + ".engine"``
  with ``modelPath`` the onnx-file path (``OnnxModelParser::getModelName``), ``devId`` "gpu<gpu-id>" ("dla<core>"
  on a DLA) and, in nvdsinfer_func_utils.cpp ``networkMode2Str``, fp32 / int8 / fp16 / best for network-mode
  0 / 1 / 2 / 3: ``model.onnx_b1_gpu0_fp32.engine``.
- src/utils/nvdsinfer/nvdsinfer_context_impl.cpp: ``NvDsInferContextImpl::buildModel`` serializes the engine
  to that suggested path; ``generateBackendContext`` deserializes only ``model-engine-file`` (warning and
  rebuilding when it cannot): nvinfer does not "cache" an engine, a start reuses one only when
  model-engine-file names the file an earlier start wrote.
- ``TrtModelBuilder::createDynamicParams``: an explicit-batch (ONNX) network gets an optimisation profile
  with batch min 1 (GPU), opt = max = batch-size, and C/H/W from infer-dims; ``configExplicitOptions``:
  without infer-dims every input dim but the batch must be fixed, else "Explicit config dims is invalid".
- src/gst-plugins/gst-nvinfer/gstnvinfer_property_parser.cpp ``get_absolute_file_path``: a relative path is
  the config file's real directory + the value, realpath-resolved when the file exists, kept as it is when not.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES
from dsparsers.api.architecture import GenerateOptions
from dsparsers.api.registry import Registry
from dsparsers.errors import UsageError
from dsparsers.generation.codegen import render_parser
from dsparsers.generation.config_writer import NvinferConfig, engine_file_name

DYNAMIC = FIXTURES / "ultralytics" / "yolo11n_320_dynamic.onnx"
STATIC = FIXTURES / "ultralytics" / "yolo11n_320.onnx"
ARCHITECTURES = [p.architecture.name for p in Registry(load_entry_points=False).architectures()]


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "dsparsers.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "COLUMNS": "250"})


def config_lines(directory: Path) -> dict[str, str]:
    """key -> value of the [property] group of the one config in ``directory``."""
    (path,) = directory.glob("config_infer_primary_*.txt")
    values, group = {}, None
    for line in path.read_text().splitlines():
        if line.startswith("["):
            group = line.strip("[]")
        elif line and not line.startswith("#") and group == "property":
            key, value = line.split("=", 1)
            values[key] = value
    return values


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dsparsers: error: "), lines
    return lines[0]


# -- the engine file ------------------------------------------------------------------------------
def test_engine_file_name_is_nvinfers():
    # modelPath + "_b" + batch + "_" + "gpu" + id + "_" + networkMode2Str(mode) + ".engine" (buildModel)
    assert engine_file_name("model.onnx", 1) == "model.onnx_b1_gpu0_fp32.engine"
    assert engine_file_name("../m/yolo.onnx", 8, gpu_id=1, network_mode=2) == "../m/yolo.onnx_b8_gpu1_fp16.engine"
    assert engine_file_name("a.onnx", 2, network_mode=1) == "a.onnx_b2_gpu0_int8.engine"
    assert engine_file_name("a.onnx", 2, network_mode=3) == "a.onnx_b2_gpu0_best.engine"


def nvinfer_path(config: Path, value: str) -> str:
    """gstnvinfer_property_parser.cpp get_absolute_file_path, for a value in ``config``."""
    if value.startswith("/"):
        return os.path.realpath(value) if os.path.exists(value) else value
    joined = os.path.dirname(os.path.realpath(config)) + "/" + value
    return os.path.realpath(joined) if os.path.exists(joined) else joined


@pytest.mark.parametrize("linked", [False, True], ids=["plain", "through-symlinks"])
def test_the_second_start_loads_the_engine_the_first_start_wrote(tmp_path, linked):
    models = tmp_path / "models"
    models.mkdir()
    model = models / "detector.onnx"
    model.write_bytes(DYNAMIC.read_bytes())
    given = model
    if linked:  # the model and the output reached through symlinked directories
        (tmp_path / "m").symlink_to(models)
        (tmp_path / "work").mkdir()
        (tmp_path / "w").symlink_to(tmp_path / "work")
        given = tmp_path / "m" / "detector.onnx"
    out = (tmp_path / "w" if linked else tmp_path) / "parser"
    assert cli("generate", "--onnx", given, "-o", out, cwd=tmp_path).returncode == 0
    (config,) = out.glob("config_infer_primary_*.txt")
    values = config_lines(out)
    # first start: model-engine-file does not exist; nvinfer builds from onnx-file and writes the engine here
    onnx = nvinfer_path(config, values["onnx-file"])
    assert os.path.samefile(onnx, model)
    written = Path(onnx + "_b1_gpu0_fp32.engine")
    assert not os.path.exists(nvinfer_path(config, values["model-engine-file"]))
    written.write_bytes(b"engine")
    # second start: model-engine-file names that very file
    assert os.path.samefile(nvinfer_path(config, values["model-engine-file"]), written)
    assert values["model-engine-file"] == values["onnx-file"] + "_b1_gpu0_fp32.engine"


def test_no_config_comment_says_nvinfer_caches_the_engine(registry):
    for arch in ARCHITECTURES:
        architecture = registry.get(arch).architecture
        generated = render_parser(architecture, architecture.head_params(None, GenerateOptions(requested_as=arch)),
                                  requested_as=arch)
        text = generated.files[generated.config_name]
        assert "cache" not in text.lower(), arch
        assert "model-engine-file=model.onnx_b1_gpu0_fp32.engine" in text.splitlines()


# -- infer-dims, --input and the batch -------------------------------------------------------------
def test_dynamic_export_gets_infer_dims_from_imgsz_and_a_dynamic_batch(tmp_path):
    result = cli("generate", "--onnx", DYNAMIC, "-o", tmp_path / "p", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    values = config_lines(tmp_path / "p")
    # images ['batch', 3, 'height', 'width'], imgsz [320, 320]
    assert values["infer-dims"] == "3;320;320"
    assert values["batch-size"] == "1"
    assert values["model-engine-file"].endswith("yolo11n_320_dynamic.onnx_b1_gpu0_fp32.engine")
    assert "320x320 input" in (tmp_path / "p" / "dsparsers.json").read_text()


def test_static_export_gets_no_infer_dims(tmp_path):
    assert cli("generate", "--onnx", STATIC, "-o", tmp_path / "p", cwd=tmp_path).returncode == 0
    values = config_lines(tmp_path / "p")
    assert "infer-dims" not in values and values["batch-size"] == "1"


def test_input_on_a_dynamic_export_is_honoured(tmp_path):
    result = cli("generate", "--onnx", DYNAMIC, "--input", "640x480", "--batch-size", "4", "-o", tmp_path / "p",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    values = config_lines(tmp_path / "p")
    assert values["infer-dims"] == "3;480;640" and values["batch-size"] == "4"
    assert values["model-engine-file"].endswith("_dynamic.onnx_b4_gpu0_fp32.engine")
    manifest = json.loads((tmp_path / "p" / "dsparsers.json").read_text())
    assert (manifest["params"]["input_width"], manifest["params"]["input_height"]) == (640, 480)
    assert manifest["head"].endswith("640x480 input")


@pytest.mark.parametrize("model, args, message", [
    (STATIC, ("--input", "640"), "--input 640x640: yolo11n_320.onnx: input 'images' [1, 3, 320, 320] is fixed at "
                                 "320x320; drop --input or export the model at that size"),
    (DYNAMIC, ("--input", "300"), "--input 300x300: yolo11n_320_dynamic.onnx: input 'images' [batch, 3, height, "
                                  "width] takes multiples of 32 (its stride metadata); e.g. 288x288"),
    (DYNAMIC, ("--input", "640x330"), "takes multiples of 32"),
    (STATIC, ("--batch-size", "2"), "--batch-size 2: yolo11n_320.onnx: input 'images' [1, 3, 320, 320] has a fixed "
                                    "batch of 1"),
    (DYNAMIC, ("--batch-size", "0"), "--batch-size 0: nvinfer takes 1 to 1024"),
    (DYNAMIC, ("--batch-size", "1025"), "--batch-size 1025: nvinfer takes 1 to 1024"),
])
def test_input_and_batch_the_model_cannot_take_are_refused(tmp_path, model, args, message):
    error = one_line_error(cli("generate", "--onnx", model, *args, "-o", tmp_path / "p", cwd=tmp_path))
    assert message in error
    assert not (tmp_path / "p").exists()


def test_static_input_given_again_is_fine(tmp_path):
    assert cli("generate", "--onnx", STATIC, "--input", "320x320", "-o", tmp_path / "p", cwd=tmp_path).returncode == 0


@pytest.fixture
def dynamic_without_imgsz(tmp_path):
    import onnx

    model = onnx.load(str(DYNAMIC), load_external_data=False)  # graph-only fixture (its README)
    kept = [p for p in model.metadata_props if p.key != "imgsz"]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    path = tmp_path / "no_imgsz.onnx"
    onnx.save(model, str(path))
    return path


def test_dynamic_export_without_imgsz_needs_input(tmp_path, dynamic_without_imgsz):
    error = one_line_error(cli("generate", "--onnx", dynamic_without_imgsz, "-o", tmp_path / "p", cwd=tmp_path))
    assert error == ("dsparsers: error: no_imgsz.onnx: input 'images' [batch, 3, height, width] has a symbolic "
                     "height/width and no imgsz metadata: give the size nvinfer should build the engine for with "
                     "--input WxH")
    assert cli("generate", "--onnx", dynamic_without_imgsz, "--input", "416", "-o", tmp_path / "p",
               cwd=tmp_path).returncode == 0
    assert config_lines(tmp_path / "p")["infer-dims"] == "3;416;416"


def test_run_reads_the_dynamic_config_as_it_is_and_sees_the_network_nvinfer_builds(tmp_path):
    """The config of the (graph-only) dynamic fixture, read by `run`'s reader, with a runnable stand-in of the
    same input signature ['batch', 3, 'height', 'width'] in onnxruntime."""
    import onnx
    from onnx import TensorProto, helper

    from dsparsers.emulation.config_reader import read_config
    from dsparsers.emulation.run import OnnxModel

    assert cli("generate", "--onnx", DYNAMIC, "-o", tmp_path / "p", cwd=tmp_path).returncode == 0
    (path,) = (tmp_path / "p").glob("config_infer_primary_*.txt")
    config = read_config(path)
    assert config.get("infer-dims") == [3, 320, 320]
    assert config.file("onnx-file").resolve() == DYNAMIC.resolve()
    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["output0"])], "stand_in",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 3, "height", "width"])])
    stand_in = tmp_path / "stand_in.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(stand_in))
    model = OnnxModel(stand_in, config)
    assert (model.network.width, model.network.height, model.network.channels) == (320, 320, 3)
    assert model.static_batch is None


# -- every value within nvinfer's own types and ranges ----------------------------------------------
#: the [property] keys gstnvinfer_property_parser.h defines (DeepStream 9.1), and the class-attrs ones
NVINFER_PROPERTY_KEYS = set("""
gie-unique-id process-mode interval labelfile-path gpu-id secondary-reinfer-interval output-tensor-meta
disable-output-host-copy auto-inc-mem max-gpu-mem-per enable-dla use-dla-core dump-input-tensor dump-output-tensor
overwrite-input-tensor overwrite-output-tensor ip-tensor-file op-tensor-files raw-output-file-write batch-size
tensor-meta-pool-size network-mode model-engine-file int8-calib-file workspace-size output-blob-names is-classifier
network-type force-implicit-batch-dim infer-dims output-io-formats layer-device-precision model-color-format
net-scale-factor offsets mean-file maintain-aspect-ratio symmetric-padding scaling-filter scaling-compute-hw
network-input-order input-tensor-from-meta custom-lib-path parse-bbox-func-name parse-bbox-instance-mask-func-name
parse-segmentation-func-name engine-create-func-name parse-classifier-func-name custom-network-config model-file
proto-file uff-file uff-input-order input-dims uff-input-dims uff-input-blob-name tlt-encoded-model tlt-model-key
onnx-file num-detected-classes enable-dbscan cluster-mode crop-objects-to-roi-boundary strongly-typed
dynamic-properties warmup-engine stabilize-buffer-count classifier-type classifier-threshold classifier-async-mode
segmentation-threshold segmentation-output-order output-instance-mask input-object-min-width input-object-min-height
input-object-max-width input-object-max-height operate-on-gie-id operate-on-class-ids filter-out-class-ids""".split())
NVINFER_CLASS_KEYS = set("""threshold pre-cluster-threshold post-cluster-threshold eps group-threshold minBoxes
dbscan-min-score roi-top-offset roi-bottom-offset detected-min-w detected-min-h detected-max-w detected-max-h
border-color bg-color nms-iou-threshold topk""".split())

_INT = re.compile(r"-?[0-9]+")


def _int(text: str) -> int:
    assert _INT.fullmatch(text), text  # g_key_file_get_integer: a decimal 32-bit integer
    value = int(text)
    assert -(2 ** 31) <= value < 2 ** 31
    return value


def _double(text: str) -> float:
    value = float(text)  # g_key_file_get_double (g_ascii_strtod)
    assert math.isfinite(value), text
    return value


#: gstnvinfer_property_parser.cpp: the check each key's value must pass (True: it loads)
RULES = {
    "gie-unique-id": lambda v: _int(v) > 0,
    "gpu-id": lambda v: _int(v) >= 0,
    "batch-size": lambda v: 1 <= _int(v) <= 1024,  # NVDSINFER_MAX_BATCH_SIZE
    "interval": lambda v: _int(v) >= 0,
    "network-mode": lambda v: _int(v) in (0, 1, 2, 3),
    "network-type": lambda v: _int(v) in (0, 1, 2, 3, 100),
    "model-color-format": lambda v: _int(v) in (0, 1, 2),
    "process-mode": lambda v: _int(v) in (1, 2),
    "cluster-mode": lambda v: _int(v) in (0, 1, 2, 3, 4),
    "num-detected-classes": lambda v: _int(v) >= 0,
    "segmentation-threshold": lambda v: _double(v) >= 0,
    "net-scale-factor": _double,
    "offsets": lambda v: len([_double(x) for x in v.split(";")]) <= 4,  # _MAX_CHANNELS
    "infer-dims": lambda v: len([_int(x) for x in v.split(";")]) == 3 and all(_int(x) > 0 for x in v.split(";")),
    "maintain-aspect-ratio": lambda v: v in ("0", "1", "true", "false"),
    "symmetric-padding": lambda v: v in ("0", "1", "true", "false"),
    "output-instance-mask": lambda v: v in ("0", "1", "true", "false"),
    "onnx-file": lambda v: 0 < len(v.encode()) < 4096,  # _PATH_MAX
    "model-engine-file": lambda v: 0 < len(v.encode()) < 4096,
    "labelfile-path": lambda v: 0 < len(v.encode()) < 4096,
    "custom-lib-path": lambda v: 0 < len(v.encode()) < 4096,
    "parse-bbox-func-name": lambda v: 0 < len(v.encode()) < 1024,  # _MAX_STR_LENGTH
    "parse-bbox-instance-mask-func-name": lambda v: 0 < len(v.encode()) < 1024,
    "pre-cluster-threshold": lambda v: _double(v) >= 0,
    "post-cluster-threshold": lambda v: _double(v) >= 0,
    "nms-iou-threshold": lambda v: 0 <= _double(v) <= 1,
    "topk": lambda v: _int(v) >= 0,
}


def check_config_text(text: str, what: str) -> None:
    group = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            group = line[1:-1]
            assert group == "property" or re.fullmatch(r"class-attrs-(all|[0-9]+)", group), (what, line)
            continue
        key, value = line.split("=", 1)
        known = NVINFER_PROPERTY_KEYS if group == "property" else NVINFER_CLASS_KEYS
        assert key in known, f"{what}: [{group}] {key} is not a key nvinfer knows"
        assert key in RULES, f"{what}: {key} has no rule in this test: add nvinfer's"
        assert RULES[key](value), f"{what}: {key}={value} fails nvinfer's check"


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_key_of_every_canonical_config_passes_nvinfers_checks(registry, arch):
    architecture = registry.get(arch).architecture
    generated = render_parser(architecture, architecture.head_params(None, GenerateOptions(requested_as=arch)),
                              requested_as=arch)
    check_config_text(generated.files[generated.config_name], arch)


@pytest.mark.parametrize("model, args", [(STATIC, ()), (DYNAMIC, ()), (DYNAMIC, ("--input", "1280x736",
                                                                                  "--batch-size", "16"))])
def test_every_key_of_model_configs_passes_nvinfers_checks(tmp_path, model, args):
    assert cli("generate", "--onnx", model, *args, "-o", tmp_path / "p", cwd=tmp_path).returncode == 0
    (path,) = (tmp_path / "p").glob("config_infer_primary_*.txt")
    check_config_text(path.read_text(), path.name)


@pytest.mark.parametrize("section, key, value, message", [
    ("class-attrs-all", "topk", -1, "below nvinfer's minimum 0"),
    ("class-attrs-all", "nms-iou-threshold", 1.5, "above nvinfer's maximum 1"),
    ("class-attrs-all", "pre-cluster-threshold", -0.1, "below nvinfer's minimum 0"),
    ("class-attrs-all", "pre-cluster-threshold", float("nan"), "not a finite number"),
    ("property", "batch-size", 1025, "above nvinfer's maximum 1024"),
    ("property", "gie-unique-id", 0, "below nvinfer's minimum 1"),
    ("property", "network-mode", 4, "not one of 0, 1, 2, 3"),
    ("property", "gpu-id", 2 ** 31, "does not fit the 32-bit integer"),
    ("property", "offsets", [1.0] * 5, "nvinfer takes 0 to 4 items, got 5"),
    ("property", "infer-dims", [3, 640], "nvinfer takes 3 items, got 2"),
    ("property", "infer-dims", [3, 0, 640], "item 0 is below 1"),
    ("property", "parse-bbox-func-name", "f" * 1024, "1024 bytes; nvinfer keeps at most 1023"),
    ("property", "onnx-file", "m" * 4096, "4096 bytes; nvinfer keeps at most 4095"),
])
def test_the_writer_refuses_what_nvinfer_refuses(section, key, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        NvinferConfig().set(section, key, value)
    NvinferConfig().set("class-attrs-all", "topk", 0)  # the edges nvinfer takes
    NvinferConfig().set("class-attrs-all", "nms-iou-threshold", 1.0)
    NvinferConfig().set("property", "batch-size", 1024)


def test_batch_size_is_checked_for_a_config_without_model(registry):
    from dsparsers.generation.config_writer import engine_input

    architecture = registry.get("yolo11").architecture
    params = architecture.head_params(None, GenerateOptions(requested_as="yolo11"))
    assert engine_input(None, params, 3, 8).batch_size == 8
    with pytest.raises(UsageError, match="--batch-size 0: nvinfer takes 1 to 1024"):
        engine_input(None, params, 3, 0)


# -- settle_input on hand-made models ------------------------------------------------------------------
def _model(shape, metadata=None):
    from dsparsers.model.reader import ModelInfo, TensorInfo

    return ModelInfo(Path("m.onnx"), "0" * 64, (TensorInfo("x", tuple(shape), "float32"),),
                     (TensorInfo("y", ("b", 6), "float32"),), dict(metadata or {}))


def test_settle_input_fixes_symbolic_dims_and_keeps_fixed_ones():
    from dsparsers.api.architecture import settle_input

    settled = settle_input(_model(["b", "c", "h", "w"]), (640, 384), stride=32)
    assert settled.inputs[0].shape == ("b", 3, 384, 640) and settled.input_size == (640, 384)
    partly = _model([1, 3, 480, "w"], {"imgsz": "[480, 800]"})
    assert settle_input(partly, None).inputs[0].shape == (1, 3, 480, 800)  # imgsz is [H, W]
    with pytest.raises(UsageError, match=r"--input 640x640: m.onnx: input 'x' \[1, 3, 480, w\] has a fixed height of 480"):
        settle_input(partly, (640, 640))
    static = _model([1, 3, 320, 320])
    assert settle_input(static, None) is static and settle_input(static, (320, 320)) is static


def test_the_head_stride_applies_when_the_model_declares_none():
    from dsparsers.api.architecture import settle_input

    with pytest.raises(UsageError, match=r"takes multiples of 32 \(the head's strides\); e.g. 608x608"):
        settle_input(_model(["b", 3, "h", "w"]), (610, 610), stride=32)
    assert settle_input(_model(["b", 3, "h", "w"]), (610, 610)).input_size == (610, 610)  # a head without strides
    with pytest.raises(UsageError, match=r"multiples of 64 \(its stride metadata\); e.g. 640x640"):  # P6: stride 64
        settle_input(_model(["b", 3, "h", "w"], {"stride": "64"}), (672, 672), stride=32)


def test_a_symbolic_channel_count_is_written_from_the_colour_format(registry):
    from dsparsers.generation.config_writer import engine_input

    architecture = registry.get("yolo11").architecture
    params = architecture.head_params(None, GenerateOptions(input_size=(320, 256), requested_as="yolo11"))
    got = engine_input(_model(["b", "c", 256, 320]), params, 1, None)
    assert (got.infer_dims, got.batch_size) == ((1, 256, 320), 1)
    assert "has a symbolic channels" in got.dims_comment
    fixed = engine_input(_model([4, 3, 256, 320]), params, 3, None)
    assert (fixed.infer_dims, fixed.batch_size) == (None, 4)
