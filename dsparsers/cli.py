"""The dsparsers command line: plugins, inspect, generate, build, conform."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from . import __version__
from .architecture import GenerateOptions
from .errors import DsparsersError, UsageError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Group(click.Group):
    """Turns DsparsersError into one line on stderr and its exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DsparsersError as exc:
            print(f"dsparsers: error: {exc}", file=sys.stderr)
            if exc.details:
                print(exc.details, file=sys.stderr)
            ctx.exit(exc.exit_code)


def _registry():
    from .registry import get_registry

    return get_registry()


def _parse_size(text: str | None, option: str) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        if "x" in text.lower():
            w, h = text.lower().split("x", 1)
            size = (int(w), int(h))
        else:
            size = (int(text), int(text))
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected WIDTH or WIDTHxHEIGHT, e.g. 640 or 1280x736") from None
    if min(size) <= 0 or max(size) > 16384:
        raise UsageError(f"{option} {text!r}: sizes must be between 1 and 16384")
    return size


def _parse_extra(pairs: tuple[str, ...]) -> dict[str, str]:
    extra = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"-O {pair!r}: expected KEY=VALUE")
        key, value = pair.split("=", 1)
        extra[key.strip()] = value.strip()
    return extra


def _options(classes, input_size, extra, requested_as=None) -> GenerateOptions:
    if classes is not None and not 1 <= classes <= 100000:
        raise UsageError(f"--classes {classes}: expected 1 to 100000")
    return GenerateOptions(classes, _parse_size(input_size, "--input"), _parse_extra(extra),
                           requested_as.strip().lower() if requested_as else None)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dsparsers")
def main():
    """Generate, build and prove DeepStream Gst-nvinfer custom output parsers from ONNX detectors."""


