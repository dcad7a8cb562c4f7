"""`dsparsers new-plugin`: the scaffold installs, is discovered through its entry point, generates,
builds and conforms, and its own tests pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("scaffold")
    made = run([sys.executable, "-m", "dsparsers.cli", "new-plugin", "demo-head", "-o", str(root / "pkg")])
    assert made.returncode == 0, made.stderr
    site = root / "site"  # installed beside, not into, this environment
    pip = run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
               "--target", str(site), str(root / "pkg")])
    assert pip.returncode == 0, pip.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "DSPARSERS_LOAD_PLUGINS": "demo_head"}
    return root, env


def test_scaffold_is_discovered_through_its_entry_point(installed):
    _, env = installed
    listed = run([sys.executable, "-m", "dsparsers.cli", "plugins", "--json"], env=env)
    rows = {row["architecture"]: row for row in json.loads(listed.stdout)["architectures"]}
    assert rows["demo-head"]["plugin"] == "demo_head"
    assert rows["demo-head"]["distribution"] == "dsparsers-demo-head 0.1.0"


@pytest.mark.cpp  # builds a parser in a subprocess
def test_scaffold_generates_builds_and_conforms(installed):
    root, env = installed
    built = run([sys.executable, "-m", "dsparsers.cli", "generate", "--arch", "demo-head", "-o", str(root / "gen"),
                 "--build"], env=env)
    assert built.returncode == 0, built.stderr
    conform = run([sys.executable, "-m", "dsparsers.cli", "conform", "--dir", str(root / "gen"), "--examples", "60"],
                  env=env)
    assert conform.returncode == 0, conform.stdout + conform.stderr
    assert "PASS NvDsInferParseDemoHead" in conform.stdout


@pytest.mark.cpp  # builds a parser in a subprocess
def test_scaffold_tests_pass(installed):
    root, env = installed
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "pkg" / "tests")],
                 env=env, cwd=root / "pkg")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    # conformance + 2 hand-computed + the import check of plugin.py
    assert "4 passed" in result.stdout and "warning" not in result.stdout


# importing the module, touching the architecture, then the names a lazily loaded module leaves behind
IMPORT_CHECK = """
import sys
import {module} as plugin
arch = plugin.{cls}()
params = arch.head_params(None, __import__("dsparsers").GenerateOptions(num_classes=3))
arch.template_context(params)
print(sorted(m for m in ("numpy", "hypothesis") if m in sys.modules))
arch.strategy(params)
print(sorted(m for m in ("numpy", "hypothesis") if m in sys.modules))
"""


def test_scaffold_plugin_module_imports_neither_numpy_nor_hypothesis(installed):
    _, env = installed
    code = IMPORT_CHECK.format(module="dsparsers_demo_head.plugin", cls="DemoHead")
    result = run([sys.executable, "-c", code], env={**env, "DSPARSERS_LOAD_PLUGINS": ""})
    assert result.returncode == 0, result.stderr
    # nothing at import and generation; both once the strategy (reference.py) is asked for
    assert result.stdout.split("\n")[:2] == ["[]", "['hypothesis', 'numpy']"]


def test_scaffold_files_split_plugin_and_reference():
    from dsparsers.generation.new_plugin import scaffold_files

    files = scaffold_files("demo-head")
    assert {"dsparsers_demo_head/plugin.py", "dsparsers_demo_head/reference.py"} <= set(files)
    plugin_imports = [line for line in files["dsparsers_demo_head/plugin.py"].splitlines()
                      if line.startswith(("import ", "from "))]
    assert all(line.split()[1].split(".")[0] in ("__future__", "dataclasses", "pathlib", "typing", "dsparsers")
               for line in plugin_imports), plugin_imports
    reference = files["dsparsers_demo_head/reference.py"]
    assert "import numpy as np" in reference and "from hypothesis import strategies as st" in reference
    # the template uses dsparsers' base: no extern "C" entry of its own
    template = files["dsparsers_demo_head/templates/demo_head.cpp.j2"]
    assert template.startswith('{% extends "base.cpp.j2" %}')
    assert "DSPARSERS_EXPORT" not in template and "CHECK_CUSTOM_PARSE_FUNC_PROTOTYPE" not in template


@pytest.mark.parametrize("name, message", [("My_Head", "lower-case letters"), ("yolo11", "already the name of")])
def test_bad_names_are_refused(tmp_path, name, message):
    result = run([sys.executable, "-m", "dsparsers.cli", "new-plugin", name, "-o", str(tmp_path / "x")])
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "x").exists()
