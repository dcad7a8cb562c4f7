"""The sanitizer tier: every family's generated parser, built with ASan + UBSan, through the conformance
harness on generated and hostile inputs. Zero sanitizer reports, no crash. And the tier has teeth: a
parser that reads one element too far is caught."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dsparsers.api.registry import Registry

#: every test here compiles or runs C++
pytestmark = pytest.mark.cpp

ARCHITECTURES = [p.architecture.name for p in Registry(load_entry_points=False).architectures()]
REPORTS = ("AddressSanitizer", "runtime error:", "LeakSanitizer", "Segmentation fault")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "dsparsers.cli", *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_family_parser_is_clean_under_sanitizers(tmp_path, arch):
    assert cli("generate", "--arch", arch, "-o", tmp_path / "p").returncode == 0
    built = cli("build", tmp_path / "p", "--sanitize")
    assert built.returncode == 0, built.stderr
    result = cli("conform", "--dir", tmp_path / "p", "--sanitize", "--examples", "40")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "hostile input(s)" in result.stdout
    assert not any(marker in result.stderr for marker in REPORTS), result.stderr[-4000:]


def test_an_out_of_bounds_read_is_caught(tmp_path):
    assert cli("generate", "--arch", "yolo11", "-o", tmp_path / "p").returncode == 0
    source = tmp_path / "p" / "nvdsparser_yolo11.cpp"
    text = source.read_text()
    bug = "const size_t count = dims.d[1 - kChannelAxis];"
    assert bug in text and "!dsparsers::layer_holds(kParser, *layer, count, kChannels)" in text
    source.write_text(text.replace(bug, "const size_t count = dims.d[1 - kChannelAxis] + 64;  // bug")
                      .replace("!dsparsers::layer_holds(kParser, *layer, count, kChannels)", "layer->buffer == nullptr"))  # no size check: the bug reads past the buffer
    assert cli("build", tmp_path / "p", "--sanitize").returncode == 0
    result = cli("conform", "--dir", tmp_path / "p", "--sanitize", "--examples", "40")
    assert result.returncode == 1  # the report is a finding of the worker that ran the case, not a crash of conform
    assert "heap-buffer-overflow" in result.stdout and "AddressSanitizer" in result.stdout
