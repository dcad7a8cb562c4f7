"""`conform` on parser libraries dsparsers did not write: tests/cpp_parsers/nms_bug_classes.cpp holds a
correct EfficientNMS / BatchedNMS parser and one variant per bug class found in real parsers. Each bug
must be found, classified (its finding kind) and shrunk, crashes must stay in the worker, and the two
tiers and the conventions must be told apart."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from dsparsers.api.architecture import GenerateOptions
from dsparsers.verification.isolation import IsolatedLibrary, ParserCrash
from dsparsers.verification.tiers import CONTRACT, ROBUSTNESS, outside_contract, run_conform
from conftest import TESTS

pytestmark = [pytest.mark.cpp, pytest.mark.filterwarnings("ignore::RuntimeWarning")]
SOURCE = TESTS / "cpp_parsers" / "nms_bug_classes.cpp"
INCLUDE = TESTS.parent / "cpp_runtime" / "include"
EFFICIENT = {"count": "num_detections", "boxes": "detection_boxes", "scores": "detection_scores",
             "classes": "detection_classes"}
BATCHED = {"count": "num_detections", "boxes": "nmsed_boxes", "scores": "nmsed_scores", "classes": "nmsed_classes"}


def compile_parser(out, *flags):
    """g++ the test parsers into ``out`` (asserts live: no -DNDEBUG)."""
    subprocess.run(["g++", "-std=c++17", "-O1", "-g", "-shared", "-fPIC", f"-I{INCLUDE}", "-DDSPARSERS_DS_ABI=9",
                    *flags, "-o", str(out), str(SOURCE)], check=True)
    return out


@pytest.fixture(scope="module")
def nms_library(tmp_path_factory):
    return compile_parser(tmp_path_factory.mktemp("nms") / "libnms_bugs.so")


@pytest.fixture(scope="module")
def nms_asan_library(tmp_path_factory):
    return compile_parser(tmp_path_factory.mktemp("nms-asan") / "libnms_bugs_asan.so", "-fsanitize=address,undefined",
                          "-fno-omit-frame-pointer")


def head(registry, arch):
    architecture = registry.get(arch).architecture
    return architecture, architecture.head_params(None, GenerateOptions())


def conform(library, registry, function, *, first_only=True, **kwargs):
    arch = "tao-batched-nms" if "Batched" in function else "efficientnms"
    architecture, params = head(registry, arch)
    options = dict(examples=150, derandomize=True)
    if first_only:  # the first finding of the contract tier, shrunk
        options.update(hostile=False, max_rounds=1)
    options.update(kwargs)
    with IsolatedLibrary(library, function, 9, timeout=10) as parser:
        return run_conform(parser, architecture, params, **options)


def rows(case, names):
    """(count, boxes, scores, classes) of a case, by layer name."""
    layers = {layer.name: layer.data for layer in case.layers}
    if [layer.name for layer in case.layers] == [f"engine_output_{i}" for i in range(4)]:
        return tuple(layer.data for layer in case.layers)  # renamed bindings come in the plugin's order
    assert set(names.values()) <= set(layers), f"shrunk case lost its names: {list(layers)}"
    return tuple(layers[names[role]] for role in ("count", "boxes", "scores", "classes"))


def first(result):
    assert result.findings, "no finding"
    return result.findings[0]


@pytest.mark.parametrize("function", ["NvDsInferParseEfficientGood", "NvDsInferParseBatchedGood"])
def test_a_correct_foreign_parser_passes_both_tiers(nms_library, registry, function):
    result = conform(nms_library, registry, function, first_only=False, strict=True, examples=100)
    assert result.passed, [(f.tier, f.kind, f.summary) for f in result.findings]
    assert result.runs[CONTRACT].examples >= 100 and result.runs[ROBUSTNESS].examples >= 50
    assert result.runs[ROBUSTNESS].fixed > 0 and result.restarts == 0


def test_a_nan_class_cast_segfaults_in_the_worker_and_shrinks(nms_library, registry):
    result = conform(nms_library, registry, "NvDsInferParseBatchedNanClassCast")
    finding = first(result)  # and this process is still here
    assert (finding.tier, finding.kind) == (CONTRACT, "crash: SIGSEGV")
    assert isinstance(finding.crash, ParserCrash) and finding.crash.signal_name == "SIGSEGV"
    count, _, _, classes = rows(finding.case, BATCHED)
    counted = classes[: int(count[0])]
    # one NaN class id among a handful of rows (the NMS-outputs strategy shrinks its row list to a few, not
    # always to one: the rows beside it are valid and every one of them is still read)
    assert np.isnan(counted).sum() == 1 and len(classes) <= 4
    assert not outside_contract(finding.case)
    assert result.passed is False and result.restarts >= 1


def test_an_assert_on_a_class_id_aborts_and_is_named(nms_library, registry):
    finding = first(conform(nms_library, registry, "NvDsInferParseEfficientAssertClass"))
    assert finding.kind == "crash: SIGABRT"
    assert "Assertion" in finding.summary and "v >= 0 && v < static_cast<int32_t>(kModelClasses)" in finding.crash.log
    count, _, _, classes = rows(finding.case, EFFICIENT)
    # shrunk to a few counted rows (the UB-free part of the shrink: padding rows are never read), one of
    # them with the bad id
    assert 1 <= int(count[0]) <= 4
    assert any(not 0 <= int(c) < 80 for c in classes[: int(count[0])])


def test_per_class_thresholds_ignored(nms_library, registry):
    finding = first(conform(nms_library, registry, "NvDsInferParseEfficientIgnoresPerClass"))
    assert finding.kind in ("objects missing", "unexpected objects")
    count, _, scores, classes = rows(finding.case, EFFICIENT)
    thresholds = finding.case.params.precluster
    assert 1 <= int(count[0]) <= 4  # shrunk to a few counted rows
    # the counted row that tells the bug: kept by exactly one of its own class's threshold and class 0's
    telling = [k for k in range(int(count[0])) if 0 < int(classes[k]) < len(thresholds) and
               (np.float32(scores[k]) >= np.float32(thresholds[int(classes[k])])) !=
               (np.float32(scores[k]) >= np.float32(thresholds[0]))]
    assert telling, "no counted row separates the class's own threshold from class 0's"
    cls, score = int(classes[telling[0]]), np.float32(scores[telling[0]])
    assert 0 < cls < len(thresholds)
    # the row is kept by exactly one of its own class's threshold and class 0's
    assert (score >= np.float32(thresholds[cls])) != (score >= np.float32(thresholds[0]))


def test_a_break_on_an_unconfigured_class_drops_later_rows(nms_library, registry):
    finding = first(conform(nms_library, registry, "NvDsInferParseEfficientBreakUnconfigured"))
    assert finding.kind == "objects missing"
    count, _, _, classes = rows(finding.case, EFFICIENT)
    configured = finding.case.params.num_classes_configured
    counted = [int(c) for c in classes[: int(count[0])]]
    stop = next(i for i, c in enumerate(counted) if c >= configured)  # the row the parser breaks on
    later = {c for c in counted[stop + 1:] if 0 <= c < configured}
    assert later and {int(o["class_id"]) for o in finding.mismatch.missing} <= later
    assert int(count[0]) <= 8  # shrunk (the strategy's row lists shrink to a few rows, not always to two)


def test_int32_class_ids_read_as_float(nms_library, registry):
    finding = first(conform(nms_library, registry, "NvDsInferParseEfficientInt32AsFloat"))
    assert finding.kind == "wrong class ids"
    count, _, _, classes = rows(finding.case, EFFICIENT)
    assert int(count[0]) == 1 and int(classes[0]) >= 1
    # int32 bits 1..79 read as float are denormals, truncated to class 0
    assert int(finding.mismatch.extra[0]["class_id"]) == 0
    assert int(finding.mismatch.missing[0]["class_id"]) == int(classes[0])


def test_a_map_keyed_on_confidence_merges_equal_scores(nms_library, registry):
    finding = first(conform(nms_library, registry, "NvDsInferParseEfficientMapCollapse"))
    assert finding.kind == "objects missing"
    expected = finding.mismatch.expected.objects
    assert len(expected) == 2 and expected["confidence"][0] == expected["confidence"][1]
    assert len(finding.mismatch.actual.objects) == 1


def test_an_uninitialised_rotation_angle_is_named(nms_library, registry):
    finding = first(conform(nms_library, registry, "NvDsInferParseEfficientUninitRotation"))
    assert finding.kind == "rotation_angle uninitialised"
    assert "never sets it" in finding.summary
    angles = finding.mismatch.actual.objects["rotation_angle"]
    assert len(angles) == 1 and angles.view(np.uint32)[0] in (0xA5A5A5A5, 0x5A5A5A5A)


def test_a_reverse_loop_from_end_skips_the_first_row(nms_library, registry):
    finding = first(conform(nms_library, registry, "NvDsInferParseEfficientReverseOverrun"))
    # the loop starts at end(): it reads one row past the counted ones (undefined: whatever lies there
    # may be taken for an object) and never reaches the first
    assert finding.kind in ("objects missing", "unexpected objects")
    count, _, _, _ = rows(finding.case, EFFICIENT)
    assert 1 <= int(count[0]) <= 4
    assert finding.mismatch.missing is not None and len(finding.mismatch.missing) >= 1 or finding.mismatch.extra is not None


def test_an_out_of_bounds_threshold_read_without_sanitizers_keeps_unconfigured_classes(nms_library, registry):
    finding = first(conform(nms_library, registry, "NvDsInferParseEfficientOobThreshold"))
    assert finding.kind == "unexpected objects"
    configured = finding.case.params.num_classes_configured
    assert len(finding.case.params.precluster) == configured  # a contract input: nvinfer sized the vector
    assert all(int(o["class_id"]) >= configured for o in finding.mismatch.extra)


def test_a_bug_only_beyond_the_contract_fails_only_with_strict(nms_library, registry):
    """The parser trusts the threshold vector to cover every class id: inside the contract (vectors sized
    to num-detected-classes) it is right, so the lenient verdict passes. Beyond it (short vectors) it reads
    past the vector, which is undefined behaviour: a crash, wrong rows or, by luck, nothing (the sanitizer
    test below finds it every time). Whatever the robustness tier sees, --strict fails exactly when it saw
    something, and the contract tier never does."""
    function = "NvDsInferParseEfficientTrustsVectorSize"
    lenient = conform(nms_library, registry, function, first_only=False, examples=100)
    assert lenient.passed and not lenient.tier_findings(CONTRACT)
    for finding in lenient.tier_findings(ROBUSTNESS):
        assert finding.outside, finding  # every robustness finding says which input is beyond the contract
    strict = conform(nms_library, registry, function, first_only=False, examples=100, strict=True)
    assert not strict.tier_findings(CONTRACT)
    assert strict.passed == (not strict.tier_findings(ROBUSTNESS))


@pytest.mark.parametrize("function, convention, option", [
    ("NvDsInferParseEfficientKeepsSubPixel", "min-box-0", "--min-box 0"),
    ("NvDsInferParseEfficientClipsAtLastPixel", "clip-w-1", "--clip-at w-1"),
])
def test_a_convention_is_a_finding_until_its_option_is_given(nms_library, registry, function, convention, option):
    without = conform(nms_library, registry, function, first_only=False, examples=100, hostile=False)
    assert [f.kind for f in without.findings] == [f"convention: {convention}"]
    assert not without.passed
    line, = without.convention_lines()
    assert line.endswith(f"convention `{option}` makes them pass") and " of 100 contract case(s): " in line
    assert int(line.split(" of ")[0]) >= 1
    accepted = conform(nms_library, registry, function, first_only=False, examples=100, applied=(convention,))
    assert accepted.passed, [(f.kind, f.summary) for f in accepted.findings]


def test_the_worker_survives_nothing_and_the_handle_recovers(nms_library, registry):
    """After a crash the next call forks a fresh worker: the same library answers again."""
    from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParserCase

    def case(class_value):
        return ParserCase((Layer("num_detections", np.array([1], np.int32)),
                           Layer("nmsed_boxes", np.array([[0.1, 0.1, 0.5, 0.5]], np.float32)),
                           Layer("nmsed_scores", np.array([0.9], np.float32)),
                           Layer("nmsed_classes", np.array([class_value], np.float32))),
                          NetworkInfo(640, 640), DetectionParams.uniform(80, 0.5))

    with IsolatedLibrary(nms_library, "NvDsInferParseBatchedNanClassCast", 9) as parser:
        good = parser.parse(case(3.0))
        assert [(int(o["class_id"]), float(o["left"])) for o in good.objects] == [(3, np.float32(0.1) * 640)]
        with pytest.raises(ParserCrash) as info:
            parser.parse(case(float("nan")))
        assert info.value.kind == "segfault" and info.value.label == "crash: SIGSEGV"
        assert len(parser.parse(case(3.0)).objects) == 1 and parser.restarts == 1


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dsparsers.cli", *map(str, args)], capture_output=True, text=True)


def test_conform_cli_reports_an_abort_with_exit_1_and_writes_the_report(nms_library, tmp_path):
    result = _cli("conform", "--lib", nms_library, "--func", "NvDsInferParseEfficientAssertClass", "--arch",
                  "efficientnms", "--examples", "100", "--seed", "3", "--report", tmp_path / "report")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FAIL NvDsInferParseEfficientAssertClass" in result.stdout
    assert "contract finding crash: SIGABRT" in result.stdout
    data = json.loads((tmp_path / "report" / "libnms_bugs.so.NvDsInferParseEfficientAssertClass.json").read_text())
    assert data["verdict"] == "FAIL"
    kinds = {f["kind"] for f in data["findings"] if f["tier"] == "contract"}
    assert "crash: SIGABRT" in kinds
    crash = next(f for f in data["findings"] if f["kind"] == "crash: SIGABRT")
    assert crash["crash"]["signal"] == "SIGABRT" and crash["shrunk"]
    assert [layer["name"] for layer in crash["case"]["layers"]] and data["coverage"]["contract"]["cases"] >= 100
    markdown = (tmp_path / "report" / "libnms_bugs.so.NvDsInferParseEfficientAssertClass.md").read_text()
    assert "**FAIL**" in markdown and "### crash: SIGABRT" in markdown and "## Findings: nvinfer contract" in markdown


def test_conform_sanitize_with_lib_finds_the_out_of_bounds_threshold_read(nms_asan_library, nms_library, tmp_path):
    result = _cli("conform", "--lib", nms_asan_library, "--func", "NvDsInferParseEfficientOobThreshold", "--arch",
                  "efficientnms", "--examples", "100", "--seed", "1", "--sanitize", "--no-hostile",
                  "--report", tmp_path / "r")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads((tmp_path / "r" / "libnms_bugs_asan.so.NvDsInferParseEfficientOobThreshold.json").read_text())
    finding = data["findings"][0]
    assert (finding["tier"], finding["kind"]) == ("contract", "sanitizer: heap-buffer-overflow")
    assert finding["crash"]["sanitizer"] == "AddressSanitizer: heap-buffer-overflow"
    assert "nms_bug_classes.cpp" in finding["crash"]["first_frame"]
    case = finding["case"]
    classes = next(layer for layer in case["layers"] if layer["name"] == "detection_classes")["values"]
    assert len(case["precluster_thresholds"]) == case["num_classes_configured"] <= max(classes)
    refused = _cli("conform", "--lib", nms_library, "--func", "NvDsInferParseEfficientGood", "--arch", "efficientnms",
                   "--sanitize")
    assert refused.returncode != 0
    assert "is not built with sanitizers" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