# -- plugins ------------------------------------------------------------------------------------
@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--markdown", is_flag=True, help="A Markdown table with config defaults (the README's).")
def plugins(as_json, markdown):
    """List the architectures, their aliases, providing plugin and the head each recognises."""
    registry = _registry()
    rows = [{"architecture": p.architecture.name, "aliases": list(p.architecture.aliases),
             "plugin": p.plugin, "distribution": p.distribution, "head": p.architecture.head,
             "function": p.architecture.function_name, "summary": p.architecture.summary}
            for p in registry.architectures()]
    if markdown:
        print("| architecture | aliases | head | families | cluster-mode | scale / color / letterbox | "
              "pre-cluster / nms-iou / topk |")
        print("|---|---|---|---|---|---|---|")
        for p in registry.architectures():
            a, d = p.architecture, p.architecture.config_defaults
            letterbox = ("letterbox, centred" if d.symmetric_padding else "letterbox") if d.maintain_aspect_ratio else "stretch"
            color = {0: "RGB", 1: "BGR", 2: "GRAY"}.get(d.model_color_format, str(d.model_color_format))
            scale = f"{d.net_scale_factor:.6g}" + (f" - {list(d.offsets)}" if d.offsets else "")
            print(f"| `{a.name}` | {', '.join(a.aliases)} | {a.head} | {a.summary} | {d.cluster_mode} | "
                  f"{scale} / {color} / {letterbox} | {d.pre_cluster_threshold:g} / {d.nms_iou_threshold:g} / {d.topk} |")
        return
    if as_json:
        print(json.dumps({"architectures": rows, "load_failures": [
            {"plugin": n, "error": e} for n, e in registry.load_failures]}, indent=2))
        return
    table = Table(title="dsparsers architectures")
    for column in ("architecture", "aliases", "plugin", "distribution", "head"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["architecture"], ", ".join(row["aliases"]), row["plugin"], row["distribution"], row["head"])
    out.print(table)
    for name, error in registry.load_failures:
        err.print(f"[yellow]plugin {name!r} failed to load:[/] {error}", markup=True)


# -- inspect ------------------------------------------------------------------------------------
@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(model, as_json):
    """Show a model's inputs, outputs, metadata and the architectures that match its heads."""
    from .model import load_model

    info = load_model(model)
    matches = _registry().rank(info)
    tensors = lambda ts: [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in ts]  # noqa: E731
    if as_json:
        print(json.dumps({"file": str(info.path), "sha256": info.sha256, "opset": info.opset,
                          "producer": info.producer, "inputs": tensors(info.inputs), "outputs": tensors(info.outputs),
                          "metadata": info.metadata,
                          "matches": [{"architecture": m.architecture, "score": m.score, "reason": m.reason}
                                      for m in matches]}, indent=2, ensure_ascii=True))
        return
    out.print(f"[bold]{info.path}[/]  sha256 {info.sha256[:16]}...  opset {info.opset}  {info.producer}")
    for title, items in (("inputs", info.inputs), ("outputs", info.outputs)):
        table = Table(title=title, title_justify="left")
        for column in ("name", "shape", "dtype", "produced by"):
            table.add_column(column, overflow="fold")
        for t in items:
            chain = " <- ".join(info.upstream_ops(t.name, depth=2)) or "-"
            table.add_row(t.name, t.shape_text(), t.dtype, chain)
        out.print(table)
    if info.metadata:
        table = Table(title="metadata", title_justify="left")
        table.add_column("key")
        table.add_column("value", overflow="fold")
        for key, value in info.metadata.items():
            table.add_row(key, value if len(value) <= 160 else value[:157] + "...")
        out.print(table)
    positive = [m for m in matches if m.score > 0]
    if positive:
        table = Table(title="matching architectures (best first)", title_justify="left")
        for column in ("architecture", "score", "families", "why"):
            table.add_column(column, overflow="fold")
        registry = _registry()
        for m in positive:
            table.add_row(m.architecture, f"{m.score:.2f}", registry.get(m.architecture).architecture.summary, m.reason)
        out.print(table)
        from .selection import AMBIGUITY_MARGIN

        close = [m for m in positive[1:] if positive[0].score - m.score < AMBIGUITY_MARGIN]
        if close:
            out.print(f"[yellow]ambiguous:[/] {', '.join(m.architecture for m in [positive[0], *close])} score within "
                      f"{AMBIGUITY_MARGIN}; `generate --arch NAME` settles it")
    else:
        from .selection import heads_text

        near = [m for m in matches if m.score == 0]
        out.print(f"[yellow]no architecture recognises these heads:[/] {heads_text(info)}")
        for m in near:
            out.print(f"  closest: {m.architecture}: {m.reason}")
        if not near:
            out.print("  known heads: " + "; ".join(f"{p.architecture.name}: {p.architecture.head}"
                                                   for p in _registry().architectures()))


# -- generate -----------------------------------------------------------------------------------
@main.command()
@click.option("--arch", help="Architecture name or alias (see `dsparsers plugins`); detected from --onnx if omitted.")
@click.option("--onnx", "onnx_path", type=click.Path(path_type=Path), help="The exported model.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output directory [default: parser_<arch>].")
@click.option("--classes", type=int, help="Class count (without --onnx; default 80).")
@click.option("--input", "input_size", help="Network input WxH (without --onnx; default 640x640).")
@click.option("-O", "extra", multiple=True, metavar="KEY=VALUE", help="Architecture-specific option.")
@click.option("--build/--no-build", "do_build", default=False, help="Build the library after generating.")
@click.option("--abi", type=click.Choice(["8", "9"]), help="DeepStream ABI (8: <= 8.x, 9: >= 9.0) [default: from headers, else 9].")
@click.option("--deepstream-include", type=click.Path(path_type=Path), help="DeepStream sources/includes to build against.")
@click.option("--force", is_flag=True, help="Overwrite files edited since dsparsers wrote them.")
@click.option("--bench-patch", is_flag=True, help="With --build: time this parser and the compact parser `dsparsers patch` "
              "would let you use, on this machine, and say what the patch saves per frame.")
def generate(arch, onnx_path, output, classes, input_size, extra, do_build, abi, deepstream_include, force, bench_patch):
    """Write a parser (C++, meson.build, nvinfer config, labels) for a model or a canonical head."""
    from .codegen import render_parser
    from .model import load_model
    from .output_dir import write_directory
    from .selection import choose

    registry = _registry()
    model = load_model(onnx_path) if onnx_path is not None else None
    choice = choose(registry, model, arch)
    architecture = choice.provided.architecture
    params = architecture.head_params(model, _options(classes, input_size, extra, choice.requested_as))
    stem = choice.requested_as
    output = output or Path(f"parser_{stem.replace('-', '_')}")
    onnx_file = os.path.relpath(Path(onnx_path).resolve(), Path(output).resolve()) if model else None
    generated = render_parser(architecture, params, requested_as=stem, model=model, onnx_file=onnx_file,
                              template_dirs=registry.template_dirs())
    write_directory(output, generated.files, force=force)
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
        result = _build(Path(output), abi, deepstream_include)
        table.add_row("library", f"{result.library} (DeepStream ABI {result.abi}, {result.headers} headers)")
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
        _print_load_lines(result)


def _patch_hint(registry, architecture, params, result, onnx_path) -> str:
    """What `dsparsers patch` would save per frame, measured now (1% of candidates above threshold)."""
    from .bench import patch_saving

    with err.status("timing the parser and the patched model's compact parser..."):
        stock, compact = patch_saving(registry, architecture, params, result, _cached_build)
    saved = stock.median_us - compact.median_us
    if saved <= 0:
        return (f"measured here: {stock.median_us:.1f} us/frame, {compact.median_us:.1f} us after `dsparsers patch`: "
                "no saving for this head")
    return (f"`dsparsers patch {onnx_path} -o patched.onnx` moves the decode into the engine; measured here: "
            f"{stock.median_us:.1f} -> {compact.median_us:.1f} us of CPU per frame ({stock.median_us / compact.median_us:.0f}x less, "
            f"{saved * 30 * 30 / 1e3:.1f} ms per second at 30 streams x 30 fps)")


def _build(directory: Path, abi, deepstream_include, sanitize: bool = False):
    from .build import build_directory

    what = "ASan + UBSan" if sanitize else "release, -O3"
    with err.status(f"building {directory} with meson ({what})..."):
        return build_directory(directory, abi=int(abi) if abi else None, deepstream_include=deepstream_include,
                               sanitize=sanitize)


def _rerun_under_sanitizers_if_needed(library: Path) -> None:
    """A --sanitize library only loads into a process that starts with the sanitizer runtimes: re-run
    this command in one (once)."""
    from .build import sanitizer_environment
    from .harness import read_library_info

    info = read_library_info(Path(library)) or {}
    if not info.get("sanitize") or os.environ.get("DSPARSERS_UNDER_SANITIZERS") == "1":
        return
    env = sanitizer_environment()
    env["DSPARSERS_UNDER_SANITIZERS"] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "dsparsers.cli", *sys.argv[1:]], env)


