"""dsparsers: DeepStream Gst-nvinfer custom output parsers, generated from ONNX and proven right.

This module is the public plugin API: everything an architecture plugin needs is importable from
``dsparsers`` itself, and built-in plugins, the example plugin and the scaffold import nothing else::

    import dsparsers
    from dsparsers import Architecture, HeadParams, Match, hookimpl

Names are resolved on first use (PEP 562), so ``import dsparsers`` loads neither NumPy nor Hypothesis;
the verification pieces (``dsparsers.reference``, ``dsparsers.strategies``, the ABI data types) load
them when a plugin's reference decoder or strategy runs.

The package is split by pipeline stage (``docs/architecture.md``):
``model`` (ONNX reading, graph patching) -> ``api`` (architecture contract, registry, selection) ->
``generation`` (templates, config writer, atomic output) -> ``library`` (Meson build) ->
``verification`` (loader, conformance, fuzz, bench) and ``emulation`` (nvinfer's pre- and
post-processing, ``run``), with ``cli`` on top.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pluggy

__version__ = "0.1.0"

#: Decorator for plugin hook implementations (``@dsparsers.hookimpl``).
hookimpl = pluggy.HookimplMarker("dsparsers")

#: public name -> (module, attribute); attribute None re-exports the module itself
_PUBLIC: dict[str, tuple[str, str | None]] = {
    # the architecture contract
    "Architecture": ("dsparsers.api.architecture", "Architecture"),
    "HeadParams": ("dsparsers.api.architecture", "HeadParams"),
    "Match": ("dsparsers.api.architecture", "Match"),
    "ConfigDefaults": ("dsparsers.api.architecture", "ConfigDefaults"),
    "GenerateOptions": ("dsparsers.api.architecture", "GenerateOptions"),
    "RoleNames": ("dsparsers.api.architecture", "RoleNames"),
    "YOLO_STRIDES": ("dsparsers.api.architecture", "YOLO_STRIDES"),
    "anchor_points": ("dsparsers.api.architecture", "anchor_points"),
    # what a matcher reads
    "ModelInfo": ("dsparsers.model.reader", "ModelInfo"),
    "TensorInfo": ("dsparsers.model.reader", "TensorInfo"),
    "NodeInfo": ("dsparsers.model.reader", "NodeInfo"),
    "load_model": ("dsparsers.model.reader", "load_model"),
    # the ABI data model: a parser's inputs and outputs (NumPy)
    "DataType": ("dsparsers.api.abi_types", "DataType"),
    "Layer": ("dsparsers.api.abi_types", "Layer"),
    "NetworkInfo": ("dsparsers.api.abi_types", "NetworkInfo"),
    "DetectionParams": ("dsparsers.api.abi_types", "DetectionParams"),
    "ParserCase": ("dsparsers.api.abi_types", "ParserCase"),
    "ParseOutcome": ("dsparsers.api.abi_types", "ParseOutcome"),
    "DETECTION_DTYPE": ("dsparsers.api.abi_types", "DETECTION_DTYPE"),
    "detections": ("dsparsers.api.abi_types", "detections"),
    # errors
    "UsageError": ("dsparsers.errors", "UsageError"),
    "ModelError": ("dsparsers.errors", "ModelError"),
    # shared verification pieces (modules): NumPy reference helpers, Hypothesis strategies, bench inputs
    "reference": ("dsparsers.api.reference", None),
    "strategies": ("dsparsers.verification.strategies", None),
    "bench_inputs": ("dsparsers.verification.bench_inputs", None),
    "graph_patch": ("dsparsers.model.patch", None),
    "COCO80": ("dsparsers.emulation.datasets", "COCO80"),
    # for a plugin's own tests: the ready-made conformance test (pytest)
    "conformance_tests": ("dsparsers.verification.pytest_plugin", "conformance_tests"),
}

__all__ = ["__version__", "hookimpl", *_PUBLIC]  # noqa: PLE0604


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'dsparsers' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from dsparsers.api import reference
    from dsparsers.api.abi_types import (DETECTION_DTYPE, DataType, DetectionParams, Layer, NetworkInfo,
                                         ParseOutcome, ParserCase, detections)
    from dsparsers.api.architecture import (YOLO_STRIDES, Architecture, ConfigDefaults, GenerateOptions,
                                            HeadParams, Match, RoleNames, anchor_points)
    from dsparsers.emulation.datasets import COCO80
    from dsparsers.errors import ModelError, UsageError
    from dsparsers.model import patch as graph_patch
    from dsparsers.model.reader import ModelInfo, NodeInfo, TensorInfo, load_model
    from dsparsers.verification import bench_inputs, strategies
    from dsparsers.verification.pytest_plugin import conformance_tests
