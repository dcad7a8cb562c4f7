"""generate and build from the command line: the files, the library, the errors, atomic output."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, REPO
from dsparsers.api.architecture import Match
from dsparsers.library.meson_build import build_directory
from dsparsers.library.elf_symbols import dynamic_symbols
from dsparsers.errors import BuildError, UsageError
from dsparsers.model.reader import load_model
from dsparsers.plugins.yolo_anchor_free import AnchorFreeYolo
from dsparsers.api.registry import Registry
from dsparsers.api.selection import choose

REPO = REPO
YOLO11 = FIXTURES / "ultralytics" / "yolo11n_320.onnx"


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "dsparsers.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "COLUMNS": "250"})


@pytest.fixture(scope="module")
def default_build(tmp_path_factory):
    work = tmp_path_factory.mktemp("default")
    result = cli("generate", "--arch", "yolo11", "--build", cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    return work, result


def test_generate_build_default_prints_library_and_config_lines(default_build):
    work, result = default_build
    library = work / "parser_yolo11" / "build" / "libnvdsparser_yolo11.so"
    assert library.is_file()
    assert "parse-bbox-func-name=NvDsInferParseYoloAnchorFree" in result.stdout
    assert f"custom-lib-path={library}" in result.stdout
    assert sorted(p.name for p in (work / "parser_yolo11").iterdir()) == [
        "build", "build.log", "config_infer_primary_yolo11.txt", "dsparsers.json", "exports.map", "include",
        "labels.txt", "library_info.json.in", "meson.build", "meson_options.txt", "nvdsparser_yolo11.cpp"]


def test_library_exports_only_the_parse_function_and_records_its_abi(default_build):
    work, _ = default_build
    library = work / "parser_yolo11" / "build" / "libnvdsparser_yolo11.so"
    assert dynamic_symbols(library) == ["NvDsInferParseYoloAnchorFree"]
    handle = ctypes.CDLL(str(library), mode=ctypes.RTLD_LOCAL)  # a plain dlopen + dlsym finds it
    assert ctypes.cast(handle.NvDsInferParseYoloAnchorFree, ctypes.c_void_p).value
    info = json.loads((library.parent / (library.name + ".json")).read_text())
    assert info == {"generator": "dsparsers 0.1.0", "architecture": "yolo-anchor-free",
                    "function": "NvDsInferParseYoloAnchorFree", "abi": 9, "headers": "bundled",
                    "deepstream_include": "", "tensorrt_include": "", "cuda_include": "", "sanitize": ""}


def test_config_matches_the_model(tmp_path):
    result = cli("generate", "--onnx", YOLO11, "-o", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    config = (out / "config_infer_primary_yolo_anchor_free.txt").read_text()
    lines = set(config.splitlines())
    expected = {"num-detected-classes=80", "cluster-mode=2", "network-type=0", "maintain-aspect-ratio=1",
                "symmetric-padding=1", "model-color-format=0", "net-scale-factor=0.00392156862745098",
                "parse-bbox-func-name=NvDsInferParseYoloAnchorFree",
                "custom-lib-path=build/libnvdsparser_yolo_anchor_free.so", "labelfile-path=labels.txt",
                "pre-cluster-threshold=0.25", "[class-attrs-all]"}
    assert expected <= lines, expected - lines
    onnx_line = next(line for line in lines if line.startswith("onnx-file="))
    assert (out / onnx_line.split("=", 1)[1]).resolve() == YOLO11.resolve()
    assert (out / "labels.txt").read_text().splitlines() == [str(i) for i in range(80)]
    assert "matched: output0 [1, 84, 2100]" in result.stdout


def test_generate_is_byte_identical_on_rerun(tmp_path):
    for name in ("a", "b"):
        assert cli("generate", "--onnx", YOLO11, "-o", tmp_path / name, cwd=tmp_path).returncode == 0
    files_a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()}
    files_b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*") if p.is_file()}
    assert files_a == files_b


@pytest.mark.parametrize("args, message", [
    ((), "--arch is required without --onnx"),
    (("--arch", "yolo111"), "--arch 'yolo111': unknown architecture; did you mean yolo11"),
    (("--arch", "yolo11", "--input", "640xabc"), "--input '640xabc': expected WIDTH or WIDTHxHEIGHT"),
    (("--arch", "yolo11", "-O", "layout=diagonal"), "-O layout=diagonal: expected one of channels, rows"),
    (("--arch", "yolo11", "-O", "anchors=1,2"), "-O anchors: not an option of yolo-anchor-free"),
    (("--onnx", "missing.onnx"), "missing.onnx: no such file"),
    (("--onnx", YOLO11, "--classes", "3"), "--classes 3:"),
])
def test_generate_errors_are_one_line_exit_2_and_write_nothing(tmp_path, args, message):
    result = cli("generate", *args, "-o", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dsparsers: error: ") and message in lines[0], lines
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no staging leftovers either


def test_existing_directories_are_protected(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    refused = cli("generate", "--arch", "yolo11", "-o", foreign, cwd=tmp_path)
    assert refused.returncode == 2 and "not empty and was not written by dsparsers" in refused.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]

    out = tmp_path / "out"
    assert cli("generate", "--arch", "yolo11", "-o", out, cwd=tmp_path).returncode == 0
    (out / "build").mkdir()
    (out / "build" / "keep.me").write_text("build tree")
    assert cli("generate", "--arch", "yolo11", "--classes", "3", "-o", out, cwd=tmp_path).returncode == 0
    assert (out / "build" / "keep.me").read_text() == "build tree"  # carried over
    assert "num-detected-classes=3" in (out / "config_infer_primary_yolo11.txt").read_text()

    config = out / "config_infer_primary_yolo11.txt"
    config.write_text(config.read_text() + "# my edit\n")
    refused = cli("generate", "--arch", "yolo11", "-o", out, cwd=tmp_path)
    assert refused.returncode == 2
    assert "config_infer_primary_yolo11.txt changed since dsparsers wrote them (use --force" in refused.stderr
    assert "# my edit" in config.read_text()
    forced = cli("generate", "--arch", "yolo11", "-o", out, "--force", cwd=tmp_path)
    assert forced.returncode == 0 and "# my edit" not in config.read_text()


def fake_deepstream_includes(root: Path, abi: int) -> Path:
    """A directory laid out like DeepStream's sources/includes, declaring the ABI-8 or ABI-9 layout."""
    root.mkdir()
    header = REPO / "cpp_runtime" / "include" / "dsparsers" / "nvdsinfer_abi.h"
    (root / "nvdsinfer.h").write_text(f"#define DSPARSERS_DS_ABI {abi}\n#include \"{header}\"\n")
    (root / "nvdsinfer_custom_impl.h").write_text("#include \"nvdsinfer.h\"\n")
    return root


