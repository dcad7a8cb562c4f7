"""`conform` for any parser library: two tiers of inputs, findings by kind, conventions as options.

**Contract tier** (decides the verdict): inputs nvinfer really produces. Threshold vectors sized to
``num-detected-classes`` (nvinfer always sizes them so), at least one configured class, every layer's
dims and data type those of its data, counts within their tensors (0 <= count <= K), any binding
order and names (nvinfer passes engine bindings in engine order; parsers find layers by name and fall
back to shape), and any values a model can emit, NaN and infinities included. The architecture's own
strategy is drawn and projected onto the contract (:func:`to_contract`), so failures still shrink.

**Robustness tier** (decides the verdict only with ``strict``): inputs beyond the contract. Cases of
the same strategy that the projection would change (short or empty threshold vectors, counts above K
or negative) and the fixed hostile inputs of :mod:`dsparsers.verification.hostile` that are not
contract inputs (wrong dims or types, no layers, numClassesConfigured 0); hostile inputs that are
(NaN or infinities everywhere) go to the contract tier.

Every case runs through the library (in an isolated worker when it is an
:class:`~dsparsers.verification.isolation.IsolatedLibrary`) and the reference. What goes wrong is a
finding of a *kind* ("crash: SIGSEGV", "sanitizer: heap-buffer-overflow", "objects missing",
"rotation_angle uninitialised", ...). Hypothesis shrinks the first case of each new kind; the next
round skips kinds already found, until a round runs clean or the round limit is reached.

**Conventions** are differences that are choices, not bugs. Each is a normalisation applied to both
outcomes before comparing; a mismatch that one of them removes is a ``convention: NAME`` finding with
the option that accepts it, and with the option given the normalisation is always applied:

- ``min-box-0`` (``--min-box 0``): boxes narrower or lower than 1 network pixel are kept (the
  references drop them); objects under 1 x 1 are ignored on both sides.
- ``clip-w-1`` (``--clip-at w-1``): boxes clipped to W-1 / H-1 instead of W / H; right and bottom
  edges are clipped at W-1 / H-1 on both sides.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from dsparsers.api.abi_types import (DEFAULT_PRECLUSTER_THRESHOLD, DataType, DetectionParams, Layer, ParseOutcome,
                                     ParserCase)
from dsparsers.errors import LibraryError
from dsparsers.verification.conformance import MaskStats, Mismatch, Tolerance, compare

CONTRACT, ROBUSTNESS = "contract", "robustness"
#: the loader's stack fill before each detector call (cpp_runtime/loader/nvinfer_loader.h)
STACK_FILLS = (0xA5A5A5A5, 0x5A5A5A5A)


# -- the contract ------------------------------------------------------------------------------
def _count_layers(case: ParserCase) -> list[tuple[int, int]]:
    """(index, K) of INT32 one-element layers that count rows of the case's other layers (K: the
    smallest first dimension among the layers with more than one element)."""
    others = [l.data.shape[0] for l in case.layers if l.data.ndim >= 1 and l.data.size > 1]
    if not others:
        return []
    k = min(others)
    return [(i, k) for i, l in enumerate(case.layers)
            if l.reported_type == DataType.INT32 and l.data.size == 1 and l.data.dtype == np.int32]


def outside_contract(case: ParserCase) -> list[str]:
    """Why nvinfer would never hand ``case`` to a parser (empty: it is a contract input)."""
    why = []
    params = case.params
    if params.num_classes_configured < 1:
        why.append("numClassesConfigured 0")
    if len(params.precluster) != params.num_classes_configured:
        why.append(f"{len(params.precluster)} pre-cluster threshold(s) for {params.num_classes_configured} "
                   "configured classes")
    if not case.layers:
        why.append("no layers")
    for layer in case.layers:
        if tuple(layer.reported_dims) != tuple(layer.data.shape):
            why.append(f"layer {layer.name!r} claims dims {list(layer.reported_dims)} for data {list(layer.data.shape)}")
        elif layer.data_type is not None and layer.data_type != DataType.of(layer.data.dtype):
            why.append(f"layer {layer.name!r} claims {layer.data_type.name} for {layer.data.dtype} data")
    for index, k in _count_layers(case):
        value = int(case.layers[index].data.reshape(-1)[0])
        if not 0 <= value <= k:
            why.append(f"count {case.layers[index].name!r} = {value} outside 0..{k}")
    return why


def to_contract(case: ParserCase) -> ParserCase:
    """``case`` as nvinfer could give it: thresholds resized to the configured classes (filled with the
    first value, as [class-attrs-all] fills them), at least one class, counts clamped to 0..K."""
    params = case.params
    configured = max(1, params.num_classes_configured)
    fill = params.precluster[0] if params.precluster else DEFAULT_PRECLUSTER_THRESHOLD
    pre = tuple(params.precluster[:configured]) + (fill,) * max(0, configured - len(params.precluster))
    post_fill = params.postcluster[0] if params.postcluster else 0.0
    post = tuple(params.postcluster[:configured]) + (post_fill,) * max(0, configured - len(params.postcluster))
    layers = list(case.layers)
    for i, layer in enumerate(layers):
        if tuple(layer.reported_dims) != tuple(layer.data.shape) or layer.data_type is not None:
            layers[i] = Layer(layer.name, layer.data)
    for index, k in _count_layers(replace(case, layers=tuple(layers))):
        value = int(layers[index].data.reshape(-1)[0])
        if not 0 <= value <= k:
            layers[index] = Layer(layers[index].name, np.array([min(max(value, 0), k)], np.int32))
    return ParserCase(tuple(layers), case.network, DetectionParams(configured, pre, post))


# -- conventions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Convention:
    name: str
    option: str  # the command-line option that accepts it
    explains: str  # what the library does, for the summary line
    normalise: Callable[[ParseOutcome, ParserCase], ParseOutcome]


def _filtered(outcome: ParseOutcome, keep: np.ndarray) -> ParseOutcome:
    masks = None if outcome.masks is None else tuple(m for m, k in zip(outcome.masks, keep) if k)
    return replace(outcome, objects=outcome.objects[keep], masks=masks)


def _drop_sub_pixel(outcome: ParseOutcome, case: ParserCase) -> ParseOutcome:
    objects = outcome.objects
    with np.errstate(invalid="ignore"):
        keep = ~((objects["width"] < 1) | (objects["height"] < 1))
    return _filtered(outcome, keep)


def _clip_at_last_pixel(outcome: ParseOutcome, case: ParserCase) -> ParseOutcome:
    objects = outcome.objects.copy()
    with np.errstate(all="ignore"):
        for start, size, limit in (("left", "width", case.network.width), ("top", "height", case.network.height)):
            edge = np.minimum(objects[start] + objects[size], np.float32(limit - 1))
            objects[start] = np.minimum(objects[start], np.float32(limit - 1))
            objects[size] = (edge - objects[start]).astype(np.float32)
        keep = (objects["width"] >= 1) & (objects["height"] >= 1)  # what either side drops after clipping
    return _filtered(replace(outcome, objects=objects), keep)


CONVENTIONS = {
    "min-box-0": Convention("min-box-0", "--min-box 0", "boxes under 1 x 1 network pixel kept", _drop_sub_pixel),
    "clip-w-1": Convention("clip-w-1", "--clip-at w-1", "boxes clipped at W-1 / H-1 instead of W / H",
                           _clip_at_last_pixel),
}


# -- one case -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One thing wrong with one case."""

    kind: str
    summary: str
    mismatch: Mismatch | None = None
    crash: Any = None  # a ParserCrash
    log: str = ""


