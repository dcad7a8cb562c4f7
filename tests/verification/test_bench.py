"""`dsparsers bench`: it runs, reports per-frame figures beside the read floor, and works on any library.
(No timing is asserted: speed is reported by the benchmark, never tested.)"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from dsparsers.verification.bench import run_bench
from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParserCase

#: every test here compiles or runs C++
pytestmark = pytest.mark.cpp


def test_bench_command_reports_parser_and_floor(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dsparsers.cli", "bench", "--arch", "yolo11", "--iterations", "40",
                             "--mode", "both", "--json"], capture_output=True, text=True,
                            env={**__import__("os").environ, "DSPARSERS_CACHE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["head"].startswith("output0 [84, 8400]")
    hot, rotating = report["results"]
    assert (hot["mode"], hot["frames"], rotating["mode"]) == ("hot", 1, "rotating")
    assert rotating["frames"] * rotating["frame_bytes"] >= 96 << 20
    for row in (hot, rotating):
        assert row["median_us"] > 0 and row["floor_median_us"] > 0 and row["p90_us"] >= row["median_us"]
        assert 40 <= row["objects"] <= 140  # 1% of 8400 candidates above threshold


def test_bench_input_has_the_requested_density(open_parser):
    architecture, params, library = open_parser("yolo11", classes=80)
    results = run_bench(library, architecture, params, density=0.05, modes=("hot",), iterations=20, warmup=4)
    assert 0.04 * 8400 <= results[0].objects <= 0.06 * 8400
    assert results[0].parser_ns.size == 20 and results[0].floor_ns.size == 20


def test_ratio_pairs_each_round_with_the_floor_beside_it():
    """Rounds are compared with the floor measured beside them: a slow spell over a whole round (both
    sides) does not move the ratio, and one that hits a single side in one round out of three is
    outvoted; the pooled medians would give 12 / 2 = 6.0 here instead of 2.0."""
    from dsparsers.verification.bench import BenchResult

    parser = np.array([[4.0, 4.0, 4.0], [4.0, 4.0, 4.0], [12.0, 12.0, 12.0]]) * 1e3
    floor = np.array([[2.0, 2.0, 2.0], [2.0, 2.0, 2.0], [6.0, 6.0, 6.0]]) * 1e3
    assert BenchResult("hot", 1, 1, 0, parser, floor).ratio == pytest.approx(2.0)
    slow_spell_parser = np.array([[4.0, 4.0, 4.0], [12.0, 12.0, 12.0], [12.0, 12.0, 12.0]]) * 1e3
    slow_spell_floor = np.array([[2.0, 2.0, 2.0], [2.0, 2.0, 2.0], [6.0, 6.0, 6.0]]) * 1e3
    result = BenchResult("hot", 1, 1, 0, slow_spell_parser, slow_spell_floor)
    assert result.median_us / result.floor_median_us == pytest.approx(6.0)
    assert result.ratio == pytest.approx(2.0)


def test_fp16_prefilter_never_drops_a_score_at_or_above_threshold(open_parser):
    """The HALF prefilter compares bit patterns against the largest half <= threshold: a half just
    below 0.3 must be dropped and the next one up kept (0.3 is not representable in binary16)."""
    architecture, params, library = open_parser("yolo11", classes=80)
    above = np.float16(0.3)  # rounds up, to 0.30005
    below = np.nextafter(above, np.float16(0))
    assert float(below) < 0.3 < float(above)
    data = np.zeros((84, 3), np.float16)
    data[0:4] = [[100, 200, 300], [100, 100, 100], [10, 10, 10], [10, 10, 10]]
    data[4 + 5, 0], data[4 + 6, 1], data[4 + 7, 2] = below, above, np.float16(np.nan)
    case = ParserCase((Layer("output0", data),), NetworkInfo(640, 640), DetectionParams.uniform(80, 0.3))
    got = library.parse(case)
    assert [int(o["class_id"]) for o in got.objects] == [6]
    assert [int(o["class_id"]) for o in architecture.reference(case, params).objects] == [6]


def test_instance_mask_parsers_are_timed_with_their_masks_freed(open_parser):
    """Mask parsers go through dsp_parser_time_masks (masks freed per call inside the timed region)."""
    for arch in ("yolo-seg", "peoplesegnet"):
        architecture, params, library = open_parser(arch)
        (hot,) = run_bench(library, architecture, params, density=0.01, modes=("hot",), iterations=20, warmup=4)
        assert hot.objects >= 1 and hot.parser_ns.size == 20 and np.all(hot.parser_ns > 0)


def test_generate_measures_what_the_patch_saves(tmp_path):
    """`generate --build --bench-patch` on a patchable model times the parser and the compact parser the
    patch allows, and says both figures (no timing asserted)."""
    from onnx_graphs import ultralytics_detect

    model = ultralytics_detect(tmp_path / "yolo11.onnx", classes=80, size=320)
    result = subprocess.run([sys.executable, "-m", "dsparsers.cli", "generate", "--onnx", str(model), "-o",
                             str(tmp_path / "g"), "--build", "--bench-patch"], capture_output=True, text=True,
                            env={**__import__("os").environ, "DSPARSERS_CACHE_DIR": str(tmp_path / "cache"),
                                 "COLUMNS": "400"})
    assert result.returncode == 0, result.stderr
    assert "measured here:" in result.stdout and "us of CPU per frame" in result.stdout, result.stdout
