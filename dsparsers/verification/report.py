"""Showing a `conform` result: on the console (rich), as Markdown and as JSON (`conform --report DIR`)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from dsparsers.api.abi_types import ParserCase
from dsparsers.verification.conformance import FIELDS, print_object_diff
from dsparsers.verification.tiers import CONTRACT, CONVENTIONS, ROBUSTNESS, ConformResult, Finding

TIER_TITLES = {CONTRACT: "nvinfer contract (decides the verdict)",
               ROBUSTNESS: "robustness beyond the contract (decides the verdict with --strict)"}
MAX_VALUES = 4096  # layer values written out per minimal case


def _number(value) -> Any:
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _short(value) -> str:
    """A value for a table: float32 precision, nan/inf spelled out."""
    number = _number(value)
    return f"{number:.7g}" if isinstance(number, float) else str(number)


def case_json(case: ParserCase) -> dict[str, Any]:
    """A minimal case as plain JSON: every layer (name, type, dims, values), the network, the params."""
    layers = []
    for layer in case.layers:
        flat = np.ascontiguousarray(layer.data).reshape(-1)
        entry = {"name": layer.name, "type": layer.reported_type.name, "dims": list(map(int, layer.reported_dims)),
                 "data_shape": list(layer.data.shape), "data_dtype": str(layer.data.dtype)}
        entry["values"] = [_number(v) for v in flat[:MAX_VALUES]]
        if flat.size > MAX_VALUES:
            entry["values_truncated"] = int(flat.size)
        layers.append(entry)
    return {"network": {"width": case.network.width, "height": case.network.height, "channels": case.network.channels},
            "num_classes_configured": case.params.num_classes_configured,
            "precluster_thresholds": [_number(v) for v in case.params.precluster],
            "postcluster_thresholds": [_number(v) for v in case.params.postcluster], "layers": layers}


def _objects_json(objects) -> list[dict[str, Any]]:
    if objects is None:
        return []
    return [{"class_id": int(o["class_id"]), **{f: _number(o[f]) for f in (*FIELDS, "rotation_angle")}} for o in objects]


def finding_json(finding: Finding) -> dict[str, Any]:
    entry: dict[str, Any] = {"tier": finding.tier, "kind": finding.kind, "summary": finding.summary,
                             "shrunk": finding.shrunk, "cases": finding.cases, "case": case_json(finding.case)}
    if finding.label:
        entry["hostile_input"] = finding.label
    if finding.outside:
        entry["outside_contract"] = finding.outside
    crash = finding.crash
    if crash is not None:
        entry["crash"] = {"kind": crash.kind, "signal": crash.signal_name, "sanitizer": crash.sanitizer,
                          "first_frame": crash.frame, "log": crash.log[-8000:]}
    mismatch = finding.mismatch
    if mismatch is not None and crash is None:
        entry["expected"] = {"accepted": mismatch.expected.accepted, "objects": _objects_json(mismatch.expected.objects)}
        if mismatch.actual is not None:
            entry["actual"] = {"accepted": mismatch.actual.accepted, "objects": _objects_json(mismatch.actual.objects)}
    if finding.explain:
        entry["explain"] = [{k: (_number(v) if isinstance(v, (float, np.floating)) else
                                 (int(v) if isinstance(v, (np.integer,)) else v)) for k, v in row.items()}
                            for row in finding.explain]
    return entry


def result_json(result: ConformResult) -> dict[str, Any]:
    kinds: dict[str, list[int]] = {}
    for index, finding in enumerate(result.findings):
        kinds.setdefault(finding.kind, []).append(index)
    return {
        "library": result.library, "function": result.function, "architecture": result.architecture,
        "head": result.head, "abi": result.abi, "verdict": "PASS" if result.passed else "FAIL", "strict": result.strict,
        "conventions_applied": [CONVENTIONS[name].option for name in result.applied],
        "conventions_detected": result.convention_lines(),
        "coverage": {tier: {"cases": run.examples, "cases_last_round": run.round_cases, "rounds": run.rounds,
                            "fixed_hostile_inputs": run.fixed, "findings": len(result.tier_findings(tier))}
                     for tier, run in result.runs.items()},
        "worker_restarts": result.restarts,
        "findings_by_kind": kinds,
        "findings": [finding_json(f) for f in result.findings],
    }


def _case_markdown(case: ParserCase) -> list[str]:
    lines = [f"network {case.network.width}x{case.network.height}x{case.network.channels}, "
             f"numClassesConfigured {case.params.num_classes_configured}, pre-cluster thresholds "
             f"[{', '.join(f'{t:g}' for t in case.params.precluster[:8])}{' ...' if len(case.params.precluster) > 8 else ''}]"
             f" ({len(case.params.precluster)})", "",
             "| layer | type | dims | values |", "|---|---|---|---|"]
    for layer in case.layers:
        flat = np.ascontiguousarray(layer.data).reshape(-1)
        shown = ", ".join(_short(v) for v in flat[:24]) + (f" ... ({flat.size} values)" if flat.size > 24 else "")
        lines.append(f"| `{layer.name}` | {layer.reported_type.name} | {list(layer.reported_dims)} | {shown} |")
    return lines


def _objects_markdown(title: str, objects) -> list[str]:
    if objects is None or not len(objects):
        return [f"{title}: none"]
    lines = [f"{title}:", "", "| class | " + " | ".join((*FIELDS, "rotation_angle")) + " |",
             "|---" * (len(FIELDS) + 2) + "|"]
    for o in objects:
        lines.append(f"| {int(o['class_id'])} | " + " | ".join(f"{float(o[f]):.6g}" for f in (*FIELDS, "rotation_angle")) + " |")
    return lines


def result_markdown(result: ConformResult) -> str:
    verdict = "PASS" if result.passed else "FAIL"
    out = [f"# conform: {result.function} in {Path(result.library).name}", "",
           f"**{verdict}** against the `{result.architecture}` reference ({result.head}), ABI {result.abi}"
           f"{', strict' if result.strict else ''}.", "", f"Library: `{result.library}`", "", "## Coverage", "",
           "| tier | cases run | rounds | fixed hostile inputs | findings |", "|---|---|---|---|---|"]
    for tier, run in result.runs.items():
        out.append(f"| {tier} | {run.examples} | {run.rounds} | {run.fixed} | {len(result.tier_findings(tier))} |")
    out += ["", f"Worker restarts (one per crash or hang): {result.restarts}", "", "## Conventions", ""]
    applied = [CONVENTIONS[name].option for name in result.applied]
    out.append(f"Applied: {', '.join(f'`{a}`' for a in applied) if applied else 'none'}.")
    out += [""] + [f"- {line}" for line in result.convention_lines()] or []
    if not result.convention_lines():
        out.append("No convention explains a difference.")
    for tier in (CONTRACT, ROBUSTNESS):
        findings = result.tier_findings(tier)
        out += ["", f"## Findings: {TIER_TITLES[tier]}", ""]
        if not findings:
            out.append("None.")
            continue
        by_kind: dict[str, list[Finding]] = {}
        for finding in findings:
            by_kind.setdefault(finding.kind, []).append(finding)
        for kind, group in by_kind.items():
            out += [f"### {kind} ({len(group)} finding(s))", ""]
            for finding in group:
                how = f"fixed hostile input *{finding.label}*" if finding.label else (
                    "minimal case (shrunk)" if finding.shrunk else "case (did not shrink: it does not reproduce reliably)")
                out += [f"- {finding.summary}", f"  - {how}; {finding.cases} case(s) of the tier's last round showed it"]
                if finding.outside:
                    out.append(f"  - beyond the contract: {'; '.join(finding.outside)}")
                crash = finding.crash
                if crash is not None and crash.frame:
                    out.append(f"  - first frame: `{crash.frame}`")
                out += [""] + _case_markdown(finding.case) + [""]
                if crash is not None and crash.log.strip():
                    out += ["```", *crash.log.strip().splitlines()[:40], "```", ""]
                mismatch = finding.mismatch
                if mismatch is not None and crash is None:
                    out += _objects_markdown("expected (reference)", mismatch.expected.objects if mismatch.expected.accepted else None)
                    out.append("")
                    if mismatch.actual is not None:
                        out += _objects_markdown("library" + ("" if mismatch.actual.accepted else " (returned false)"),
                                                 mismatch.actual.objects)
                        out.append("")
    return "\n".join(out) + "\n"


def write_report(directory: Path, result: ConformResult) -> list[Path]:
    """``directory`` holding this library's report (Markdown and JSON), written atomically; reports of
    other libraries already there are kept."""
    from dsparsers.generation.output_dir import write_directory

    stem = f"{Path(result.library).name}.{result.function}"
    files = {f"{stem}.md": result_markdown(result),
             f"{stem}.json": json.dumps(result_json(result), indent=2, allow_nan=False) + "\n"}
    write_directory(Path(directory), files)
    return [Path(directory) / name for name in files]


def render_result(result: ConformResult, console) -> None:
    """The console form: verdict line, tiers, conventions, each finding with its minimal case."""
    from rich.markup import escape
    from rich.table import Table

    verdict = "[bold green]PASS[/]" if result.passed else "[bold red]FAIL[/]"
    contract, robustness = result.runs.get(CONTRACT), result.runs.get(ROBUSTNESS)
    hostile = robustness.examples + robustness.fixed + (contract.fixed if contract else 0) if robustness else 0
    console.print(f"{verdict} {result.function} in {escape(result.library)}: {result.architecture} ({escape(result.head)}), "
                  f"ABI {result.abi}, {contract.examples if contract else 0} example(s), {hostile} hostile input(s)")
    for tier, run in result.runs.items():
        found = result.tier_findings(tier)
        console.print(f"{tier} tier: {run.examples} case(s) in {run.rounds} round(s), {run.fixed} fixed hostile input(s): "
                      f"{len(found)} finding(s){'' if tier == CONTRACT or result.strict else ' (not in the verdict without --strict)'}")
    if result.masks is not None and result.masks.compared:
        stats, tol = result.masks, result.tolerance
        console.print(f"masks: {stats.compared} compared; worst IoU {stats.worst_iou:.4f} (threshold {tol.mask_iou}), "
                      f"worst max |difference| {stats.worst_abs:.3g} (threshold {tol.mask_absolute:g})")
    if result.restarts:
        console.print(f"worker restarts (one per crash or hang): {result.restarts}")
    for line in result.convention_lines():
        console.print(f"[yellow]convention:[/] {escape(line)}")
    first = True
    for finding in result.findings:
        how = f"fixed hostile input {finding.label}" if finding.label else ("shrunk" if finding.shrunk else "not shrunk (flaky)")
        if first and finding.mismatch is not None and finding.crash is None and finding.tier == CONTRACT:
            console.print(f"[red]first mismatch, shrunk:[/] {escape(finding.summary)}")
            first = False
        console.print(f"[red]{finding.tier} finding[/] [bold]{escape(finding.kind)}[/] ({escape(how)}): {escape(finding.summary)}")
        if finding.outside:
            console.print(f"  beyond the contract: {escape('; '.join(finding.outside))}")
        if finding.crash is not None:
            crash = finding.crash
            if crash.frame:
                console.print(f"  first frame: {escape(crash.frame)}")
            log = [line for line in crash.log.splitlines() if line.strip()]
            for line in log[:12]:
                console.print(f"  | {escape(line)}", highlight=False)
        _render_case(finding, console, Table)


def _render_case(finding: Finding, console, Table) -> None:
    case, mismatch = finding.case, finding.mismatch
    inputs = Table(title="minimal input" if finding.shrunk else "input", show_lines=False)
    for column in ("layer", "type", "dims", "values", "network", "classes configured", "pre-cluster thresholds"):
        inputs.add_column(column, overflow="fold")
    thresholds = case.params.precluster
    shown = ", ".join(f"{t:g}" for t in thresholds[:6]) + (" ..." if len(thresholds) > 6 else "")
    for layer in case.layers:
        flat = np.ascontiguousarray(layer.data).reshape(-1)
        values = ", ".join(_short(v) for v in flat[:8]) + (" ..." if flat.size > 8 else "")
        inputs.add_row(layer.name, layer.reported_type.name, str(list(layer.reported_dims)), values,
                       f"{case.network.width}x{case.network.height}", str(case.params.num_classes_configured),
                       f"[{shown}] ({len(thresholds)})")
    console.print(inputs)
    if finding.explain:
        detail = Table(title="candidates (as the reference reads them)")
        for column in finding.explain[0]:
            detail.add_column(column, justify="right")
        for row in finding.explain[:20]:
            detail.add_row(*(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row.values()))
        console.print(detail)
    if mismatch is None or finding.crash is not None:
        return
    print_object_diff(mismatch, console, Table, fields=(*FIELDS, "rotation_angle"))
