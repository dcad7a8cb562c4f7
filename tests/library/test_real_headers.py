"""Builds against NVIDIA's real headers, laid out as on a DeepStream machine, and the header search.

The real DeepStream 9.1 and TensorRT 10.16 headers live in ``../shared/third_party`` (test data, never
copied into the project: the layouts below are copies and symlinks under tmp_path). A DeepStream machine has

- DeepStream's includes at /opt/nvidia/deepstream/deepstream/sources/includes (``deepstream`` is a symlink
  to ``deepstream-X.Y``): here ``<tmp>/opt/nvidia/deepstream/deepstream/sources/includes``;
- TensorRT's headers in the compiler's multiarch directory (/usr/include/x86_64-linux-gnu, from
  libnvinfer-dev): here ``<tmp>/usr/include/<multiarch>``, put on the compiler's own search path the way
  the compiler itself offers, CPLUS_INCLUDE_PATH. dsparsers reads that path from the compiler
  (``c++ -E -v``), exactly as it reads /usr/include/x86_64-linux-gnu on a real machine, so the code path is
  the one a DeepStream machine takes: no -I for it, the directory recorded;
- CUDA's headers at /usr/local/cuda-<version>/include: the development machines have CUDA 13.0's there
  (the tests skip where it is absent) and no CUDA variable is set.

The DeepStream 6.x-like layout uses a header written here at run time from 9.1's text with the facts of
third_party/README.md: NvDsInferDataType without INT64/UINT8, NvDsInferObjectDetectionInfo without
rotation_angle (24 bytes, ABI 8).
"""

from __future__ import annotations

import platform
import re
from pathlib import Path

import pytest

from conftest import REPO
from dsparsers.api.architecture import GenerateOptions
from dsparsers.api.registry import Registry
from dsparsers.errors import UsageError
from dsparsers.library.meson_build import (CUDA_HEADER, HeaderDirs, compiler_include_dirs, cuda_include_candidates,
                                           find_header_dirs)

THIRD_PARTY = REPO.parent / "shared" / "third_party"
DS91 = THIRD_PARTY / "deepstream-9.1" / "sources" / "includes"
TENSORRT = THIRD_PARTY / "tensorrt-10.16" / "include"
CUDA = Path("/usr/local/cuda-13.0/include")
ARCHITECTURES = [p.architecture.name for p in Registry(load_entry_points=False).architectures()]
MULTIARCH = f"{platform.machine()}-linux-gnu"
#: variables that would point the search somewhere: a DeepStream machine need not set any
SEARCH_VARIABLES = ("CUDA_VER", "CUDA_HOME", "CUDA_PATH", "TENSORRT_DIR", "CPATH", "CPLUS_INCLUDE_PATH", "CXX")

needs_real_headers = pytest.mark.skipif(
    not (DS91 / "nvdsinfer_custom_impl.h").is_file() or not (TENSORRT / "NvInfer.h").is_file(),
    reason=f"the real DeepStream/TensorRT headers are not at {THIRD_PARTY} (../shared absent)")
needs_cuda = pytest.mark.skipif(not (CUDA / CUDA_HEADER).is_file(), reason=f"no CUDA headers at {CUDA}")


def _link_all(source: Path, target: Path, pattern: str = "*.h") -> None:
    target.mkdir(parents=True, exist_ok=True)
    for header in sorted(source.glob(pattern)):
        (target / header.name).symlink_to(header)


def deepstream_6_header(text: str) -> str:
    """9.1's nvdsinfer.h made DeepStream 6.x-like: INT64/UINT8 and rotation_angle dropped."""
    edited, enums = re.subn(r"\n[ \t]*/\*\*[^\n]*\*/\n[ \t]*(INT64 = 4,|UINT8 = 5)", "", text)
    edited, members = re.subn(r"\n[ \t]*/\*\* Holds the rotation angle.*?\*/\n[ \t]*float rotation_angle;", "",
                              edited, flags=re.DOTALL)
    assert (enums, members) == (2, 1), "nvdsinfer.h of 9.1 changed shape: update the edit"
    assert not re.search(r"\b(INT64|UINT8|rotation_angle)\b", edited)
    assert re.search(r"INT32 = 3,?\s*\} NvDsInferDataType;", edited)
    return edited


