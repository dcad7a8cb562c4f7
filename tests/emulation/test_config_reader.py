"""dsparsers.generation.nvinfer_config's reader: GKeyFile and YAML forms, typed values, file:line errors, paths,
[class-attrs-*] precedence, and a round trip of every config `generate` writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dsparsers.errors import ConfigError
from dsparsers.generation.nvinfer_keys import PROPERTY_KEYS
from dsparsers.emulation.config_reader import parse_keyfile, parse_yaml, read_config
from dsparsers.emulation.clustering import ClassAttrs
from conftest import GOLDEN

GOLDEN_CONFIGS = GOLDEN / "configs"

INI = r"""# a user's config
[property]
gpu-id=0
  net-scale-factor = 0.0039215697906911373
offsets=77.5;21.2;11.8;
model-color-format=1
maintain-aspect-ratio=true
symmetric-padding=0
infer-dims=3;544;960
filter-out-class-ids=1;3
output-blob-names=conv2d_bbox;conv2d_cov/Sigmoid
model-engine-file=\smodel b1.engine
num-detected-classes=4
uff-input-blob-name=input_1
tlt-model-key=tlt_encode
layer-device-precision=cls/mul:fp32:gpu;box/mul_6:fp32:gpu
cluster-mode=2

[class-attrs-all]
pre-cluster-threshold=0.3
eps=0.2
minBoxes=3
roi-top-offset=0
topk=20

[class-attrs-2]
nms-iou-threshold=0.6
detected-max-w=400
"""


def test_keyfile_values_are_typed_per_the_table():
    c = parse_keyfile(INI, "cfg.txt")
    assert c.get("net-scale-factor") == pytest.approx(0.0039215697906911373)
    assert c.get("offsets") == [77.5, 21.2, 11.8]  # trailing ';' allowed
    assert c.get("model-color-format") == 1
    assert c.get("maintain-aspect-ratio") is True and c.get("symmetric-padding") is False
    assert c.get("infer-dims") == [3, 544, 960]
    assert c.get("filter-out-class-ids") == [1, 3]
    assert c.get("output-blob-names") == ["conv2d_bbox", "conv2d_cov/Sigmoid"]
    assert c.get("model-engine-file") == " model b1.engine"  # GKeyFile's \s escape
    assert c.get("minBoxes", "class-attrs-all") == 3
    # keys the file does not set get nvinfer's defaults
    assert c.get("batch-size") == 1 and c.get("network-input-order") == 0
    assert c.get("nms-iou-threshold", "class-attrs-all") == 0.3
    assert c.where("cluster-mode") == "cfg.txt:17"


def test_ignored_keys_are_the_ones_run_does_not_emulate():
    ignored = parse_keyfile(INI, "cfg.txt").ignored()
    assert "[property] gpu-id" in ignored and "[property] tlt-model-key" in ignored
    assert "[class-attrs-all] eps" in ignored
    assert "[class-attrs-all] roi-top-offset" not in ignored  # emulated since back-projection follows gstnvinfer_meta_utils.cpp
    assert "[property] offsets" not in ignored and "[class-attrs-2] detected-max-w" not in ignored


def test_a_typical_deepstream_sample_config_loads():
    text = """[property]
gpu-id=0
net-scale-factor=0.0039215697906911373
tlt-model-key=tlt_encode
tlt-encoded-model=../../models/Primary_Detector/resnet18_trafficcamnet.etlt
model-engine-file=../../models/Primary_Detector/resnet18_trafficcamnet.etlt_b1_gpu0_int8.engine
labelfile-path=../../models/Primary_Detector/labels.txt
int8-calib-file=../../models/Primary_Detector/cal_trt.bin
force-implicit-batch-dim=1
batch-size=1
network-mode=1
num-detected-classes=4
interval=0
gie-unique-id=1
uff-input-order=0
uff-input-blob-name=input_1
output-blob-names=output_cov/Sigmoid;output_bbox/BiasAdd
cluster-mode=2
infer-dims=3;544;960
input-dims=3;544;960;0
workspace-size=1000
scaling-filter=0
scaling-compute-hw=0
output-tensor-meta=0
secondary-reinfer-interval=0
operate-on-gie-id=1
operate-on-class-ids=0;1
input-object-min-width=64
classifier-threshold=0.51
enable-dbscan=0
network-input-order=0
crop-objects-to-roi-boundary=1
engine-create-func-name=NvDsInferYoloCudaEngineGet
custom-network-config=yolo.cfg
segmentation-threshold=0.5

