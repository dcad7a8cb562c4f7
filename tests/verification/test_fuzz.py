"""Fuzz smoke run (libFuzzer, clang): every family's parser for a few seconds, zero findings; and a
parser with an injected out-of-bounds read is caught. Skipped where clang++ is not installed."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from dsparsers.api.registry import Registry

ARCHITECTURES = [p.architecture.name for p in Registry(load_entry_points=False).architectures()]
pytestmark = [pytest.mark.cpp,
              pytest.mark.skipif(shutil.which("clang++") is None, reason="fuzzing needs clang++ (apt-get install clang)")]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "dsparsers.cli", *map(str, args)], capture_output=True, text=True,
                          env={**__import__("os").environ, "COLUMNS": "200"})


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_fuzz_smoke_run_finds_nothing(tmp_path, arch):
    result = cli("fuzz", "--arch", arch, "--seconds", "3", "-o", tmp_path)
    assert result.returncode == 0, result.stdout + (tmp_path / "fuzz.log").read_text()[-3000:]
    executions = int(result.stdout.split("executions")[1].split()[1])
    assert executions > 500
    assert not list(tmp_path.glob("crash-*"))


def test_fuzzing_catches_an_out_of_bounds_read(tmp_path):
    assert cli("generate", "--arch", "deepstream-yolo", "-o", tmp_path / "p").returncode == 0
    source = tmp_path / "p" / "nvdsparser_deepstream_yolo.cpp"
    text = source.read_text()
    bug = "const size_t count = dims.d[0];"
    assert bug in text and "!dsparsers::layer_holds(kParser, *layer, count, kRowWidth)" in text
    source.write_text(text.replace(bug, "const size_t count = dims.d[0] + 1;  // bug")
                      .replace("!dsparsers::layer_holds(kParser, *layer, count, kRowWidth)", "layer->buffer == nullptr"))  # no size check: the bug reads past the buffer
    result = cli("fuzz", "--dir", tmp_path / "p", "--seconds", "20", "-o", tmp_path / "work")
    assert result.returncode == 1
    assert list((tmp_path / "work").glob("crash-*"))
    assert "AddressSanitizer" in (tmp_path / "work" / "fuzz.log").read_text()


def test_seeded_fuzzing_reaches_the_mask_code(tmp_path):
    """The fuzzer starts from a valid case of the architecture's own strategy (seeded mode), so a bug deep
    in a mask parser (a write one past each mask) is found at once; random bytes alone rarely build the
    two well-formed outputs that reach it."""
    assert cli("generate", "--arch", "yolo-seg", "-o", tmp_path / "p").returncode == 0
    source = tmp_path / "p" / "nvdsparser_yolo_seg.cpp"
    text = source.read_text()
    marker = "    if (mask == nullptr) return false;\n"
    assert marker in text
    source.write_text(text.replace(marker, marker + "    mask[static_cast<size_t>(mask_w) * mask_h] = 0.0f;  // bug\n"))
    result = cli("fuzz", "--dir", tmp_path / "p", "--seconds", "20", "-o", tmp_path / "work")
    assert result.returncode == 1
    assert list((tmp_path / "work").glob("crash-*"))
    assert "heap-buffer-overflow" in (tmp_path / "work" / "fuzz.log").read_text()
