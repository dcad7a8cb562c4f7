"""Dense YOLO heads, the part the anchor-free and anchor-based families share: one candidate per anchor
point, cx cy w h in network pixels then scores, one detection per candidate (its best class).

- anchor-free (``yolo_anchor_free``): ``output0`` [B, 4+C, N] (channel-major, as ultralytics exports it)
  or [B, N, 4+C]; C sigmoid scores, no objectness.
- anchor-based (``yolo_anchor_based``): [B, N, 5+C] with an objectness column; score = objectness x best
  class probability.

Both use the template yolo_dense_head.cpp.j2; the NumPy reference, Hypothesis strategy, bench case and
``explain`` are in _yolo_dense_head_reference.py. Not a plugin itself (no hook).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import dsparsers
from dsparsers import COCO80, Architecture, GenerateOptions, HeadParams, Match, UsageError, anchor_points

if TYPE_CHECKING:
    from dsparsers import ModelInfo, ParseOutcome, ParserCase

BOX_CHANNELS = 4


@dataclass(frozen=True)
class DenseHeadParams(HeadParams):
    layout: str = "channels"
    output_name: str = "output0"
    num_candidates: int | None = None
    objectness: bool = False

    @property
    def score_offset(self) -> int:
        return BOX_CHANNELS + (1 if self.objectness else 0)

    @property
    def channels(self) -> int:
        return self.score_offset + self.num_classes


class DenseYoloHead(Architecture):
    """Shared by the anchor-free and anchor-based heads; subclasses set the class attributes."""

    objectness: ClassVar[bool] = False
    default_layout: ClassVar[str] = "channels"
    template = "yolo_dense_head.cpp.j2"
    params_type = DenseHeadParams
    options = {
        "layout": "channels ([4+C, N]) or rows ([N, 4+C]); without --onnx only",
        "output": "output tensor name the parser looks for first (default output0)",
    }

    @property
    def offset(self) -> int:
        return BOX_CHANNELS + (1 if self.objectness else 0)

    @property
    def width_text(self) -> str:
        return "5+C" if self.objectness else "4+C"

    def layouts(self) -> dict[str, str]:
        return {"channels": f"[{self.width_text}, N] channel-major", "rows": f"[N, {self.width_text}] row-major"}

    # -- recognising the head ---------------------------------------------------------------
    def evidence(self, model: ModelInfo, layout: str, num_classes: int, count: int | None) -> tuple[float, list[str]]:
        """Score adjustments and reasons specific to the subclass."""
        return 0.0, []

    def match(self, model: ModelInfo) -> Match | None:
        if model.task in ("pose", "obb", "segment", "classify"):
            return Match(0.0, f"metadata task={model.task!r}: a detection parser would misread this head")
        heads = [t for t in model.outputs if t.rank == 3]
        if len(model.outputs) != 1 or len(heads) != 1 or not heads[0].dtype.startswith("float"):
            return None
        head = heads[0]
        found = self.find_layout(head.dim(1), head.dim(2), model.class_names, concat_axis=concat_axis(model, head.name))
        if found is None:
            return None
        layout, num_classes, from_names = found
        score = 0.5
        why = [f"{head.name} {head.shape_text()}: {self.offset} box{' + objectness' if self.objectness else ''} "
               f"+ {num_classes} class {'rows' if layout == 'channels' else 'columns'} ({self.layouts()[layout]})"]
        if head.dim(1) is None and head.dim(2) is None:
            why.append("dims symbolic: C from the names, layout from the Concat axis")
        if from_names:
            score += 0.2
            why.append(f"{num_classes} class names in metadata")
        count = head.dim(2) if layout == "channels" else head.dim(1)
        bonus, reasons = self.evidence(model, layout, num_classes, count)
        return Match(round(max(0.01, min(score + bonus, 1.0)), 2), "; ".join(why + reasons))

    def find_layout(self, dim1: int | None, dim2: int | None, names: list[str] | None,
                    num_classes: int | None = None, concat_axis: int | None = None) -> tuple[str, int, bool] | None:
        """(layout, C, whether C agrees with the class names) for a [B, dim1, dim2] output, or None.

        Fixed dims decide; when both are symbolic (dynamic exports), the class count must come from
        the names or --classes and the layout from the axis of the Concat that joins boxes and scores.
        Class names that fit neither dimension rule the head out.
        """
        expected = num_classes or (len(names) if names else None)
        agrees = bool(names) and expected is not None and len(names) == expected
        if expected:
            if dim1 == self.offset + expected:
                return "channels", expected, agrees
            if dim2 == self.offset + expected:
                return "rows", expected, agrees
            if dim1 is None and dim2 is None and concat_axis in (1, 2):
                return ("channels" if concat_axis == 1 else "rows"), expected, agrees
            return None
        candidates = [(d, layout) for d, layout in ((dim1, "channels"), (dim2, "rows")) if d and d > self.offset]
        if not candidates:
            return None
        candidates.sort()  # the class dimension is the smaller one (N is thousands)
        dim, layout = candidates[0]
        return layout, dim - self.offset, False

    def head_params(self, model: ModelInfo | None, options: GenerateOptions) -> DenseHeadParams:
        options.check_extra(self)
        if model is None:
            num_classes = options.num_classes or 80
            width, height = options.input_size or (640, 640)
            layout = options.extra.get("layout", self.default_layout)
            if layout not in self.layouts():
                raise UsageError(f"-O layout={layout}: expected one of {', '.join(self.layouts())}")
            names = COCO80 if num_classes == len(COCO80) else None  # canonical heads are COCO-trained
            return DenseHeadParams(num_classes, width, height, names, layout, options.extra.get("output", "output0"),
                                   anchor_points(width, height, anchors=3 if self.objectness else 1), self.objectness)
        if "layout" in options.extra:
            raise UsageError("-O layout: the layout is read from the model; drop the option when using --onnx")
        heads = [t for t in model.outputs if t.rank == 3]
        if len(heads) != 1:
            raise UsageError(f"{model.path}: expected one output of rank 3 for {self.name}, found "
                             + ", ".join(f"{t.name} {t.shape_text()}" for t in model.outputs))
        head = heads[0]
        axis = concat_axis(model, head.name)
        found = self.find_layout(head.dim(1), head.dim(2), model.class_names, concat_axis=axis)
        if options.num_classes and found and found[1] != options.num_classes and head.dim(1) and head.dim(2):
            raise UsageError(f"--classes {options.num_classes}: the model's {head.name} {head.shape_text()} "
                             f"has {found[1]} classes")
        if options.num_classes or found is None:
            found = self.find_layout(head.dim(1), head.dim(2), None, options.num_classes, axis)
        if found is None:
            raise UsageError(f"{model.path}: output {head.name} {head.shape_text()} is not a [B, {self.width_text}, N] "
                             f"or [B, N, {self.width_text}] head (when its dims are symbolic, --classes tells C)")
        layout, num_classes, _ = found
        size = model.input_size or options.input_size or (640, 640)
        names = model.class_names
        count = head.dim(2) if layout == "channels" else head.dim(1)
        return DenseHeadParams(num_classes, size[0], size[1], tuple(names) if names and len(names) == num_classes else None,
                               layout, options.extra.get("output", head.name), count, self.objectness)

    def describe(self, params: DenseHeadParams) -> str:
        count = params.num_candidates or "N"
        shape = f"[{params.channels}, {count}]" if params.layout == "channels" else f"[{count}, {params.channels}]"
        kind = "channel" if params.layout == "channels" else "row"
        return (f"{params.output_name} {shape} {kind}-major{', objectness' if params.objectness else ''}, "
                f"{params.num_classes} classes, {params.input_width}x{params.input_height} input")

    # -- generation -------------------------------------------------------------------------
    def template_context(self, params: DenseHeadParams) -> dict[str, Any]:
        return {"num_classes": params.num_classes, "layout": params.layout, "output_name": params.output_name,
                "objectness": params.objectness}

    # -- verification (NumPy and Hypothesis: _yolo_dense_head_reference, imported when used) --
    def reference(self, case: ParserCase, params: DenseHeadParams) -> ParseOutcome:
        from . import _yolo_dense_head_reference as reference

        return reference.reference(case, params)

    def strategy(self, params: DenseHeadParams):
        from . import _yolo_dense_head_reference as reference

        return reference.cases(params)

    def bench_case(self, params: DenseHeadParams, density: float, rng) -> ParserCase:
        from . import _yolo_dense_head_reference as reference

        return reference.bench_case(params, density, rng)

    def explain(self, case: ParserCase, params: DenseHeadParams) -> list[dict[str, Any]]:
        from . import _yolo_dense_head_reference as reference

        return reference.explain(case, params)

    def append_decode(self, graph, opset: int, params: DenseHeadParams, *, topk: int | None, source):
        """`dsparsers patch`: the decode of this parser, in the graph (same float32 operations)."""
        patch = dsparsers.graph_patch
        head = patch.graph_output(graph, params.output_name, source)
        rows = patch.transpose_last(graph, head, "dsp_rows") if params.layout == "channels" else head
        score, class_id = patch.best_class(graph, opset, patch.slice_last(graph, rows, params.score_offset, None,
                                                                          "dsp_classes"))
        if params.objectness:
            score = graph.layer(op="Mul", inputs=[score, patch.slice_last(graph, rows, 4, 5, "dsp_objectness")],
                                outputs=["dsp_scaled_score"])[0]
        boxes = patch.corners(graph, patch.slice_last(graph, rows, 0, BOX_CHANNELS, "dsp_center_size"))
        return patch.compact_rows(graph, opset, boxes, score, class_id, batch=head.shape[0] if head.shape else None,
                                  topk=topk)


def concat_axis(model: ModelInfo, tensor: str) -> int | None:
    """The axis of the Concat that produces ``tensor`` (rank 3, normalised to 1 or 2), if it is one."""
    node = model.producers.get(tensor)
    if node is None or node.op_type != "Concat" or not isinstance(node.attributes.get("axis"), int):
        return None
    return node.attributes["axis"] % 3
