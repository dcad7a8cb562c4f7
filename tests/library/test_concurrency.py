"""nvinfer may run several instances in one process: one parser library called from several threads at
once must give every thread its own right answer; two generate --build runs at once must not collide."""

from __future__ import annotations

import pytest

import subprocess
import sys
import threading

import numpy as np

from dsparsers.verification.loader import ParserLibrary
from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParserCase

#: every test here compiles or runs C++
pytestmark = pytest.mark.cpp


def frame(seed: int) -> ParserCase:
    rng = np.random.default_rng(seed)
    rows = np.zeros((84, 2100), np.float32)
    rows[0:2] = rng.uniform(0, 320, (2, 2100))
    rows[2:4] = rng.uniform(2, 60, (2, 2100))
    rows[4:] = rng.uniform(0, 0.3, (80, 2100))
    return ParserCase((Layer("output0", rows),), NetworkInfo(320, 320), DetectionParams.uniform(80, 0.25))


def test_one_library_called_from_several_threads(build_parser):
    architecture, params, result = build_parser("yolo11", classes=80)
    cases = [frame(seed) for seed in range(8)]
    expected = [architecture.reference(case, params).objects for case in cases]
    failures: list[str] = []

    def worker(index: int) -> None:
        with ParserLibrary(result.library, result.function, result.abi) as library:  # one handle per thread
            for k in range(60):
                which = (index + k) % len(cases)
                got = library.parse(cases[which]).objects
                if not np.array_equal(got, expected[which]):
                    failures.append(f"thread {index}, call {k}: {len(got)} objects, expected {len(expected[which])}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert all(len(objects) > 20 for objects in expected)


def test_two_generate_builds_at_once(tmp_path):
    runs = [subprocess.Popen([sys.executable, "-m", "dsparsers.cli", "generate", "--arch", arch, "-o", str(tmp_path / arch),
                              "--build"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for arch in ("yolo11", "yolov5")]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
    assert (tmp_path / "yolo11" / "build" / "libnvdsparser_yolo11.so").is_file()
    assert (tmp_path / "yolov5" / "build" / "libnvdsparser_yolov5.so").is_file()