def _classify(mismatch: Mismatch) -> str:
    if mismatch.actual is None:
        return "threw an exception"
    if mismatch.expected.accepted != mismatch.actual.accepted:
        return "refused a valid frame" if mismatch.expected.accepted else "accepted a frame the reference refuses"
    if mismatch.missing is None and mismatch.extra is None:
        return "masks differ" if "mask" in mismatch.summary else "objects differ"
    missing, extra = len(mismatch.missing), len(mismatch.extra)
    if missing and not extra:
        return "objects missing"
    if extra and not missing:
        return "unexpected objects"
    if missing == extra:
        a = np.sort(mismatch.missing, order=("left", "top", "width", "height"))
        b = np.sort(mismatch.extra, order=("left", "top", "width", "height"))
        boxes_same = all(np.allclose(a[f], b[f], rtol=1e-5, atol=1e-3, equal_nan=True)
                         for f in ("left", "top", "width", "height"))
        if boxes_same and not np.array_equal(a["class_id"], b["class_id"]):
            return "wrong class ids"
        if boxes_same:
            return "wrong confidences"
    return "objects differ"


def _rotation_problem(library, case: ParserCase, expected: ParseOutcome, actual: ParseOutcome) -> Problem | None:
    """ABI 9: every object's rotation_angle must be the reference's (0 for axis-aligned heads)."""
    if getattr(library, "abi", 9) != 9 or actual.masks is not None or not len(actual.objects):
        return None
    angles = actual.objects["rotation_angle"]
    want = expected.objects["rotation_angle"] if len(expected.objects) else np.zeros(0, np.float32)
    wanted = float(want[0]) if len(want) and np.all(want == want[0]) else 0.0
    bad = ~((angles == np.float32(wanted)) | (np.isnan(angles) & np.isnan(np.float32(wanted))))
    if not bad.any():
        return None
    bits = {struct.unpack("<I", struct.pack("<f", float(a)))[0] for a in angles[bad]}
    shown = ", ".join(f"{float(a):.6g} (0x{struct.unpack('<I', struct.pack('<f', float(a)))[0]:08x})"
                      for a in angles[bad][:3])
    if bits & set(STACK_FILLS):
        return Problem("rotation_angle uninitialised",
                       f"rotation_angle of {int(bad.sum())} of {len(angles)} object(s) is the loader's stack fill "
                       f"({shown}): the parser never sets it (ABI 9 objects built without {{}}); nvinfer draws "
                       f"the box rotated by that many radians; {wanted:g} expected")
    try:  # garbage changes from call to call
        again = library.parse(case)
    except LibraryError:
        again = None
    if again is not None and len(again.objects) == len(actual.objects) and not np.array_equal(
            again.objects["rotation_angle"].view(np.uint32), angles.view(np.uint32)):
        return Problem("rotation_angle uninitialised",
                       f"rotation_angle differs between two identical calls ({shown}): it is never set")
    return Problem("rotation_angle non-zero",
                   f"rotation_angle of {int(bad.sum())} of {len(angles)} object(s) is {shown}; this head is axis-aligned: "
                   f"{wanted:g} expected")


