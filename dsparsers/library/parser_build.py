"""The one path from an architecture and its head parameters to a built parser library:
render (``generation.codegen``) -> write atomically (``generation.output_dir``) -> build with Meson
(``meson_build``), into a directory of the caller's or, ``cached``, into the build cache keyed by the
generated files (a second call with the same inputs builds nothing).

``generate``, ``bench``, ``fuzz``, ``run --demo``, the pytest plugin and the test suite all build
through :func:`build_parser`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from dsparsers.generation.codegen import GeneratedParser, render_parser
from dsparsers.generation.output_dir import write_directory
from dsparsers.library.meson_build import BuildResult, build_directory, read_build_record
from dsparsers.paths import cache_dir

if TYPE_CHECKING:
    from dsparsers.api.architecture import Architecture, HeadParams
    from dsparsers.model.reader import ModelInfo


@dataclass(frozen=True)
class BuiltParser:
    """A parser directory as written, and its library (``result`` None when it was not built)."""

    generated: GeneratedParser
    directory: Path
    result: BuildResult | None


def cache_key(files: Mapping[str, str]) -> str:
    """What identifies a parser in the build cache: its generated files, names and contents."""
    digest = hashlib.sha256()
    for name, content in sorted(files.items()):
        digest.update(name.encode() + b"\0" + content.encode() + b"\0")
    return digest.hexdigest()[:16]


def build_parser(architecture: "Architecture", params: "HeadParams", directory: Path | None = None, *,
                 requested_as: str | None = None, model: "ModelInfo | None" = None, onnx_file: str | None = None,
                 template_dirs: list[Path] = (), build: bool = True, cached: bool = False, force: bool = True,
                 abi: int | None = None, deepstream_include: Path | str | None = "bundled", sanitize: bool = False,
                 transform: Callable[[dict[str, str], GeneratedParser], dict[str, str]] | None = None,
                 batch_size: int | None = None) -> BuiltParser:
    """Render the parser of ``params``, write it into ``directory`` and (``build``) build it.

    ``cached`` (no ``directory``): the cache directory ``<cache>/parsers/<requested_as>-<key>``, reused
    when its library is already built. ``transform`` may rewrite the files before they are written (tests
    plant bugs this way). ``force`` overwrites files edited since dsparsers wrote them.
    """
    generated = render_parser(architecture, params, requested_as=requested_as, model=model, onnx_file=onnx_file,
                              template_dirs=list(template_dirs), batch_size=batch_size)
    files = dict(generated.files)
    if transform is not None:
        files = transform(files, generated)
    if directory is None:
        if not cached:
            raise ValueError("build_parser: give a directory or cached=True")
        directory = cache_dir() / "parsers" / f"{generated.requested_as}-{cache_key(files)}"
        builddir = "build-sanitize" if sanitize else "build"
        library = directory / builddir / generated.library_file
        record = read_build_record(library) if library.is_file() else None
        if record is not None and build and abi in (None, record.abi):
            return BuiltParser(generated, directory, BuildResult(
                library, generated.function_name, record.abi, record.headers, directory / f"{builddir}.log",
                record.sanitize, architecture.parser_kind, record.deepstream_include, record.tensorrt_include,
                record.cuda_include))
    directory = Path(directory)
    write_directory(directory, files, force=force)
    result = None
    if build:
        result = build_directory(directory, abi=abi, deepstream_include=deepstream_include, sanitize=sanitize)
    return BuiltParser(generated, directory, result)
