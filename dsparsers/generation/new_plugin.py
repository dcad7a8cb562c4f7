"""`dsparsers new-plugin`: an installable plugin package with a working example head and its tests.

The package splits like the built-in families: ``plugin.py`` (matcher, parameters, template context,
config, hooks; no NumPy or Hypothesis at import) and ``reference.py`` (reference decoder and Hypothesis
strategy, imported by the architecture's methods on first use)."""

from __future__ import annotations

import re
from pathlib import Path

from dsparsers.errors import UsageError
from dsparsers.generation.output_dir import write_directory

SCAFFOLD_DIR = Path(__file__).resolve().parent / "scaffold"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def scaffold_files(name: str) -> dict[str, str]:
    """The package's files (relative path -> text) for architecture ``name`` (e.g. "my-head")."""
    if not NAME_PATTERN.match(name) or len(name) > 60:
        raise UsageError(f"new-plugin {name!r}: use lower-case letters, digits and single dashes, e.g. my-head")
    module = name.replace("-", "_")
    package = f"dsparsers_{module}"
    values = {"__NAME__": name, "__MODULE__": module, "__PACKAGE__": package,
              "__CLASS__": "".join(part.capitalize() for part in name.split("-"))}

    def fill(template: str) -> str:
        text = (SCAFFOLD_DIR / template).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace(key, value)
        return text

    return {
        "pyproject.toml": fill("pyproject.toml.tmpl"),
        "README.md": fill("README.md.tmpl"),
        f"{package}/__init__.py": fill("__init__.py.tmpl"),
        f"{package}/plugin.py": fill("plugin.py.tmpl"),  # what dsparsers loads: no NumPy, no Hypothesis
        f"{package}/reference.py": fill("reference.py.tmpl"),  # reference decoder and strategy, loaded lazily
        f"{package}/templates/{module}.cpp.j2": fill("template.cpp.j2.tmpl"),
        f"tests/test_{module}.py": fill("test_plugin.py.tmpl"),
    }


def new_plugin(name: str, directory: Path, *, registry=None, force: bool = False) -> dict[str, str]:
    if registry is not None and name in registry.names():
        owner = registry.get(name)
        raise UsageError(f"new-plugin {name!r}: already the name of {owner.architecture.name} "
                         f"(plugin {owner.plugin}); choose another")
    files = scaffold_files(name)
    write_directory(directory, files, force=force)
    return files
