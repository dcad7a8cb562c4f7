"""Small ONNX graphs for tests, built with onnx.helper: the output heads real exporters produce."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper


def _value(name: str, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, list(shape))


def head_model(path: Path, outputs: list[tuple[str, list]], *, inputs=(("images", [1, 3, 640, 640]),),
               metadata: dict[str, str] | None = None, producer_ops: dict[str, list[str]] | None = None,
               concat_axis: int = 1) -> Path:
    """A model whose outputs have the given names and shapes.

    Each output is produced from the first input through a chain of ops; ``producer_ops[name]`` lists
    the op types feeding it (producer first), e.g. ["Concat", "Sigmoid"] builds
    Concat(Identity(x), Sigmoid(x)) like ultralytics' detection head. Shapes are declared, not inferred.
    """
    producer_ops = producer_ops or {}
    graph_inputs = [_value(name, shape) for name, shape in inputs]
    nodes = []
    source = inputs[0][0]
    for index, (name, _shape) in enumerate(outputs):
        ops = producer_ops.get(name, ["Identity"])
        if ops[0] == "Concat":
            branch = f"{name}_scores"
            nodes.append(helper.make_node(ops[1] if len(ops) > 1 else "Identity", [source], [branch]))
            nodes.append(helper.make_node("Identity", [source], [f"{name}_boxes"]))
            nodes.append(helper.make_node("Concat", [f"{name}_boxes", branch], [name], axis=concat_axis))
        else:
            current = source
            for depth, op in enumerate(reversed(ops)):
                out = name if depth == len(ops) - 1 else f"{name}_{depth}"
                nodes.append(helper.make_node(op, [current], [out]))
                current = out
    graph = helper.make_graph(nodes, "head", graph_inputs, [_value(n, s) for n, s in outputs])
    model = helper.make_model(graph, producer_name="dsparsers-tests", opset_imports=[helper.make_opsetid("", 17)])
    for key, value in (metadata or {}).items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(path))
    return path


def ultralytics_names(count: int) -> str:
    return "{" + ", ".join(f"{i}: 'class{i}'" for i in range(count)) + "}"


def ultralytics_detect(path: Path, classes: int = 80, size: int = 640, *, transposed: bool = False,
                       task: str = "detect", names: bool = True) -> Path:
    n = sum((size // s) ** 2 for s in (8, 16, 32))
    shape = [1, n, 4 + classes] if transposed else [1, 4 + classes, n]
    metadata = {"task": task, "imgsz": f"[{size}, {size}]", "stride": "32"}
    if names:
        metadata["names"] = ultralytics_names(classes)
    return head_model(path, [("output0", shape)], inputs=(("images", [1, 3, size, size]),), metadata=metadata,
                      producer_ops={"output0": ["Concat", "Sigmoid"]}, concat_axis=2 if transposed else 1)
