"""Building a generated parser directory with Meson into the loadable module nvinfer dlopens."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dsparsers.errors import BuildError, UsageError
from dsparsers.generation.manifest import MANIFEST, read_manifest

STANDARD_DEEPSTREAM_INCLUDES = Path("/opt/nvidia/deepstream/deepstream/sources/includes")


#: what `--sanitize` builds with: AddressSanitizer + UndefinedBehaviorSanitizer, aborting on the first report
SANITIZE_OPTIONS = ["-Db_sanitize=address,undefined", "-Db_lundef=false",
                    "-Dcpp_args=-fno-sanitize-recover=all -fno-omit-frame-pointer"]


@dataclass(frozen=True)
class BuildResult:
    library: Path
    function: str
    abi: int
    headers: str
    log: Path
    sanitize: str = ""
    #: "detector" or "instance-mask" (the nvinfer key that names the function differs)
    parser_kind: str = "detector"

    @property
    def function_key(self) -> str:
        """The nvinfer config key that names this library's function."""
        return "parse-bbox-instance-mask-func-name" if self.parser_kind == "instance-mask" else "parse-bbox-func-name"


def meson_command() -> list[str]:
    """Meson from this Python environment (the PyPI package), else one on PATH."""
    try:
        import mesonbuild  # noqa: F401
    except ImportError:
        found = shutil.which("meson")
        if found is None:
            raise BuildError("meson is not installed: pip install meson ninja") from None
        return [found]
    return [sys.executable, "-m", "mesonbuild.mesonmain"]


def build_environment() -> dict[str, str]:
    env = dict(os.environ)
    try:
        import ninja

        env.setdefault("NINJA", str(Path(ninja.BIN_DIR) / "ninja"))
    except ImportError:
        if shutil.which("ninja") is None:
            raise BuildError("ninja is not installed: pip install ninja") from None
    return env


def _compiler_missing(text: str) -> bool:
    return "Unknown compiler" in text or "No C++ compiler" in text or "compiler for language" in text.lower() and "not found" in text.lower()


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if re.search(r"\berror\b", line, re.IGNORECASE) and not line.startswith("ninja: build stopped"):
            return line.strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def _run(cmd: list[str], log: Path, what: str, cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=build_environment(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace")
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(cmd)}\n{proc.stdout}\n")
    if proc.returncode != 0:
        if _compiler_missing(proc.stdout):
            raise BuildError("no C++ compiler found: install g++ (Debian/Ubuntu: apt-get install g++) "
                             f"(log: {log})")
        raise BuildError(f"{what} failed: {_first_error(proc.stdout)} (full log: {log})")


def build_directory(directory: Path, *, abi: int | None = None, deepstream_include: Path | str | None = None,
                    builddir: str | None = None, sanitize: bool = False) -> BuildResult:
    """meson setup (release, -O3) + compile in ``directory``/``builddir``; returns the library path.

    ``abi`` None lets the build decide (DeepStream's headers when found, else 9); ``deepstream_include``
    None uses the standard install location when present, "bundled" forces the bundled headers.
    """
    directory = Path(directory).resolve()
    manifest_path = directory / MANIFEST
    if not (directory / "meson.build").is_file() or not manifest_path.is_file():
        raise UsageError(f"{directory}: not a directory written by `dsparsers generate` (no meson.build/{MANIFEST})")
    manifest = read_manifest(directory)
    if abi not in (None, 8, 9):
        raise UsageError(f"--abi {abi}: expected 8 (DeepStream <= 8.x) or 9 (DeepStream >= 9.0)")
    builddir = builddir or ("build-sanitize" if sanitize else "build")
    options = [f"-Ddeepstream_abi={abi if abi else 'auto'}"] + (SANITIZE_OPTIONS if sanitize else [])
    if deepstream_include is not None:
        include = str(deepstream_include)
        if include not in ("auto", "bundled"):
            path = Path(include)
            if not (path / "nvdsinfer_custom_impl.h").is_file():
                raise UsageError(f"--deepstream-include {path}: no nvdsinfer_custom_impl.h there")
            include = str(path.resolve())
        options.append(f"-Ddeepstream_include={include}")
    build = directory / builddir
    log = directory / f"{builddir}.log"
    log.write_text("", encoding="utf-8")
    meson = meson_command()
    if (build / "build.ninja").is_file():
        _run(meson + ["configure", str(build), *options], log, "meson configure")
    else:
        if build.exists():
            shutil.rmtree(build)
        _run(meson + ["setup", str(build), str(directory), "--buildtype=release", *options], log, "meson setup")
    _run(meson + ["compile", "-C", str(build)], log, "compile")
    library = build / manifest.library
    info_path = build / (manifest.library + ".json")
    if not library.is_file() or not info_path.is_file():
        raise BuildError(f"the build finished but {library} is missing (full log: {log})")
    record = read_build_record(library)
    if record is None:
        raise BuildError(f"the build finished but {info_path} is not a valid build record (full log: {log})")
    return BuildResult(library, manifest.function, record.abi, record.headers, log, record.sanitize,
                       manifest.parser_kind)


@dataclass(frozen=True)
class BuildRecord:
    """lib*.so.json, written beside every library dsparsers builds: the ABI and headers it was built for."""

    abi: int
    headers: str
    sanitize: str = ""
    raw: dict | None = None


def read_build_record(library: Path) -> BuildRecord | None:
    """The build record beside ``library`` (lib*.so.json), or None when there is none."""
    try:
        info = json.loads(Path(str(library) + ".json").read_text(encoding="utf-8"))
        return BuildRecord(int(info["abi"]), str(info.get("headers", "bundled")), str(info.get("sanitize", "")), info)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def sanitizer_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """An environment in which a process can dlopen a --sanitize library: the sanitizer runtimes are
    preloaded (they must come first), leaks are not reported (the Python interpreter's would drown
    the parser's), and the first error aborts with a report on stderr."""
    env = dict(os.environ if environ is None else environ)
    runtimes = []
    for name in ("libasan.so", "libubsan.so"):
        proc = subprocess.run(["c++", f"-print-file-name={name}"], capture_output=True, text=True)
        path = proc.stdout.strip()
        if proc.returncode != 0 or not os.path.isabs(path):
            raise BuildError(f"the compiler has no {name}: install gcc's sanitizer runtimes (Debian: libasan8 libubsan1)")
        runtimes.append(path)
    preload = [p for p in env.get("LD_PRELOAD", "").split(":") if p]
    env["LD_PRELOAD"] = ":".join(runtimes + [p for p in preload if p not in runtimes])
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1:halt_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env
