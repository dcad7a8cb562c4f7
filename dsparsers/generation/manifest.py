"""``dsparsers.json``: what a generated directory was made from, and the one reader of it.

``generate`` writes it beside the sources (``codegen``); ``build``, ``conform --dir``, ``fuzz --dir``,
``run`` and the atomic writer read it back through :func:`read_manifest`, which turns a missing or
damaged file into one UsageError naming the directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from dsparsers.errors import UsageError

MANIFEST = "dsparsers.json"


@dataclass(frozen=True)
class Manifest:
    """The fields of a generated directory's manifest that callers use; ``raw`` holds all of it."""

    directory: Path
    architecture: str
    function: str
    library: str
    config: str
    parser_kind: str = "detector"
    requested_as: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> Path:
        """The parser's C++ source (lib<stem>.so <- <stem>.cpp)."""
        return self.directory / (self.library.removeprefix("lib").removesuffix(".so") + ".cpp")

    def library_path(self, builddir: str = "build") -> Path:
        return self.directory / builddir / self.library

    def config_path(self) -> Path:
        return self.directory / self.config


def load_manifest_dict(directory: Path) -> dict[str, Any] | None:
    """The raw manifest of ``directory``, or None when there is none or it is not valid JSON (for
    callers that treat a foreign directory as normal, e.g. the atomic writer)."""
    try:
        value = json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_manifest(directory: Path | str, *, option: str = "") -> Manifest:
    """The manifest of a directory written by ``dsparsers generate``; UsageError (``option`` names the
    command-line option that gave the directory) when it is missing or damaged."""
    directory = Path(directory)
    where = f"{option} {directory}" if option else f"{directory}"
    raw = load_manifest_dict(directory)
    if raw is None:
        raise UsageError(f"{where}: not a directory written by `dsparsers generate` (no readable {MANIFEST})")
    try:
        return Manifest(directory=directory, architecture=str(raw["architecture"]), function=str(raw["function"]),
                        library=str(raw["library"]), config=str(raw["config"]),
                        parser_kind=str(raw.get("parser_kind", "detector")), requested_as=raw.get("requested_as"),
                        params=dict(raw.get("params") or {}), files=dict(raw.get("files") or {}), raw=raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{where}: {MANIFEST} is damaged (missing or bad {exc})") from None