def _print_load_lines(result) -> None:
    out.print("[bold]nvinfer config lines that load it:[/]")
    print(f"{result.function_key}={result.function}")
    print(f"custom-lib-path={result.library}")


# -- build --------------------------------------------------------------------------------------
@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--abi", type=click.Choice(["8", "9"]), help="DeepStream ABI (8: <= 8.x, 9: >= 9.0) [default: from headers, else 9].")
@click.option("--deepstream-include", type=click.Path(path_type=Path), help="DeepStream sources/includes to build against ('bundled' for the bundled header).")
@click.option("--sanitize", is_flag=True, help="AddressSanitizer + UndefinedBehaviorSanitizer build, into build-sanitize/ (for testing).")
def build(directory, abi, deepstream_include, sanitize):
    """Build a generated parser directory into the library nvinfer loads."""
    result = _build(directory, abi, deepstream_include, sanitize)
    out.print(f"built [bold]{result.library}[/] (DeepStream ABI {result.abi}, {result.headers} headers; log {result.log})")
    if sanitize:
        print(f"sanitized build for testing, not for deployment: dsparsers conform --dir {directory} --sanitize")
        return
    _print_load_lines(result)


# -- conform ------------------------------------------------------------------------------------
@main.command()
@click.option("--lib", "library", type=click.Path(path_type=Path), help="Parser library (.so) to test.")
@click.option("--func", "function", help="Parse function name (parse-bbox-func-name).")
@click.option("--arch", help="Architecture whose reference decides what is right.")
@click.option("--dir", "directory", type=click.Path(path_type=Path), help="A generated directory: library, function, architecture and head are read from it.")
@click.option("--examples", default=200, show_default=True, type=click.IntRange(1, 100000), help="Hypothesis examples.")
@click.option("--abi", type=click.Choice(["8", "9"]), help="Object layout the library was built for [default: its build record, else 9].")
@click.option("--seed", type=int, help="Hypothesis seed, to reproduce a run.")
@click.option("--classes", type=int, help="Class count of the head the library parses [default: 80].")
@click.option("--input", "input_size", help="Network input WxH [default: 640x640].")
@click.option("-O", "extra", multiple=True, metavar="KEY=VALUE", help="Architecture-specific option (e.g. -O layout=rows).")
@click.option("--hostile/--no-hostile", default=True, show_default=True,
              help="Also feed hostile inputs (wrong dims and types, NaN/Inf everywhere, empty thresholds, ...).")
