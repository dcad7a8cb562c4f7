"""`dsparsers generate`, `build`, `patch` and `new-plugin`: from a model to a parser library."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.table import Table

from dsparsers.cli.common import (header_search_options, cached_build, err, main, options, out, print_load_lines, current_registry,
                                  build_with_status, built_text)
from dsparsers.errors import UsageError


# -- generate -----------------------------------------------------------------------------------
@main.command()
@click.option("--arch", help="Architecture name or alias (see `dsparsers plugins`); detected from --onnx if omitted.")
@click.option("--onnx", "onnx_path", type=click.Path(path_type=Path), help="The exported model.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output directory [default: parser_<arch>].")
@click.option("--classes", type=int, help="Class count (without --onnx; default 80).")
@click.option("--input", "input_size", help="Network input WxH [default: the model's, else its imgsz metadata; "
              "without --onnx 640x640]. With --onnx: a fixed input must agree; a symbolic one is built at this size.")
@click.option("--batch-size", type=int, help="nvinfer batch-size (nvstreammux's) for a model with a dynamic batch "
              "[default: the model's fixed batch, else 1]; it names the engine file too.")
@click.option("-O", "extra", multiple=True, metavar="KEY=VALUE", help="Architecture-specific option.")
@click.option("--build/--no-build", "do_build", default=False, help="Build the library after generating.")
@click.option("--abi", type=click.Choice(["8", "9"]), help="DeepStream ABI (8: <= 8.x, 9: >= 9.0) [default: from headers, else 9].")
@click.option("--deepstream-include", type=click.Path(path_type=Path), help="DeepStream sources/includes to build against.")
@header_search_options
@click.option("--force", is_flag=True, help="Overwrite files edited since dsparsers wrote them.")
@click.option("--bench-patch", is_flag=True, help="With --build: time this parser and the compact parser `dsparsers patch` "
              "would let you use, on this machine, and say what the patch saves per frame.")
def generate(arch, onnx_path, output, classes, input_size, batch_size, extra, do_build, abi, deepstream_include,
             tensorrt_include, cuda_include, force, bench_patch):
    """Write a parser (C++, meson.build, nvinfer config, labels) for a model or a canonical head."""
    from dsparsers.api.architecture import settle_input
    from dsparsers.api.selection import choose
    from dsparsers.library.parser_build import build_parser
    from dsparsers.model.reader import load_model

    registry = current_registry()
    model = load_model(onnx_path) if onnx_path is not None else None
    choice = choose(registry, model, arch)
    architecture = choice.provided.architecture
    generate_options = options(classes, input_size, extra, choice.requested_as)
    # the head as the engine will have it: a symbolic input size settled (and --input checked against the model)
    engine_model = (settle_input(model, generate_options.input_size, stride=architecture.input_stride)
                    if model is not None else None)
    params = architecture.head_params(engine_model, generate_options)
    stem = choice.requested_as
    output = output or Path(f"parser_{stem.replace('-', '_')}")
    onnx_file = os.path.relpath(Path(onnx_path).resolve(), Path(output).resolve()) if model else None
    generated = build_parser(architecture, params, Path(output), requested_as=stem, model=model, onnx_file=onnx_file,
                             template_dirs=registry.template_dirs(), build=False, force=force,
                             batch_size=batch_size).generated
    table = Table(title=f"generated {architecture.name}" + (f" (as {stem})" if stem != architecture.name else ""),
                  title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    if model is not None:
        best = next((m for m in choice.matches if m.architecture == architecture.name), None)
        table.add_row("model", f"{model.path} ({'matched: ' + best.reason if best else 'chosen by --arch'})")
    table.add_row("head", generated.head)
    table.add_row("function", generated.function_name)
    table.add_row("source", str(Path(output) / generated.source_name))
    table.add_row("config", str(Path(output) / generated.config_name))
    table.add_row("labels", str(Path(output) / "labels.txt"))
    patchable = hasattr(architecture, "append_decode") and model is not None
    if do_build:
        result = build_with_status(Path(output), abi, deepstream_include, tensorrt_include=tensorrt_include,
                                   cuda_include=cuda_include)
        table.add_row("library", f"{result.library} ({built_text(result)})")
        if patchable and bench_patch:
            table.add_row("faster", _patch_hint(registry, architecture, params, result, onnx_path))
    else:
        table.add_row("next", f"dsparsers build {output}")
    if patchable and not (do_build and bench_patch):
        table.add_row("faster", f"`dsparsers patch {onnx_path} -o patched.onnx` moves the decode into the engine: the "
                      f"parser then reads 6 floats per candidate instead of {params.num_classes + 4} or more "
                      "(`--build --bench-patch` measures the saving on this machine)")
    out.print(table)
    if do_build:
        print_load_lines(result)


def _patch_hint(registry, architecture, params, result, onnx_path) -> str:
    """What `dsparsers patch` would save per frame, measured now (1% of candidates above threshold)."""
    from dsparsers.verification.bench import patch_saving

    with err.status("timing the parser and the patched model's compact parser..."):
        stock, compact = patch_saving(registry, architecture, params, result, cached_build)
    saved = stock.median_us - compact.median_us
    if saved <= 0:
        return (f"measured here: {stock.median_us:.1f} us/frame, {compact.median_us:.1f} us after `dsparsers patch`: "
                "no saving for this head")
    return (f"`dsparsers patch {onnx_path} -o patched.onnx` moves the decode into the engine; measured here: "
            f"{stock.median_us:.1f} -> {compact.median_us:.1f} us of CPU per frame ({stock.median_us / compact.median_us:.0f}x less, "
            f"{saved * 30 * 30 / 1e3:.1f} ms per second at 30 streams x 30 fps)")


# -- build --------------------------------------------------------------------------------------
@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--abi", type=click.Choice(["8", "9"]), help="DeepStream ABI (8: <= 8.x, 9: >= 9.0) [default: from headers, else 9].")
@click.option("--deepstream-include", type=click.Path(path_type=Path), help="DeepStream sources/includes to build against ('bundled' for the bundled header).")
@header_search_options
@click.option("--sanitize", is_flag=True, help="AddressSanitizer + UndefinedBehaviorSanitizer build, into build-sanitize/ (for testing).")
def build(directory, abi, deepstream_include, tensorrt_include, cuda_include, sanitize):
    """Build a generated parser directory into the library nvinfer loads."""
    result = build_with_status(directory, abi, deepstream_include, sanitize, tensorrt_include=tensorrt_include,
                               cuda_include=cuda_include)
    out.print(f"built [bold]{result.library}[/] ({built_text(result)}; log {result.log})")
    if sanitize:
        print(f"sanitized build for testing, not for deployment: dsparsers conform --dir {directory} --sanitize")
        return
    print_load_lines(result)


# -- patch --------------------------------------------------------------------------------------
@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The patched model to write.")
@click.option("--arch", help="Architecture of MODEL [default: detected].")
@click.option("--topk", type=int, help="Keep only the K best rows (TopK in the engine).")
def patch(model, output, arch, topk):
    """Append a decode head to MODEL so the engine outputs compact [B, N, 6] rows (deepstream-yolo parser)."""
    from dsparsers.model.reader import load_model
    from dsparsers.model.patch import COMPACT_ARCHITECTURE, patch_model
    from dsparsers.api.selection import choose

    registry = current_registry()
    info = load_model(model)
    choice = choose(registry, info, arch)
    architecture = choice.provided.architecture
    params = architecture.head_params(info, options(None, None, (), choice.requested_as))
    if Path(output).resolve() == Path(model).resolve():
        raise UsageError(f"-o {output}: would overwrite the input model")
    with err.status(f"patching {model}..."):
        patch_model(model, output, architecture, params, topk=topk)
    rows = topk or getattr(params, "num_candidates", None) or "N"
    out.print(f"wrote [bold]{output}[/]: output [B, {rows}, 6] (x1 y1 x2 y2 score class) decoded in the engine; "
              f"the parser reads 6 floats per candidate instead of {params.num_classes + 4} or more")
    print(f"next: dsparsers generate --onnx {output} --arch {COMPACT_ARCHITECTURE} --build")


# -- new-plugin ---------------------------------------------------------------------------------
@main.command("new-plugin")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Directory to write [default: dsparsers-NAME].")
@click.option("--force", is_flag=True, help="Write into a non-empty directory.")
def new_plugin_command(name, output, force):
    """Scaffold an installable plugin package for a new head, with its tests."""
    from dsparsers.generation.new_plugin import new_plugin

    output = output or Path(f"dsparsers-{name}")
    files = new_plugin(name, output, registry=current_registry(), force=force)
    table = Table(title=f"plugin package for {name}", title_justify="left", show_header=False)
    table.add_column("file")
    for path in files:
        table.add_row(str(Path(output) / path))
    out.print(table)
    module = name.replace("-", "_")
    print(f"next: pip install -e '{output}[test]' && DSPARSERS_LOAD_PLUGINS={module} dsparsers plugins "
          f"&& (cd {output} && python3 -m pytest)")
