"""Which sanitizer runtimes a foreign parser library needs preloaded (`conform --lib ... --sanitize`).

An AddressSanitizer runtime must be the first library of the process: a library built with
``-fsanitize=address`` cannot be dlopened into a Python that started without it ("ASan runtime does
not come first"). The runtime is read off the library itself:

- gcc links ``libasan.so.N`` (and ``libubsan.so.N``) as DT_NEEDED: the compiler's copy
  (``c++ -print-file-name=libasan.so``) or the one the dynamic linker would find is preloaded;
- clang links no runtime into a shared library; its ``__asan_*`` references stay undefined and the
  runtime is ``clang++ -print-file-name=libclang_rt.asan-x86_64.so`` (or the DT_NEEDED
  ``libclang_rt.asan*.so`` of a ``-shared-libsan`` build).

A library with no sanitizer instrumentation, or one whose runtime cannot be found, is refused with a
one-line reason rather than silently run without sanitizers.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from dsparsers.errors import UsageError
from dsparsers.library.elf_symbols import elf_dynamic

def _compiler_file(compiler: str, name: str) -> str | None:
    try:
        proc = subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = proc.stdout.strip()
    return path if proc.returncode == 0 and os.path.isabs(path) and os.path.exists(path) else None


def _resolved(name: str) -> str | None:
    """Where the dynamic linker would find DT_NEEDED ``name`` (ldconfig's cache), if anywhere."""
    try:
        proc = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in proc.stdout.splitlines():
        parts = line.strip().split(" => ")
        if len(parts) == 2 and parts[0].split(" ")[0] == name and os.path.exists(parts[1]):
            return parts[1]
    return None


def sanitizer_runtimes(library: Path, option: str = "--sanitize") -> list[str]:
    """Paths to preload, in order, so that ``library`` runs with its sanitizers; UsageError if impossible."""
    try:
        needed, undefined = elf_dynamic(library)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{option}: cannot read {library}: {exc}") from None
    asan = [n for n in needed if n.startswith("libasan.so")]
    clang_asan = [n for n in needed if n.startswith("libclang_rt.asan")]
    ubsan = [n for n in needed if n.startswith("libubsan.so")]
    instrumented = any(s.startswith("__asan_") for s in undefined)
    runtimes: list[str] = []
    if asan:  # gcc
        path = _compiler_file("c++", asan[0]) or _compiler_file("c++", "libasan.so") or _resolved(asan[0])
        if path is None:
            raise UsageError(f"{option}: {library.name} needs {asan[0]} (gcc's AddressSanitizer runtime), which is "
                             "not installed (Debian: libasan8)")
        runtimes.append(path)
    elif clang_asan:
        path = _resolved(clang_asan[0]) or _compiler_file("clang++", clang_asan[0])
        if path is None:
            raise UsageError(f"{option}: {library.name} needs {clang_asan[0]} (clang's AddressSanitizer runtime), "
                             "which this machine lacks")
        runtimes.append(path)
    elif instrumented:  # clang without -shared-libsan: the runtime is the executable's to provide
        arch = platform.machine()
        path = _compiler_file("clang++", f"libclang_rt.asan-{arch}.so")
        if path is None:
            raise UsageError(f"{option}: {library.name} was built by clang with -fsanitize=address and needs "
                             f"libclang_rt.asan-{arch}.so preloaded; clang++ is not installed or has no such runtime")
        runtimes.append(path)
    if ubsan:
        path = _compiler_file("c++", ubsan[0]) or _compiler_file("c++", "libubsan.so") or _resolved(ubsan[0])
        if path:
            runtimes.append(path)
    if not runtimes and not any(s.startswith("__ubsan_") for s in undefined):
        raise UsageError(f"{option}: {library} is not built with sanitizers (no libasan/libubsan in its DT_NEEDED, "
                         "no __asan_/__ubsan_ symbols): rebuild it with -fsanitize=address,undefined, or drop --sanitize")
    return runtimes


def sanitizer_env(runtimes: list[str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a process needs to load such a library: runtimes first in LD_PRELOAD, the
    first error reported and aborting (the worker dies, the parent reads the report), no leak check
    at exit (the interpreter's own would drown the parser's)."""
    env = dict(os.environ if environ is None else environ)
    preload = [p for p in env.get("LD_PRELOAD", "").split(":") if p]
    env["LD_PRELOAD"] = ":".join(runtimes + [p for p in preload if p not in runtimes])
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1:halt_on_error=1:disable_coredump=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:abort_on_error=1")
    return env