def judge(library, arch, params, case: ParserCase, *, tolerance: Tolerance, applied: tuple[str, ...] = (),
          mask_stats: MaskStats | None = None) -> list[Problem]:
    """What is wrong with ``library`` on ``case`` (empty: nothing)."""
    from dsparsers.verification.isolation import ParserCrash

    expected = arch.reference(case, params)
    try:
        actual = library.parse(case)
    except ParserCrash as crash:
        return [Problem(crash.label, str(crash), Mismatch(str(crash), expected, None), crash, crash.log)]
    except LibraryError as exc:
        return [Problem("threw an exception", str(exc), Mismatch(str(exc), expected, None))]
    problems = []
    rotation = _rotation_problem(library, case, expected, actual)
    if rotation is not None:
        problems.append(replace(rotation, mismatch=Mismatch(rotation.summary, expected, actual)))
    chosen = [CONVENTIONS[name] for name in applied]
    exp, act = expected, actual
    for convention in chosen:
        exp, act = convention.normalise(exp, case), convention.normalise(act, case)
    mismatch = compare(exp, act, tolerance, mask_stats)
    if mismatch is not None:
        for convention in CONVENTIONS.values():
            if convention.name in applied:
                continue
            if compare(convention.normalise(exp, case), convention.normalise(act, case), tolerance) is None:
                problems.append(Problem(f"convention: {convention.name}",
                                        f"{convention.explains}; {convention.option} accepts it: {mismatch.summary}",
                                        mismatch))
                break
        else:
            problems.append(Problem(_classify(mismatch), mismatch.summary, mismatch))
    return problems


