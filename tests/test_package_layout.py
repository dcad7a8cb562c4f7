"""The shape of the package, checked: stages import one way, no import cycles, plugins use only the
public API, and the light commands load neither Hypothesis nor NumPy (docs/architecture.md)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "dsparsers"
#: the pipeline's stages, lowest first: a module may import its own stage and the ones before it
STAGES = ("model", "api", "generation", "library", "verification", "emulation", "cli")
CORE = {"dsparsers", "dsparsers.errors", "dsparsers.paths"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in ``path``, at module level or inside functions,
    except those under ``if TYPE_CHECKING:`` (annotations only, never executed)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.extend((child.lineno, alias.name) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    module = ".".join(base + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                found.append((child.lineno, module))
                for alias in child.names:  # `from dsparsers.api import registry` imports a module too
                    found.append((child.lineno, f"{module}.{alias.name}"))
            visit(child)

    visit(tree)
    return found


def _existing(name: str, known: set[str]) -> str | None:
    """The dsparsers module ``name`` refers to (a module, or the module holding the imported name)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _stage(module: str) -> int:
    parts = module.split(".")
    if module in CORE or len(parts) < 2:
        return -1
    return STAGES.index(parts[1]) if parts[1] in STAGES else -1


def _dsparsers_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_every_module_belongs_to_a_stage_or_the_core():
    strays = [m for m in _dsparsers_modules() if m not in CORE and _stage(m) < 0]
    assert not strays, f"modules outside the stage packages {STAGES}: {strays} (docs/architecture.md)"


def test_stages_import_one_way():
    modules = _dsparsers_modules()
    known = set(modules)
    wrong = []
    for name, path in modules.items():
        for line, imported in imports_of(path):
            target = _existing(imported, known) if imported.startswith("dsparsers") else None
            if target is None or target == name:
                continue
            if _stage(target) > _stage(name):
                wrong.append(f"{path.relative_to(REPO)}:{line}: {name} ({STAGES[_stage(name)] if _stage(name) >= 0 else 'core'})"
                             f" imports {target} ({STAGES[_stage(target)]})")
    assert not wrong, "a stage imports a later one:\n" + "\n".join(wrong)


def test_no_import_cycles():
    modules = _dsparsers_modules()
    known = set(modules)
    graph = {name: sorted({t for _, i in imports_of(path) if i.startswith("dsparsers")
                           for t in [_existing(i, known)] if t and t != name and t != "dsparsers"})
             for name, path in modules.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = walk(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = walk(start)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _plugin_files() -> list[Path]:
    return sorted(p for p in (REPO / "plugins").glob("*.py") if p.name != "__init__.py") + \
        sorted((REPO / "examples").rglob("src/**/*.py"))


@pytest.mark.parametrize("path", _plugin_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_plugins_import_only_the_public_api(path):
    """Built-in plugins and the example import dsparsers itself (and their own sibling modules), never
    its stage packages: the public API is what dsparsers/__init__.py exports."""
    wrong = [f"{path.relative_to(REPO)}:{line}: {name}" for line, name in imports_of(path)
             if name.startswith("dsparsers.") and not name.startswith(("dsparsers.plugins", "dsparsers_"))
             and name.split(".")[1] not in _public_names()]
    assert not wrong, "plugins import dsparsers internals:\n" + "\n".join(wrong)


def _public_names() -> set[str]:
    import dsparsers

    return set(dsparsers.__all__)


def test_builtin_plugins_tuple_lists_the_plugin_modules():
    from dsparsers.api.registry import BUILTIN_PLUGINS

    on_disk = sorted(p.stem for p in (REPO / "plugins").glob("*.py")
                     if not p.stem.startswith("_") and not p.stem.endswith("_reference"))
    assert sorted(BUILTIN_PLUGINS) == on_disk


def _loaded_by(code: str, record: Path) -> set[str]:
    """The modules loaded by running ``code`` in a fresh interpreter (no third-party plugins)."""
    env = {**os.environ, "DSPARSERS_LOAD_PLUGINS": ""}
    epilogue = f"\nimport sys\nopen({str(record)!r}, 'w').write(' '.join(sorted(sys.modules)))\n"
    proc = subprocess.run([sys.executable, "-c", code + epilogue], capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return set(record.read_text().split())


@pytest.mark.parametrize("argv", [["plugins"], ["plugins", "--json"], ["generate", "--arch", "yolo11", "-o", "{tmp}"]],
                         ids=["plugins", "plugins-json", "generate-arch"])
def test_light_commands_load_neither_hypothesis_nor_numpy(argv, tmp_path):
    argv = [a.replace("{tmp}", str(tmp_path / "out")) for a in argv]
    loaded = _loaded_by("import sys\nfrom dsparsers.cli import main\n"
                        f"sys.argv = ['dsparsers'] + {argv!r}\n"
                        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n",
                        tmp_path / "modules.txt")
    assert "hypothesis" not in loaded
    assert "numpy" not in loaded


def test_the_public_api_resolves_every_name():
    import dsparsers

    for name in dsparsers.__all__:
        assert getattr(dsparsers, name) is not None, name
