"""The example third-party plugin in examples/dsparsers-centernet, installed as a package.

Skipped unless it is installed (``pip install -e examples/dsparsers-centernet``). It is found only
through its entry point, in subprocesses that select it with DSPARSERS_LOAD_PLUGINS (the test suite
itself loads no third-party plugins).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points, version

import pytest
from conftest import REPO

pytestmark = pytest.mark.skipif(importlib.util.find_spec("dsparsers_centernet") is None,
                                reason="dsparsers-centernet is not installed (pip install -e examples/dsparsers-centernet)")

ROOT = REPO
EXAMPLE = ROOT / "examples" / "dsparsers-centernet"


def _env() -> dict[str, str]:
    return {**os.environ, "DSPARSERS_LOAD_PLUGINS": "centernet"}


def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def test_entry_point_is_declared():
    found = [ep for ep in entry_points(group="dsparsers") if ep.name == "centernet"]
    assert len(found) == 1, found
    assert found[0].value == "dsparsers_centernet.plugin"
    assert found[0].dist is not None and found[0].dist.name == "dsparsers-centernet"


def test_cli_lists_the_plugin():
    result = _run("-m", "dsparsers.cli", "plugins", "--json")
    assert result.returncode == 0, result.stderr
    listed = {a["architecture"]: a for a in json.loads(result.stdout)["architectures"]}
    assert "centernet" in listed, sorted(listed)
    entry = listed["centernet"]
    assert entry["plugin"] == "centernet"
    assert entry["distribution"] == f"dsparsers-centernet {version('dsparsers-centernet')}"
    assert {"centernet-heatmap", "ctdet"} <= set(entry["aliases"])


@pytest.mark.cpp  # builds a parser in a subprocess
def test_generate_build_and_conform(tmp_path):
    out = tmp_path / "parser_centernet"
    generated = _run("-m", "dsparsers.cli", "generate", "--arch", "centernet", "-o", str(out), "--build")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert (out / "nvdsparser_centernet.cpp").is_file()
    assert "cluster-mode=4" in (out / "config_infer_primary_centernet.txt").read_text()
    conformed = _run("-m", "dsparsers.cli", "conform", "--dir", str(out), "--examples", "60")
    assert conformed.returncode == 0, conformed.stdout + conformed.stderr[-4000:]


@pytest.mark.cpp  # builds a parser in a subprocess
def test_example_package_tests_pass():
    result = _run("-m", "pytest", str(EXAMPLE / "tests"), "-q", "-p", "no:cacheprovider")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_plugin_module_imports_neither_numpy_nor_hypothesis():
    """dsparsers_centernet.plugin is what `dsparsers plugins` and `generate` load: NumPy and Hypothesis
    come only with reference.py, when a reference, strategy or bench case is first asked for."""
    code = """
import sys
import dsparsers
import dsparsers_centernet.plugin as plugin
arch = plugin.CenterNet()
params = arch.head_params(None, dsparsers.GenerateOptions(num_classes=3))
arch.template_context(params)
print(sorted(m for m in ("numpy", "hypothesis") if m in sys.modules))
arch.strategy(params)
print(sorted(m for m in ("numpy", "hypothesis") if m in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "DSPARSERS_LOAD_PLUGINS": ""}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "['hypothesis', 'numpy']"]
