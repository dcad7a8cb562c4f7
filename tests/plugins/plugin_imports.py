"""What importing a plugin module loads: registry loading (``dsparsers plugins``, ``generate``) must not
import NumPy or Hypothesis, so a family's plugin module defers them to its ``*_reference`` module."""

from __future__ import annotations

import subprocess
import sys


def heavy_modules_loaded_by(module: str) -> list[str]:
    """Which of numpy and hypothesis importing ``module`` loads, in a fresh interpreter."""
    code = f"import sys, {module}; print(*[m for m in ('numpy', 'hypothesis') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.split()
