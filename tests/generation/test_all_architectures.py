"""Every registered architecture, canonical head: its parser builds, conforms, refuses hostile dims,
and its generated nvinfer config matches the golden one (tests/golden/configs/<arch>.txt)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dsparsers.api.architecture import GenerateOptions
from dsparsers.generation.codegen import render_parser
from dsparsers.verification.conformance import run_conformance
from dsparsers.api.abi_types import DataType, DetectionParams, Layer, NetworkInfo, ParserCase
from dsparsers.api.registry import Registry
from conftest import GOLDEN

GOLDEN_CONFIGS = GOLDEN / "configs"
ARCHITECTURES = [p.architecture.name for p in Registry(load_entry_points=False).architectures()]

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_canonical_parser_conforms(open_parser, arch):
    architecture, params, library = open_parser(arch)
    report = run_conformance(library, architecture, params, examples=60, derandomize=True)
    assert report.passed, f"{arch}: {report.mismatch.summary}"


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_canonical_parser_refuses_layers_it_cannot_read(open_parser, arch):
    """Every layer given wrong dims (numDims 0 and 8, a zero dim) or an unsupported type: false, no crash."""
    architecture, params, library = open_parser(arch)
    names = layer_names(architecture, params)
    buffer = np.zeros(4096, np.float32)
    network = NetworkInfo(params.input_width, params.input_height)
    det = DetectionParams.uniform(params.num_classes, 0.25)
    for dims, dtype in (((), None), ((8, 8, 8, 8, 8, 8, 8, 8), None), ((0, 6), None), ((5, 0), None),
                        ((4, 4), DataType.INT8), ((7, 3, 3), DataType.UINT8)):
        layers = tuple(Layer(name, buffer, dims=dims, data_type=dtype) for name in names)
        case = ParserCase(layers, network, det)
        assert not library.parse(case).accepted, (arch, dims, dtype)
        assert not architecture.reference(case, params).accepted, (arch, dims, dtype)


def layer_names(architecture, params) -> list[str]:
    """The layer names a canonical case of ``architecture`` uses (drawn once from its strategy)."""
    from hypothesis import HealthCheck, find, settings

    case = find(architecture.strategy(params), lambda c: True,
                settings=settings(max_examples=1, database=None, suppress_health_check=list(HealthCheck)))
    return [layer.name for layer in case.layers]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_config_matches_golden(registry, arch):
    architecture = registry.get(arch).architecture
    params = architecture.head_params(None, GenerateOptions(requested_as=arch))
    generated = render_parser(architecture, params, requested_as=arch)
    config = generated.files[generated.config_name]
    path = GOLDEN_CONFIGS / f"{arch}.txt"
    if os.environ.get("DSPARSERS_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config)
    assert path.read_text() == config, f"{path} differs (DSPARSERS_UPDATE_GOLDEN=1 to accept after review)"
