"""Fuzzing generated parsers with libFuzzer (clang): cpp_runtime/fuzz/parser_fuzzer.cpp turns arbitrary
bytes into layers, dims, data types and params, linked with the parser's own source under ASan + UBSan."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dsparsers.errors import BuildError
from dsparsers.generation.manifest import read_manifest
from dsparsers.paths import CPP_RUNTIME_DIR

FUZZ_TARGET = CPP_RUNTIME_DIR / "fuzz" / "parser_fuzzer.cpp"


@dataclass(frozen=True)
class FuzzResult:
    executions: int
    seconds: float
    crashes: list[Path]
    log: Path

    @property
    def per_second(self) -> float:
        return self.executions / self.seconds if self.seconds else 0.0


def clang() -> str:
    found = shutil.which("clang++")
    if found is None:
        raise BuildError("fuzzing needs clang++ with libFuzzer: install clang (Debian/Ubuntu: apt-get install clang)")
    return found


def build_fuzzer(directory: Path, output: Path) -> Path:
    """Compile the fuzz target with the parser in ``directory`` (a generated directory)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    source = manifest.source
    output.parent.mkdir(parents=True, exist_ok=True)
    cmd = [clang(), "-std=c++17", "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
           f"-I{directory / 'include'}", f"-I{CPP_RUNTIME_DIR / 'tools'}", "-DDSPARSERS_DS_ABI=9", f"-DDSPARSERS_FUZZ_FUNCTION={manifest.function}",
           *(["-DDSPARSERS_FUZZ_INSTANCE_MASK=1"] if manifest.parser_kind == "instance-mask" else []),
           str(source), str(FUZZ_TARGET), "-o", str(output)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        first = next((line for line in proc.stderr.splitlines() if "error" in line), proc.stderr.strip()[:300])
        raise BuildError(f"building the fuzzer failed: {first}")
    return output


def base_case_for(arch, params, path: Path) -> Path:
    """A valid input of ``arch``'s strategy on which its reference keeps objects, saved for the fuzzer's
    seeded mode (parser_fuzzer.cpp): the search then starts inside a well-formed head."""
    from hypothesis import HealthCheck, find, settings

    from dsparsers.verification.replay import write_case

    def busy(case) -> bool:
        outcome = arch.reference(case, params)
        return outcome.accepted and len(outcome.objects) >= 1

    case = find(arch.strategy(params), busy, settings=settings(max_examples=500, database=None, derandomize=True,
                                                               suppress_health_check=list(HealthCheck)))
    return write_case(case, path)


def run_fuzzer(binary: Path, *, seconds: int, workdir: Path, base_case: Path | None = None) -> FuzzResult:
    """Run for ``seconds``; crashes are kept as files in ``workdir`` (libFuzzer's crash-* artifacts).
    With ``base_case`` (see base_case_for), half the inputs edit that case (the seeded mode)."""
    corpus = workdir / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    if base_case is not None:
        (corpus / "seed-base-case").write_bytes(b"\x01\x00\x01\x01")  # the base case: no edits, its classes and thresholds
    log = workdir / "fuzz.log"
    cmd = [str(binary), str(corpus), f"-max_total_time={seconds}", f"-artifact_prefix={workdir}/", "-print_final_stats=1",
           "-rss_limit_mb=2048", "-max_len=4096"]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                          env={"ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1",
                               **({"DSPARSERS_FUZZ_BASE": str(base_case)} if base_case is not None else {})})
    log.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
    time = re.findall(r"Done (\d+) runs in (\d+) second", proc.stderr)
    executions = int(runs[-1]) if runs else (int(time[-1][0]) if time else 0)
    crashes = sorted(workdir.glob("crash-*")) + sorted(workdir.glob("leak-*")) + sorted(workdir.glob("timeout-*"))
    if proc.returncode != 0 and not crashes:
        crashes = [log]
    return FuzzResult(executions, float(time[-1][1]) if time else float(seconds), crashes, log)
