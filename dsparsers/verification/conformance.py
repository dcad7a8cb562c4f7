"""Conformance: a parser library against an architecture's reference decoder, on Hypothesis cases.

The first mismatch Hypothesis finds is shrunk to a minimal case and reported as a table: the input
that matters, then expected and actual objects side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dsparsers.api.architecture import Architecture, HeadParams
from dsparsers.errors import LibraryError
from dsparsers.api.abi_types import ParseOutcome, ParserCase

FIELDS = ("left", "top", "width", "height", "confidence")


@dataclass(frozen=True)
class Tolerance:
    """|actual - expected| <= absolute + relative * |expected|, per field kind."""

    box_absolute: float = 1e-3  # network pixels
    box_relative: float = 1e-5
    score_absolute: float = 1e-6
    score_relative: float = 1e-6
    #: instance masks: the largest |actual - expected| of any mask pixel (probabilities)
    mask_absolute: float = 1e-4
    #: and the smallest IoU of the masks thresholded at ``mask_threshold``, counting only pixels whose
    #: expected value is farther than ``mask_absolute`` from the threshold (those within may flip)
    mask_iou: float = 0.99
    mask_threshold: float = 0.5

    def close(self, field_name: str, expected: float, actual: float) -> bool:
        if field_name == "confidence":
            return abs(actual - expected) <= self.score_absolute + self.score_relative * abs(expected)
        return abs(actual - expected) <= self.box_absolute + self.box_relative * abs(expected)


@dataclass
class MaskStats:
    """What the mask comparison saw over a run: how many masks, the worst IoU and pixel difference."""

    compared: int = 0
    worst_iou: float = 1.0
    worst_abs: float = 0.0

    def add(self, iou: float, diff: float) -> None:
        self.compared += 1
        self.worst_iou = min(self.worst_iou, iou)
        self.worst_abs = max(self.worst_abs, diff)


def mask_agreement(expected: np.ndarray, actual: np.ndarray, tol: "Tolerance") -> tuple[float, float]:
    """(IoU, max |difference|) of two masks of one shape; IoU of the masks thresholded at
    ``tol.mask_threshold``, ignoring pixels whose expected value lies within ``tol.mask_absolute`` of it."""
    with np.errstate(invalid="ignore"):
        diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
        same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))  # equal infinities too
        diff = np.where(same, 0.0, np.where(np.isnan(diff), np.inf, diff))
        decided = np.abs(expected.astype(np.float64) - tol.mask_threshold) > tol.mask_absolute
        e = (expected > tol.mask_threshold) & decided
        a = (actual > tol.mask_threshold) & decided
    union = int(np.sum(e | a))
    iou = 1.0 if union == 0 else int(np.sum(e & a)) / union
    return iou, float(diff.max()) if diff.size else 0.0


@dataclass(frozen=True)
class Mismatch:
    summary: str
    expected: ParseOutcome
    actual: ParseOutcome | None
    missing: np.ndarray | None = None  # expected objects the library did not return
    extra: np.ndarray | None = None  # objects the library returned that the reference did not


def _same(row_a, row_b, tol: Tolerance) -> bool:
    if int(row_a["class_id"]) != int(row_b["class_id"]):
        return False
    return all(tol.close(f, float(row_a[f]), float(row_b[f])) for f in FIELDS)


def compare(expected: ParseOutcome, actual: ParseOutcome, tol: Tolerance = Tolerance(),
            mask_stats: MaskStats | None = None) -> Mismatch | None:
    """None when the library did what the reference says (objects compared as multisets; for
    instance-mask parsers each matched object's mask too, its agreement added to ``mask_stats``)."""
    if expected.accepted != actual.accepted:
        if expected.accepted:
            return Mismatch(f"the library returned false; the reference accepts the input and expects "
                            f"{len(expected.objects)} object(s)", expected, actual)
        return Mismatch(f"the library returned true with {len(actual.objects)} object(s); the reference "
                        f"rejects the input ({expected.message})", expected, actual)
    if actual.mask_errors:
        return Mismatch(f"mask contract broken: {actual.mask_errors[0]}"
                        + (f" (and {len(actual.mask_errors) - 1} more)" if len(actual.mask_errors) > 1 else ""),
                        expected, actual)
    if not expected.accepted:
        return None
    unmatched = list(range(len(actual.objects)))
    missing = []
    for row in expected.objects:
        hit = next((k for k in unmatched if _same(row, actual.objects[k], tol)), None)
        if hit is None:
            missing.append(row)
        else:
            unmatched.remove(hit)
    if not missing and not unmatched:
        return _compare_masks(expected, actual, tol, mask_stats)
    missing_arr = np.array(missing, dtype=expected.objects.dtype)
    extra_arr = actual.objects[unmatched]
    return Mismatch(f"expected {len(expected.objects)} object(s), the library returned {len(actual.objects)}: "
                    f"{len(missing_arr)} missing, {len(extra_arr)} unexpected", expected, actual, missing_arr, extra_arr)


def _compare_masks(expected: ParseOutcome, actual: ParseOutcome, tol: Tolerance,
                   stats: MaskStats | None) -> Mismatch | None:
    """With the objects matched, the masks of matched objects (None for detector outcomes)."""
    if expected.masks is None:
        return None
    if actual.masks is None:
        return Mismatch("the reference expects instance masks; the library was called as a detector", expected, actual)
    unmatched = list(range(len(actual.objects)))
    for i, row in enumerate(expected.objects):
        want = expected.masks[i]
        same_box = [k for k in unmatched if _same(row, actual.objects[k], tol)]
        best = None
        for k in same_box:
            got = actual.masks[k]
            if got.shape != want.shape:
                agreement = (0.0, float("inf"))
            else:
                agreement = mask_agreement(want, got, tol)
            if best is None or (agreement[0], -agreement[1]) > (best[1][0], -best[1][1]):  # IoU up, difference down
                best = (k, agreement)
        if best is None:
            return Mismatch(f"expected object {i} has no returned object left to pair its mask with", expected, actual)
        k, (iou, diff) = best
        where = (f"class {int(row['class_id'])} at ({float(row['left']):.1f}, {float(row['top']):.1f}, "
                 f"{float(row['width']):.1f}, {float(row['height']):.1f})")
        if actual.masks[k].shape != want.shape:
            return Mismatch(f"object {where}: mask is {actual.masks[k].shape[1]}x{actual.masks[k].shape[0]}, "
                            f"the reference's {want.shape[1]}x{want.shape[0]} (width x height)", expected, actual)
        if iou < tol.mask_iou or diff > tol.mask_absolute:
            return Mismatch(f"object {where}: mask differs: IoU {iou:.4f} (at least {tol.mask_iou} wanted), "
                            f"max |difference| {diff:.3g} (at most {tol.mask_absolute:g} wanted)", expected, actual)
        if stats is not None:
            stats.add(iou, diff)
        unmatched.remove(k)
    return None


@dataclass(frozen=True)
class HostileFailure:
    label: str
    summary: str


@dataclass
class ConformanceReport:
    library: str
    function: str
    architecture: str
    head: str
    abi: int
    examples: int
    mismatch: Mismatch | None = None
    case: ParserCase | None = None
    explain: list[dict[str, Any]] = field(default_factory=list)
    hostile_cases: int = 0
    hostile_failures: list[HostileFailure] = field(default_factory=list)
    #: instance-mask parsers: what the mask comparison saw (None for detectors)
    masks: MaskStats | None = None
    tolerance: Tolerance = field(default_factory=Tolerance)

    @property
    def passed(self) -> bool:
        return self.mismatch is None and not self.hostile_failures


class _Failed(AssertionError):
    pass


def run_conformance(library, arch: Architecture, params: HeadParams, *, examples: int = 200,
                    derandomize: bool = False, seed: int | None = None, tolerance: Tolerance = Tolerance(),
                    progress=None) -> ConformanceReport:
    """Run ``examples`` Hypothesis cases through ``library`` (a harness.ParserLibrary) and the reference."""
    from hypothesis import HealthCheck, Verbosity, given, settings
    from hypothesis import seed as hypothesis_seed

    report = ConformanceReport(str(library.path), library.function, arch.name, arch.describe(params), library.abi, 0,
                               masks=MaskStats() if arch.parser_kind == "instance-mask" else None, tolerance=tolerance)
    last: dict[str, Any] = {}

    def check(case: ParserCase) -> None:
        report.examples += 1
        if progress is not None:
            progress(report.examples)
        expected = arch.reference(case, params)
        try:
            actual = library.parse(case)
        except LibraryError as exc:
            mismatch = Mismatch(str(exc), expected, None)
        else:
            mismatch = compare(expected, actual, tolerance, report.masks)
        if mismatch is not None:
            last["case"], last["mismatch"] = case, mismatch
            raise _Failed(mismatch.summary)

    test = given(arch.strategy(params))(check)
    test = settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
                    report_multiple_bugs=False, suppress_health_check=list(HealthCheck),
                    verbosity=Verbosity.quiet, print_blob=False)(test)
    if seed is not None and not derandomize:
        test = hypothesis_seed(seed)(test)
    try:
        test()
    except _Failed:
        # Hypothesis replays the shrunk example last, so `last` holds the minimal failing case.
        report.case, report.mismatch = last["case"], last["mismatch"]
        report.explain = arch.explain(report.case, params)
    return report


