"""Decoded detection rows [B, K, 6]: x1, y1, x2, y2 (pixels), score, class id (float): the part the
yolo-end2end (yolo_end2end.py) and deepstream-yolo (deepstream_yolo.py) families share.

The two export this shape with different meanings for the pipeline (end-to-end heads keep one box per
object, cluster-mode=4; DeepStream-Yolo exports one row per anchor point, cluster-mode=2). They share
this class, the template yolo_decoded_rows.cpp.j2 and the reference in _yolo_decoded_rows_reference.py;
each subclass brings its own matcher evidence, canonical row count and config defaults. Not a plugin
itself (no hook).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from dsparsers import COCO80, Architecture, GenerateOptions, HeadParams, Match, UsageError

if TYPE_CHECKING:
    from dsparsers import ModelInfo, ParseOutcome, ParserCase, TensorInfo

ROW_WIDTH = 6


@dataclass(frozen=True)
class DecodedRowsParams(HeadParams):
    output_name: str = "output0"
    num_rows: int | None = None


class DecodedRows(Architecture):
    template = "yolo_decoded_rows.cpp.j2"
    params_type = DecodedRowsParams
    options = {"output": "output tensor name the parser looks for first"}
    default_output: ClassVar[str] = "output0"
    head_note: ClassVar[str] = ""

    def canonical_rows(self, width: int, height: int) -> int:
        raise NotImplementedError

    def evidence(self, model: ModelInfo, head: TensorInfo) -> tuple[float, list[str]]:
        raise NotImplementedError

    def _head(self, model: ModelInfo) -> TensorInfo | None:
        heads = [t for t in model.outputs if t.rank == 3 and t.dim(2) == ROW_WIDTH]
        return heads[0] if len(model.outputs) == 1 and len(heads) == 1 and heads[0].dtype.startswith("float") else None

    def match(self, model: ModelInfo) -> Match | None:
        head = self._head(model)
        if head is None:
            return None
        if model.task not in (None, "detect"):
            return Match(0.0, f"metadata task={model.task!r}: not a detection head")
        rtdetr = _rtdetr_evidence(model)
        if rtdetr:  # same [B, 300, 6] shape, but cx cy w h normalized: never read it as corners in pixels
            return Match(0.0, f"{head.name} {head.shape_text()}: an RT-DETR export ({'; '.join(rtdetr)}): "
                              "normalized cx cy w h rows, see rtdetr-ultralytics")
        bonus, why = self.evidence(model, head)
        score = round(max(0.01, min(0.4 + bonus, 1.0)), 2)
        return Match(score, f"{head.name} {head.shape_text()}: rows of x1 y1 x2 y2 score class; " + "; ".join(why))

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> DecodedRowsParams:
        options.check_extra(self)
        if model is None:
            num_classes = options.num_classes or 80
            width, height = options.input_size or (640, 640)
            return DecodedRowsParams(num_classes, width, height, COCO80 if num_classes == 80 else None,
                                     options.extra.get("output", self.default_output), self.canonical_rows(width, height))
        head = self._head(model)
        if head is None:
            raise UsageError(f"{model.path}: {self.name} needs one output [B, K, 6]; the model has "
                             + ", ".join(f"{t.name} {t.shape_text()}" for t in model.outputs))
        names = model.class_names
        num_classes = options.num_classes or (len(names) if names else None)
        if num_classes is None:
            raise UsageError(f"{model.path}: the class count is not in the model's metadata: give --classes C")
        if names and options.num_classes and options.num_classes != len(names):
            raise UsageError(f"--classes {options.num_classes}: the model's metadata names {len(names)} classes")
        size = model.input_size or options.input_size or (640, 640)
        return DecodedRowsParams(num_classes, size[0], size[1], tuple(names) if names and len(names) == num_classes else None,
                                 options.extra.get("output", head.name), head.dim(1))

    def describe(self, params: DecodedRowsParams) -> str:
        return (f"{params.output_name} [{params.num_rows or 'K'}, 6] x1 y1 x2 y2 score class, {params.num_classes} classes, "
                f"{params.input_width}x{params.input_height} input")

    def template_context(self, params: DecodedRowsParams) -> dict[str, Any]:
        return {"num_classes": params.num_classes, "output_name": params.output_name, "head_note": self.head_note}

    # -- verification (NumPy and Hypothesis: _yolo_decoded_rows_reference, imported when used) --
    def reference(self, case: ParserCase, params: DecodedRowsParams) -> ParseOutcome:
        from . import _yolo_decoded_rows_reference as reference

        return reference.reference(case, params)

    def strategy(self, params: DecodedRowsParams):
        from . import _yolo_decoded_rows_reference as reference

        return reference.cases(params)

    def bench_case(self, params: DecodedRowsParams, density: float, rng) -> ParserCase:
        from . import _yolo_decoded_rows_reference as reference

        return reference.bench_case(params, density, rng,
                                    params.num_rows or self.canonical_rows(params.input_width, params.input_height))

    def explain(self, case: ParserCase, params: DecodedRowsParams) -> list[dict[str, Any]]:
        from . import _yolo_decoded_rows_reference as reference

        return reference.explain(case, params)


def _rtdetr_evidence(model: ModelInfo) -> list[str]:
    """What marks an ultralytics RT-DETR export, whose 8.4+ output has this very shape (unless the
    metadata says end2end=True, which only YOLO end-to-end heads write)."""
    if model.metadata.get("end2end") == "True":
        return []
    why = []
    if model.metadata.get("head") == "RTDETRDecoder":
        why.append("metadata head=RTDETRDecoder")
    if "rtdetr" in model.metadata.get("description", "").lower().replace("-", ""):
        why.append("metadata description names RT-DETR")
    if any(node.op_type == "GridSample" for node in model.producers.values()):
        why.append("deformable attention (GridSample) in the graph")
    return why
