#!/usr/bin/env bash
# Install what the optional real-export tier (tests/test_ultralytics_tier.py, pytest -m realexport) needs:
# CPU torch 2.13.0 and ultralytics without its dependency list, plus the light packages ultralytics imports.
#
# Idempotent: when everything is already installed at the right versions it only checks and exits.
# Never installs torchvision (PyPI's is a CUDA build whose operators fail beside the CPU torch;
# export_tools.py stubs it) and never lets anything pull another torch or nvidia-* packages:
# ultralytics and ultralytics-thop (which both declare torch) go in with --no-deps.
#
#   PYTHON=python3 ULTRALYTICS_VERSION=8.4.190 tests/realexport/install_deps.sh
set -euo pipefail

PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
ULTRALYTICS_VERSION="${ULTRALYTICS_VERSION:-8.4.190}"
# ultralytics' light runtime dependencies (opencv headless instead of opencv-python), onnx/onnxruntime, and
# transformers for the DETR / RT-DETR real-model tier (tests/test_detr_real.py; it depends on no torch)
LIGHT_DEPS=(numpy matplotlib opencv-python-headless pillow pyyaml requests scipy psutil polars onnx onnxruntime transformers)

check() {
  "$PYTHON" - "$TORCH_VERSION" "$ULTRALYTICS_VERSION" "${LIGHT_DEPS[@]}" <<'PY'
import importlib.metadata as md, sys
torch_version, ultra_version, *light = sys.argv[1:]
def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None
problems = []
t = version("torch")
if t is None or t.split("+")[0] != torch_version:
    problems.append(f"torch {t} (want {torch_version})")
if version("ultralytics") != ultra_version:
    problems.append(f"ultralytics {version('ultralytics')} (want {ultra_version})")
if version("ultralytics-thop") is None:
    problems.append("ultralytics-thop missing")
problems += [f"{name} missing" for name in light if version(name) is None]
if problems:
    print("; ".join(problems))
    sys.exit(1)
PY
}

guard() {
  # refuse a CUDA torch or nvidia packages, whoever installed them
  "$PYTHON" - "$TORCH_VERSION" <<'PY'
import importlib.metadata as md, sys
t = md.version("torch")
nvidia = sorted(d.metadata["Name"] for d in md.distributions() if (d.metadata["Name"] or "").lower().startswith("nvidia-"))
if t.split("+")[0] != sys.argv[1] or nvidia:
    sys.exit(f"install_deps.sh: unexpected torch {t} / nvidia packages {nvidia}: the tier needs the CPU torch only")
PY
}

if why=$(check); then
  echo "realexport deps already installed (torch $TORCH_VERSION, ultralytics $ULTRALYTICS_VERSION)"
  guard
  exit 0
fi
echo "installing realexport deps: $why"

PIP=("$PYTHON" -m pip install --disable-pip-version-check)
# torch first, alone: the CPU wheel (found by pip on this machine's wheel source); torch's own deps are
# small (filelock, sympy, networkx, jinja2, fsspec, typing-extensions) and the CPU wheel needs no nvidia-*
"${PIP[@]}" "torch==${TORCH_VERSION}"
"${PIP[@]}" "${LIGHT_DEPS[@]}"
"${PIP[@]}" --no-deps "ultralytics==${ULTRALYTICS_VERSION}" ultralytics-thop
guard
check >/dev/null || { echo "install_deps.sh: still missing: $(check)" >&2; exit 1; }
echo "realexport deps installed"
