"""Differential property tests: built parsers against the reference decoder on Hypothesis cases,
and the conformance runner itself (it must pass a right parser and fail a wrong one)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dsparsers.verification.conformance import compare, run_conformance
from dsparsers.api.abi_types import ParseOutcome, detections

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.mark.parametrize("classes, layout, abi", [
    (80, "channels", 9), (80, "rows", 9), (1, "channels", 9), (1000, "channels", 8), (3, "rows", 8),
])
def test_generated_parser_conforms(open_parser, classes, layout, abi):
    architecture, params, library = open_parser("yolo11", classes=classes, extra={"layout": layout}, abi=abi)
    report = run_conformance(library, architecture, params, examples=80 if classes < 1000 else 30, derandomize=True)
    assert report.passed, report.mismatch.summary
    assert report.examples >= 30


def _strict_threshold(source: str) -> str:
    """A classic parser bug: '>' where nvinfer keeps scores equal to the threshold."""
    return source.replace("if (!(score >= dsparsers::precluster_threshold(params, class_id))) return;",
                          "if (!(score > dsparsers::precluster_threshold(params, class_id))) return;")


def _no_clip(source: str) -> str:
    """Another: boxes not clipped to the network."""
    return source.replace("dsparsers::add_box(objects, network,", "dsparsers::add_box(objects, NvDsInferNetworkInfo{1u << 20, 1u << 20, 3},")


@pytest.mark.parametrize("bug", [_strict_threshold, _no_clip])
def test_broken_parser_fails_with_a_shrunk_example(open_parser, bug):
    architecture, params, library = open_parser("yolo11", classes=80, source_patch=bug)
    report = run_conformance(library, architecture, params, examples=300, derandomize=True)
    assert not report.passed
    assert report.case is not None and report.mismatch.summary
    # the shrunk case still reproduces the mismatch
    assert compare(architecture.reference(report.case, params), library.parse(report.case)) is not None


def test_compare_treats_objects_as_a_multiset_with_tolerance():
    a = ParseOutcome(True, detections([(1, 10, 10, 5, 5, 0.5), (2, 20, 20, 5, 5, 0.6)]))
    b = ParseOutcome(True, detections([(2, 20, 20.0004, 5, 5, 0.6), (1, 10, 10, 5, 5, 0.5)]))
    assert compare(a, b) is None
    c = ParseOutcome(True, detections([(2, 20, 20.01, 5, 5, 0.6), (1, 10, 10, 5, 5, 0.5)]))
    mismatch = compare(a, c)
    assert mismatch is not None and len(mismatch.missing) == 1 and len(mismatch.extra) == 1
    assert compare(a, ParseOutcome.rejected("x")).summary.startswith("the library returned false")
    assert compare(ParseOutcome.rejected("bad dims"), a).summary.startswith("the library returned true")
    assert compare(ParseOutcome.rejected("x"), ParseOutcome(False, detections([(0, 1, 1, 1, 1, 1)]))) is None


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dsparsers.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_conform_command_passes_a_good_library_and_fails_a_broken_one(build_parser):
    _, _, good = build_parser("yolo11", classes=80)
    ok = _cli("conform", "--lib", str(good.library), "--func", good.function, "--arch", "yolo11", "--examples", "60")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PASS NvDsInferParseYoloAnchorFree" in ok.stdout
    _, _, bad = build_parser("yolo11", classes=80, source_patch=_strict_threshold)
    failed = _cli("conform", "--dir", str(bad.library.parent.parent), "--examples", "300", "--seed", "1")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAIL NvDsInferParseYoloAnchorFree" in failed.stdout
    assert "first mismatch, shrunk" in failed.stdout and "missing (expected)" in failed.stdout


def test_conform_command_reports_a_missing_function_with_the_exported_ones(build_parser):
    _, _, good = build_parser("yolo11", classes=80)
    result = _cli("conform", "--lib", str(good.library), "--func", "NvDsInferParseCustomYolo", "--arch", "yolo11")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"dsparsers: error: --func NvDsInferParseCustomYolo: not found in {good.library}; "
        "it exports NvDsInferParseYoloAnchorFree"]
