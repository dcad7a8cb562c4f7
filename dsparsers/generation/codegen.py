"""Rendering a parser: template context -> C++ source, meson files, nvinfer config, labels, manifest.

Rendering is pure: the same architecture, parameters and model give byte-identical files (no
timestamps, no absolute paths, sorted iteration).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import jinja2

from dsparsers import __version__
from dsparsers.api.architecture import Architecture, HeadParams
from dsparsers.generation.escaping import c_string, comment_text, identifier, label_text, meson_string
from dsparsers.model.reader import ModelInfo
from dsparsers.generation.config_writer import parser_config
from dsparsers.generation.manifest import MANIFEST
from dsparsers.generation.output_dir import sha256_text
from dsparsers.paths import RUNTIME_INCLUDE_DIR, SUPPORT_DIR, TEMPLATE_DIR

STATIC_FILES = {"meson_options.txt": TEMPLATE_DIR / "meson_options.txt"}


@dataclass(frozen=True)
class GeneratedParser:
    architecture: str
    requested_as: str
    function_name: str
    library_name: str  # meson target name; the file is lib<library_name>.so
    source_name: str
    config_name: str
    head: str
    files: dict[str, str]

    @property
    def library_file(self) -> str:
        return f"lib{self.library_name}.so"


def template_environment(extra_dirs: list[Path] = ()) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(TEMPLATE_DIR), *map(str, extra_dirs)]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(c_string=c_string, comment=comment_text, meson_string=meson_string,
                       json=lambda v: json.dumps(v, ensure_ascii=True), float_literal=float_literal)
    return env


def float_literal(value: float) -> str:
    """A finite number as a C++ float literal (0.45 -> 0.45f): the float32 nearest to it, as np.float32 rounds."""
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {value!r}")
    return f"{number!r}f"


def _model_label(model: ModelInfo | None) -> str:
    if model is None:
        return "none (canonical head from options)"
    return f"{c_string(model.path.name)} sha256 {model.sha256}"


@dataclass(frozen=True)
class ParserNames:
    """The file and symbol names of a parser generated for ``requested_as`` (an alias names its files)."""

    function: str
    library: str  # meson target; the file is lib<library>.so
    source: str
    config: str

    @property
    def library_file(self) -> str:
        return f"lib{self.library}.so"


def parser_names(arch: Architecture, requested_as: str | None = None) -> ParserNames:
    stem = identifier((requested_as or arch.name).lower()).lower()
    return ParserNames(arch.function_name, f"nvdsparser_{stem}", f"nvdsparser_{stem}.cpp",
                       f"config_infer_primary_{stem}.txt")


def render_config(arch: Architecture, params: HeadParams, *, requested_as: str | None = None,
                  model: ModelInfo | None = None, onnx_file: str | None = None,
                  batch_size: int | None = None) -> tuple[str, str]:
    """(file name, text) of the nvinfer config ``generate`` writes for ``params``, without rendering C++
    (``run`` reads a model's settings from it)."""
    requested_as = (requested_as or arch.name).lower()
    names = parser_names(arch, requested_as)
    return names.config, parser_config(arch, params, names, model, onnx_file, requested_as, batch_size).render()


def render_parser(arch: Architecture, params: HeadParams, *, requested_as: str | None = None,
                  model: ModelInfo | None = None, onnx_file: str | None = None,
                  template_dirs: list[Path] = (), batch_size: int | None = None) -> GeneratedParser:
    requested_as = (requested_as or arch.name).lower()
    stem = identifier(requested_as).lower()
    parser = parser_names(arch, requested_as)
    names = {"function": parser.function, "library": parser.library, "source": parser.source,
             "config": parser.config, "library_file": parser.library_file}
    head = arch.describe(params)
    context = {
        "generator_version": __version__,
        "architecture": arch.name,
        "requested_as": requested_as,
        "parser_label": requested_as,
        "model_label": _model_label(model),
        "head_description": head,
        "function_name": names["function"],
        "library_name": names["library"],
        "source_name": names["source"],
        "project_name": f"dsparsers-{stem}",
        **arch.template_context(params),
    }
    env = template_environment(list(template_dirs))
    files: dict[str, str] = {}
    files[names["source"]] = env.get_template(arch.template).render(context)
    files["meson.build"] = env.get_template("meson.build.j2").render(context)
    files["exports.map"] = env.get_template("exports.map.j2").render(context)
    files["library_info.json.in"] = env.get_template("library_info.json.in.j2").render(context)
    for name, path in STATIC_FILES.items():
        files[name] = path.read_text(encoding="utf-8")
    for header in sorted((RUNTIME_INCLUDE_DIR / "dsparsers").glob("*.h")) + sorted((SUPPORT_DIR / "dsparsers").glob("*.h")):
        files[f"include/dsparsers/{header.name}"] = header.read_text(encoding="utf-8")
    files[names["config"]] = parser_config(arch, params, parser, model, onnx_file, requested_as, batch_size).render()
    files["labels.txt"] = "".join(label_text(n, f"class_{i}") + "\n" for i, n in enumerate(params.labels()))
    manifest = {
        "generator": f"dsparsers {__version__}",
        "architecture": arch.name,
        "requested_as": requested_as,
        "function": names["function"],
        "parser_kind": arch.parser_kind,
        "library": names["library_file"],
        "config": names["config"],
        "head": head,
        "params": {k: v for k, v in dataclasses.asdict(params).items() if k != "class_names"},
        "model": None if model is None else {"file": model.path.name, "sha256": model.sha256},
        "files": {name: sha256_text(content) for name, content in sorted(files.items())},
    }
    files[MANIFEST] = json.dumps(manifest, indent=2, ensure_ascii=True, sort_keys=False) + "\n"
    return GeneratedParser(arch.name, requested_as, names["function"], names["library"], names["source"],
                           names["config"], head, files)
