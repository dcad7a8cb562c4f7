"""`dsparsers run`: nvinfer emulated on pictures, end to end."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from dsparsers.cli.common import (err, main, out)
from dsparsers.emulation.releases import DEEPSTREAM_VERSIONS, NEWEST_DEEPSTREAM
from dsparsers.errors import UsageError


# -- run ----------------------------------------------------------------------------------------
@main.command("run")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="nvinfer config (key=value or .yml/.yaml) to emulate.")
@click.option("--onnx", "onnx_path", type=click.Path(path_type=Path), help="ONNX model [default: the config's onnx-file].")
@click.option("--lib", "library", type=click.Path(path_type=Path), help="Parser library [default: the config's custom-lib-path].")
@click.option("--func", "function", help="Parse function [default: the config's parse-bbox-func-name].")
@click.option("--arch", help="Without --config: the architecture whose generated config gives the defaults [default: detected].")
@click.option("--image", "images", multiple=True, type=click.Path(path_type=Path), help="Picture to run on (repeatable).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output directory [default: dsparsers-run, dsparsers-demo with --demo].")
@click.option("--set", "overrides", multiple=True, metavar="[SECTION.]KEY=VALUE", help="Override a config key, e.g. class-attrs-all.pre-cluster-threshold=0.5.")
@click.option("--abi", type=click.Choice(["8", "9"]), help="Object layout the library was built for [default: its build record, else 9].")
@click.option("--demo", is_flag=True, help="Run on a tiny random-weight YOLO11 model and a picture dsparsers draws itself (nothing downloaded).")
@click.option("--force", is_flag=True, help="Write into a non-empty directory dsparsers did not write.")
@click.option("--deepstream-version", "deepstream", type=click.Choice(DEEPSTREAM_VERSIONS), default=NEWEST_DEEPSTREAM,
              show_default=True, help="DeepStream release whose rules to follow where releases differ (back-projection).")
def run_command(config_path, onnx_path, library, function, arch, images, output, overrides, abi, demo, force,
                deepstream=NEWEST_DEEPSTREAM):
    """Emulate nvinfer on pictures, end to end, and draw the detections (no DeepStream needed)."""
    from dsparsers.emulation.run import run_pictures, settings_for_model, settings_from_config

    note, extra = None, None
    if demo:
        if config_path or onnx_path or library or function:
            raise UsageError("--demo makes its own model, parser and config: drop --config/--onnx/--lib/--func")
        from dsparsers.emulation.demo import NOTE, prepare_demo

        with err.status("demo: building a random-weight YOLO11-style model and its parser..."):
            config_path, picture = prepare_demo()
        images = images or (picture,)
        output = output or Path("dsparsers-demo")
        note, extra = NOTE, {"demo": NOTE}
        err.print("[yellow]demo:[/] the model has RANDOM weights, so its boxes are meaningless; the picture proves "
                  "that pre-processing, the model, the generated parser, nvinfer's clustering, back-projection and "
                  "drawing all run together.", markup=True)
    if not images:
        raise UsageError("--image is required (or --demo)")
    abi_value = int(abi) if abi else None
    if config_path is not None:
        settings = settings_from_config(config_path, onnx=onnx_path, library=library, function=function,
                                        abi=abi_value, overrides=overrides, deepstream=deepstream)
    else:
        missing = [name for name, value in (("--onnx", onnx_path), ("--lib", library), ("--func", function)) if not value]
        if missing:
            raise UsageError(f"{', '.join(missing)} required without --config (or give --config CONFIG)")
        settings = settings_for_model(onnx_path, library, function, arch=arch, abi=abi_value, overrides=overrides,
                                      deepstream=deepstream)
    output = output or Path("dsparsers-run")
    for line in settings.notes:
        err.print(f"[yellow]note:[/] {line}", markup=True)
    if len(images) > 1:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task("nvinfer emulation", total=len(images))
            results = run_pictures(settings, images, output, force=force, note=note, extra=extra,
                                   progress=lambda done, path: bar.update(task, completed=done,
                                                                          description=f"{path.name}"))
    else:
        with err.status("running nvinfer's path on the picture..."):
            results = run_pictures(settings, images, output, force=force, note=note, extra=extra)
    table = Table(title=f"dsparsers run: {settings.function} ({settings.source})", title_justify="left")
    for column in ("image", "detections", "top classes", "output"):
        table.add_column(column, overflow="fold")
    for r in results:
        status = "" if r.accepted else " (parser returned false)"
        table.add_row(str(r.source), f"{len(r.detections)}{status}", r.top_classes(), str(Path(output) / r.output))
    out.print(table)
    for r in results:
        if not r.accepted:
            err.print(f"[yellow]warning:[/] {r.source}: the parser returned false (nvinfer only logs this: the frame "
                      "gets no objects)", markup=True)
    out.print(f"detections and settings: {Path(output) / 'detections.json'}")
    if demo:
        out.print(f"[yellow]{note}[/]", markup=True)
        print(f"the same run by hand: dsparsers run --config {config_path} --image {images[0]}")