def deepstream_machine(root: Path, release: str) -> Path:
    """``root`` laid out like a DeepStream machine of ``release`` ("9.1" or "6.x"); returns DeepStream's
    includes directory (reached through the usual deepstream -> deepstream-X.Y symlink)."""
    prefix = root / "opt" / "nvidia" / "deepstream"
    includes = prefix / f"deepstream-{release}" / "sources" / "includes"
    includes.mkdir(parents=True)
    (includes / "nvdsinfer_custom_impl.h").write_text((DS91 / "nvdsinfer_custom_impl.h").read_text())
    if release == "9.1":
        (includes / "nvdsinfer.h").write_text((DS91 / "nvdsinfer.h").read_text())
    else:
        (includes / "nvdsinfer.h").write_text(deepstream_6_header((DS91 / "nvdsinfer.h").read_text()))
    (prefix / "deepstream").symlink_to(f"deepstream-{release}")
    _link_all(TENSORRT, root / "usr" / "include" / MULTIARCH, "Nv*.h")
    return prefix / "deepstream" / "sources" / "includes"


@pytest.fixture(scope="module")
def machines(tmp_path_factory):
    return {release: (root, deepstream_machine(root, release))
            for release in ("9.1", "6.x") for root in [tmp_path_factory.mktemp(f"ds-{release}")]}


@pytest.fixture
def machine_environment(monkeypatch):
    """No search variable set; the fake multiarch directory on the compiler's own path (see the module doc)."""
    for name in SEARCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def use(root: Path) -> Path:
        multiarch = root / "usr" / "include" / MULTIARCH
        monkeypatch.setenv("CPLUS_INCLUDE_PATH", str(multiarch))
        return multiarch

    return use


@needs_real_headers
@needs_cuda
@pytest.mark.cpp
@pytest.mark.parametrize("release, abi", [("9.1", 9), ("6.x", 8)])
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_family_builds_against_the_real_headers_and_conforms(machines, machine_environment, tmp_path, arch,
                                                                  release, abi):
    from dsparsers.library.parser_build import build_parser
    from dsparsers.verification.conformance import run_conformance
    from dsparsers.verification.loader import ParserLibrary

    root, includes = machines[release]
    multiarch = machine_environment(root)
    architecture = Registry(load_entry_points=False).get(arch).architecture
    params = architecture.head_params(None, GenerateOptions(requested_as=arch))
    result = build_parser(architecture, params, tmp_path / "parser", requested_as=arch,
                          deepstream_include=includes).result
    # the ABI read from the headers' object size; every directory recorded where it was found
    assert (result.abi, result.headers) == (abi, "deepstream")
    assert result.deepstream_include == str(includes.resolve())
    assert result.tensorrt_include == str(multiarch)
    assert Path(result.cuda_include).resolve() == CUDA.resolve()
    log = result.log.read_text()
    commands = (result.library.parent / "compile_commands.json").read_text()
    assert f"-I{includes.resolve()}" in commands.replace("-I ", "-I")
    assert str(multiarch) not in commands  # the compiler's own directory is not added (only recorded)
    if release == "6.x":
        assert 'Checking if "NvDsInferDataType names INT64 and UINT8" compiles: NO' in log
    library = ParserLibrary(result.library, result.function, result.abi, kind=architecture.parser_kind)
    try:
        report = run_conformance(library, architecture, params, examples=15, derandomize=True)
    finally:
        library.close()
    assert report.passed, f"{arch} against DeepStream {release} headers: {report.mismatch.summary}"


@needs_real_headers
@needs_cuda
@pytest.mark.cpp
def test_abi_asked_for_must_match_the_headers(machines, machine_environment, tmp_path):
    from dsparsers.errors import BuildError
    from dsparsers.library.parser_build import build_parser

    root, includes = machines["6.x"]
    machine_environment(root)
    architecture = Registry(load_entry_points=False).get("yolo11").architecture
    params = architecture.head_params(None, GenerateOptions(requested_as="yolo11"))
    with pytest.raises(BuildError, match="deepstream_abi=9 but the headers in .* define a 24-byte"):
        build_parser(architecture, params, tmp_path / "p", requested_as="yolo11", deepstream_include=includes, abi=9)


# -- the header search, without compiling -------------------------------------------------------------
def _fake_deepstream(root: Path, *, tensorrt: bool = True) -> Path:
    ds = root / "ds"
    ds.mkdir(parents=True)
    (ds / "nvdsinfer.h").write_text("#include <stdint.h>\n")
    (ds / "nvdsinfer_custom_impl.h").write_text(
        '#include <string>\n#include "nvdsinfer.h"\n' + ("#include <NvInfer.h>\n#include <NvOnnxParser.h>\n" if tensorrt else ""))
    return ds


