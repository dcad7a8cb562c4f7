"""The plugin registry: built-ins, entry points (filtered by DSPARSERS_LOAD_PLUGINS), name clashes."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import types

import pytest

import dsparsers
from dsparsers.errors import RegistryError, UsageError
from dsparsers.api.registry import ENV_LOAD_PLUGINS, Registry
from dsparsers.plugins.yolo_anchor_free import AnchorFreeYolo
from conftest import REPO


class OtherHead(AnchorFreeYolo):
    name = "other-head"
    aliases = ("other",)


def plugin_module(name: str, *architectures) -> types.ModuleType:
    module = types.ModuleType(name)

    @dsparsers.hookimpl
    def register_architectures(register):
        for arch in architectures:
            register(arch)

    module.register_architectures = register_architectures
    return module


def test_builtin_architecture_and_aliases(registry):
    provided = registry.get("yolo11")
    assert provided.architecture.name == "yolo-anchor-free"
    assert provided.plugin == "yolo_anchor_free" and "built-in" in provided.distribution
    for alias in ("yolov8", "YOLOv9", "yolo12", "yolov5u", "yolov3u", "yolo-anchor-free"):
        assert registry.get(alias) is provided


def test_unknown_architecture_suggests_close_names(registry):
    with pytest.raises(UsageError) as info:
        registry.get("yolo111")
    assert "--arch 'yolo111': unknown architecture; did you mean yolo11" in str(info.value)
    assert info.value.exit_code == 2


def test_in_process_plugin_is_listed_with_its_provider():
    registry = Registry(load_entry_points=False, plugins=(("extra_heads", plugin_module("m", OtherHead())),))
    provided = registry.get("other")
    assert (provided.architecture.name, provided.plugin) == ("other-head", "extra_heads")
    names = [p.architecture.name for p in registry.architectures()]
    assert "other-head" in names and "yolo-anchor-free" in names and names == sorted(names)


def test_duplicate_name_is_an_error_naming_both_providers():
    class Clash(AnchorFreeYolo):
        name = "clash"
        aliases = ("yolo11",)

    with pytest.raises(RegistryError) as info:
        Registry(load_entry_points=False, plugins=(("bad_plugin", plugin_module("m", Clash())),))
    message = str(info.value)
    assert "'yolo11' is provided twice" in message
    assert "plugin 'bad_plugin'" in message and "plugin 'yolo_anchor_free'" in message


def test_registering_something_that_is_not_an_architecture_is_an_error():
    with pytest.raises(RegistryError, match="not a dsparsers Architecture"):
        Registry(load_entry_points=False, plugins=(("junk", plugin_module("m", object())),))


class FakeEntryPoint:
    def __init__(self, name, target, dist_name="dsparsers-extra"):
        self.name, self._target = name, target
        self.dist = types.SimpleNamespace(name=dist_name, version="1.2.3")

    def load(self):
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


@pytest.fixture
def entry_points(monkeypatch):
    points = [FakeEntryPoint("extra", plugin_module("extra", OtherHead())),
              FakeEntryPoint("broken", ImportError("No module named 'missing_dep'"))]
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [p for p in points] if group == "dsparsers" else [])
    return points


def test_entry_point_plugins_load_and_a_broken_one_is_reported(entry_points, monkeypatch, capsys):
    monkeypatch.delenv(ENV_LOAD_PLUGINS, raising=False)
    registry = Registry()
    provided = registry.get("other-head")
    assert provided.plugin == "extra" and provided.distribution == "dsparsers-extra 1.2.3"
    assert registry.load_failures == [("broken", "ImportError: No module named 'missing_dep'")]
    assert "plugin 'broken' failed to load" in capsys.readouterr().err


@pytest.mark.parametrize("value, loaded", [("", False), ("extra", True), ("broken", False), ("other,extra", True)])
def test_environment_variable_restricts_entry_point_plugins(entry_points, monkeypatch, value, loaded):
    monkeypatch.setenv(ENV_LOAD_PLUGINS, value)
    registry = Registry()
    assert ("other-head" in registry.names()) == loaded
    assert {p.plugin for p in registry.architectures()} - {"extra"} == set(builtin_plugin_names())
    # a plugin that is not selected is never imported; a selected broken one is reported
    assert [name for name, _ in registry.load_failures] == (["broken"] if "broken" in value.split(",") else [])


def builtin_plugin_names():
    from dsparsers.api.registry import builtin_plugin_modules

    return [m.rsplit(".", 1)[-1] for m in builtin_plugin_modules()]


def test_plugins_command_lists_architectures():
    result = subprocess.run([sys.executable, "-m", "dsparsers.cli", "plugins", "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = {row["architecture"]: row for row in json.loads(result.stdout)["architectures"]}
    row = rows["yolo-anchor-free"]
    assert row["plugin"] == "yolo_anchor_free" and "yolo11" in row["aliases"]
    assert row["head"].startswith("output0 [B, 4+C, N]")
    assert all(r["distribution"] == "dsparsers (built-in)" for r in rows.values())
    table = subprocess.run([sys.executable, "-m", "dsparsers.cli", "plugins"], capture_output=True, text=True,
                           env={**__import__("os").environ, "COLUMNS": "200"})
    assert "yolo-anchor-free" in table.stdout and "dsparsers (built-in)" in table.stdout


def test_readme_lists_every_architecture_with_its_head():
    from pathlib import Path

    readme = (REPO / "README.md").read_text()
    for provided in Registry(load_entry_points=False).architectures():
        arch = provided.architecture
        assert f"| `{arch.name}` | {', '.join(arch.aliases)} | {arch.head} |" in readme, \
            f"README table is missing {arch.name}: regenerate it with `dsparsers plugins --markdown`"
