"""The command line, one module per command group: ``catalog`` (plugins, inspect), ``generate``
(generate, build, patch, new-plugin), ``verify`` (conform, fuzz, bench) and ``emulate`` (run).
Commands import the stages they drive only when they run, so ``dsparsers plugins`` stays light."""

from dsparsers.cli import catalog, emulate, generate, verify  # noqa: F401  (each registers its commands)
from dsparsers.cli.common import main

__all__ = ["main"]
