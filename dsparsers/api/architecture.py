"""The contract every architecture plugin fulfils.

An architecture knows one family of output heads end to end: how to recognise it in an ONNX model
(``match``), what the parser needs to know about it (``head_params``), how to render the parser
(``template`` + ``template_context``), what the parser must output (``reference``, in NumPy), how to
produce valid output tensors for it (``strategy``, Hypothesis), and the nvinfer settings it needs
(``config_defaults``).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from dsparsers.model.reader import ModelInfo, TensorInfo
    from dsparsers.api.abi_types import ParseOutcome, ParserCase


#: the three detection scales of YOLO-style heads
YOLO_STRIDES = (8, 16, 32)


def anchor_points(width: int, height: int, strides=YOLO_STRIDES, anchors: int = 1) -> int:
    """Candidates of a multi-scale head: anchors x sum over strides of (W/s) * (H/s) (8400 at 640x640)."""
    return anchors * sum((width // s) * (height // s) for s in strides)


def image_input(model: "ModelInfo") -> "TensorInfo | None":
    """The image input nvinfer feeds and sizes with ``infer-dims``: the first rank-4 input, else None."""
    return next((tensor for tensor in model.inputs if tensor.rank == 4), None)


def model_stride(model: "ModelInfo") -> int | None:
    """The largest stride the export declares (ultralytics' ``stride`` metadata), else None."""
    import ast

    text = model.metadata.get("stride") or ""
    try:
        value = ast.literal_eval(text) if 0 < len(text) <= 200 else None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = None
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        value = max(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def settle_input(model: "ModelInfo", requested: tuple[int, int] | None, *, stride: int | None = None,
                 option: str = "--input") -> "ModelInfo":
    """The model as nvinfer builds its engine, checked against ``requested`` (``--input`` WxH).

    A fixed image input must agree with ``requested``. One with a symbolic channel count, height or width
    gets ``requested``, else its ``imgsz`` metadata, else a UsageError naming ``option``; the size must be a
    multiple of ``stride`` (the model's ``stride`` metadata wins). The returned copy has that input's
    C/H/W fixed (C: 3 when symbolic), so an architecture's ``head_params`` sees the size the engine will have;
    the model itself (given to the config writer) keeps its symbolic dims, which ask for ``infer-dims``.
    """
    import dataclasses

    from dsparsers.errors import UsageError

    tensor = image_input(model)
    if tensor is None:
        return model
    shape = tensor.shape
    fixed_h, fixed_w = tensor.dim(2), tensor.dim(3)
    where = f"{model.path.name}: input {tensor.name!r} {tensor.shape_text()}"
    if fixed_h and fixed_w and tensor.dim(1):
        if requested is not None and tuple(requested) != (fixed_w, fixed_h):
            raise UsageError(f"{option} {requested[0]}x{requested[1]}: {where} is fixed at {fixed_w}x{fixed_h}; "
                             f"drop {option} or export the model at that size")
        return model
    size = requested
    if size is None:
        imgsz = model.input_size
        if imgsz is not None:
            size = imgsz
    if size is None:
        raise UsageError(f"{where} has a symbolic height/width and no imgsz metadata: give the size nvinfer should "
                         f"build the engine for with {option} WxH")
    width, height = size
    for what, got, fixed in (("width", width, fixed_w), ("height", height, fixed_h)):
        if fixed and got != fixed:
            raise UsageError(f"{option} {width}x{height}: {where} has a fixed {what} of {fixed}")
    step = model_stride(model) or stride
    if step and (width % step or height % step):
        source = "its stride metadata" if model_stride(model) else "the head's strides"
        raise UsageError(f"{option} {width}x{height}: {where} takes multiples of {step} ({source}); "
                         f"e.g. {max(step, width // step * step)}x{max(step, height // step * step)}")
    channels = tensor.dim(1) or 3
    settled = dataclasses.replace(tensor, shape=(shape[0], channels, height, width))
    return dataclasses.replace(model, inputs=tuple(settled if t is tensor else t for t in model.inputs))


@dataclass(frozen=True)
class Match:
    """An architecture's verdict on a model: how sure (0..1) and why, in words a user can check."""

    score: float
    reason: str
    architecture: str = ""  # filled in by the registry when ranking


@dataclass(frozen=True)
class ConfigDefaults:
    """The nvinfer settings an architecture needs; each ``why_*`` goes into the config as a comment."""

    cluster_mode: int = 2
    why_cluster_mode: str = "NMS: the parser emits every candidate above threshold"
    network_type: int = 0
    net_scale_factor: float = 1.0 / 255.0
    offsets: tuple[float, float, float] | None = None
    model_color_format: int = 0  # 0 RGB, 1 BGR, 2 GRAY
    maintain_aspect_ratio: bool = True
    symmetric_padding: bool = True
    why_preprocessing: str = "as the family's own inference code prepares images"
    pre_cluster_threshold: float = 0.25
    nms_iou_threshold: float = 0.45
    topk: int = 300
    #: instance-mask heads: the mask probability nvdsosd draws above (segmentation-threshold)
    segmentation_threshold: float | None = None
    why_segmentation_threshold: str = ""


@dataclass(frozen=True)
class GenerateOptions:
    """What the user told ``generate`` about the head, beyond the model itself."""

    num_classes: int | None = None
    input_size: tuple[int, int] | None = None  # (width, height)
    extra: Mapping[str, str] = field(default_factory=dict)  # architecture-specific -O key=value
    #: the name the user asked for (an alias may select family defaults, e.g. yolov4 vs yolov3)
    requested_as: str | None = None

    def check_extra(self, arch: "Architecture") -> None:
        """UsageError for an -O key the architecture does not declare."""
        from dsparsers.errors import UsageError

        unknown = sorted(set(self.extra) - set(arch.options))
        if unknown:
            listed = ", ".join(arch.options) or "none"
            raise UsageError(f"-O {unknown[0]}: not an option of {arch.name} (options: {listed})")


@dataclass(frozen=True)
class HeadParams:
    """What a generated parser is specialised for. Architectures subclass it with their own fields."""

    num_classes: int
    input_width: int
    input_height: int
    class_names: tuple[str, ...] | None = None

    def labels(self) -> list[str]:
        names = list(self.class_names or ())
        return names[: self.num_classes] + [f"class_{i}" for i in range(len(names), self.num_classes)]


class RoleNames:
    """For the HeadParams of multi-output heads: a ``<role>_name`` field per output (the model's own
    name) and ``known_names``, the names exporters use for each role. A parser looks for the model's
    name first, then the known ones."""

    known_names: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def names(self, role: str) -> tuple[str, ...]:
        """The names the parser tries for ``role``, in order: the model's own first."""
        own = getattr(self, f"{role}_name")
        return (own,) + tuple(n for n in self.known_names.get(role, ()) if n != own)


class Architecture(ABC):
    """Base class of architecture plugins. Subclasses set the class attributes and the methods."""

    #: canonical name (lower case, digits, '-')
    name: ClassVar[str]
    #: other names ``--arch`` accepts
    aliases: ClassVar[tuple[str, ...]] = ()
    #: one line for ``dsparsers plugins``
    summary: ClassVar[str] = ""
    #: the head it recognises, e.g. "output0 [B, 4+C, N] or [B, N, 4+C]"
    head: ClassVar[str] = ""
    #: Jinja2 template of the parser source, looked up in the template directories
    template: ClassVar[str]
    #: architecture-specific generation options (-O key=value): key -> help text
    options: ClassVar[dict[str, str]] = {}
    config_defaults: ClassVar[ConfigDefaults] = ConfigDefaults()
    #: the HeadParams subclass this architecture uses (read back from a generated directory's manifest)
    params_type: ClassVar[type[HeadParams]] = HeadParams
    #: "detector" (parse-bbox-func-name, NvDsInferParseCustomFunc) or "instance-mask"
    #: (parse-bbox-instance-mask-func-name, NvDsInferInstanceMaskParseCustomFunc; network-type=3)
    parser_kind: ClassVar[str] = "detector"
    #: the input sizes the head takes are multiples of this (a YOLO head: 32, its largest stride); None:
    #: any. A model's own ``stride`` metadata takes precedence (``settle_input``).
    input_stride: ClassVar[int | None] = None

    def params_from_dict(self, values: Mapping[str, Any]) -> HeadParams:
        """Rebuild the parameters recorded in a generated directory's dsparsers.json."""
        import dataclasses

        known = {f.name for f in dataclasses.fields(self.params_type)}
        return self.params_type(**{k: v for k, v in values.items() if k in known})

    def defaults_for(self, requested_as: str | None) -> ConfigDefaults:
        """Config defaults for the family the user named (an alias may differ, e.g. YOLOX's BGR 0-255 input)."""
        return self.config_defaults

    def defaults_for_params(self, params: HeadParams, requested_as: str | None) -> ConfigDefaults:
        """Config defaults for a parser generated with ``params`` (a ``why`` may quote an option's value)."""
        return self.defaults_for(requested_as)

    @property
    def function_name(self) -> str:
        """The exported parse function (parse-bbox-func-name)."""
        return "NvDsInferParse" + "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", self.name) if part)

    @abstractmethod
    def match(self, model: "ModelInfo") -> Match | None:
        """Does ``model`` end in this head? None when it clearly does not."""

    @abstractmethod
    def head_params(self, model: "ModelInfo | None", options: GenerateOptions) -> HeadParams:
        """The head's parameters, from the model when given, else from options and canonical defaults.

        Raises UsageError naming the option or tensor at fault.
        """

    @abstractmethod
    def template_context(self, params: HeadParams) -> dict[str, Any]:
        """Values the template needs beyond the common ones (function name, banner, ABI)."""

    @abstractmethod
    def reference(self, case: "ParserCase", params: HeadParams) -> "ParseOutcome":
        """What a correct parser returns for ``case`` (NumPy, float32 arithmetic like the C++)."""

    @abstractmethod
    def strategy(self, params: HeadParams) -> "SearchStrategy[ParserCase]":
        """Hypothesis strategy of valid parser inputs for a parser generated with ``params``."""

    def bench_case(self, params: HeadParams, density: float, rng) -> "ParserCase":
        """A full-size input for ``dsparsers bench``: a fraction ``density`` of the candidates above a
        0.25 threshold, the rest below it. ``rng`` is a numpy Generator."""
        raise NotImplementedError(f"{self.name} has no benchmark input yet")

    def describe(self, params: HeadParams) -> str:
        """The head a parser was generated for, in one line (banner, summaries)."""
        return f"{params.num_classes} classes, {params.input_width}x{params.input_height} input"

    def explain(self, case: "ParserCase", params: HeadParams) -> list[dict[str, Any]]:
        """Rows that show the interesting part of ``case`` to a human (used in mismatch reports)."""
        return []
