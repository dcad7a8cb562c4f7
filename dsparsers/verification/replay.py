"""Replaying one parser input many times outside Python: leak checks, and cases to debug in gdb.

``cpp_runtime/tools/replay.cpp`` is a small program around the nvinfer-style loader: it reads a case
file (:func:`write_case`), opens the parser library the way nvinfer does and calls it N times, freeing
every instance mask with ``delete[]`` as nvinfer does. With no interpreter in the process, what the
parser leaks is all a leak checker sees:

- ``valgrind`` (when installed): ``definitely lost`` bytes and mismatched frees (a mask allocated with
  ``malloc`` or ``new float`` but freed with ``delete[]``);
- LeakSanitizer (gcc's, no install needed): the program is built with ``-fsanitize=address``, which also
  reports ``alloc-dealloc-mismatch``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsparsers.errors import BuildError
from dsparsers.api.abi_types import ParserCase
from dsparsers.paths import CPP_RUNTIME_DIR, cache_dir

REPLAY_SOURCE = CPP_RUNTIME_DIR / "tools" / "replay.cpp"
LOADER_SOURCES = (CPP_RUNTIME_DIR / "tools" / "case_file.h", CPP_RUNTIME_DIR / "loader" / "nvinfer_loader.cpp", CPP_RUNTIME_DIR / "loader" / "nvinfer_loader.h",
                  CPP_RUNTIME_DIR / "include" / "dsparsers" / "nvdsinfer_abi.h")
ENGINES = ("valgrind", "lsan")


def write_case(case: ParserCase, path: Path) -> Path:
    """Save ``case`` in the replay program's format (floats as hex, so they round-trip exactly)."""
    lines = [f"dsparsers-case 1\nnetwork {case.network.width} {case.network.height} {case.network.channels}\n"
             f"classes {case.params.num_classes_configured}\n"]
    for tag, values in (("pre", case.params.precluster), ("post", case.params.postcluster)):
        lines.append(f"{tag} {len(values)}" + "".join(f" {float(np.float32(v)).hex()}" for v in values) + "\n")
    lines.append(f"layers {len(case.layers)}\n")
    with open(path, "wb") as f:
        f.write("".join(lines).encode())
        for layer in case.layers:
            name = layer.name.encode("utf-8", "surrogateescape")
            data = np.ascontiguousarray(layer.data).tobytes()
            dims = " ".join(str(int(d)) for d in layer.reported_dims)
            f.write(f"layer {int(layer.reported_type)} {len(layer.reported_dims)} {dims} {len(name)} {len(data)}\n".encode())
            f.write(name + b"\n" + data)
    return path


def valgrind_available() -> bool:
    return shutil.which("valgrind") is not None


def build_replay(*, address_sanitizer: bool) -> Path:
    """The replay program, compiled with the loader into the cache (once per source version)."""
    digest = hashlib.sha256(REPLAY_SOURCE.read_bytes())
    for source in LOADER_SOURCES:
        digest.update(source.read_bytes())
    flavour = "asan" if address_sanitizer else "plain"
    target = cache_dir() / f"dsparsers-replay-{flavour}-{digest.hexdigest()[:16]}"
    if target.is_file():
        return target
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        raise BuildError("the replay program needs a C++ compiler: install g++ (Debian/Ubuntu: apt-get install g++)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix="replay-", dir=target.parent)) / target.name
    cmd = [compiler, "-std=c++17", "-g", "-O1", f"-I{CPP_RUNTIME_DIR / 'loader'}", f"-I{CPP_RUNTIME_DIR / 'include'}",
           f"-I{CPP_RUNTIME_DIR / 'tools'}",
           *(["-fsanitize=address", "-fno-omit-frame-pointer"] if address_sanitizer else []),
           str(REPLAY_SOURCE), str(CPP_RUNTIME_DIR / "loader" / "nvinfer_loader.cpp"), "-ldl", "-o", str(staged)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        first = next((line for line in proc.stderr.splitlines() if "error" in line), proc.stderr.strip()[:300])
        raise BuildError(f"building the replay program failed: {first}")
    os.replace(staged, target)
    shutil.rmtree(staged.parent, ignore_errors=True)
    return target


@dataclass(frozen=True)
class LeakReport:
    engine: str
    calls: int
    objects: int  # objects returned over all calls
    leaked_bytes: int
    leaked_blocks: int
    mismatched_frees: int
    log: str

    @property
    def clean(self) -> bool:
        return self.leaked_bytes == 0 and self.mismatched_frees == 0


def check_leaks(library: Path, function: str, kind: str, case: ParserCase, *, iterations: int = 100,
                abi: int = 9, engine: str = "auto", workdir: Path | None = None) -> LeakReport:
    """Call ``function`` of ``library`` ``iterations`` times on ``case`` under a leak checker.

    ``engine`` is "valgrind", "lsan" or "auto" (valgrind when installed, else LeakSanitizer).
    """
    if engine == "auto":
        engine = "valgrind" if valgrind_available() else "lsan"
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES} or auto, got {engine!r}")
    if engine == "valgrind" and not valgrind_available():
        raise BuildError("valgrind is not installed (Debian/Ubuntu: apt-get install valgrind)")
    program = build_replay(address_sanitizer=engine == "lsan")
    work = Path(workdir or tempfile.mkdtemp(prefix="dsparsers-leaks-"))
    case_file = write_case(case, work / "case.bin")
    args = [str(program), str(Path(library).resolve()), function, kind, str(abi), str(case_file), str(iterations)]
    env = dict(os.environ)
    if engine == "valgrind":
        args = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite",
                "--error-exitcode=99", *args]
    else:
        env["ASAN_OPTIONS"] = "detect_leaks=1:alloc_dealloc_mismatch=1:halt_on_error=0"
        env.pop("LD_PRELOAD", None)
    proc = subprocess.run(args, capture_output=True, text=True, errors="replace", env=env)
    log = proc.stdout + proc.stderr
    calls = re.search(r"calls (\d+) accepted (\d+) objects (\d+)", proc.stdout)
    if calls is None and "alloc-dealloc-mismatch" not in log and "Mismatched free" not in log:
        raise BuildError(f"the replay program failed (exit {proc.returncode}): {log.strip()[-600:]}")
    if engine == "valgrind":
        lost = re.search(r"definitely lost: ([\d,]+) bytes in ([\d,]+) blocks", log)
        indirect = re.search(r"indirectly lost: ([\d,]+) bytes in ([\d,]+) blocks", log)
        leaked = sum(int(m[1].replace(",", "")) for m in (lost, indirect) if m)
        blocks = sum(int(m[2].replace(",", "")) for m in (lost, indirect) if m)
        mismatched = len(re.findall(r"Mismatched free\(\) / delete / delete \[\]", log))
    else:
        summary = re.search(r"SUMMARY: AddressSanitizer: (\d+) byte\(s\) leaked in (\d+) allocation", log)
        leaked, blocks = (int(summary[1]), int(summary[2])) if summary else (0, 0)
        mismatched = log.count("alloc-dealloc-mismatch")
    return LeakReport(engine, int(calls[1]) if calls else 0, int(calls[3]) if calls else 0, leaked, blocks,
                      mismatched, log)