# -- findings and tiers ---------------------------------------------------------------------------
@dataclass
class Finding:
    tier: str
    kind: str
    summary: str
    case: ParserCase
    mismatch: Mismatch | None = None
    crash: Any = None
    log: str = ""
    explain: list[dict[str, Any]] = field(default_factory=list)
    label: str | None = None  # a fixed hostile input's name (not shrunk)
    shrunk: bool = True
    cases: int = 1  # cases of the tier's last clean round that showed this kind
    outside: list[str] = field(default_factory=list)  # why the case is outside the contract


@dataclass
class TierRun:
    tier: str
    examples: int = 0  # cases run (shrinking included)
    round_cases: int = 0  # cases of the last round
    tally: dict[str, int] = field(default_factory=dict)  # kind -> cases of the last round showing it
    rounds: int = 0
    fixed: int = 0  # fixed hostile inputs run


class _NewKind(AssertionError):
    pass


def hypothesis_tier(library, arch, params, strategy, tier: str, *, examples: int, seed: int | None,
                    derandomize: bool, tolerance: Tolerance, applied: tuple[str, ...], known: set[str],
                    findings: list[Finding], mask_stats: MaskStats | None = None, max_rounds: int = 8,
                    progress=None) -> TierRun:
    """Rounds of Hypothesis over ``strategy``: each round shrinks the first case showing a kind not in
    ``known`` and appends it to ``findings``; a round that finds nothing new ends the tier."""
    from hypothesis import HealthCheck, Verbosity, given, settings
    from hypothesis import seed as hypothesis_seed

    run = TierRun(tier)
    for _ in range(max_rounds):
        run.rounds += 1
        last: dict[str, Any] = {}
        tally: dict[str, int] = {}
        counted = {"n": 0}

        def check(case: ParserCase) -> None:
            run.examples += 1
            counted["n"] += 1
            if progress is not None:
                progress(tier, run.examples)
            problems = judge(library, arch, params, case, tolerance=tolerance, applied=applied, mask_stats=mask_stats)
            for problem in problems:
                tally[problem.kind] = tally.get(problem.kind, 0) + 1
            new = [p for p in problems if p.kind not in known]
            if new:
                last["case"], last["problem"] = case, new[0]
                raise _NewKind(new[0].kind)

        test = given(strategy)(check)
        test = settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
                        report_multiple_bugs=False, suppress_health_check=list(HealthCheck),
                        verbosity=Verbosity.quiet, print_blob=False)(test)
        if seed is not None and not derandomize:
            test = hypothesis_seed(seed)(test)
        shrunk = True
        try:
            test()
        except _NewKind:
            pass
        except Exception:  # Flaky: the failure did not reproduce (garbage memory, a timing-dependent hang)
            shrunk = False
        if "problem" not in last:
            run.round_cases, run.tally = counted["n"], tally
            break
        problem, case = last["problem"], last["case"]
        known.add(problem.kind)
        findings.append(Finding(tier, problem.kind, problem.summary, case, problem.mismatch, problem.crash, problem.log,
                                explain=_explain(arch, case, params), shrunk=shrunk, outside=outside_contract(case)))
        run.round_cases, run.tally = counted["n"], tally
    for finding in findings:
        if finding.tier == tier and finding.kind in run.tally:
            finding.cases = run.tally[finding.kind]
    return run


def _explain(arch, case, params) -> list[dict[str, Any]]:
    try:
        return arch.explain(case, params)
    except Exception:  # explain is a courtesy: a head it cannot read explains nothing
        return []