[class-attrs-all]
pre-cluster-threshold=0.2
eps=0.2
group-threshold=1
dbscan-min-score=0.7
roi-bottom-offset=0
detected-min-w=0
detected-min-h=0
"""
    c = parse_keyfile(text, "sample.txt")
    assert c.get("operate-on-class-ids") == [0, 1] and c.get("crop-objects-to-roi-boundary") is True
    assert c.get("input-dims") == [3, 544, 960, 0] and c.get("classifier-threshold") == 0.51


YAML = """property:
  net-scale-factor: 0.0039215697906911373
  offsets: [77.5, 21.2, 11.8]
  infer-dims: 3;544;960
  maintain-aspect-ratio: 1
  num-detected-classes: 4
  cluster-mode: 2
class-attrs-all:
  pre-cluster-threshold: 0.3
  topk: 20
  minBoxes: 3
class-attrs-2:
  nms-iou-threshold: 0.6
"""


def test_yaml_form_reads_like_the_keyfile_form():
    y = parse_yaml(YAML, "cfg.yml")
    k = parse_keyfile(INI, "cfg.txt")
    for key in ("net-scale-factor", "offsets", "infer-dims", "maintain-aspect-ratio", "num-detected-classes"):
        assert y.get(key) == k.get(key), key
    assert y.cluster_settings() == k.cluster_settings()
    assert y.where("infer-dims") == "cfg.yml:4"


def test_yaml_errors_name_the_line(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("property:\n  num-detected-classes: 4\n  cluster-mode: abc\n")
    with pytest.raises(ConfigError, match=r"cfg\.yaml:3: cluster-mode: expected an integer, got 'abc'$"):
        read_config(path)
    path.write_text("property:\n  gpu-id: 0\nclass-attrs-al:\n  topk: 3\n")
    # gstnvinfer_property_parser.cpp, gst_nvinfer_parse_config_file: a class-attrs- group whose rest has no
    # digits for g_ascii_strtoull is "Invalid group" (this test used to expect an unknown-section error)
    with pytest.raises(ConfigError, match=r"cfg\.yaml:3: \[class-attrs-al\]: invalid group"):
        read_config(path)


@pytest.mark.parametrize("line, message", [
    ("cluster-mode=abc", "cluster-mode: expected an integer, got 'abc'"),
    ("cluster-mode=7", "cluster-mode: expected one of 0, 1, 2, 3, 4, got 7"),
    ("net-scale-factor=1/255", "net-scale-factor: expected a number, got '1/255'"),
    ("maintain-aspect-ratio=yes", "maintain-aspect-ratio: expected 0/1 or true/false, got 'yes'"),
    ("offsets=1;x;3", "offsets: item 2: expected a number, got 'x'"),
    ("offsets=1;;3", "offsets: item 2 is empty"),
    # gst_nvinfer_parse_props refuses only a negative num-detected-classes (this used to refuse 0)
    ("num-detected-classes=-1", "num-detected-classes: expected at least 0, got -1"),
    ("no equals sign", "expected key=value, got 'no equals sign'"),
])
def test_bad_lines_are_reported_with_file_and_line(line, message):
    with pytest.raises(ConfigError, match=r"^config\.txt:3: " + message):
        parse_keyfile(f"# header\n[property]\n{line}\n", "config.txt")


def test_unknown_keys_and_groups_only_warn_as_in_nvinfer():
    # gstnvinfer_property_parser.cpp: an unknown [property] key is "Unknown or legacy key specified"
    # (gst_nvinfer_parse_other_attribute), an unknown class-attrs key "Unknown key" (gst_nvinfer_parse_class_attrs),
    # both only printed; groups other than property / class-attrs-* are never read. (These used to be errors.)
    c = parse_keyfile("[property]\ncluster-mod=2\nnms-iou-threshold=0.5\n[propert]\ngpu-id=x\n"
                      "[class-attrs-all]\ntopk=3\nmin-boxes=1\n", "c.txt")
    assert c.get("cluster-mode") == 0 and c.get("topk", "class-attrs-all") == 3
    assert not c.has("gpu-id")  # the ignored group's value is not even converted
    text = "\n".join(c.warnings)
    assert "c.txt:2: cluster-mod: unknown key in [property]; nvinfer only warns and ignores it; did you mean " \
           "'cluster-mode'?" in text
    assert "c.txt:3: nms-iou-threshold: belongs in [class-attrs-all] or [class-attrs-N], not [property]" in text
    assert "c.txt:4: [propert]: not a group nvinfer reads" in text and "c.txt:8: min-boxes: unknown key" in text


def test_unknown_section_and_keys_before_a_section():
    # gst_nvinfer_parse_config_file: "Could not find group property" when [property] is absent
    with pytest.raises(ConfigError, match=r"^c\.txt: no \[property\] group"):
        parse_keyfile("\n[propert]\ngpu-id=0\n", "c.txt")
    with pytest.raises(ConfigError, match=r"^c\.txt:1: gpu-id: before any \[section\]"):
        parse_keyfile("gpu-id=0\n", "c.txt")


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.txt: no such config file"):
        read_config(tmp_path / "nope.txt")


def test_paths_resolve_against_the_config_directory_not_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "labels.txt").write_text("a\nb\n")
    config_path = tmp_path / "cfg" / "config.txt"
    config_path.parent.mkdir()
    config_path.write_text("[property]\nlabelfile-path=../models/labels.txt\nonnx-file=missing.onnx\n"
                           "custom-lib-path=/nowhere/lib.so\n")
    monkeypatch.chdir(tmp_path / "models")  # a relative path must not resolve here
    c = read_config(config_path)
    assert c.file("labelfile-path") == config_path.parent / "../models/labels.txt"
    with pytest.raises(ConfigError, match=r"config\.txt:3: onnx-file: no such file .*cfg/missing\.onnx"):
        c.file("onnx-file")
    with pytest.raises(ConfigError, match=r"config\.txt:4: custom-lib-path: no such file /nowhere/lib\.so"):
        c.file("custom-lib-path")
    with pytest.raises(ConfigError, match=r"config\.txt: parse-bbox-func-name is not set"):
        c.file("parse-bbox-func-name")


def test_class_attrs_n_overrides_class_attrs_all_whatever_the_section_order():
    text = """[property]
