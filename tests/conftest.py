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

#: the tests/ directory, the repository, and the shared test data
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
GOLDEN = TESTS / "golden"


#: fixtures that compile a parser: a test using one is marked ``cpp`` (the quick tier skips it)
BUILDING_FIXTURES = {"build_parser", "open_parser", "dsparsers_build"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if BUILDING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cpp)


@pytest.fixture(autouse=True)
def _quick_tier_builds_nothing(request, monkeypatch):
    """A test not marked ``cpp`` must not compile: the quick tier (``-m "not cpp"``) stays pure Python
    and fast. Building in-process is refused here with the reason, so a missing marker fails the suite."""
    if request.node.get_closest_marker("cpp") is not None or request.node.get_closest_marker("realexport") is not None:
        return  # the real-export tiers build their parsers too

    def refuse(cmd, *args, **kwargs):
        raise AssertionError(f"{request.node.nodeid} compiles C++ ({' '.join(map(str, cmd[:3]))} ...): mark it "
                             "pytest.mark.cpp or use a building fixture")

    import dsparsers.library.meson_build as meson_build
    import dsparsers.verification.loader as loader

    monkeypatch.setattr(meson_build, "_run", refuse)
    monkeypatch.setattr(loader, "_run", refuse)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def registry():
    from dsparsers.api.registry import Registry

    return Registry(load_entry_points=False)


class ParserFactory:
    """Generates and builds parsers once per session, keyed by what they were generated from."""

    def __init__(self, root: Path):
        self.root = root
        self.built: dict[tuple, tuple] = {}

    def __call__(self, arch: str = "yolo11", *, classes: int | None = None, input_size=None,
                 extra: dict | None = None, abi: int | None = None, source_patch=None):
        from dsparsers.api.architecture import GenerateOptions
        from dsparsers.api.registry import Registry
        from dsparsers.library.parser_build import build_parser

        key = (arch, classes, input_size, tuple(sorted((extra or {}).items())), abi,
               source_patch.__name__ if source_patch else None)
        if key not in self.built:
            registry = Registry(load_entry_points=False)
            architecture = registry.get(arch).architecture
            params = architecture.head_params(None, GenerateOptions(classes, input_size, extra or {}, arch))
            def patch_source(files, generated):
                files[generated.source_name] = source_patch(files[generated.source_name])
                return files

            directory = self.root / f"parser{len(self.built)}"
            result = build_parser(architecture, params, directory, requested_as=arch, abi=abi, force=False,
                                  transform=patch_source if source_patch is not None else None).result
            self.built[key] = (architecture, params, result)
        return self.built[key]


@pytest.fixture(scope="session")
def build_parser(tmp_path_factory):
    """build_parser("yolo11", classes=80, extra={"layout": "rows"}) -> (architecture, params, BuildResult)."""
    return ParserFactory(tmp_path_factory.mktemp("parsers"))


@pytest.fixture(scope="session")
def open_parser(build_parser):
    """open_parser(...) -> (architecture, params, ParserLibrary) for a built parser."""
    from dsparsers.verification.loader import ParserLibrary

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
