"""The nvinfer config a generated parser ships with: ordered sections of typed, commented entries,
rendered in GKeyFile syntax (what nvinfer parses), every key and value checked against ``nvinfer_keys``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dsparsers import __version__

from dsparsers.errors import UsageError
from dsparsers.generation.escaping import comment_text
from dsparsers.generation.nvinfer_keys import MAX_BATCH_SIZE, check_value, format_value, keys_of

if TYPE_CHECKING:
    from dsparsers.api.architecture import Architecture, HeadParams
    from dsparsers.generation.codegen import ParserNames
    from dsparsers.model.reader import ModelInfo


@dataclass
class Entry:
    key: str
    value: object
    comment: str = ""


@dataclass
class NvinferConfig:
    """An ordered nvinfer config: header comment lines, then sections of entries."""

    header: list[str] = field(default_factory=list)
    sections: dict[str, list[Entry]] = field(default_factory=dict)

    def set(self, section: str, key: str, value: object, comment: str = "") -> None:
        spec = keys_of(section).get(key)
        if spec is None:
            raise KeyError(f"[{section}] {key}: not an nvinfer key dsparsers knows")
        format_value(key, spec, value)  # type check now, not at render time
        check_value(key, spec, value)  # and nvinfer's own ranges: a value it would refuse is never written
        entries = self.sections.setdefault(section, [])
        entries[:] = [e for e in entries if e.key != key]
        entries.append(Entry(key, value, comment))

    def render(self) -> str:
        lines = [f"# {comment_text(line, 200)}".rstrip() for line in self.header]
        for section, entries in self.sections.items():
            if lines:
                lines.append("")
            lines.append(f"[{section}]")
            specs = keys_of(section)
            for entry in entries:
                for comment in entry.comment.splitlines() if entry.comment else ():
                    lines.append(f"# {comment_text(comment, 200)}".rstrip())
                lines.append(f"{entry.key}={format_value(entry.key, specs[entry.key], entry.value)}")
        return "\n".join(lines) + "\n"


#: nvdsinfer_func_utils.cpp networkMode2Str: the precision part of the engine file name nvinfer writes
NETWORK_MODE_NAMES = {0: "fp32", 1: "int8", 2: "fp16", 3: "best"}


def engine_file_name(onnx_file: str, batch_size: int, gpu_id: int = 0, network_mode: int = 0) -> str:
    """The engine file nvinfer serializes after building one from ``onnx_file``, named as its model builder
    (``TrtModelBuilder::buildModel``) names it: the model path + ``_b<batch-size>_gpu<gpu-id>_<precision>.engine``.
    nvinfer resolves onnx-file and model-engine-file against the config's directory alike, so the same
    relative path + suffix names the file it wrote."""
    return f"{onnx_file}_b{batch_size}_gpu{gpu_id}_{NETWORK_MODE_NAMES[network_mode]}.engine"


@dataclass(frozen=True)
class EngineInput:
    """What the config tells nvinfer's engine builder about the model's image input."""

    batch_size: int
    batch_comment: str
    infer_dims: tuple[int, int, int] | None = None  # C, H, W when the model leaves any of them symbolic
    dims_comment: str = ""


def engine_input(model: "ModelInfo | None", params: "HeadParams", channels: int, batch_size: int | None) -> EngineInput:
    """batch-size and infer-dims for ``model``'s image input (nvdsinfer_model_builder.cpp: an ONNX model is an
    explicit-batch network; ``createDynamicParams`` builds its optimisation profile for batch 1 to batch-size,
    optimised for batch-size, with C/H/W from infer-dims; without infer-dims every dim but the batch must be
    fixed, else "Explicit config dims is invalid")."""
    from dsparsers.api.architecture import image_input

    if batch_size is not None and not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise UsageError(f"--batch-size {batch_size}: nvinfer takes 1 to {MAX_BATCH_SIZE}")
    tensor = image_input(model) if model is not None else None
    if tensor is None:
        return EngineInput(batch_size or 1, "frames per inference: nvstreammux's batch-size, if the model's batch is "
                                            "dynamic (and model-engine-file's _b<N>)" if model is None else "")
    fixed_batch = tensor.dim(0)
    shape = tensor.shape_text()
    if fixed_batch is not None:
        if batch_size is not None and batch_size != fixed_batch:
            raise UsageError(f"--batch-size {batch_size}: {model.path.name}: input {tensor.name!r} {shape} has a fixed "
                             f"batch of {fixed_batch}; export it with a dynamic batch to infer on more frames")
        batch = EngineInput(fixed_batch, f"the model's input {tensor.name} {shape} has a fixed batch of {fixed_batch}")
    else:
        batch = EngineInput(batch_size or 1, "the model's batch is dynamic: nvinfer builds the engine for 1 to "
                                             "batch-size frames, optimised for batch-size; set it to nvstreammux's "
                                             "batch-size (and model-engine-file's _b<N>)")
    symbolic = [what for what, index in (("channels", 1), ("height", 2), ("width", 3)) if tensor.dim(index) is None]
    if not symbolic:
        return batch
    dims = (tensor.dim(1) or channels, params.input_height, params.input_width)
    return dataclasses.replace(batch, infer_dims=dims, dims_comment=(
        f"{tensor.name} {shape} has a symbolic {'/'.join(symbolic)}: nvinfer builds the engine for this C;H;W "
        f"(the {params.input_width}x{params.input_height} the parser was generated for)"))


def parser_config(arch: "Architecture", params: "HeadParams", names: "ParserNames", model: "ModelInfo | None",
                  onnx_file: str | None, requested_as: str, batch_size: int | None = None) -> NvinferConfig:
    """The nvinfer config of a parser generated for ``params`` (``names``: its function and library).

    ``batch_size`` None: the model's fixed batch, else 1. Raises UsageError for a batch size the model or
    nvinfer cannot take."""
    d = arch.defaults_for_params(params, requested_as)
    cfg = NvinferConfig(header=[
        f"nvinfer config generated by dsparsers {__version__} for {arch.name}",
        f"model: {model.path.name if model else 'none'}" + (f" (sha256 {model.sha256})" if model else ""),
        f"head: {arch.describe(params)}",
    ])
    p = "property"
    gpu_id, network_mode = 0, 0
    network = engine_input(model, params, 1 if d.model_color_format == 2 else 3, batch_size)
    cfg.set(p, "gpu-id", gpu_id)
    cfg.set(p, "net-scale-factor", d.net_scale_factor)
    if d.offsets is not None:
        cfg.set(p, "offsets", list(d.offsets))
    cfg.set(p, "model-color-format", d.model_color_format)
    builds = ("nvinfer builds a TensorRT engine from it (minutes) when model-engine-file does not load, and saves "
              "it beside the model (if that directory is writable)")
    if onnx_file is None:
        onnx_file = "model.onnx"
        builds = f"no model was given to dsparsers: point this at your export\n{builds}"
    cfg.set(p, "onnx-file", onnx_file, builds)
    cfg.set(p, "model-engine-file", engine_file_name(onnx_file, network.batch_size, gpu_id, network_mode),
            "the name nvinfer saves that engine under (<onnx-file>_b<batch-size>_gpu<gpu-id>_<fp32|int8|fp16|best>"
            ".engine), so later starts load it; the first start only warns that it is missing.\nRename it when you "
            "change batch-size, gpu-id or network-mode, or nvinfer builds the engine again at every start")
    if network.infer_dims is not None:
        cfg.set(p, "infer-dims", list(network.infer_dims), network.dims_comment)
    cfg.set(p, "labelfile-path", "labels.txt")
    cfg.set(p, "batch-size", network.batch_size, network.batch_comment)
    cfg.set(p, "network-mode", network_mode, "0 FP32, 1 INT8, 2 FP16, 3 BEST (the parser reads FLOAT and HALF outputs)")
    cfg.set(p, "num-detected-classes", params.num_classes)
    cfg.set(p, "interval", 0)
    cfg.set(p, "gie-unique-id", 1)
    cfg.set(p, "process-mode", 1)
    cfg.set(p, "network-type", d.network_type)
    cfg.set(p, "cluster-mode", d.cluster_mode, d.why_cluster_mode)
    cfg.set(p, "maintain-aspect-ratio", d.maintain_aspect_ratio, f"pre-processing: {d.why_preprocessing}")
    cfg.set(p, "symmetric-padding", d.symmetric_padding)
    if arch.parser_kind == "instance-mask":
        cfg.set(p, "output-instance-mask", True, "attach each object's mask to its metadata (nvdsosd draws it)")
        cfg.set(p, "segmentation-threshold", d.segmentation_threshold if d.segmentation_threshold is not None else 0.5,
                d.why_segmentation_threshold)
        cfg.set(p, "parse-bbox-instance-mask-func-name", names.function)
    else:
        cfg.set(p, "parse-bbox-func-name", names.function)
    cfg.set(p, "custom-lib-path", f"build/{names.library_file}", "built by `dsparsers build` (meson)")
    a = "class-attrs-all"
    cfg.set(a, "pre-cluster-threshold", d.pre_cluster_threshold)
    cfg.set(a, "nms-iou-threshold", d.nms_iou_threshold)
    cfg.set(a, "topk", d.topk)
    return cfg
