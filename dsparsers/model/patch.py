"""Moving the decode into the engine: append a decode head to a recognised model with onnx-graphsurgeon.

Architectures that can be patched implement ``append_decode(graph, opset, params, *, topk, source)``
with the building blocks below and return the new ``output`` tensor.

A dense YOLO head hands the CPU parser (4+C) x N floats per frame (2.8 MB for YOLO11 at 640); after
the patch the engine itself converts boxes to corners and picks each candidate's best class and
score on the GPU, and the model outputs ``output`` [B, N, 6] rows (x1 y1 x2 y2 score class: the
DeepStream-Yolo layout), or only the K best rows with ``topk``. The generated ``deepstream-yolo``
parser reads those in microseconds. The patch computes exactly what the stock parser computes in
float32 (same operations in the same order), so detections are the same.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from dsparsers.errors import ModelError, UsageError

#: metadata key the patch writes; the deepstream-yolo matcher trusts it
PATCHED_KEY = "dsparsers_patched"
COMPACT_ARCHITECTURE = "deepstream-yolo"


def reduce_max(graph, opset: int, tensor, axis: int, name: str = "dsp_score"):
    """ReduceMax keeping the axis (its axes moved from an attribute to an input in opset 18)."""
    if opset >= 18:
        return graph.layer(op="ReduceMax", inputs=[tensor, np.array([axis], np.int64)], outputs=[name],
                           attrs={"keepdims": 1})[0]
    return graph.layer(op="ReduceMax", inputs=[tensor], outputs=[name], attrs={"axes": [axis], "keepdims": 1})[0]


def slice_last(graph, tensor, start: int, end: int | None, name: str):
    """tensor[:, :, start:end] of a rank-3 tensor."""
    stop = np.iinfo(np.int64).max if end is None else end
    return graph.layer(op="Slice", inputs=[tensor, np.array([start], np.int64), np.array([stop], np.int64),
                                           np.array([2], np.int64)], outputs=[name])[0]


def transpose_last(graph, tensor, name: str):
    return graph.layer(op="Transpose", inputs=[tensor], outputs=[name], attrs={"perm": [0, 2, 1]})[0]


def best_class(graph, opset: int, scores):
    """(score [B, N, 1], class id as float [B, N, 1]) of [B, N, C] scores: first maximum wins, as in the parsers."""
    score = reduce_max(graph, opset, scores, 2)
    index = graph.layer(op="ArgMax", inputs=[scores], outputs=["dsp_class_index"],
                        attrs={"axis": 2, "keepdims": 1, "select_last_index": 0})[0]
    return score, graph.layer(op="Cast", inputs=[index], outputs=["dsp_class"], attrs={"to": 1})[0]


def corners(graph, center_size):
    """x1 y1 x2 y2 [B, N, 4] from cx cy w h [B, N, 4], as the parsers compute them (half = size * 0.5)."""
    center = slice_last(graph, center_size, 0, 2, "dsp_center")
    half = graph.layer(op="Mul", inputs=[slice_last(graph, center_size, 2, 4, "dsp_size"), np.array(0.5, np.float32)],
                       outputs=["dsp_half"])[0]
    top_left = graph.layer(op="Sub", inputs=[center, half], outputs=["dsp_top_left"])[0]
    bottom_right = graph.layer(op="Add", inputs=[center, half], outputs=["dsp_bottom_right"])[0]
    return graph.layer(op="Concat", inputs=[top_left, bottom_right], outputs=["dsp_corners"], attrs={"axis": 2})[0]


def compact_rows(graph, opset: int, boxes, score, class_id, *, batch, topk: int | None):
    """The patched output: ``output`` [B, N or K, 6] = x1 y1 x2 y2 score class, optionally the K best rows."""
    rows = graph.layer(op="Concat", inputs=[boxes, score, class_id], outputs=["dsp_compact"], attrs={"axis": 2})[0]
    if topk:
        if opset >= 13:
            flat = graph.layer(op="Squeeze", inputs=[score, np.array([2], np.int64)], outputs=["dsp_flat_score"])[0]
        else:
            flat = graph.layer(op="Squeeze", inputs=[score], outputs=["dsp_flat_score"], attrs={"axes": [2]})[0]
        _, indices = graph.layer(op="TopK", inputs=[flat, np.array([topk], np.int64)],
                                 outputs=["dsp_top_scores", "dsp_top_index"], attrs={"axis": 1, "largest": 1, "sorted": 1})
        if opset >= 13:
            index = graph.layer(op="Unsqueeze", inputs=[indices, np.array([2], np.int64)], outputs=["dsp_top_rows"])[0]
        else:
            index = graph.layer(op="Unsqueeze", inputs=[indices], outputs=["dsp_top_rows"], attrs={"axes": [2]})[0]
        rows = graph.layer(op="GatherND", inputs=[rows, index], outputs=["dsp_top"], attrs={"batch_dims": 1})[0]
    output = graph.layer(op="Identity", inputs=[rows], outputs=["output"])[0]
    output.dtype = np.float32
    output.shape = [batch if batch is not None else "batch", topk if topk else "rows", 6]
    return output


def graph_output(graph, name: str, source: Path):
    found = [t for t in graph.outputs if t.name == name]
    if len(found) != 1:
        raise ModelError(f"{source}: no output named {name!r} to patch")
    return found[0]


def patch_model(source: Path, target: Path, architecture, params, *, topk: int | None = None) -> Path:
    """Write ``target``: ``source`` with its dense head decoded in-graph. Atomic; never half-written."""
    import onnx
    import onnx_graphsurgeon as gs

    if not hasattr(architecture, "append_decode"):
        raise UsageError(f"--arch {architecture.name}: its head is already compact (or has no in-graph decode yet); "
                         "nothing to patch")
    if topk is not None and topk < 1:
        raise UsageError(f"--topk {topk}: expected a positive row count")
    try:
        model = onnx.load(str(source))  # weights included: the patched model must run
    except Exception as exc:  # noqa: BLE001 - onnx raises many types for a bad file
        raise ModelError(f"{source}: cannot load with its weights: {exc}") from None
    opset = next((imp.version for imp in model.opset_import if imp.domain in ("", "ai.onnx")), 17)
    graph = gs.import_onnx(model)
    output = architecture.append_decode(graph, opset, params, topk=topk, source=Path(source))
    graph.outputs = [output]
    graph.cleanup().toposort()
    patched = gs.export_onnx(graph)
    patched.ir_version = model.ir_version
    del patched.metadata_props[:]
    for prop in model.metadata_props:
        patched.metadata_props.add(key=prop.key, value=prop.value)
    patched.metadata_props.add(key=PATCHED_KEY, value=f"{COMPACT_ARCHITECTURE} from {architecture.name}"
                                                      + (f" topk={topk}" if topk else ""))
    onnx.checker.check_model(patched)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    try:
        onnx.save(patched, staging)
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return target
