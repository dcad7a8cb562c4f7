"""The architecture registry: built-in plugins, entry-point plugins, and name/alias lookup.

Everything reaches architectures through here; plugins reach the registry only through the
``register(...)`` callback of the ``register_architectures`` hook.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pluggy

from dsparsers.api import hookspecs
from dsparsers.api.architecture import Architecture, Match
from dsparsers.errors import RegistryError, UsageError

#: Comma-separated entry-point names of third-party plugins to load; unset loads all, empty loads none.
ENV_LOAD_PLUGINS = "DSPARSERS_LOAD_PLUGINS"
#: Set (to anything but "" or "0") to print every hook call and its result to stderr.
ENV_TRACE_PLUGINS = "DSPARSERS_TRACE_PLUGINS"
ENTRY_POINT_GROUP = "dsparsers"

BUILTIN_PACKAGE = "dsparsers.plugins"
BUILTIN_DISTRIBUTION = "dsparsers (built-in)"


#: The built-in plugins, in registration order: modules (or packages) of the repository's plugins/
#: directory, installed as dsparsers.plugins. They register exactly like third-party plugins. Adding a
#: built-in family is adding its module here; a test checks this tuple against the directory.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "deepstream_yolo",
    "detr",
    "nms_plugin_outputs",
    "peoplesegnet",
    "rtdetr_postprocessed",
    "rtdetr_ultralytics",
    "yolo_anchor_based",
    "yolo_anchor_free",
    "yolo_boxes_scores",
    "yolo_darknet",
    "yolo_end2end",
    "yolo_seg",
)


def builtin_plugin_modules() -> list[str]:
    """The importable names of BUILTIN_PLUGINS."""
    return [f"{BUILTIN_PACKAGE}.{name}" for name in BUILTIN_PLUGINS]


@dataclass(frozen=True)
class Provided:
    """An architecture and who provided it."""

    architecture: Architecture
    plugin: str
    distribution: str


class Registry:
    def __init__(self, *, load_entry_points: bool = True, plugins: tuple[tuple[str, object], ...] = ()):
        self.pm = pluggy.PluginManager("dsparsers")
        self.pm.add_hookspecs(hookspecs)
        if os.environ.get(ENV_TRACE_PLUGINS, "") not in ("", "0"):
            self.pm.add_hookcall_monitoring(_trace_before, _trace_after)
        self._distribution: dict[str, str] = {}
        #: (plugin name, error) for plugins that failed to import; the others still load
        self.load_failures: list[tuple[str, str]] = []
        for module_name in builtin_plugin_modules():
            self._add(importlib.import_module(module_name), module_name.rsplit(".", 1)[-1], BUILTIN_DISTRIBUTION)
        if load_entry_points:
            self._load_entry_points()
        for name, plugin in plugins:
            self._add(plugin, name, "registered in-process")
        self._by_name: dict[str, Provided] = {}
        self._alias: dict[str, str] = {}
        self._collect()

    # -- loading ----------------------------------------------------------------------------
    def _add(self, plugin: object, name: str, distribution: str) -> None:
        self.pm.register(plugin, name=name)
        self._distribution[name] = distribution

    def _load_entry_points(self) -> None:
        wanted = os.environ.get(ENV_LOAD_PLUGINS)
        allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if allowed is not None and ep.name not in allowed:
                continue
            if self.pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the others down
                self.load_failures.append((ep.name, f"{type(exc).__name__}: {exc}"))
                print(f"dsparsers: plugin {ep.name!r} failed to load: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "unknown distribution"
            self._add(plugin, ep.name, dist)

    def _collect(self) -> None:
        """Call each plugin's register_architectures on its own, so that the registry knows who provided
        what (through pluggy, so DSPARSERS_TRACE_PLUGINS shows the calls)."""
        plugins = [impl.plugin for impl in reversed(self.pm.hook.register_architectures.get_hookimpls())]
        for plugin in plugins:
            plugin_name = self.pm.get_name(plugin)
            caller = self.pm.subset_hook_caller("register_architectures", [p for p in plugins if p is not plugin])

            def register(arch: Architecture, _plugin: str = plugin_name) -> None:
                self._register(arch, _plugin)

            caller(register=register)

    def _register(self, arch: Architecture, plugin: str) -> None:
        if not isinstance(arch, Architecture):
            raise RegistryError(f"plugin {plugin!r} registered {arch!r}, which is not a dsparsers Architecture")
        provided = Provided(arch, plugin, self._distribution.get(plugin, "unknown distribution"))
        for key in (arch.name, *arch.aliases):
            key = key.lower()
            owner = self._alias.get(key)
            if owner is not None:
                other = self._by_name[owner]
                raise RegistryError(
                    f"architecture name {key!r} is provided twice: by {arch.name!r} of plugin {plugin!r} "
                    f"({provided.distribution}) and by {other.architecture.name!r} of plugin "
                    f"{other.plugin!r} ({other.distribution})"
                )
        self._by_name[arch.name.lower()] = provided
        for key in (arch.name, *arch.aliases):
            self._alias[key.lower()] = arch.name.lower()

    # -- lookup -----------------------------------------------------------------------------
    def architectures(self) -> list[Provided]:
        return sorted(self._by_name.values(), key=lambda p: p.architecture.name)

    def names(self) -> list[str]:
        return sorted(self._alias)

    def get(self, name: str) -> Provided:
        key = name.strip().lower()
        if key in self._alias:
            return self._by_name[self._alias[key]]
        close = difflib.get_close_matches(key, self.names(), n=4, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UsageError(
            f"--arch {name!r}: unknown architecture{hint} (`dsparsers plugins` lists all {len(self._alias)} names)"
        )

    def rank(self, model) -> list[Match]:
        """Every architecture's match for ``model``, best first (architectures that decline are left out)."""
        matches = []
        for provided in self.architectures():
            match = provided.architecture.match(model)
            if match is not None:
                matches.append(Match(match.score, match.reason, provided.architecture.name))
        return sorted(matches, key=lambda m: (-m.score, m.architecture))

    def template_dirs(self) -> list[Path]:
        dirs: list[Path] = []
        for result in self.pm.hook.template_dirs():
            dirs.extend(Path(d) for d in result)
        return dirs


def _trace_before(hook_name, hook_impls, kwargs) -> None:
    plugins = ", ".join(impl.plugin_name for impl in hook_impls) or "no plugin"
    print(f"dsparsers trace: {hook_name}({', '.join(kwargs)}) -> {plugins}", file=sys.stderr)


def _trace_after(outcome, hook_name, hook_impls, kwargs) -> None:
    exception = outcome.exception
    if exception is not None:
        print(f"dsparsers trace: {hook_name} raised {type(exception).__name__}: {exception}", file=sys.stderr)
    else:
        print(f"dsparsers trace: {hook_name} returned {outcome.get_result()!r}", file=sys.stderr)


_default: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, created on first use."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def reset_registry() -> None:
    global _default
    _default = None
