"""The C++ runtime of dsparsers: the ABI-compatible nvinfer header (include/) and the nvinfer-style
loader (loader/) that the conformance harness builds with meson and drives through cffi.

Installed as the package data ``dsparsers.cpp_runtime``.
"""
