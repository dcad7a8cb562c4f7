"""`dsparsers conform`, `fuzz` and `bench`: is a parser library right, robust and fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from dsparsers.cli.common import (cached_build, err, main, options, out, current_registry,
                                  rerun_under_sanitizers_if_needed)
from dsparsers.emulation.releases import DEEPSTREAM_VERSIONS, NEWEST_DEEPSTREAM
from dsparsers.errors import UsageError


# -- conform ------------------------------------------------------------------------------------
@main.command()
@click.option("--lib", "library", type=click.Path(path_type=Path), help="Parser library (.so) to test.")
@click.option("--func", "function", help="Parse function name (parse-bbox-func-name).")
@click.option("--arch", help="Architecture whose reference decides what is right.")
@click.option("--dir", "directory", type=click.Path(path_type=Path), help="A generated directory: library, function, architecture and head are read from it.")
@click.option("--examples", default=200, show_default=True, type=click.IntRange(1, 100000), help="Hypothesis examples per round of the contract tier (half as many beyond it).")
@click.option("--abi", type=click.Choice(["8", "9"]), help="Object layout the library was built for [default: its build record, else 9].")
@click.option("--seed", type=int, help="Hypothesis seed, to reproduce a run.")
@click.option("--classes", type=int, help="Class count of the head the library parses [default: 80].")
@click.option("--input", "input_size", help="Network input WxH [default: 640x640].")
@click.option("-O", "extra", multiple=True, metavar="KEY=VALUE", help="Architecture-specific option (e.g. -O layout=rows).")
@click.option("--hostile/--no-hostile", default=True, show_default=True,
              help="Also run the robustness tier: inputs beyond the nvinfer contract (wrong dims and types, short thresholds, counts above K, ...).")
@click.option("--strict", is_flag=True, help="Robustness findings fail the verdict too (by default only contract findings do).")
@click.option("--sanitize", is_flag=True, help="Run under the sanitizers the library was built with (ASan/UBSan; with --dir: the `build --sanitize` library). Reports are findings, per case, shrunk.")
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(0.1, 3600), help="Seconds one call may take before it counts as a hang.")
@click.option("--min-box", "min_box", type=click.Choice(["0"]), help="Convention: the library keeps boxes under 1x1 network pixel (`--min-box 0`).")
@click.option("--clip-at", "clip_at", type=click.Choice(["w", "w-1"]), default="w", show_default=True, help="Convention: right/bottom edges clipped at W (the references) or W-1.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), help="Write a Markdown and a JSON report for this library into DIR.")
@click.option("--onnx", "onnx_path", type=click.Path(path_type=Path), help="Compare on this model's real outputs (with --image) instead of generated cases.")
@click.option("--image", "images", multiple=True, type=click.Path(path_type=Path), help="With --onnx: a picture to run the model on (repeatable).")
@click.option("--deepstream-version", "deepstream", type=click.Choice(DEEPSTREAM_VERSIONS), default=NEWEST_DEEPSTREAM,
              show_default=True, help="With --onnx: DeepStream release whose config rules to follow.")
def conform(library, function, arch, directory, examples, abi, seed, classes, input_size, extra, hostile, sanitize,
            onnx_path=None, images=(), strict=False, timeout=10.0, min_box=None, clip_at="w", report_dir=None,
            deepstream=NEWEST_DEEPSTREAM):
    """Check a parser library against the reference decoder on generated tensors.

    Every call runs in a worker process: a segfault, an abort, a hang or a sanitizer report is a finding,
    shrunk to a minimal case like a mismatch. Exit 0 when the verdict is PASS, 1 otherwise.
    """
    from dsparsers.verification.isolation import IsolatedLibrary
    from dsparsers.verification.report import render_result, write_report
    from dsparsers.verification.tiers import run_conform

    registry = current_registry()
    if directory is not None:
        from dsparsers.generation.manifest import read_manifest

        manifest = read_manifest(directory, option="--dir")
        architecture = registry.get(arch or manifest.architecture).architecture
        params = architecture.params_from_dict(manifest.params)
        library = library or manifest.library_path("build-sanitize" if sanitize else "build")
        function = function or manifest.function
    else:
        missing = [name for name, value in (("--lib", library), ("--func", function), ("--arch", arch)) if not value]
        if missing:
            raise UsageError(f"{', '.join(missing)} required (or --dir with a generated directory)")
        architecture = registry.get(arch).architecture
        params = architecture.head_params(None, options(classes, input_size, extra, arch))
    if sanitize:
        _rerun_with_sanitizer_runtimes(Path(library))
    rerun_under_sanitizers_if_needed(library)
    if onnx_path is not None:
        return _conform_on_images(library, function, architecture, params, directory, onnx_path, images,
                                  int(abi) if abi else None, classes, extra, deepstream)
    applied = tuple(name for name, on in (("min-box-0", min_box == "0"), ("clip-w-1", clip_at == "w-1")) if on)
    with IsolatedLibrary(library, function, int(abi) if abi else None, kind=architecture.parser_kind,
                         timeout=timeout) as parser:
        with err.status(f"conformance: {examples} examples through {function}...") as status:
            result = run_conform(parser, architecture, params, examples=examples, seed=seed, hostile=hostile,
                                 strict=strict, applied=applied,
                                 progress=lambda tier, n: status.update(f"conformance: {tier} tier, case {n}"))
    render_result(result, out)
    if report_dir is not None:
        written = write_report(report_dir, result)
        out.print(f"report: {', '.join(str(p) for p in written)}")
    sys.exit(0 if result.passed else 1)


def _rerun_with_sanitizer_runtimes(library: Path) -> None:
    """--sanitize: re-run this command (once) with the runtimes ``library`` was built against preloaded."""
    import os

    from dsparsers.verification.sanitize import sanitizer_env, sanitizer_runtimes

    if not library.is_file():
        raise UsageError(f"--lib {library}: no such file")
    runtimes = sanitizer_runtimes(library)
    if os.environ.get("DSPARSERS_UNDER_SANITIZERS") == "1":
        return
    env = sanitizer_env(runtimes)
    env["DSPARSERS_UNDER_SANITIZERS"] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "dsparsers.cli", *sys.argv[1:]], env)


# -- fuzz ---------------------------------------------------------------------------------------
@main.command()
@click.option("--arch", help="Fuzz dsparsers' own parser for this architecture's canonical head.")
@click.option("--dir", "directory", type=click.Path(path_type=Path), help="Or a generated directory.")
@click.option("--seconds", default=30, show_default=True, type=click.IntRange(1, 10**6))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Work directory (fuzzer, corpus, crashes) [default: a temporary one].")
def fuzz(arch, directory, seconds, output):
    """Fuzz a generated parser with libFuzzer (clang) under ASan + UBSan."""
    import tempfile

    from dsparsers.generation.manifest import read_manifest
    from dsparsers.library.parser_build import build_parser
    from dsparsers.verification.fuzz import base_case_for, build_fuzzer, run_fuzzer

    if (arch is None) == (directory is None):
        raise UsageError("give --arch or --dir")
    work = Path(output) if output else Path(tempfile.mkdtemp(prefix="dsparsers-fuzz-"))
    registry = current_registry()
    if arch is not None:
        architecture = registry.get(arch).architecture
        params = architecture.head_params(None, options(None, None, (), arch))
        directory = work / "parser"
        build_parser(architecture, params, directory, requested_as=arch, template_dirs=registry.template_dirs(),
                     build=False)
    else:
        manifest = read_manifest(directory, option="--dir")
        architecture = registry.get(manifest.architecture).architecture
        params = architecture.params_from_dict(manifest.params)
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
    from dsparsers.verification.bench import family_report, report_markdown, run_bench
    from dsparsers.verification.loader import ParserLibrary

    registry = current_registry()
    if report:
        with err.status("benchmarking every architecture..."):
            rows = family_report(registry, density=density, iterations=iterations, build=cached_build)
        print(report_markdown(rows))
        return
    if not arch:
        raise UsageError("--arch is required (or --report for every architecture)")
    architecture = registry.get(arch).architecture
    params = architecture.head_params(None, options(classes, input_size, extra, arch))
    if library is None:
        if function is not None:
            raise UsageError("--func goes with --lib")
        result = cached_build(architecture, params, arch)
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


def _conform_on_images(library, function, architecture, params, directory, onnx_path, images, abi, classes=None,
                       extra=(), deepstream=NEWEST_DEEPSTREAM) -> None:
    """`conform --onnx MODEL --image IMG`: the library against the reference on the model's real outputs."""
    from dsparsers.verification.conformance import compare
    from dsparsers.emulation.run import Emulator, settings_for_model, settings_from_config

    if not images:
        raise UsageError("--onnx needs --image (repeatable): the pictures to run the model on")
    config_path = None
    if directory is None:  # the head as the model has it, not the canonical one
        from dsparsers.model.reader import load_model

        params = architecture.head_params(load_model(onnx_path), options(classes, None, extra, architecture.name))
    else:
        from dsparsers.generation.manifest import read_manifest

        config_path = read_manifest(directory, option="--dir").config_path()
    if config_path is not None:
        settings = settings_from_config(config_path, onnx=onnx_path, library=library, function=function, abi=abi,
                                        deepstream=deepstream)
    else:
        settings = settings_for_model(onnx_path, library, function, arch=architecture.name, abi=abi,
                                      deepstream=deepstream)
    for line in settings.notes:
        err.print(f"[yellow]note:[/] {line}", markup=True)
    from dsparsers.emulation.preprocess import load_image

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
                from dsparsers.api.abi_types import ParserCase

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
