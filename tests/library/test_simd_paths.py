"""The vector kernels of generated parsers against their scalar definitions, per instruction set.

The compact-rows scan (score_hits8) has SSE2, NEON and scalar paths, and the channel-major
column_bound / column_best are written for auto-vectorisation; conformance runs only the host's path.
tests/cpp_parsers/simd_paths.cpp compares each kernel with its plain definition on random data with
NaN, infinities, signed zeros and ties: built for the host, for the host with -DDSPARSERS_SCALAR, and,
where aarch64-linux-gnu-g++ and qemu-aarch64 are installed, for AArch64 (NEON) run under qemu.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from dsparsers.api.architecture import GenerateOptions
from dsparsers.generation.codegen import render_parser
from dsparsers.generation.output_dir import write_directory
from conftest import TESTS

#: every test here compiles or runs C++
pytestmark = pytest.mark.cpp

DRIVER = TESTS / "cpp_parsers" / "simd_paths.cpp"
FLAGS = ["-O3", "-std=c++17", "-fno-trapping-math"]  # as the generated meson.build
CHECKS = {"ROWS": "deepstream-yolo", "COLUMNS": "yolo11"}
CROSS = shutil.which("aarch64-linux-gnu-g++")
QEMU = shutil.which("qemu-aarch64")
SYSROOT = Path("/usr/aarch64-linux-gnu")


def generated_source(registry, arch: str, directory: Path) -> Path:
    architecture = registry.get(arch).architecture
    params = architecture.head_params(None, GenerateOptions(requested_as=arch))
    generated = render_parser(architecture, params, requested_as=arch)
    write_directory(directory, generated.files)
    return directory / generated.source_name


def run_driver(compiler: str, source: Path, check: str, out: Path, extra=(), runner=()) -> subprocess.CompletedProcess:
    binary = out / f"simd_{check.lower()}_{abs(hash((compiler, *extra))) % 10**8}"
    subprocess.run([compiler, *FLAGS, *extra, f"-I{source.parent / 'include'}", f"-DCHECK_{check}",
                    f'-DPARSER_SOURCE="{source}"', str(DRIVER), "-o", str(binary)], check=True,
                   capture_output=True, text=True)
    return subprocess.run([*runner, str(binary)], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("variant", ["host", "scalar"])
def test_kernels_match_their_definitions_on_the_host(registry, tmp_path, check, variant):
    source = generated_source(registry, CHECKS[check], tmp_path / "parser")
    result = run_driver("g++", source, check, tmp_path, extra=["-DDSPARSERS_SCALAR"] if variant == "scalar" else [])
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 differences" in result.stdout


@pytest.mark.skipif(not (CROSS and QEMU and SYSROOT.is_dir()),
                    reason="needs aarch64-linux-gnu-g++ and qemu-aarch64 (apt: g++-aarch64-linux-gnu qemu-user)")
@pytest.mark.parametrize("check", sorted(CHECKS))
def test_kernels_match_their_definitions_on_aarch64(registry, tmp_path, check):
    source = generated_source(registry, CHECKS[check], tmp_path / "parser")
    result = run_driver(CROSS, source, check, tmp_path, runner=[QEMU, "-L", str(SYSROOT)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 differences" in result.stdout


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="mutates the SSE2 path")
def test_the_check_catches_a_wrong_lane(registry, tmp_path):
    """The driver is not vacuous: a scan that gathers the wrong lane (row 1's class id instead of its
    score) is reported."""
    source = generated_source(registry, "deepstream-yolo", tmp_path / "parser")
    text = source.read_text()
    right = "_mm_loadu_ps(rows + 8), _MM_SHUFFLE(2, 2, 0, 0)"
    assert right in text
    source.write_text(text.replace(right, "_mm_loadu_ps(rows + 8), _MM_SHUFFLE(3, 3, 0, 0)", 1))
    result = run_driver("g++", source, "ROWS", tmp_path)
    assert result.returncode == 1 and " 0 differences" not in result.stdout
