"""`dsparsers plugins` and `dsparsers inspect`: what is registered, and what a model ends in."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from dsparsers.cli.common import (err, main, out, current_registry)


# -- plugins ------------------------------------------------------------------------------------
@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--markdown", is_flag=True, help="A Markdown table with config defaults (the README's).")
def plugins(as_json, markdown):
    """List the architectures, their aliases, providing plugin and the head each recognises."""
    registry = current_registry()
    rows = [{"architecture": p.architecture.name, "aliases": list(p.architecture.aliases),
             "plugin": p.plugin, "distribution": p.distribution, "head": p.architecture.head,
             "function": p.architecture.function_name, "summary": p.architecture.summary}
            for p in registry.architectures()]
    if markdown:
        print("| architecture | aliases | head | families | cluster-mode | scale / color / letterbox | "
              "pre-cluster / nms-iou / topk |")
        print("|---|---|---|---|---|---|---|")
        for p in registry.architectures():
            a, d = p.architecture, p.architecture.config_defaults
            letterbox = ("letterbox, centred" if d.symmetric_padding else "letterbox") if d.maintain_aspect_ratio else "stretch"
            color = {0: "RGB", 1: "BGR", 2: "GRAY"}.get(d.model_color_format, str(d.model_color_format))
            scale = f"{d.net_scale_factor:.6g}" + (f" - {list(d.offsets)}" if d.offsets else "")
            print(f"| `{a.name}` | {', '.join(a.aliases)} | {a.head} | {a.summary} | {d.cluster_mode} | "
                  f"{scale} / {color} / {letterbox} | {d.pre_cluster_threshold:g} / {d.nms_iou_threshold:g} / {d.topk} |")
        return
    if as_json:
        print(json.dumps({"architectures": rows, "load_failures": [
            {"plugin": n, "error": e} for n, e in registry.load_failures]}, indent=2))
        return
    table = Table(title="dsparsers architectures")
    for column in ("architecture", "aliases", "plugin", "distribution", "head"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["architecture"], ", ".join(row["aliases"]), row["plugin"], row["distribution"], row["head"])
    out.print(table)
    for name, error in registry.load_failures:
        err.print(f"[yellow]plugin {name!r} failed to load:[/] {error}", markup=True)


# -- inspect ------------------------------------------------------------------------------------
@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(model, as_json):
    """Show a model's inputs, outputs, metadata and the architectures that match its heads."""
    from dsparsers.model.reader import load_model

    info = load_model(model)
    matches = current_registry().rank(info)
    tensors = lambda ts: [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in ts]  # noqa: E731
    if as_json:
        print(json.dumps({"file": str(info.path), "sha256": info.sha256, "opset": info.opset,
                          "producer": info.producer, "inputs": tensors(info.inputs), "outputs": tensors(info.outputs),
                          "metadata": info.metadata,
                          "matches": [{"architecture": m.architecture, "score": m.score, "reason": m.reason}
                                      for m in matches]}, indent=2, ensure_ascii=True))
        return
    out.print(f"[bold]{info.path}[/]  sha256 {info.sha256[:16]}...  opset {info.opset}  {info.producer}")
    for title, items in (("inputs", info.inputs), ("outputs", info.outputs)):
        table = Table(title=title, title_justify="left")
        for column in ("name", "shape", "dtype", "produced by"):
            table.add_column(column, overflow="fold")
        for t in items:
            chain = " <- ".join(info.upstream_ops(t.name, depth=2)) or "-"
            table.add_row(t.name, t.shape_text(), t.dtype, chain)
        out.print(table)
    if info.metadata:
        table = Table(title="metadata", title_justify="left")
        table.add_column("key")
        table.add_column("value", overflow="fold")
        for key, value in info.metadata.items():
            table.add_row(key, value if len(value) <= 160 else value[:157] + "...")
        out.print(table)
    positive = [m for m in matches if m.score > 0]
    if positive:
        table = Table(title="matching architectures (best first)", title_justify="left")
        for column in ("architecture", "score", "families", "why"):
            table.add_column(column, overflow="fold")
        registry = current_registry()
        for m in positive:
            table.add_row(m.architecture, f"{m.score:.2f}", registry.get(m.architecture).architecture.summary, m.reason)
        out.print(table)
        from dsparsers.api.selection import AMBIGUITY_MARGIN

        close = [m for m in positive[1:] if positive[0].score - m.score < AMBIGUITY_MARGIN]
        if close:
            out.print(f"[yellow]ambiguous:[/] {', '.join(m.architecture for m in [positive[0], *close])} score within "
                      f"{AMBIGUITY_MARGIN}; `generate --arch NAME` settles it")
    else:
        from dsparsers.api.selection import heads_text

        near = [m for m in matches if m.score == 0]
        out.print(f"[yellow]no architecture recognises these heads:[/] {heads_text(info)}")
        for m in near:
            out.print(f"  closest: {m.architecture}: {m.reason}")
        if not near:
            out.print("  known heads: " + "; ".join(f"{p.architecture.name}: {p.architecture.head}"
                                                   for p in current_registry().architectures()))