def fixed_hostile(library, arch, params, *, tolerance: Tolerance, applied: tuple[str, ...],
                  runs: dict[str, TierRun], findings: list[Finding], mask_stats: MaskStats | None = None) -> None:
    """The fixed inputs of dsparsers.verification.hostile, each in the tier its contract check says."""
    from dsparsers.verification.hostile import hostile_cases

    for label, case in hostile_cases(arch, params):
        outside = outside_contract(case)
        tier = ROBUSTNESS if outside else CONTRACT
        runs[tier].fixed += 1
        for problem in judge(library, arch, params, case, tolerance=tolerance, applied=applied, mask_stats=mask_stats):
            findings.append(Finding(tier, problem.kind, problem.summary, case, problem.mismatch, problem.crash,
                                    problem.log, label=label, shrunk=False, outside=outside))


@dataclass
class ConformResult:
    library: str
    function: str
    architecture: str
    head: str
    abi: int
    strict: bool = False
    applied: tuple[str, ...] = ()
    findings: list[Finding] = field(default_factory=list)
    runs: dict[str, TierRun] = field(default_factory=dict)
    masks: MaskStats | None = None
    tolerance: Tolerance = field(default_factory=Tolerance)
    restarts: int = 0  # worker restarts (one per crash or hang)

    def tier_findings(self, tier: str) -> list[Finding]:
        return [f for f in self.findings if f.tier == tier]

    @property
    def passed(self) -> bool:
        if self.tier_findings(CONTRACT):
            return False
        return not (self.strict and self.tier_findings(ROBUSTNESS))

    @property
    def examples(self) -> int:
        return sum(r.examples for r in self.runs.values())

    def convention_lines(self) -> list[str]:
        """One line per convention that explains differences: '3 of 200 cases: ...; `--min-box 0` makes them pass'."""
        lines = []
        for finding in self.findings:
            if not finding.kind.startswith("convention: "):
                continue
            convention = CONVENTIONS[finding.kind.split(": ", 1)[1]]
            run = self.runs.get(finding.tier)
            total = run.round_cases if run else 0
            lines.append(f"{finding.cases} of {total} {finding.tier} case(s): {convention.explains}; "
                         f"convention `{convention.option}` makes them pass")
        return lines


def run_conform(library, arch, params, *, examples: int = 200, hostile_examples: int | None = None,
                hostile: bool = True, strict: bool = False, seed: int | None = None, derandomize: bool = False,
                applied: tuple[str, ...] = (), tolerance: Tolerance = Tolerance(), max_rounds: int = 8,
                progress=None) -> ConformResult:
    """Both tiers of ``library`` (a ParserLibrary or, for foreign code, an IsolatedLibrary)."""
    unknown = [name for name in applied if name not in CONVENTIONS]
    if unknown:
        raise ValueError(f"unknown convention(s) {unknown}; known: {sorted(CONVENTIONS)}")
    result = ConformResult(str(library.path), library.function, arch.name, arch.describe(params), library.abi,
                           strict=strict, applied=tuple(applied), tolerance=tolerance,
                           masks=MaskStats() if arch.parser_kind == "instance-mask" else None)
    result.runs = {CONTRACT: TierRun(CONTRACT), ROBUSTNESS: TierRun(ROBUSTNESS)}
    common = dict(seed=seed, derandomize=derandomize, tolerance=tolerance, applied=tuple(applied),
                  findings=result.findings, mask_stats=result.masks, max_rounds=max_rounds, progress=progress)
    strategy = arch.strategy(params)
    contract = strategy.map(to_contract).filter(lambda case: not outside_contract(case))
    result.runs[CONTRACT] = hypothesis_tier(library, arch, params, contract, CONTRACT, examples=examples,
                                            known=set(), **common)
    if hostile:
        beyond = strategy.filter(lambda case: bool(outside_contract(case)))
        known = {f.kind for f in result.findings}  # a contract bug seen again beyond the contract is no news
        result.runs[ROBUSTNESS] = hypothesis_tier(library, arch, params, beyond, ROBUSTNESS,
                                                  examples=hostile_examples or max(20, examples // 2), known=known,
                                                  **common)
        fixed_hostile(library, arch, params, tolerance=tolerance, applied=tuple(applied), runs=result.runs,
                      findings=result.findings, mask_stats=result.masks)
    result.restarts = getattr(library, "restarts", 0)
    return result