@pytest.mark.cpp
def test_build_against_deepstream_headers_reads_the_abi_from_them(tmp_path):
    out = tmp_path / "out"
    assert cli("generate", "--arch", "yolo11", "-o", out, cwd=tmp_path).returncode == 0
    includes = fake_deepstream_includes(tmp_path / "ds8", 8)
    result = build_directory(out, deepstream_include=includes)
    assert (result.abi, result.headers) == (8, "deepstream")
    with pytest.raises(BuildError, match="deepstream_abi=9 but the headers in .* define a 24-byte"):
        build_directory(out, abi=9, deepstream_include=includes)
    cli_result = cli("build", out, "--abi", "8", "--deepstream-include", "bundled", cwd=tmp_path)
    assert cli_result.returncode == 0 and "DeepStream ABI 8, bundled headers" in cli_result.stdout


def test_build_failure_shows_the_first_compiler_error_and_keeps_the_log(tmp_path):
    out = tmp_path / "out"
    assert cli("generate", "--arch", "yolo11", "-o", out, cwd=tmp_path).returncode == 0
    source = out / "nvdsparser_yolo11.cpp"
    source.write_text(source.read_text().replace("constexpr unsigned kBoxChannels = 4;", "constexpr unsigned kBoxChannels = ;"))
    result = cli("build", out, cwd=tmp_path)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[0]
    assert line.startswith("dsparsers: error: compile failed: ") and "error:" in line
    assert f"(full log: {out / 'build.log'})" in line and (out / "build.log").is_file()


def test_build_of_a_directory_that_was_not_generated_is_refused(tmp_path):
    with pytest.raises(UsageError, match="not a directory written by `dsparsers generate`"):
        build_directory(tmp_path)


def test_ambiguous_model_lists_candidates_and_the_option_that_settles_it(tmp_path):
    class LookAlike(AnchorFreeYolo):
        name = "look-alike"
        aliases = ()

        def match(self, model):
            return Match(0.95, "same shape, different meaning")

    import dsparsers

    class Plugin:
        @dsparsers.hookimpl
        def register_architectures(self, register):
            register(LookAlike())

    registry = Registry(load_entry_points=False, plugins=(("lookalike", Plugin()),))
    with pytest.raises(UsageError) as info:
        choose(registry, load_model(YOLO11), None)
    assert "match several architectures: yolo-anchor-free (1.00" in str(info.value)
    assert "look-alike (0.95: same shape, different meaning)" in str(info.value)
    assert str(info.value).endswith("--arch NAME settles it")
    assert choose(registry, load_model(YOLO11), "yolo11").provided.architecture.name == "yolo-anchor-free"


def test_a_missing_compiler_says_what_to_install(tmp_path):
    out = tmp_path / "out"
    assert cli("generate", "--arch", "yolo11", "-o", out, cwd=tmp_path).returncode == 0
    result = subprocess.run([sys.executable, "-m", "dsparsers.cli", "build", str(out)], capture_output=True, text=True,
                            env={**os.environ, "CXX": str(tmp_path / "no-such-compiler")})
    assert result.returncode == 1
    assert result.stderr.startswith("dsparsers: error: no C++ compiler found: install g++ (Debian/Ubuntu: apt-get install g++)")


@pytest.mark.parametrize("module,message", [
    ("mesonbuild", "dsparsers: error: meson is not installed: pip install meson ninja"),
    ("ninja", "dsparsers: error: ninja is not installed: pip install ninja"),
])
def test_a_missing_build_tool_says_what_to_install(tmp_path, module, message):
    """meson and ninja come from pip; without the package (and none on PATH) the build says what to install."""
    out = tmp_path / "out"
    assert cli("generate", "--arch", "yolo11", "-o", out, cwd=tmp_path).returncode == 0
    blocker = tmp_path / "blocked" / module
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(f"raise ImportError('{module} hidden by the test')\n")
    empty_path = tmp_path / "empty-bin"
    empty_path.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "blocked"), os.environ.get("PYTHONPATH", "")]),
           "PATH": str(empty_path)}
    result = subprocess.run([sys.executable, "-m", "dsparsers.cli", "build", str(out)], capture_output=True, text=True,
                            env=env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == message
    assert not (out / "build").exists() or not any((out / "build").glob("*.so"))
