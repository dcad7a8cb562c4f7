"""Test set-up: no third-party plugins, a private build cache, and bounded Hypothesis runs."""

from __future__ import annotations

import os

# Before dsparsers is imported anywhere: tests never see plugins installed on the machine.
os.environ["DSPARSERS_LOAD_PLUGINS"] = ""

import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

_CACHE = Path(tempfile.mkdtemp(prefix="dsparsers-test-cache-"))
os.environ["DSPARSERS_CACHE_DIR"] = str(_CACHE)

# "ci" (the default) is derandomized so that the suite's time and outcome are fixed; "dev" explores.
settings.register_profile("ci", derandomize=True, max_examples=60, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
settings.register_profile("dev", max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def registry():
    from dsparsers.registry import Registry

    return Registry(load_entry_points=False)


class ParserFactory:
    """Generates and builds parsers once per session, keyed by what they were generated from."""

    def __init__(self, root: Path):
        self.root = root
        self.built: dict[tuple, tuple] = {}

    def __call__(self, arch: str = "yolo11", *, classes: int | None = None, input_size=None,
                 extra: dict | None = None, abi: int | None = None, source_patch=None):
        from dsparsers.architecture import GenerateOptions
        from dsparsers.build import build_directory
        from dsparsers.codegen import render_parser
        from dsparsers.output_dir import write_directory
        from dsparsers.registry import Registry

        key = (arch, classes, input_size, tuple(sorted((extra or {}).items())), abi,
               source_patch.__name__ if source_patch else None)
        if key not in self.built:
            registry = Registry(load_entry_points=False)
            architecture = registry.get(arch).architecture
            params = architecture.head_params(None, GenerateOptions(classes, input_size, extra or {}, arch))
            generated = render_parser(architecture, params, requested_as=arch)
            directory = self.root / f"parser{len(self.built)}"
            files = dict(generated.files)
            if source_patch is not None:
                files[generated.source_name] = source_patch(files[generated.source_name])
            write_directory(directory, files)
            result = build_directory(directory, abi=abi, deepstream_include="bundled")
            self.built[key] = (architecture, params, result)
        return self.built[key]


@pytest.fixture(scope="session")
def build_parser(tmp_path_factory):
    """build_parser("yolo11", classes=80, extra={"layout": "rows"}) -> (architecture, params, BuildResult)."""
    return ParserFactory(tmp_path_factory.mktemp("parsers"))


@pytest.fixture(scope="session")
def open_parser(build_parser):
    """open_parser(...) -> (architecture, params, ParserLibrary) for a built parser."""
    from dsparsers.harness import ParserLibrary

    opened = []

    def factory(*args, **kwargs):
        architecture, params, result = build_parser(*args, **kwargs)
        library = ParserLibrary(result.library, result.function, result.abi, kind=architecture.parser_kind)
        opened.append(library)
        return architecture, params, library

    yield factory
    for library in opened:
        library.close()


def read_manifest(directory: Path) -> dict:
    return json.loads((directory / "dsparsers.json").read_text())
