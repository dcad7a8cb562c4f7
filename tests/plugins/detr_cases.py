"""Helpers shared by the DETR-style families' tests (test_detr, test_rtdetr_ultralytics,
test_rtdetr_postprocessed): parser cases, small ONNX graphs and the generated config's lines."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from dsparsers.api.abi_types import DetectionParams, Layer, NetworkInfo, ParserCase
from dsparsers.api.architecture import GenerateOptions
from dsparsers.model.reader import load_model

NAN, INF = float("nan"), float("inf")
F = TensorProto.FLOAT


def case(layers, classes, threshold=0.25, network=(640, 640), configured=None):
    configured = classes if configured is None else configured
    return ParserCase(tuple(Layer(n, np.ascontiguousarray(d)) for n, d in layers), NetworkInfo(*network),
                      DetectionParams.uniform(configured, threshold))



def graph(path, outputs, *, inputs=(("images", [1, 3, 640, 640], TensorProto.FLOAT),), metadata=None,
          grid_sample=False, producers=None):
    """Outputs (name, shape, elem type) fed from the first input; optionally a GridSample node (deformable
    attention) in the graph and a given op producing some outputs."""
    producers = producers or {}
    source = inputs[0][0]
    nodes = []
    if grid_sample:
        nodes.append(helper.make_node("GridSample", [source, "grid"], ["sampled"]))
        source = "sampled"
    for name, _shape, _elem in outputs:
        nodes.append(helper.make_node(producers.get(name, "Identity"), [source], [name]))
    g = helper.make_graph(nodes, "detr", [helper.make_tensor_value_info(n, e, s) for n, s, e in inputs],
                          [helper.make_tensor_value_info(n, e, s) for n, s, e in outputs])
    model = helper.make_model(g, producer_name="dsparsers-tests", opset_imports=[helper.make_opsetid("", 17)])
    for key, value in (metadata or {}).items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(path))
    return load_model(path)



def config_lines(registry, arch: str) -> set[str]:
    """The lines of the nvinfer config generated for ``--arch arch`` without a model."""
    from dsparsers.generation.codegen import render_parser

    architecture = registry.get(arch).architecture
    params = architecture.head_params(None, GenerateOptions(requested_as=arch))
    generated = render_parser(architecture, params, requested_as=arch)
    return set(generated.files[generated.config_name].splitlines())

