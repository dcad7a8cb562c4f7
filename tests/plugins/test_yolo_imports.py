"""The YOLO family plugins load without NumPy or Hypothesis: `dsparsers plugins` and `dsparsers generate`
import every plugin, so each family's verification side (its *_reference module) is imported only when a
reference, strategy, bench case or explanation is asked for."""

from __future__ import annotations

import subprocess
import sys

import pytest

PLUGINS = ["yolo_anchor_free", "yolo_anchor_based", "_yolo_dense_head", "yolo_end2end", "deepstream_yolo",
           "_yolo_decoded_rows", "yolo_boxes_scores", "yolo_darknet"]


def imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


@pytest.mark.parametrize("module", PLUGINS)
def test_plugin_module_imports_neither_numpy_nor_hypothesis(module):
    loaded = imported_after(f"import dsparsers.plugins.{module}")
    assert f"dsparsers.plugins.{module}" in loaded
    assert {"numpy", "hypothesis"} & loaded == set()
    assert not any(name.endswith("_reference") for name in loaded if name.startswith("dsparsers.plugins."))


@pytest.mark.parametrize("module, cls, reference", [
    ("yolo_anchor_free", "AnchorFreeYolo", "_yolo_dense_head_reference"),
    ("deepstream_yolo", "DeepStreamYolo", "_yolo_decoded_rows_reference"),
    ("yolo_boxes_scores", "YoloBoxesScores", "yolo_boxes_scores_reference"),
    ("yolo_darknet", "DarknetYolo", "yolo_darknet_reference"),
])
def test_asking_for_the_strategy_brings_the_reference_in(module, cls, reference):
    loaded = imported_after(f"import dsparsers; from dsparsers.plugins.{module} import {cls}; a = {cls}(); "
                            "a.strategy(a.head_params(None, dsparsers.GenerateOptions()))")
    assert f"dsparsers.plugins.{reference}" in loaded and "hypothesis" in loaded