@click.option("--sanitize", is_flag=True, help="With --dir: test the `build --sanitize` library (ASan + UBSan).")
@click.option("--onnx", "onnx_path", type=click.Path(path_type=Path), help="Compare on this model's real outputs (with --image) instead of generated cases.")
@click.option("--image", "images", multiple=True, type=click.Path(path_type=Path), help="With --onnx: a picture to run the model on (repeatable).")
def conform(library, function, arch, directory, examples, abi, seed, classes, input_size, extra, hostile, sanitize,
            onnx_path=None, images=()):
    """Check a parser library against the reference decoder on generated tensors."""
    from .conformance import render_report, run_conformance, run_hostile
    from .harness import ParserLibrary

    registry = _registry()
    if directory is not None:
        manifest_path = Path(directory) / "dsparsers.json"
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--dir {directory}: cannot read {manifest_path.name}: {exc}") from None
        architecture = registry.get(arch or manifest["architecture"]).architecture
        params = architecture.params_from_dict(manifest["params"])
        library = library or Path(directory) / ("build-sanitize" if sanitize else "build") / manifest["library"]
        function = function or manifest["function"]
    else:
        missing = [name for name, value in (("--lib", library), ("--func", function), ("--arch", arch)) if not value]
        if missing:
            raise UsageError(f"{', '.join(missing)} required (or --dir with a generated directory)")
        architecture = registry.get(arch).architecture
        params = architecture.head_params(None, _options(classes, input_size, extra, arch))
    _rerun_under_sanitizers_if_needed(library)
    if onnx_path is not None:
        return _conform_on_images(library, function, architecture, params, directory, onnx_path, images,
                                  int(abi) if abi else None, classes, extra)
    with ParserLibrary(library, function, int(abi) if abi else None, kind=architecture.parser_kind) as parser:
        with err.status(f"conformance: {examples} examples through {function}...") as status:
            report = run_conformance(parser, architecture, params, examples=examples, seed=seed,
                                     progress=lambda n: status.update(f"conformance: example {n}/{examples}"))
            if hostile:
                status.update("conformance: hostile inputs...")
                run_hostile(parser, architecture, params, report)
    render_report(report, out)
    sys.exit(0 if report.passed else 1)


