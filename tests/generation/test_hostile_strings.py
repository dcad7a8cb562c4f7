"""Untrusted strings through every template: random and hostile layer names, class names and model
file names are rendered into every family's parser, config and labels; the C++ compiles and the
config and labels keep their structure."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsparsers.api.architecture import GenerateOptions
from dsparsers.generation.codegen import render_parser
from dsparsers.model.reader import ModelInfo
from dsparsers.generation.output_dir import write_directory
from dsparsers.api.registry import Registry

REGISTRY = Registry(load_entry_points=False)
ARCHITECTURES = [p.architecture.name for p in REGISTRY.architectures()]
HOSTILE = ['q"uote', "back\\slash\\", "new\nline", "*/ /* //", "??/ ??= ??'", "nul\x00byte", "tab\tcr\r",
           "caf\u00e9 \U0001F600", "\udcff\udcfe", "[property]\nparse-bbox-func-name=evil", "x" * 2000]
strings = st.one_of(st.sampled_from(HOSTILE), st.text(min_size=1, max_size=30),
                    st.binary(min_size=1, max_size=30).map(lambda b: b.decode("utf-8", "surrogateescape")))


def hostile_params(architecture, text: str):
    params = architecture.head_params(None, GenerateOptions(requested_as=architecture.name))
    changes = {f.name: f"{text}#{f.name}" for f in dataclasses.fields(params)
               if f.name.endswith("name") and isinstance(getattr(params, f.name), str)}
    changes["class_names"] = tuple(f"{text}{i}" for i in range(params.num_classes))
    return dataclasses.replace(params, **changes)


def fake_model(text: str) -> ModelInfo:
    return ModelInfo(path=Path(f"{text}.onnx".replace("/", "_").replace("\x00", "_")), sha256="0" * 64,
                     inputs=(), outputs=(), metadata={})


@pytest.mark.cpp
@pytest.mark.parametrize("arch", ARCHITECTURES)
@settings(max_examples=3, deadline=None)
@given(text=strings)
def test_every_template_survives_hostile_strings(tmp_path_factory, arch, text):
    architecture = REGISTRY.get(arch).architecture
    params = hostile_params(architecture, text)
    generated = render_parser(architecture, params, requested_as=arch, model=fake_model(text), onnx_file=f"{text}.onnx")
    config = generated.files[generated.config_name]
    key = "parse-bbox-instance-mask-func-name" if architecture.parser_kind == "instance-mask" else "parse-bbox-func-name"
    assert config.count("[property]") == 1 and config.count(f"\n{key}=") == 1
    assert "\x00" not in config and len(generated.files["labels.txt"].splitlines()) == params.num_classes
    out = tmp_path_factory.mktemp("hostile")
    write_directory(out / "p", generated.files)
    compiled = subprocess.run(["c++", "-std=c++17", "-fsyntax-only", "-Werror=trigraphs", "-trigraphs",
                               f"-I{out / 'p' / 'include'}", str(out / "p" / generated.source_name)],
                              capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr[-3000:]