def _fake_tensorrt(directory: Path, *, onnx: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "NvInfer.h").write_text('#include "NvInferRuntimeBase.h"\n')
    (directory / "NvInferRuntimeBase.h").write_text("#include <cstddef>\n#include <cuda_runtime_api.h>\n")
    if onnx:
        (directory / "NvOnnxParser.h").write_text('#include "NvInfer.h"\n')
    return directory


def _fake_cuda(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CUDA_HEADER).write_text("// fake\n")
    return directory


def test_missing_tensorrt_is_one_line_naming_the_header_and_the_option(tmp_path):
    ds = _fake_deepstream(tmp_path)
    with pytest.raises(UsageError) as info:
        find_header_dirs(ds, environ={}, root=tmp_path, compiler_dirs=())
    assert str(info.value) == (f"DeepStream headers at {ds} include NvInfer.h, which is not on the include path: "
                               "install TensorRT's headers (Debian/Ubuntu: libnvinfer-dev libnvonnxparsers-dev) "
                               "or pass --tensorrt-include DIR")


def test_missing_onnx_parser_header_is_named_too(tmp_path):
    """libnvinfer-dev without libnvonnxparsers-dev: NvInfer.h is found, NvOnnxParser.h is not."""
    ds = _fake_deepstream(tmp_path)
    multiarch = _fake_tensorrt(tmp_path / "usr/include" / MULTIARCH, onnx=False)
    _fake_cuda(tmp_path / "usr/local/cuda/include")
    with pytest.raises(UsageError) as info:
        find_header_dirs(ds, environ={}, root=tmp_path, compiler_dirs=(multiarch,))
    assert str(info.value) == (f"DeepStream headers at {ds} include NvOnnxParser.h, which is not on the include path: "
                               "install TensorRT's headers (Debian/Ubuntu: libnvinfer-dev libnvonnxparsers-dev) "
                               "or pass --tensorrt-include DIR")
    # a TensorRT directory given that lacks it: named as the one used
    with pytest.raises(UsageError, match=rf"include NvOnnxParser.h, which is in neither {re.escape(str(multiarch))} "
                                         r"\(the tensorrt headers used\) nor the compiler's path"):
        find_header_dirs(ds, tensorrt_include=multiarch, environ={}, root=tmp_path, compiler_dirs=())


def test_missing_cuda_names_the_tensorrt_header_that_needs_it_and_where_it_looked(tmp_path):
    ds = _fake_deepstream(tmp_path)
    multiarch = _fake_tensorrt(tmp_path / "usr/include" / MULTIARCH)
    with pytest.raises(UsageError) as info:
        find_header_dirs(ds, environ={"PATH": ""}, root=tmp_path, compiler_dirs=(multiarch,))
    message = str(info.value)
    assert message.startswith(f"TensorRT's headers at {multiarch} include cuda_runtime_api.h, which is not on the "
                              "include path: install the CUDA toolkit's headers or pass --cuda-include DIR (looked in ")
    assert str(tmp_path / "usr/local/cuda/include") in message and "\n" not in message


def test_tensorrt_on_the_compiler_path_is_recorded_not_added_and_cuda_found_at_usr_local(tmp_path):
    ds = _fake_deepstream(tmp_path)
    multiarch = _fake_tensorrt(tmp_path / "usr/include" / MULTIARCH)
    cuda = _fake_cuda(tmp_path / "usr/local/cuda-12.4/include")
    (tmp_path / "usr/local/cuda").symlink_to("cuda-12.4")
    dirs = find_header_dirs(ds, environ={"PATH": ""}, root=tmp_path, compiler_dirs=(multiarch, tmp_path / "usr/include"))
    assert dirs == HeaderDirs(str(ds), str(multiarch), str(cuda.resolve()), ("tensorrt",))
    assert dirs.meson_options() == [f"-Dtensorrt_include={multiarch}", f"-Dcudart_include={cuda.resolve()}",
                                    "-Dcompiler_finds=tensorrt"]


def test_headers_that_include_no_tensorrt_need_nothing(tmp_path):
    ds = _fake_deepstream(tmp_path, tensorrt=False)
    assert find_header_dirs(ds, environ={}, root=tmp_path, compiler_dirs=()) == HeaderDirs(str(ds))
    assert HeaderDirs(str(ds)).meson_options() == ["-Dtensorrt_include=none", "-Dcudart_include=none",
                                                   "-Dcompiler_finds="]