def run_hostile(library, arch: Architecture, params: HeadParams, report: ConformanceReport) -> None:
    """The hostile inputs of dsparsers.verification.hostile: the library must agree with the reference on each."""
    from dsparsers.verification.hostile import hostile_cases

    for label, case in hostile_cases(arch, params):
        report.hostile_cases += 1
        expected = arch.reference(case, params)
        try:
            mismatch = compare(expected, library.parse(case), report.tolerance, report.masks)
        except LibraryError as exc:
            mismatch = Mismatch(str(exc), expected, None)
        if mismatch is not None:
            report.hostile_failures.append(HostileFailure(label, mismatch.summary))


def render_report(report: ConformanceReport, console) -> None:
    """Print a report with rich: a verdict line, and for a failure the minimal case and the object diff."""
    from rich.table import Table

    verdict = "[bold green]PASS[/]" if report.passed else "[bold red]FAIL[/]"
    hostile = f", {report.hostile_cases} hostile input(s)" if report.hostile_cases else ""
    console.print(f"{verdict} {report.function} in {report.library}: {report.architecture} ({report.head}), "
                  f"ABI {report.abi}, {report.examples} example(s){hostile}")
    if report.masks is not None:
        tol, stats = report.tolerance, report.masks
        console.print(f"masks: {stats.compared} compared; worst IoU {stats.worst_iou:.4f} (threshold {tol.mask_iou}, "
                      f"masks cut at {tol.mask_threshold}), worst max |difference| {stats.worst_abs:.3g} "
                      f"(threshold {tol.mask_absolute:g})")
    for failure in report.hostile_failures:
        console.print(f"[red]hostile input {failure.label}:[/] {failure.summary}", markup=True)
    if report.mismatch is None:
        return
    case, mismatch = report.case, report.mismatch
    console.print(f"[red]first mismatch, shrunk:[/] {mismatch.summary}")
    inputs = Table(title="minimal input", show_lines=False)
    for column in ("layer", "type", "dims", "network", "classes configured", "pre-cluster thresholds"):
        inputs.add_column(column)
    thresholds = case.params.precluster
    shown = ", ".join(f"{t:g}" for t in thresholds[:6]) + (" ..." if len(thresholds) > 6 else "")
    for layer in case.layers:
        inputs.add_row(layer.name, layer.reported_type.name, str(list(layer.reported_dims)),
                       f"{case.network.width}x{case.network.height}", str(case.params.num_classes_configured),
                       f"[{shown}] ({len(thresholds)})")
    console.print(inputs)
    if report.explain:
        detail = Table(title="candidates (as the reference reads them)")
        for column in report.explain[0]:
            detail.add_column(column, justify="right")
        for row in report.explain:
            detail.add_row(*(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row.values()))
        console.print(detail)
    print_object_diff(mismatch, console, Table)


def print_object_diff(mismatch, console, Table, fields=FIELDS) -> None:
    """The objects of a mismatch, reference against library (missing/unexpected rows when the objects were
    matched one to one, else both lists whole), as a table on ``console``."""
    diff = Table(title="objects: reference vs library")
    diff.add_column("", no_wrap=True)
    for column in ("class", *fields):
        diff.add_column(column, justify="right")

    def rows(label, arr, style):
        for obj in arr if arr is not None else []:
            diff.add_row(f"[{style}]{label}[/]", str(int(obj["class_id"])), *(f"{float(obj[f]):.6g}" for f in fields))

    if mismatch.missing is not None or mismatch.extra is not None:
        rows("missing (expected)", mismatch.missing, "red")
        rows("unexpected (library)", mismatch.extra, "yellow")
    else:
        rows("expected", mismatch.expected.objects if mismatch.expected.accepted else None, "cyan")
        rows("library", mismatch.actual.objects if mismatch.actual is not None else None, "yellow")
    if diff.row_count:
        console.print(diff)
