"""The nvinfer-style harness on libraries dsparsers did not write: exceptions, refusals, ABI records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dsparsers.verification.conformance import run_conformance
from dsparsers.errors import LibraryError
from dsparsers.verification.loader import ParserLibrary
from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParserCase
from conftest import TESTS

#: every test here loads C++ through the nvinfer-style loader (built on first use)
pytestmark = pytest.mark.cpp

HERE = TESTS
INCLUDE = HERE.parent / "cpp_runtime" / "include"


@pytest.fixture(scope="module")
def handwritten(tmp_path_factory):
    out = tmp_path_factory.mktemp("hand") / "libhandwritten.so"
    subprocess.run(["g++", "-std=c++17", "-O2", "-shared", "-fPIC", f"-I{INCLUDE}", "-DDSPARSERS_DS_ABI=9",
                    "-o", str(out), str(HERE / "cpp_parsers" / "handwritten_parser.cpp")], check=True)
    return out


def simple_case():
    data = np.zeros((84, 1), np.float32)
    data[:4, 0] = (100, 100, 10, 10)
    data[4 + 3, 0] = 0.9
    return ParserCase((Layer("output0", data),), NetworkInfo(640, 640), DetectionParams.uniform(80, 0.25))


def test_an_exception_never_crosses_the_loader(handwritten):
    with ParserLibrary(handwritten, "NvDsInferParseThrows", 9) as library:
        with pytest.raises(LibraryError, match="parser threw: tensor went missing"):
            library.parse(simple_case())
        with pytest.raises(LibraryError):  # and the handle stays usable
            library.parse(simple_case())


def test_a_false_return_is_reported_as_refused(handwritten):
    with ParserLibrary(handwritten, "NvDsInferParseRefuses", 9) as library:
        outcome = library.parse(simple_case())
    assert not outcome.accepted and len(outcome.objects) == 0


def test_a_handwritten_parser_runs_and_conformance_finds_its_bugs(handwritten, registry):
    from dsparsers.api.architecture import GenerateOptions

    architecture = registry.get("yolov8").architecture
    params = architecture.head_params(None, GenerateOptions())
    with ParserLibrary(handwritten, "NvDsInferParseCopiedYolo", 9) as library:
        assert [int(o["class_id"]) for o in library.parse(simple_case()).objects] == [3]
        report = run_conformance(library, architecture, params, examples=200, derandomize=True)
    assert not report.passed


def test_missing_library_and_function_are_clear(handwritten, tmp_path):
    with pytest.raises(LibraryError, match="no such file"):
        ParserLibrary(tmp_path / "nope.so", "f")
    with pytest.raises(LibraryError) as info:
        ParserLibrary(handwritten, "NvDsInferParseYolo")
    assert str(info.value) == (f"--func NvDsInferParseYolo: not found in {handwritten}; it exports "
                               "NvDsInferParseCopiedYolo, NvDsInferParseRefuses, NvDsInferParseThrows")
    not_elf = tmp_path / "libfake.so"
    not_elf.write_text("not a library")
    with pytest.raises(LibraryError, match="dlopen failed"):
        ParserLibrary(not_elf, "f")


def test_abi_recorded_beside_the_library_is_enforced(handwritten, tmp_path):
    copy = tmp_path / "libcopy.so"
    copy.write_bytes(handwritten.read_bytes())
    Path(str(copy) + ".json").write_text(json.dumps({"abi": 8}))
    assert ParserLibrary(copy, "NvDsInferParseRefuses").abi == 8
    with pytest.raises(LibraryError, match="built for DeepStream ABI 8"):
        ParserLibrary(copy, "NvDsInferParseRefuses", 9)


def test_conform_cli_without_required_options(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dsparsers.cli", "conform", "--arch", "yolo11"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "dsparsers: error: --lib, --func required (or --dir with a generated directory)"