def test_tensorrt_dir_and_the_explicit_options(tmp_path):
    ds = _fake_deepstream(tmp_path)
    tarball = tmp_path / "TensorRT-10.16"
    _fake_tensorrt(tarball / "include")
    cuda = _fake_cuda(tmp_path / "cuda-home/include")
    dirs = find_header_dirs(ds, environ={"TENSORRT_DIR": str(tarball), "CUDA_HOME": str(tmp_path / "cuda-home")},
                            root=tmp_path, compiler_dirs=())
    assert (dirs.tensorrt, dirs.cuda, dirs.compiler_finds) == (str(tarball / "include"), str(cuda), ())
    other = _fake_tensorrt(tmp_path / "other-trt")
    given = find_header_dirs(ds, tensorrt_include=other, cuda_include=cuda, environ={}, root=tmp_path, compiler_dirs=())
    assert (given.tensorrt, given.cuda) == (str(other), str(cuda))
    with pytest.raises(UsageError, match=rf"^--tensorrt-include {re.escape(str(tmp_path))}: no NvInfer.h there$"):
        find_header_dirs(ds, tensorrt_include=tmp_path, environ={}, root=tmp_path, compiler_dirs=())


def test_cuda_candidates_follow_a_deepstream_machine_order(tmp_path):
    for version in ("11.8", "12.2", "12.10"):
        _fake_cuda(tmp_path / f"usr/local/cuda-{version}/include")
    nvcc = tmp_path / "opt/cuda-nvcc/bin/nvcc"
    nvcc.parent.mkdir(parents=True)
    nvcc.write_text("#!/bin/sh\n")
    nvcc.chmod(0o755)
    env = {"CUDA_VER": "11.8", "CUDA_HOME": "/h", "CUDA_PATH": "/p", "PATH": str(nvcc.parent)}
    local = tmp_path / "usr/local"
    assert [d for d, _ in cuda_include_candidates(env, tmp_path)] == [
        local / "cuda-11.8/include", Path("/h/include"), Path("/p/include"), local / "cuda/include",
        local / "cuda-12.10/include", local / "cuda-12.2/include", local / "cuda-11.8/include",
        tmp_path / "opt/cuda-nvcc/include"]
    # CUDA_VER wins over a newer toolkit, as in DeepStream's Makefiles; without it the newest is taken
    ds = _fake_deepstream(tmp_path)
    multiarch = _fake_tensorrt(tmp_path / "usr/include" / MULTIARCH)
    assert find_header_dirs(ds, environ={"CUDA_VER": "11.8", "PATH": ""}, root=tmp_path,
                            compiler_dirs=(multiarch,)).cuda == str(local / "cuda-11.8/include")
    assert find_header_dirs(ds, environ={"PATH": ""}, root=tmp_path,
                            compiler_dirs=(multiarch,)).cuda == str(local / "cuda-12.10/include")


def test_compiler_include_dirs_are_the_compilers_own(tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    dirs = compiler_include_dirs({"PATH": __import__("os").environ["PATH"], "CPLUS_INCLUDE_PATH": str(extra)})
    assert dirs is not None and Path("/usr/include") in dirs and extra in dirs
    assert compiler_include_dirs({"PATH": "", "CXX": str(tmp_path / "no-such-compiler")}) is None


def test_cli_build_without_tensorrt_stops_with_the_one_line_error(tmp_path):
    import os
    import subprocess
    import sys

    ds = _fake_deepstream(tmp_path)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in SEARCH_VARIABLES}
    run = lambda *args: subprocess.run([sys.executable, "-m", "dsparsers.cli", *map(str, args)],  # noqa: E731
                                       capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run("generate", "--arch", "yolo11", "-o", out).returncode == 0
    if any((d / "NvInfer.h").is_file() for d in compiler_include_dirs(env) or ()):
        pytest.skip("this machine has TensorRT's headers on the compiler's path")
    result = run("build", out, "--deepstream-include", ds)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"dsparsers: error: DeepStream headers at {ds.resolve()} include NvInfer.h, "
                                     "which is not on the include path: install TensorRT's headers (Debian/Ubuntu: "
                                     "libnvinfer-dev libnvonnxparsers-dev) or pass --tensorrt-include DIR")
    assert not (out / "build").exists()
