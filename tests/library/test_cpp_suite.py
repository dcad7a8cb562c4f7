"""The repository's C++ verification suite (meson.build at the top): ABI layouts checked by the compiler."""

from __future__ import annotations

import pytest

import subprocess
from pathlib import Path

from dsparsers.library.meson_build import build_environment, meson_command
from conftest import REPO

#: every test here compiles or runs C++
pytestmark = pytest.mark.cpp

REPO = REPO


def test_meson_verification_suite_passes(tmp_path):
    env = build_environment()
    setup = subprocess.run(meson_command() + ["setup", str(tmp_path / "b"), str(REPO)], capture_output=True, text=True, env=env)
    assert setup.returncode == 0, setup.stdout[-3000:]
    result = subprocess.run(meson_command() + ["test", "-C", str(tmp_path / "b")], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "abi-8-layouts" in result.stdout and "abi-9-layouts" in result.stdout
