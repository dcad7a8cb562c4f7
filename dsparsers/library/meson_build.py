"""Building a generated parser directory with Meson into the loadable module nvinfer dlopens."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dsparsers.errors import BuildError, UsageError
from dsparsers.generation.manifest import MANIFEST, read_manifest

STANDARD_DEEPSTREAM_INCLUDES = Path("/opt/nvidia/deepstream/deepstream/sources/includes")

#: the header of each dependency that DeepStream's headers pull in
TENSORRT_HEADER = "NvInfer.h"
CUDA_HEADER = "cuda_runtime_api.h"
_TENSORRT_NAME = re.compile(r"^Nv(Infer|Onnx|Caffe|Uff|Utils)\w*\.h$")
_CUDA_NAME = re.compile(r"^(cuda\w*|driver_types|vector_types)\.h$")
_INCLUDE_LINE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"]+)[>"]', re.MULTILINE)


@dataclass(frozen=True)
class HeaderDirs:
    """Where the headers a build against DeepStream's own needs were found ("" for one it does not need)."""

    deepstream: str = ""  # "" for the bundled header
    tensorrt: str = ""
    cuda: str = ""
    #: of "tensorrt", "cuda": those found in a directory the compiler searches by itself
    compiler_finds: tuple[str, ...] = ()

    def meson_options(self) -> list[str]:
        # meson reserves cuda_* option names (a language's prefix): the CUDA runtime's option is cudart_include
        finds = ",".join("cudart" if dep == "cuda" else dep for dep in self.compiler_finds)
        return [f"-Dtensorrt_include={self.tensorrt or 'none'}", f"-Dcudart_include={self.cuda or 'none'}",
                f"-Dcompiler_finds={finds}"]


