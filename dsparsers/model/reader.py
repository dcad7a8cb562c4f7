"""Reading an exported ONNX model: its inputs, outputs, metadata and the ops that feed each output.

The graph is loaded without external weight data: inspection needs names, shapes, types and the
nodes, never the weights, so a multi-gigabyte model with external data inspects instantly.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from dsparsers.errors import ModelError

Dim = int | str | None  # a fixed size, a symbolic name, or unknown


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[Dim, ...]
    dtype: str  # NumPy-style name: float32, float16, int32, int64, ...

    @property
    def rank(self) -> int:
        return len(self.shape)

    def dim(self, index: int) -> int | None:
        """The fixed size of dimension ``index``, or None when symbolic/unknown."""
        value = self.shape[index]
        return value if isinstance(value, int) else None

    def shape_text(self) -> str:
        return "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"


@dataclass(frozen=True)
class NodeInfo:
    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    #: scalar and list attributes (ints, floats, strings); tensors and graphs are left out
    attributes: dict = field(default_factory=dict, repr=False)


def _attributes(node) -> dict:
    import onnx

    values = {}
    for attr in node.attribute:
        if attr.type in (onnx.AttributeProto.INT, onnx.AttributeProto.FLOAT, onnx.AttributeProto.STRING,
                         onnx.AttributeProto.INTS, onnx.AttributeProto.FLOATS):
            value = onnx.helper.get_attribute_value(attr)
            values[attr.name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return values


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    sha256: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    metadata: dict[str, str]
    opset: int | None = None
    producer: str = ""
    #: tensor name -> the node that produces it
    producers: dict[str, NodeInfo] = field(default_factory=dict, repr=False)

    # -- what the metadata says -------------------------------------------------------------
    @property
    def task(self) -> str | None:
        return self.metadata.get("task")

    @property
    def class_names(self) -> list[str] | None:
        return parse_class_names(self.metadata.get("names"))

    @property
    def input_size(self) -> tuple[int, int] | None:
        """(width, height) of the image input, from its shape or the ``imgsz`` metadata."""
        for tensor in self.inputs:
            if tensor.rank == 4 and tensor.dim(2) and tensor.dim(3):
                return (tensor.dim(3), tensor.dim(2))
        imgsz = _literal(self.metadata.get("imgsz"))
        if isinstance(imgsz, (list, tuple)) and len(imgsz) == 2 and all(isinstance(v, int) for v in imgsz):
            return (imgsz[1], imgsz[0])
        if isinstance(imgsz, int):
            return (imgsz, imgsz)
        return None

    def output(self, name: str) -> TensorInfo | None:
        return next((t for t in self.outputs if t.name == name), None)

    # -- what the graph says ----------------------------------------------------------------
    def output_node(self, op_types) -> NodeInfo | None:
        """The first node of one of ``op_types`` that produces a graph output (e.g. a TensorRT NMS plugin)."""
        for tensor in self.outputs:
            node = self.producers.get(tensor.name)
            if node is not None and node.op_type in op_types:
                return node
        return None

    def upstream_ops(self, tensor: str, depth: int = 2) -> list[str]:
        """Op types feeding ``tensor``, breadth-first up to ``depth`` levels (producer first)."""
        ops: list[str] = []
        frontier = [tensor]
        for _ in range(depth):
            next_frontier: list[str] = []
            for name in frontier:
                node = self.producers.get(name)
                if node is not None:
                    ops.append(node.op_type)
                    next_frontier.extend(node.inputs)
            frontier = next_frontier
        return ops


_MAX_METADATA_LITERAL = 1 << 20


def _literal(text: str | None):
    if not text or len(text) > _MAX_METADATA_LITERAL:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def parse_class_names(text: str | None) -> list[str] | None:
    """Class names from ultralytics' ``names`` metadata (a dict literal {0: 'person', ...}) or a list.

    Returns None when the text is missing or not a literal of that form (it is never evaluated).
    """
    value = _literal(text)
    if isinstance(value, dict) and value and all(isinstance(k, int) for k in value):
        if sorted(value) != list(range(len(value))):
            return None
        return [str(value[i]) for i in range(len(value))]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _shape(value_info) -> tuple[Dim, ...]:
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return ()
    dims: list[Dim] = []
    for d in tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return tuple(dims)


def _dtype(value_info) -> str:
    import onnx

    elem = value_info.type.tensor_type.elem_type
    try:
        return str(onnx.helper.tensor_dtype_to_np_dtype(elem))
    except Exception:
        return onnx.TensorProto.DataType.Name(elem).lower() if elem else "unknown"


def _tensor(value_info) -> TensorInfo:
    return TensorInfo(value_info.name, _shape(value_info), _dtype(value_info))


def load_model(path: str | Path) -> ModelInfo:
    """Read ``path`` as ONNX without its external weights; ModelError (exit 2) when it cannot be."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelError(f"{path}: is a directory, not an ONNX file") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not data:
        raise ModelError(f"{path}: empty file, not an ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not a readable ONNX model (truncated or another format): {exc}") from None
    graph = model.graph
    if not model.ir_version or not model.HasField("graph"):
        raise ModelError(f"{path}: not an ONNX model (no graph found)")
    initializer_names = {init.name for init in graph.initializer}
    inputs = tuple(_tensor(vi) for vi in graph.input if vi.name not in initializer_names)
    outputs = tuple(_tensor(vi) for vi in graph.output)
    if not outputs:
        raise ModelError(f"{path}: the graph has no outputs")
    producers: dict[str, NodeInfo] = {}
    for node in graph.node:
        info = NodeInfo(node.name, node.op_type, node.domain, tuple(node.input), _attributes(node))
        for out in node.output:
            producers[out] = info
    opset = next((imp.version for imp in model.opset_import if imp.domain in ("", "ai.onnx")), None)
    return ModelInfo(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        inputs=inputs,
        outputs=outputs,
        metadata={prop.key: prop.value for prop in model.metadata_props},
        opset=opset,
        producer=" ".join(p for p in (model.producer_name, model.producer_version) if p),
        producers=producers,
    )