num-detected-classes=3
cluster-mode=2
[class-attrs-1]
pre-cluster-threshold=0.6
[class-attrs-all]
pre-cluster-threshold=0.25
nms-iou-threshold=0.45
topk=300
"""
    settings = parse_keyfile(text).cluster_settings()
    assert settings.all == ClassAttrs(0.25, 0.0, 0.45, 300)
    assert settings.attrs(1) == ClassAttrs(0.6, 0.0, 0.45, 300)  # own threshold, the rest from [class-attrs-all]
    assert settings.attrs(2) == settings.all


def test_old_threshold_key_is_the_pre_cluster_threshold():
    text = "[property]\nnum-detected-classes=2\n[class-attrs-all]\nthreshold=0.4\n[class-attrs-1]\nthreshold=0.7\n"
    settings = parse_keyfile(text).cluster_settings()
    assert settings.all.pre_cluster_threshold == 0.4 and settings.attrs(1).pre_cluster_threshold == 0.7


def test_class_attrs_past_the_class_count_is_an_error():
    with pytest.raises(ConfigError, match=r"\[class-attrs-5\]: class 5 is not below num-detected-classes=3"):
        parse_keyfile("[property]\nnum-detected-classes=3\n[class-attrs-5]\ntopk=1\n", "c.txt").cluster_settings()


def test_the_table_holds_the_documented_keys_run_needs():
    for key in ("offsets", "infer-dims", "filter-out-class-ids", "crop-objects-to-roi-boundary",
                "num-detected-classes", "cluster-mode", "scaling-filter", "network-input-order"):
        assert PROPERTY_KEYS[key].run, key


# -- round trip with `generate` -----------------------------------------------------------------------
def _body(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("golden", sorted(GOLDEN_CONFIGS.glob("*.txt")), ids=lambda p: p.stem)
def test_every_generated_config_reads_back_and_renders_identically(registry, golden):
    from dsparsers.api.architecture import GenerateOptions
    from dsparsers.generation.codegen import render_parser

    read = read_config(golden)
    assert _body(read.to_nvinfer_config().render()) == _body(golden.read_text())
    # and it is what generate writes today, value for value
    arch = golden.stem
    architecture = registry.get(arch).architecture
    params = architecture.head_params(None, GenerateOptions(requested_as=arch))
    generated = render_parser(architecture, params, requested_as=arch)
    fresh = parse_keyfile(generated.files[generated.config_name])
    assert {s: {k: v.value for k, v in e.items()} for s, e in fresh.sections.items()} == \
           {s: {k: v.value for k, v in e.items()} for s, e in read.sections.items()}
    assert isinstance(read.get("maintain-aspect-ratio"), bool) and isinstance(read.get("cluster-mode"), int)


def test_cli_reports_a_bad_config_in_one_line_and_writes_nothing(tmp_path):
    config = tmp_path / "config.txt"
    config.write_text("[property]\nnum-detected-classes=80\ncluster-mode=abc\n")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "dsparsers.cli", "run", "--config", str(config), "--image",
                          str(tmp_path / "x.png"), "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip() == f"dsparsers: error: {config}:3: cluster-mode: expected an integer, got 'abc'"
    assert not out.exists()