def compiler_include_dirs(environ: dict[str, str] | None = None) -> tuple[Path, ...] | None:
    """The directories the C++ compiler meson will use (``CXX``, else c++) searches for ``#include <...>``
    by itself: its built-in list (with the multiarch one, e.g. /usr/include/x86_64-linux-gnu, where
    TensorRT's Debian packages put NvInfer.h) and those of CPLUS_INCLUDE_PATH/CPATH. None when the
    compiler does not run (meson then says so)."""
    env = dict(os.environ if environ is None else environ)
    compiler = shlex.split(env.get("CXX", "")) or ["c++"]
    try:
        proc = subprocess.run([*compiler, "-xc++", "-E", "-v", "-"], input="", capture_output=True, text=True,
                              env=env, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    dirs: list[Path] = []
    inside = False
    for line in proc.stderr.splitlines():
        if line.startswith("#include <...> search starts here"):
            inside = True
        elif line.startswith("End of search list"):
            break
        elif inside and line.startswith(" "):
            dirs.append(Path(os.path.normpath(line.strip().removesuffix(" (framework directory)"))))
    return tuple(dirs) if proc.returncode == 0 else None


def _version_key(path: Path) -> tuple:
    """cuda-12.10 after cuda-12.9: the numeric parts of the name, compared as numbers."""
    return tuple(int(part) for part in re.findall(r"\d+", path.name))


def cuda_include_candidates(environ: dict[str, str] | None = None, root: Path = Path("/")) -> list[tuple[Path, str]]:
    """(directory, why) where CUDA's headers may be, in the order a DeepStream machine has them:
    CUDA_VER (DeepStream's own Makefiles: /usr/local/cuda-$CUDA_VER/include), CUDA_HOME, CUDA_PATH,
    /usr/local/cuda, /usr/local/cuda-* newest first, then next to nvcc (its ../include)."""
    env = os.environ if environ is None else environ
    local = root / "usr" / "local"
    found: list[tuple[Path, str]] = []
    if env.get("CUDA_VER"):
        found.append((local / f"cuda-{env['CUDA_VER']}" / "include", f"CUDA_VER={env['CUDA_VER']}"))
    for name in ("CUDA_HOME", "CUDA_PATH"):
        if env.get(name):
            found.append((Path(env[name]) / "include", f"{name}={env[name]}"))
    found.append((local / "cuda" / "include", str(local / "cuda")))
    try:
        versioned = sorted((p for p in local.glob("cuda-*") if _version_key(p)), key=_version_key, reverse=True)
    except OSError:
        versioned = []
    found.extend((p / "include", str(p)) for p in versioned)
    nvcc = shutil.which("nvcc", path=env.get("PATH", os.defpath))
    if nvcc:
        for binary in dict.fromkeys((Path(nvcc), Path(nvcc).resolve())):
            found.append((binary.parent.parent / "include", f"nvcc at {binary}"))
    return found


def tensorrt_include_candidates(environ: dict[str, str] | None = None) -> list[tuple[Path, str]]:
    """(directory, why) for TensorRT's headers beyond the compiler's own path: TENSORRT_DIR (a tarball's root
    or its include/)."""
    env = os.environ if environ is None else environ
    if not env.get("TENSORRT_DIR"):
        return []
    base = Path(env["TENSORRT_DIR"])
    return [(base / "include", f"TENSORRT_DIR={base}"), (base, f"TENSORRT_DIR={base}")]


def _includes(path: Path) -> list[tuple[str, bool]]:
    """(name, quoted) of each #include line of ``path``."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [(m.group(2).strip(), m.group(1) == '"') for m in _INCLUDE_LINE.finditer(text)]


def _check_path_text(path: Path, option: str) -> None:
    text = str(path)
    if any(c in text for c in '"\\') or any(ord(c) < 32 for c in text):
        raise UsageError(f"{option} {text!r}: a path with a quote, backslash or control character cannot be "
                         "recorded in the build record; use a plain path (a symlink)")


def find_header_dirs(deepstream: Path, *, tensorrt_include: Path | str | None = None,
                     cuda_include: Path | str | None = None, environ: dict[str, str] | None = None,
                     root: Path = Path("/"), compiler_dirs: tuple[Path, ...] | None = None) -> HeaderDirs:
    """The TensorRT and CUDA header directories that DeepStream's headers in ``deepstream`` need, found the
    way a DeepStream machine has them; UsageError naming the missing header and how to supply it.

    The headers are followed from nvdsinfer_custom_impl.h through DeepStream's and TensorRT's own files;
    TensorRT's directory is ``tensorrt_include`` when given, else the compiler's own search path (the
    multiarch directory of the Debian packages), else TENSORRT_DIR; CUDA's is ``cuda_include``, else the
    compiler's path, else :func:`cuda_include_candidates`. ``compiler_dirs`` None asks the compiler."""
    deepstream = Path(deepstream)
    if compiler_dirs is None:
        compiler_dirs = compiler_include_dirs(environ)
        if compiler_dirs is None:  # no compiler: meson reports it, with what to install
            return HeaderDirs(str(deepstream))
    compiler_dirs = tuple(compiler_dirs)
    chosen: dict[str, Path] = {}
    explicit = {"tensorrt": tensorrt_include, "cuda": cuda_include}
    headers = {"tensorrt": TENSORRT_HEADER, "cuda": CUDA_HEADER}
    for dep, value in explicit.items():
        if value is not None:
            path = Path(value).expanduser()
            option = f"--{dep}-include"
            if not (path / headers[dep]).is_file():
                raise UsageError(f"{option} {path}: no {headers[dep]} there")
            _check_path_text(path, option)
            chosen[dep] = path.resolve()

    def search_dirs() -> list[Path]:
        return [deepstream, *chosen.values(), *compiler_dirs]

    def locate(name: str, quoted: bool, including: Path) -> Path | None:
        for directory in ([including.parent] if quoted else []) + search_dirs():
            if (directory / name).is_file():
                return directory / name
        return None

    def supply(dep: str, name: str, including: Path) -> Path:
        """The directory that makes ``name`` (a TensorRT or CUDA header) found, or UsageError."""
        candidates = (tensorrt_include_candidates(environ) if dep == "tensorrt"
                      else cuda_include_candidates(environ, root))
        for directory, _ in candidates:
            if (directory / name).is_file():
                _check_path_text(directory, f"the {dep} headers at")
                return directory.resolve()
        if dep == "tensorrt":
            fix = ("install TensorRT's headers (Debian/Ubuntu: libnvinfer-dev libnvonnxparsers-dev) or pass "
                   "--tensorrt-include DIR")
        else:
            looked = ", ".join(dict.fromkeys(str(d) for d, _ in candidates))
            fix = f"install the CUDA toolkit's headers or pass --cuda-include DIR (looked in {looked})"
        raise UsageError(f"{_owner(including)} {name}, which is not on the include path: {fix}")

    def _owner(including: Path) -> str:
        if including.parent == deepstream:
            return f"DeepStream headers at {deepstream} include"
        if _TENSORRT_NAME.match(including.name):
            return f"TensorRT's headers at {including.parent} include"
        return f"{including} includes"

    used: dict[str, Path] = {}  # dependency -> the directory its first header came from
    pending = [deepstream / "nvdsinfer_custom_impl.h"]
    seen: set[Path] = set()
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        for name, quoted in _includes(current):
            base = Path(name).name
            dep = "tensorrt" if _TENSORRT_NAME.match(base) else "cuda" if _CUDA_NAME.match(base) else None
            path = locate(name, quoted, current)
            if path is None and dep is not None and dep not in chosen:
                chosen[dep] = supply(dep, name, current)
                path = locate(name, quoted, current)
            if path is None:
                if dep is not None:
                    raise UsageError(f"{_owner(current)} {name}, which is in neither {chosen[dep]} (the {dep} "
                                     f"headers used) nor the compiler's path: pass --{dep}-include DIR")
                continue  # not a DeepStream, TensorRT or CUDA header: the compiler has it or says so
            if dep is not None:
                used.setdefault(dep, path.parent)
            if dep == "tensorrt" or base.startswith("nvds"):
                pending.append(path)  # follow DeepStream's and TensorRT's own includes, not the system's
    defaults = {Path(os.path.normpath(d)) for d in compiler_dirs}
    return HeaderDirs(str(deepstream), str(used.get("tensorrt", "")), str(used.get("cuda", "")),
                      tuple(dep for dep in ("tensorrt", "cuda")
                            if dep in used and Path(os.path.normpath(used[dep])) in defaults))


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
    #: the header directories it was built against ("" for one not used), as the build record has them
    deepstream_include: str = ""
    tensorrt_include: str = ""
    cuda_include: str = ""

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
                    builddir: str | None = None, sanitize: bool = False, tensorrt_include: Path | str | None = None,
                    cuda_include: Path | str | None = None, environ: dict[str, str] | None = None) -> BuildResult:
    """meson setup (release, -O3) + compile in ``directory``/``builddir``; returns the library path.

    ``abi`` None lets the build decide (DeepStream's headers when found, else 9); ``deepstream_include``
    None uses the standard install location when present, "bundled" forces the bundled headers. With
    DeepStream's headers, the TensorRT and CUDA headers they include are found by :func:`find_header_dirs`
    (``tensorrt_include``/``cuda_include`` first when given) and passed to meson.
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
    include = "auto" if deepstream_include is None else str(deepstream_include)
    if include == "auto":
        standard = STANDARD_DEEPSTREAM_INCLUDES
        include = str(standard) if (standard / "nvdsinfer_custom_impl.h").is_file() else "bundled"
    if include == "bundled":
        dirs = HeaderDirs()
        if tensorrt_include is not None or cuda_include is not None:
            raise UsageError("--tensorrt-include/--cuda-include: only for a build against DeepStream's headers "
                             "(the bundled header needs neither)")
    else:
        path = Path(include)
        if not (path / "nvdsinfer_custom_impl.h").is_file():
            raise UsageError(f"--deepstream-include {path}: no nvdsinfer_custom_impl.h there")
        _check_path_text(path, "--deepstream-include")
        path = path.resolve()
        include = str(path)
        dirs = find_header_dirs(path, tensorrt_include=tensorrt_include, cuda_include=cuda_include, environ=environ)
    options.append(f"-Ddeepstream_include={include}")
    options += dirs.meson_options()
    build = directory / builddir
    log = directory / f"{builddir}.log"
    log.write_text("", encoding="utf-8")
    meson = meson_command()
    if (build / "build.ninja").is_file():  # --reconfigure also reads options added since the first setup
        _run(meson + ["setup", "--reconfigure", str(build), str(directory), *options], log, "meson setup")
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
                       manifest.parser_kind, record.deepstream_include, record.tensorrt_include, record.cuda_include)


@dataclass(frozen=True)
class BuildRecord:
    """lib*.so.json, written beside every library dsparsers builds: the ABI and headers it was built for."""

    abi: int
    headers: str
    sanitize: str = ""
    raw: dict | None = None
    #: the DeepStream, TensorRT and CUDA header directories ("" for one not used; "compiler" where a plain
    #: `meson setup` left TensorRT or CUDA to the compiler's own path)
    deepstream_include: str = ""
    tensorrt_include: str = ""
    cuda_include: str = ""


def read_build_record(library: Path) -> BuildRecord | None:
    """The build record beside ``library`` (lib*.so.json), or None when there is none."""
    try:
        info = json.loads(Path(str(library) + ".json").read_text(encoding="utf-8"))
        return BuildRecord(int(info["abi"]), str(info.get("headers", "bundled")), str(info.get("sanitize", "")), info,
                           str(info.get("deepstream_include", "")), str(info.get("tensorrt_include", "")),
                           str(info.get("cuda_include", "")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
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
