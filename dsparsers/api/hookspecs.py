"""The hooks a dsparsers plugin may implement (pluggy project name: ``dsparsers``).

A plugin is a module (or object) with functions decorated by ``@dsparsers.hookimpl``. Built-in
plugins live in ``dsparsers.plugins``; third-party ones are found through the ``dsparsers`` entry-point
group, e.g. in pyproject.toml::

    [project.entry-points.dsparsers]
    my_heads = "my_package.plugin"
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pluggy

from dsparsers.api.architecture import Architecture

hookspec = pluggy.HookspecMarker("dsparsers")


@hookspec
def register_architectures(register: Callable[[Architecture], None]) -> None:
    """Register architectures by calling ``register(ArchitectureSubclass())`` once for each.

    The registry records which plugin and distribution provided each one; two architectures with
    the same name or alias are an error naming both providers.
    """


@hookspec
def template_dirs() -> list[Path]:
    """Return directories holding this plugin's Jinja2 templates (searched after the built-in ones)."""
