"""Where the installed package keeps its templates, support headers and C++ runtime."""

from __future__ import annotations

import os
from pathlib import Path

import dsparsers.codegen_templates as _templates
import dsparsers.cpp_runtime as _runtime

TEMPLATE_DIR = Path(_templates.__file__).resolve().parent
SUPPORT_DIR = TEMPLATE_DIR / "support"
CPP_RUNTIME_DIR = Path(_runtime.__file__).resolve().parent
RUNTIME_INCLUDE_DIR = CPP_RUNTIME_DIR / "include"


def cache_dir() -> Path:
    """Where built helper libraries (the nvinfer-style loader) are kept: $DSPARSERS_CACHE_DIR or ~/.cache."""
    configured = os.environ.get("DSPARSERS_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dsparsers"
