"""What every command shares: the click group, the consoles, option parsing and the build step
with its progress display."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console

from dsparsers import __version__
from dsparsers.api.architecture import GenerateOptions
from dsparsers.errors import DsparsersError, UsageError

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


def current_registry():
    """The process-wide registry (built-in plugins and, unless DSPARSERS_LOAD_PLUGINS says otherwise, installed ones)."""
    from dsparsers.api.registry import get_registry

    return get_registry()


def parse_size(text: str | None, option: str) -> tuple[int, int] | None:
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


def parse_extra(pairs: tuple[str, ...]) -> dict[str, str]:
    extra = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"-O {pair!r}: expected KEY=VALUE")
        key, value = pair.split("=", 1)
        extra[key.strip()] = value.strip()
    return extra


def options(classes, input_size, extra, requested_as=None) -> GenerateOptions:
    if classes is not None and not 1 <= classes <= 100000:
        raise UsageError(f"--classes {classes}: expected 1 to 100000")
    return GenerateOptions(classes, parse_size(input_size, "--input"), parse_extra(extra),
                           requested_as.strip().lower() if requested_as else None)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dsparsers")
def main():
    """Generate, build and prove DeepStream Gst-nvinfer custom output parsers from ONNX detectors."""


def build_with_status(directory: Path, abi, deepstream_include, sanitize: bool = False, tensorrt_include=None,
                      cuda_include=None):
    from dsparsers.library.meson_build import build_directory

    what = "ASan + UBSan" if sanitize else "release, -O3"
    with err.status(f"building {directory} with meson ({what})..."):
        return build_directory(directory, abi=int(abi) if abi else None, deepstream_include=deepstream_include,
                               sanitize=sanitize, tensorrt_include=tensorrt_include, cuda_include=cuda_include)


def built_text(result) -> str:
    """How a library was built, in words: "DeepStream ABI 9, deepstream headers (TensorRT: DIR, CUDA: DIR)"."""
    text = f"DeepStream ABI {result.abi}, {result.headers} headers"
    found = [f"{what}: {where}" for what, where in (("TensorRT", getattr(result, "tensorrt_include", "")),
                                                     ("CUDA", getattr(result, "cuda_include", ""))) if where]
    return text + (f" ({', '.join(found)})" if found else "")


def rerun_under_sanitizers_if_needed(library: Path) -> None:
    """A --sanitize library only loads into a process that starts with the sanitizer runtimes: re-run
    this command in one (once)."""
    from dsparsers.library.meson_build import sanitizer_environment
    from dsparsers.verification.loader import read_library_info

    info = read_library_info(Path(library)) or {}
    if not info.get("sanitize") or os.environ.get("DSPARSERS_UNDER_SANITIZERS") == "1":
        return
    env = sanitizer_environment()
    env["DSPARSERS_UNDER_SANITIZERS"] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "dsparsers.cli", *sys.argv[1:]], env)


def print_load_lines(result) -> None:
    out.print("[bold]nvinfer config lines that load it:[/]")
    print(f"{result.function_key}={result.function}")
    print(f"custom-lib-path={result.library}")


def cached_build(architecture, params, requested_as):
    """dsparsers' own parser for ``params``, generated and built once into the build cache."""
    from dsparsers.library.parser_build import build_parser

    with err.status(f"building {architecture.function_name} (once; cached)..."):
        return build_parser(architecture, params, requested_as=requested_as, cached=True,
                            template_dirs=current_registry().template_dirs()).result


def header_search_options(command):
    """``--tensorrt-include`` and ``--cuda-include``: the header directories a build against real DeepStream
    headers needs when they are not where a DeepStream machine has them (generate --build and build)."""
    command = click.option("--cuda-include", type=click.Path(path_type=Path), help="CUDA's include directory "
                           "(cuda_runtime_api.h) [default: CUDA_VER, CUDA_HOME, CUDA_PATH, /usr/local/cuda, "
                           "/usr/local/cuda-*, nvcc's].")(command)
    return click.option("--tensorrt-include", type=click.Path(path_type=Path), help="TensorRT's include directory "
                        "(NvInfer.h) [default: the compiler's path, else TENSORRT_DIR].")(command)
