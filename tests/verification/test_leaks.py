"""No leaks when nvinfer calls an instance-mask parser many times: the replay program (no Python in the
process) calls the parser on one case again and again and frees every mask with delete[], as nvinfer
does, under LeakSanitizer and, when installed, valgrind. And the check has teeth: a parser that leaks a
buffer per object, or allocates masks with malloc, is caught."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, find, settings

from dsparsers.api.registry import Registry
from dsparsers.verification.replay import check_leaks, valgrind_available

#: every test here compiles or runs C++
pytestmark = pytest.mark.cpp

MASK_ARCHITECTURES = [p.architecture.name for p in Registry(load_entry_points=False).architectures()
                      if p.architecture.parser_kind == "instance-mask"]
ITERATIONS = 100


def busy_case(architecture, params):
    """A valid case on which the reference keeps at least three objects (masks)."""
    return find(architecture.strategy(params),
                lambda case: len(architecture.reference(case, params).objects) >= 3,
                settings=settings(max_examples=500, database=None, derandomize=True,
                                  suppress_health_check=list(HealthCheck)))


@pytest.mark.parametrize("engine", ["lsan", pytest.param("valgrind", marks=pytest.mark.skipif(
    not valgrind_available(), reason="valgrind is not installed"))])
@pytest.mark.parametrize("arch", MASK_ARCHITECTURES)
def test_repeated_calls_leak_nothing(build_parser, arch, engine, tmp_path):
    architecture, params, result = build_parser(arch)
    case = busy_case(architecture, params)
    expected = len(architecture.reference(case, params).objects)
    report = check_leaks(result.library, result.function, "instance-mask", case, iterations=ITERATIONS,
                         engine=engine, workdir=tmp_path)
    assert report.calls == ITERATIONS and report.objects == ITERATIONS * expected
    assert report.clean, report.log[-3000:]


def _leaks_a_buffer_per_object(source: str) -> str:
    marker = "    dsparsers::add_mask_object(objects, c.class_id, c.score, box, mask, mask_w, mask_h);"
    assert marker in source
    # a volatile global keeps the compiler from eliding the allocation; each call overwrites the last
    return source.replace(marker, marker + "\n    static float* volatile scratch;\n    scratch = new float[16];  // bug: never freed")


def _mallocs_masks(source: str) -> str:
    marker = "    float* mask = dsparsers::new_mask(mask_w, mask_h);"
    assert marker in source
    return ("#include <cstdlib>\n" + source).replace(
        marker, "    float* mask = static_cast<float*>(std::malloc(sizeof(float) * mask_w * mask_h));  // bug")


@pytest.mark.parametrize("bug,what", [(_leaks_a_buffer_per_object, "leak"), (_mallocs_masks, "mismatch")])
def test_the_leak_check_catches_a_leaking_parser(build_parser, bug, what, tmp_path):
    architecture, params, result = build_parser("yolo-seg", source_patch=bug)
    case = busy_case(architecture, params)
    report = check_leaks(result.library, result.function, "instance-mask", case, iterations=20, engine="lsan",
                         workdir=tmp_path)
    assert not report.clean
    if what == "leak":
        assert report.leaked_bytes >= (20 * 3 - 1) * 16 * 4  # all but the last, still reachable from the static
    else:
        assert report.mismatched_frees > 0


def _third_mask_allocation_fails(source: str) -> str:
    marker = "float* mask = dsparsers::new_mask("
    assert source.count(marker) == 1
    helper = "static bool third_allocation_fails() { static int calls = 0; return ++calls % 3 == 0; }\n"
    return helper + source.replace(marker, "float* mask = third_allocation_fails() ? nullptr : dsparsers::new_mask(")


@pytest.mark.parametrize("arch", MASK_ARCHITECTURES)
def test_a_refused_frame_hands_back_no_objects(build_parser, open_parser, arch):
    """When a mask cannot be allocated the parser refuses the frame, and nvinfer frees the masks of accepted
    frames only: the objects (and masks) this call added must be gone, not handed back."""
    architecture, params, _ = build_parser(arch)
    case = busy_case(architecture, params)  # three objects or more: the third mask fails
    _, _, library = open_parser(arch, source_patch=_third_mask_allocation_fails)
    outcome = library.parse(case)
    assert not outcome.accepted and len(outcome.objects) == 0
