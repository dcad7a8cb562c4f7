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


def test_scaffold_generates_builds_and_conforms(installed):
    root, env = installed
    built = run([sys.executable, "-m", "dsparsers.cli", "generate", "--arch", "demo-head", "-o", str(root / "gen"),
                 "--build"], env=env)
    assert built.returncode == 0, built.stderr
    conform = run([sys.executable, "-m", "dsparsers.cli", "conform", "--dir", str(root / "gen"), "--examples", "60"],
                  env=env)
    assert conform.returncode == 0, conform.stdout + conform.stderr
    assert "PASS NvDsInferParseDemoHead" in conform.stdout


def test_scaffold_tests_pass(installed):
    root, env = installed
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "pkg" / "tests")],
                 env=env, cwd=root / "pkg")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout and "warning" not in result.stdout  # conformance + 2 hand-computed


@pytest.mark.parametrize("name, message", [("My_Head", "lower-case letters"), ("yolo11", "already the name of")])
def test_bad_names_are_refused(tmp_path, name, message):
    result = run([sys.executable, "-m", "dsparsers.cli", "new-plugin", name, "-o", str(tmp_path / "x")])
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "x").exists()
