"""Benchmarks of parser libraries: per-frame time against the read floor, measured in the same run.

The floor is one pass that only reads every byte of the same output tensors (eight accumulators,
compiled with the same flags as the parsers), so ``ratio = parser / floor`` says how close a parser
runs to memory speed on this machine. Hot mode reuses one frame (caches warm, as for small heads);
rotating mode cycles through enough frames to exceed the last-level cache (cache-cold, as when many
streams share a core).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsparsers.api.architecture import Architecture, HeadParams
from dsparsers.verification.bench_inputs import bench_candidates  # noqa: F401 (re-exported)
from dsparsers.verification.loader import ParserLibrary, read_floor

#: rotating mode cycles through at least this many bytes of output tensors
ROTATING_BYTES = 96 << 20
MAX_ROTATING_FRAMES = 256


@dataclass(frozen=True)
class BenchResult:
    mode: str
    frames: int
    frame_bytes: int
    objects: int
    parser_ns: np.ndarray  # [rounds, frames per round]: parser and floor take turns, round by round
    floor_ns: np.ndarray

    @property
    def median_us(self) -> float:
        return float(np.median(self.parser_ns)) / 1e3

    @property
    def p90_us(self) -> float:
        return float(np.percentile(self.parser_ns, 90)) / 1e3

    @property
    def floor_median_us(self) -> float:
        return float(np.median(self.floor_ns)) / 1e3

    @property
    def ratio(self) -> float:
        """Parser over floor, paired by round: the median over rounds of the parser's median in a round
        over the floor's in the round beside it, so that a slow spell on a shared machine (which shifts
        both medians of a round) cancels instead of landing on one side."""
        parser = np.median(np.atleast_2d(self.parser_ns), axis=1)
        floor = np.median(np.atleast_2d(self.floor_ns), axis=1)
        if not np.all(floor > 0):
            return float("inf")
        return float(np.median(parser / floor))


def frame_bytes(case) -> int:
    return sum(int(np.asarray(layer.data).nbytes) for layer in case.layers)


def run_bench(library: ParserLibrary, arch: Architecture, params: HeadParams, *, density: float = 0.01,
              modes=("hot", "rotating"), iterations: int = 2000, warmup: int = 200, seed: int = 0) -> list[BenchResult]:
    rng = np.random.default_rng(seed)
    first = arch.bench_case(params, density, rng)
    size = frame_bytes(first)
    objects = len(library.parse(first).objects)
    results = []
    for mode in modes:
        if mode == "hot":
            cases = [first]
        else:
            frames = int(min(MAX_ROTATING_FRAMES, max(2, -(-ROTATING_BYTES // max(1, size)))))
            cases = [first] + [arch.bench_case(params, density, rng) for _ in range(frames - 1)]
        # Interleave parser and floor in rounds (at least 200 frames each, each round warmed up again)
        # so that frequency drift and neighbours' load on a shared machine hit both alike.
        rounds = max(1, min(32, iterations // 200))
        parser_ns, floor_ns = [], []
        for _ in range(rounds):
            parser_ns.append(library.time(cases, warmup=max(20, warmup // rounds), iterations=iterations // rounds))
            floor_ns.append(read_floor(cases, warmup=max(20, warmup // rounds), iterations=iterations // rounds))
        results.append(BenchResult(mode, len(cases), size, objects, np.stack(parser_ns), np.stack(floor_ns)))
    return results


def family_report(registry, *, density: float = 0.01, iterations: int = 2000, build=None) -> list[dict]:
    """Every architecture's canonical head, stock parser against its floor, and for the heads that
    `dsparsers patch` can compact, the compact parser on the patched output of the same size.

    ``build(architecture, params, requested_as)`` returns a BuildResult (the CLI's cached build).
    """
    from dsparsers.api.architecture import GenerateOptions

    rows = []
    for provided in registry.architectures():
        arch = provided.architecture
        params = arch.head_params(None, GenerateOptions(requested_as=arch.name))
        result = build(arch, params, arch.name)
        with ParserLibrary(result.library, result.function, result.abi, kind=arch.parser_kind) as library:
            hot, rotating = run_bench(library, arch, params, density=density, iterations=iterations)
        row = {"architecture": arch.name, "head": arch.describe(params), "hot": hot, "rotating": rotating,
               "compact": None}
        if hasattr(arch, "append_decode"):
            row["compact"] = compact_bench(registry, params, build, density=density, iterations=iterations)
        rows.append(row)
    return rows


def compact_params_for(registry, params: HeadParams) -> tuple[Architecture, HeadParams]:
    """The compact [N, 6] head `dsparsers patch` makes of a head with ``params`` (same N, C and input)."""
    from dsparsers.api.architecture import GenerateOptions
    from dsparsers.model.patch import COMPACT_ARCHITECTURE

    compact_arch = registry.get(COMPACT_ARCHITECTURE).architecture
    compact = compact_arch.head_params(None, GenerateOptions(
        num_classes=params.num_classes, input_size=(params.input_width, params.input_height),
        requested_as=COMPACT_ARCHITECTURE))
    return compact_arch, type(compact)(**{**compact.__dict__, "num_rows": getattr(params, "num_candidates", None)})


def compact_bench(registry, params: HeadParams, build, *, density: float = 0.01, iterations: int = 2000) -> BenchResult:
    """Hot timing of the compact parser on the patched output of a head with ``params``."""
    from dsparsers.model.patch import COMPACT_ARCHITECTURE

    compact_arch, compact_params = compact_params_for(registry, params)
    compact = build(compact_arch, compact_params, COMPACT_ARCHITECTURE)
    with ParserLibrary(compact.library, compact.function, compact.abi) as library:
        return run_bench(library, compact_arch, compact_params, density=density, iterations=iterations,
                         modes=("hot",))[0]


def patch_saving(registry, arch: Architecture, params: HeadParams, stock, build, *, density: float = 0.01,
                 iterations: int = 400) -> tuple[BenchResult, BenchResult]:
    """(stock, compact) hot timings: what `dsparsers patch` would save per frame for this head, measured
    here on generated tensors (``stock`` is the BuildResult of the head's own parser)."""
    with ParserLibrary(stock.library, stock.function, stock.abi, kind=arch.parser_kind) as library:
        before = run_bench(library, arch, params, density=density, iterations=iterations, modes=("hot",))[0]
    return before, compact_bench(registry, params, build, density=density, iterations=iterations)


def report_markdown(rows: list[dict]) -> str:
    lines = ["| architecture | head | stock hot us (floor) | ratio | stock cache-cold us (floor) | ratio | "
             "patched: compact parser hot us |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        hot, cold, compact = row["hot"], row["rotating"], row["compact"]
        lines.append(f"| `{row['architecture']}` | {row['head']} | {hot.median_us:.1f} ({hot.floor_median_us:.1f}) | "
                     f"{hot.ratio:.2f}x | {cold.median_us:.1f} ({cold.floor_median_us:.1f}) | {cold.ratio:.2f}x | "
                     + (f"{compact.median_us:.1f}" if compact else "-") + " |")
    return "\n".join(lines)