# -- fuzz ---------------------------------------------------------------------------------------
@main.command()
@click.option("--arch", help="Fuzz dsparsers' own parser for this architecture's canonical head.")
@click.option("--dir", "directory", type=click.Path(path_type=Path), help="Or a generated directory.")
@click.option("--seconds", default=30, show_default=True, type=click.IntRange(1, 10**6))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Work directory (fuzzer, corpus, crashes) [default: a temporary one].")
def fuzz(arch, directory, seconds, output):
    """Fuzz a generated parser with libFuzzer (clang) under ASan + UBSan."""
    import tempfile

    from .codegen import render_parser
    from .fuzz import base_case_for, build_fuzzer, run_fuzzer
    from .output_dir import write_directory

    if (arch is None) == (directory is None):
        raise UsageError("give --arch or --dir")
    work = Path(output) if output else Path(tempfile.mkdtemp(prefix="dsparsers-fuzz-"))
    registry = _registry()
    if arch is not None:
        architecture = registry.get(arch).architecture
        params = architecture.head_params(None, _options(None, None, (), arch))
        directory = work / "parser"
        write_directory(directory, render_parser(architecture, params, requested_as=arch,
                                                 template_dirs=registry.template_dirs()).files, force=True)
    else:
        try:
            manifest = json.loads((Path(directory) / "dsparsers.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise UsageError(f"--dir {directory}: not a directory written by `dsparsers generate`") from None
        architecture = registry.get(manifest["architecture"]).architecture
        params = architecture.params_from_dict(manifest["params"])
    with err.status("building the fuzzer (clang, libFuzzer, ASan + UBSan)..."):
        binary = build_fuzzer(Path(directory), work / "fuzzer")
    with err.status("finding a valid input with objects to seed the fuzzer..."):
        base = base_case_for(architecture, params, work / "base.case")
    with err.status(f"fuzzing for {seconds} s..."):
        result = run_fuzzer(binary, seconds=seconds, workdir=work, base_case=base)
    table = Table(title=f"fuzzing {directory}", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    table.add_row("executions", f"{result.executions} in {result.seconds:.0f} s ({result.per_second:.0f}/s)")
    table.add_row("crashes", ", ".join(map(str, result.crashes)) or "none")
    table.add_row("log", str(result.log))
    out.print(table)
    sys.exit(1 if result.crashes else 0)


# -- new-plugin ---------------------------------------------------------------------------------
@main.command("new-plugin")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Directory to write [default: dsparsers-NAME].")
@click.option("--force", is_flag=True, help="Write into a non-empty directory.")
def new_plugin_command(name, output, force):
    """Scaffold an installable plugin package for a new head, with its tests."""
    from .new_plugin import new_plugin

    output = output or Path(f"dsparsers-{name}")
    files = new_plugin(name, output, registry=_registry(), force=force)
    table = Table(title=f"plugin package for {name}", title_justify="left", show_header=False)
    table.add_column("file")
    for path in files:
        table.add_row(str(Path(output) / path))
    out.print(table)
    module = name.replace("-", "_")
    print(f"next: pip install -e '{output}[test]' && DSPARSERS_LOAD_PLUGINS={module} dsparsers plugins "
          f"&& (cd {output} && python3 -m pytest)")


# -- patch --------------------------------------------------------------------------------------
@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The patched model to write.")
@click.option("--arch", help="Architecture of MODEL [default: detected].")
@click.option("--topk", type=int, help="Keep only the K best rows (TopK in the engine).")
def patch(model, output, arch, topk):
    """Append a decode head to MODEL so the engine outputs compact [B, N, 6] rows (deepstream-yolo parser)."""
    from .model import load_model
    from .patch import COMPACT_ARCHITECTURE, patch_model
    from .selection import choose

    registry = _registry()
    info = load_model(model)
    choice = choose(registry, info, arch)
    architecture = choice.provided.architecture
    params = architecture.head_params(info, _options(None, None, (), choice.requested_as))
    if Path(output).resolve() == Path(model).resolve():
        raise UsageError(f"-o {output}: would overwrite the input model")
    with err.status(f"patching {model}..."):
        patch_model(model, output, architecture, params, topk=topk)
    rows = topk or getattr(params, "num_candidates", None) or "N"
    out.print(f"wrote [bold]{output}[/]: output [B, {rows}, 6] (x1 y1 x2 y2 score class) decoded in the engine; "
              f"the parser reads 6 floats per candidate instead of {params.num_classes + 4} or more")
    print(f"next: dsparsers generate --onnx {output} --arch {COMPACT_ARCHITECTURE} --build")


# -- bench --------------------------------------------------------------------------------------
@main.command()
@click.option("--arch", help="Architecture whose head the input follows (and whose parser to build).")
@click.option("--report", is_flag=True, help="Every architecture's canonical parser (and the patched compact one): a Markdown table.")
@click.option("--lib", "library", type=click.Path(path_type=Path), help="Parser library to time [default: dsparsers' own, built for the head].")
@click.option("--func", "function", help="Parse function name (with --lib).")
@click.option("--input", "input_size", default="640", show_default=True, help="Network input: 640, 1280 or WxH.")
@click.option("--classes", type=int, help="Class count [default: 80].")
@click.option("-O", "extra", multiple=True, metavar="KEY=VALUE", help="Architecture-specific option.")
@click.option("--density", default=0.01, show_default=True, type=click.FloatRange(0, 1), help="Fraction of candidates above threshold.")
@click.option("--mode", type=click.Choice(["hot", "rotating", "both"]), default="both", show_default=True)
@click.option("--iterations", default=2000, show_default=True, type=click.IntRange(10, 10**7))
@click.option("--abi", type=click.Choice(["8", "9"]), help="Object layout of --lib [default: its build record, else 9].")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def bench(arch, report, library, function, input_size, classes, extra, density, mode, iterations, abi, as_json):
    """Time a parser per frame against the speed-of-memory floor, in the same run."""
    from .bench import family_report, report_markdown, run_bench
    from .harness import ParserLibrary

    registry = _registry()
    if report:
        with err.status("benchmarking every architecture..."):
            rows = family_report(registry, density=density, iterations=iterations, build=_cached_build)
        print(report_markdown(rows))
        return
    if not arch:
        raise UsageError("--arch is required (or --report for every architecture)")
    architecture = registry.get(arch).architecture
    params = architecture.head_params(None, _options(classes, input_size, extra, arch))
    if library is None:
        if function is not None:
            raise UsageError("--func goes with --lib")
        result = _cached_build(architecture, params, arch)
        library, function = result.library, result.function
    elif function is None:
        raise UsageError("--lib needs --func")
    modes = ("hot", "rotating") if mode == "both" else (mode,)
    with ParserLibrary(library, function, int(abi) if abi else None, kind=architecture.parser_kind) as parser:
        with err.status(f"timing {function} ({iterations} frames per mode)..."):
            try:
                results = run_bench(parser, architecture, params, density=density, modes=modes, iterations=iterations)
            except NotImplementedError as exc:
                raise UsageError(f"--arch {arch}: {exc}") from None
    if as_json:
        print(json.dumps({"architecture": architecture.name, "head": architecture.describe(params), "library": str(library),
                          "function": function, "density": density, "results": [
                              {"mode": r.mode, "frames": r.frames, "frame_bytes": r.frame_bytes, "objects": r.objects,
                               "median_us": r.median_us, "p90_us": r.p90_us, "floor_median_us": r.floor_median_us,
                               "ratio": r.ratio} for r in results]}, indent=2))
        return
    table = Table(title=f"{function}: {architecture.describe(params)}, density {density:g}", title_justify="left")
    for column in ("mode", "frames", "MB/frame", "objects", "median us", "p90 us", "read floor us", "ratio"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(r.mode, str(r.frames), f"{r.frame_bytes / 1e6:.2f}", str(r.objects), f"{r.median_us:.1f}",
                      f"{r.p90_us:.1f}", f"{r.floor_median_us:.1f}", f"{r.ratio:.2f}x")
    out.print(table)


def _cached_build(architecture, params, requested_as):
    """dsparsers' own parser for ``params``, generated and built once into the cache directory."""
    import hashlib

    from .build import build_directory
    from .codegen import render_parser
    from .output_dir import write_directory
    from .paths import cache_dir

    generated = render_parser(architecture, params, requested_as=requested_as, template_dirs=_registry().template_dirs())
    key = hashlib.sha256("".join(sorted(generated.files.values())).encode()).hexdigest()[:16]
    directory = cache_dir() / "bench" / f"{requested_as}-{key}"
    library = directory / "build" / generated.library_file
    if not library.is_file():
        write_directory(directory, generated.files, force=True)
        with err.status(f"building {generated.function_name} for the benchmark..."):
            return build_directory(directory, deepstream_include="bundled")
    from .build import BuildResult
    from .harness import read_library_info

    info = read_library_info(library) or {}
    return BuildResult(library, generated.function_name, int(info.get("abi", 9)), str(info.get("headers", "bundled")),
                       directory / "build.log")


# -- run ----------------------------------------------------------------------------------------
@main.command("run")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="nvinfer config (key=value or .yml/.yaml) to emulate.")
@click.option("--onnx", "onnx_path", type=click.Path(path_type=Path), help="ONNX model [default: the config's onnx-file].")
@click.option("--lib", "library", type=click.Path(path_type=Path), help="Parser library [default: the config's custom-lib-path].")
@click.option("--func", "function", help="Parse function [default: the config's parse-bbox-func-name].")
@click.option("--arch", help="Without --config: the architecture whose generated config gives the defaults [default: detected].")
@click.option("--image", "images", multiple=True, type=click.Path(path_type=Path), help="Picture to run on (repeatable).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output directory [default: dsparsers-run, dsparsers-demo with --demo].")
@click.option("--set", "overrides", multiple=True, metavar="[SECTION.]KEY=VALUE", help="Override a config key, e.g. class-attrs-all.pre-cluster-threshold=0.5.")
@click.option("--abi", type=click.Choice(["8", "9"]), help="Object layout the library was built for [default: its build record, else 9].")
@click.option("--demo", is_flag=True, help="Run on a tiny random-weight YOLO11 model and a picture dsparsers draws itself (nothing downloaded).")
@click.option("--force", is_flag=True, help="Write into a non-empty directory dsparsers did not write.")
def run_command(config_path, onnx_path, library, function, arch, images, output, overrides, abi, demo, force):
    """Emulate nvinfer on pictures, end to end, and draw the detections (no DeepStream needed)."""
    from .run import run_pictures, settings_for_model, settings_from_config

    note, extra = None, None
    if demo:
        if config_path or onnx_path or library or function:
            raise UsageError("--demo makes its own model, parser and config: drop --config/--onnx/--lib/--func")
        from .demo import NOTE, prepare_demo

        with err.status("demo: building a random-weight YOLO11-style model and its parser..."):
            config_path, picture = prepare_demo()
        images = images or (picture,)
        output = output or Path("dsparsers-demo")
        note, extra = NOTE, {"demo": NOTE}
        err.print(f"[yellow]demo:[/] the model has RANDOM weights, so its boxes are meaningless; the picture proves "
                  "that pre-processing, the model, the generated parser, nvinfer's clustering, back-projection and "
                  "drawing all run together.", markup=True)
    if not images:
        raise UsageError("--image is required (or --demo)")
    abi_value = int(abi) if abi else None
    if config_path is not None:
        settings = settings_from_config(config_path, onnx=onnx_path, library=library, function=function,
                                        abi=abi_value, overrides=overrides)
    else:
        missing = [name for name, value in (("--onnx", onnx_path), ("--lib", library), ("--func", function)) if not value]
        if missing:
            raise UsageError(f"{', '.join(missing)} required without --config (or give --config CONFIG)")
        settings = settings_for_model(onnx_path, library, function, arch=arch, abi=abi_value, overrides=overrides)
    output = output or Path("dsparsers-run")
    for line in settings.notes:
        err.print(f"[yellow]note:[/] {line}", markup=True)
    if len(images) > 1:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task("nvinfer emulation", total=len(images))
            results = run_pictures(settings, images, output, force=force, note=note, extra=extra,
                                   progress=lambda done, path: bar.update(task, completed=done,
                                                                          description=f"{path.name}"))
    else:
        with err.status("running nvinfer's path on the picture..."):
            results = run_pictures(settings, images, output, force=force, note=note, extra=extra)
    table = Table(title=f"dsparsers run: {settings.function} ({settings.source})", title_justify="left")
    for column in ("image", "detections", "top classes", "output"):
        table.add_column(column, overflow="fold")
    for r in results:
        status = "" if r.accepted else " (parser returned false)"
        table.add_row(str(r.source), f"{len(r.detections)}{status}", r.top_classes(), str(Path(output) / r.output))
    out.print(table)
    for r in results:
        if not r.accepted:
            err.print(f"[yellow]warning:[/] {r.source}: the parser returned false (nvinfer only logs this: the frame "
                      "gets no objects)", markup=True)
    out.print(f"detections and settings: {Path(output) / 'detections.json'}")
    if demo:
        out.print(f"[yellow]{note}[/]", markup=True)
        print(f"the same run by hand: dsparsers run --config {config_path} --image {images[0]}")


def _conform_on_images(library, function, architecture, params, directory, onnx_path, images, abi, classes=None,
                       extra=()) -> None:
    """`conform --onnx MODEL --image IMG`: the library against the reference on the model's real outputs."""
    from .conformance import compare
    from .harness import ParserLibrary
    from .run import Emulator, settings_for_model, settings_from_config

    if not images:
        raise UsageError("--onnx needs --image (repeatable): the pictures to run the model on")
    config_path = None
    if directory is None:  # the head as the model has it, not the canonical one
        from .model import load_model

        params = architecture.head_params(load_model(onnx_path), _options(classes, None, extra, architecture.name))
    else:
        manifest = json.loads((Path(directory) / "dsparsers.json").read_text(encoding="utf-8"))
        config_path = Path(directory) / manifest["config"]
    if config_path is not None:
        settings = settings_from_config(config_path, onnx=onnx_path, library=library, function=function, abi=abi)
    else:
        settings = settings_for_model(onnx_path, library, function, arch=architecture.name, abi=abi)
    from .preprocess import load_image

    pictures = [(Path(p), load_image(p)) for p in images]
    table = Table(title=f"{function} vs the {architecture.name} reference on {onnx_path}'s outputs", title_justify="left")
    for column in ("image", "parser objects", "reference objects", "verdict"):
        table.add_column(column, overflow="fold")
    failed = 0
    with Emulator(settings) as emulator:
        step = emulator.model.batch_size(int(settings.config.get("batch-size")))
        for start in range(0, len(pictures), step):
            chunk = pictures[start:start + step]
            frames = emulator.model.infer([emulator.preprocessing.tensor(p)[0] for _, p in chunk])
            for (path, _), layers in zip(chunk, frames):
                from .parser_io import ParserCase

                case = ParserCase(layers, emulator.model.network, emulator.params)
                expected = architecture.reference(case, params)
                actual = emulator.library.parse(case)
                mismatch = compare(expected, actual)
                failed += mismatch is not None
                table.add_row(str(path), f"{len(actual.objects)}{'' if actual.accepted else ' (false)'}",
                              f"{len(expected.objects)}{'' if expected.accepted else ' (rejects)'}",
                              "[green]PASS[/]" if mismatch is None else f"[red]FAIL[/] {mismatch.summary}")
    out.print(table)
    verdict = "[bold green]PASS[/]" if not failed else f"[bold red]FAIL[/] ({failed} of {len(pictures)} image(s))"
    out.print(f"{verdict} {function} on the real outputs of {onnx_path}", markup=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
