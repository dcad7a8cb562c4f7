"""Hostile parser inputs: what a long-lived pipeline can hand a parser when an engine, a model or a
config does not match it. Every family's parser must agree with its reference on these (which means
refusing most of them) and must never crash or read out of bounds (the sanitizer tier checks that)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from dsparsers.api.abi_types import DataType, DetectionParams, Layer, ParserCase


def _valid_case(arch, params) -> ParserCase:
    from hypothesis import HealthCheck, find, settings

    return find(arch.strategy(params), lambda case: len(case.layers) > 0,
                settings=settings(max_examples=5, database=None, suppress_health_check=list(HealthCheck)))


def _with_layer(case: ParserCase, index: int, layer: Layer) -> ParserCase:
    layers = list(case.layers)
    layers[index] = layer
    return replace(case, layers=tuple(layers))


def _padded(layer: Layer, dims: tuple[int, ...], data_type: DataType | None = None) -> Layer:
    """``layer`` claiming ``dims`` with a buffer large enough for them (zeros beyond its own data)."""
    needed = int(np.prod(dims, dtype=np.int64)) if dims else 1
    flat = np.ascontiguousarray(layer.data).reshape(-1)
    buffer = np.zeros(max(needed, flat.size) + 16, flat.dtype)
    buffer[: flat.size] = flat
    return Layer(layer.name, buffer, dims=dims, data_type=data_type)


def hostile_cases(arch, params) -> list[tuple[str, ParserCase]]:
    """(label, case) pairs derived from one valid case of ``arch``'s strategy."""
    base = _valid_case(arch, params)
    cases: list[tuple[str, ParserCase]] = []
    for index, layer in enumerate(base.layers):
        dims = layer.reported_dims
        variants = {
            "numDims 0": (),
            "numDims 8": tuple(dims) + (1,) * (8 - len(dims)) if len(dims) < 8 else tuple(dims[:8]),
            "a zero dimension": tuple(0 if k == 0 else d for k, d in enumerate(dims)) if dims else (0,),
            "first dimension too small": tuple(max(1, d // 2) if k == 0 else d for k, d in enumerate(dims)),
            "first dimension too large": tuple(d * 2 + 1 if k == 0 else d for k, d in enumerate(dims)),
            "last dimension + 1": tuple(d + 1 if k == len(dims) - 1 else d for k, d in enumerate(dims)),
        }
        for label, new_dims in variants.items():
            cases.append((f"layer {layer.name!r}: {label} {list(new_dims)}", _with_layer(base, index, _padded(layer, new_dims))))
        for data_type in (DataType.INT8, DataType.INT64, DataType.UINT8):
            if data_type != layer.reported_type:
                cases.append((f"layer {layer.name!r}: data type {data_type.name}",
                              _with_layer(base, index, _padded(layer, tuple(dims), data_type))))
    for label, value in (("NaN everywhere", np.nan), ("+inf everywhere", np.inf), ("-inf everywhere", -np.inf),
                         ("huge values", 3e38), ("huge negative values", -3e38)):
        with np.errstate(over="ignore"):  # 3e38 is inf in float16, as an FP16 engine would give it
            layers = tuple(Layer(l.name, np.full_like(l.data, value) if l.data.dtype.kind == "f" else l.data, l.dims,
                                 l.data_type) for l in base.layers)
        cases.append((label, replace(base, layers=layers)))
    cases.append(("empty threshold vectors", replace(base, params=DetectionParams(base.params.num_classes_configured, ()))))
    cases.append(("numClassesConfigured 0", replace(base, params=DetectionParams(0, base.params.precluster,
                                                                                 base.params.postcluster))))
    cases.append(("no layers", replace(base, layers=())))
    return cases
