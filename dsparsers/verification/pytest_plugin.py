"""pytest plugin for dsparsers plugin authors (entry point ``pytest11``; active wherever dsparsers is
installed, it only adds fixtures whose names start with ``dsparsers_``).

Fixtures:

- ``dsparsers_registry``: ``dsparsers_registry(plugin, name=None) -> Registry`` registers ``plugin`` (a
  module or object with hook implementations) in a fresh registry that the CLI and library use for
  the rest of the test; plugins installed on the machine are not loaded.
- ``dsparsers_build``: ``dsparsers_build(arch, registry=None, **options) -> BuiltParser`` generates
  the architecture's canonical parser (options: ``num_classes``, ``input_size``, ``extra``) into
  ``tmp_path``, builds it with meson and opens it through the nvinfer-style loader.

The ready-made conformance test, parametrised over every architecture a plugin registers::

    from dsparsers import conformance_tests
    import my_package.plugin

    test_conformance = conformance_tests(my_package.plugin, examples=100)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class BuiltParser:
    architecture: Any
    params: Any
    library: Any  # dsparsers.verification.loader.ParserLibrary
    directory: Path
    build: Any  # dsparsers.library.meson_build.BuildResult


def _registry_with(plugin: object, name: str | None = None):
    from dsparsers.api.registry import Registry

    return Registry(load_entry_points=False, plugins=((name or getattr(plugin, "__name__", "plugin"), plugin),))


def build_parser(directory: Path, arch: str, registry=None, *, num_classes=None, input_size=None, extra=None,
                 abi: int | None = None) -> BuiltParser:
    """Generate, build and open the parser of ``arch`` (a name or alias known to ``registry``)."""
    from dsparsers.api.architecture import GenerateOptions
    from dsparsers.api.registry import get_registry
    from dsparsers.library.parser_build import build_parser as build
    from dsparsers.verification.loader import ParserLibrary

    registry = registry or get_registry()
    architecture = registry.get(arch).architecture
    params = architecture.head_params(None, GenerateOptions(num_classes, input_size, extra or {}, arch))
    result = build(architecture, params, directory, requested_as=arch, template_dirs=registry.template_dirs(),
                   abi=abi).result
    return BuiltParser(architecture, params, ParserLibrary(result.library, result.function, result.abi,
                                                             kind=architecture.parser_kind), directory, result)


@pytest.fixture
def dsparsers_registry(monkeypatch):
    """Register a plugin for this test only: ``registry = dsparsers_registry(my_plugin_module)``."""
    import dsparsers.api.registry as registry_module

    def register(plugin: object, name: str | None = None):
        registry = _registry_with(plugin, name)
        monkeypatch.setattr(registry_module, "_default", registry)
        return registry

    return register


@pytest.fixture
def dsparsers_build(tmp_path):
    """Generate and build a parser into tmp_path: ``built = dsparsers_build("my-arch", registry)``."""
    opened: list[BuiltParser] = []

    def build(arch: str, registry=None, **options) -> BuiltParser:
        built = build_parser(tmp_path / f"parser_{len(opened)}", arch, registry, **options)
        opened.append(built)
        return built

    yield build
    for built in opened:
        built.library.close()


def conformance_tests(plugin: object, *, examples: int = 100, name: str | None = None,
                      variants: dict[str, dict] | None = None, hostile: bool = True):
    """A test function, parametrised over every architecture ``plugin`` registers (and every variant),
    that builds the parser and runs the conformance kit (derandomized) against the reference decoder,
    then the hostile inputs of dsparsers.verification.hostile.

    ``variants`` maps a test id to build options, e.g. ``{"canonical": {}, "3 classes, logits":
    {"num_classes": 3, "extra": {"sigmoid": "logits"}}}``; the default is the canonical head only.
    """
    registry = _registry_with(plugin, name)
    own = [p.architecture.name for p in registry.architectures() if p.plugin == (name or getattr(plugin, "__name__", "plugin"))]
    variants = variants or {"canonical": {}}
    cases = [pytest.param(arch, options, id=f"{arch}-{label}") for arch in own for label, options in variants.items()]

    @pytest.mark.parametrize("architecture_name, options", cases)
    def test_conformance(architecture_name, options, tmp_path):
        from dsparsers.verification.conformance import render_report, run_conformance, run_hostile

        built = build_parser(tmp_path / "parser", architecture_name, registry, **options)
        try:
            report = run_conformance(built.library, built.architecture, built.params, examples=examples, derandomize=True)
            if hostile:
                run_hostile(built.library, built.architecture, built.params, report)
        finally:
            built.library.close()
        if not report.passed:
            from io import StringIO

            from rich.console import Console

            text = StringIO()
            render_report(report, Console(file=text, width=160))
            pytest.fail(text.getvalue(), pytrace=False)

    return test_conformance
