"""The nvinfer-style harness: calls a parser library exactly as Gst-nvinfer does, from Python.

cpp_runtime/loader is built once (with meson, into the cache directory) into a small shared library
that dlopens the parser library, dlsyms the function by name, builds the std::vector of
NvDsInferLayerInfo and the NvDsInferParseDetectionParams in place, calls, and copies the objects out.
Python reaches it through cffi (ABI mode: no compiler needed at import time once it is built).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from dsparsers.library.meson_build import _run
from dsparsers.library.meson_build import meson_command
from dsparsers.errors import LibraryError
from dsparsers.api.abi_types import DETECTION_DTYPE, ParseOutcome, ParserCase
from dsparsers.paths import CPP_RUNTIME_DIR, cache_dir

LOADER_HEADER = CPP_RUNTIME_DIR / "loader" / "nvinfer_loader.h"


def loader_cdef() -> str:
    """The C API of the loader for cffi, read from the header itself (between its cffi markers)."""
    text = LOADER_HEADER.read_text(encoding="utf-8")
    body = text[text.index("// cffi-begin"):text.index("// cffi-end")]
    return body.replace("DSP_API ", "")

LOADER_PROJECT = """project('dsparsers-nvinfer-loader', 'cpp', meson_version : '>=1.1',
  default_options : ['cpp_std=c++17', 'buildtype=release', 'warning_level=2'])
subdir('cpp_runtime')
"""


_LOADER_SOURCES = ("meson.build", "loader/nvinfer_loader.cpp", "loader/nvinfer_loader.h",
                   "include/dsparsers/nvdsinfer_abi.h")
_lock = threading.Lock()
_ffi = None
_lib = None


def _loader_key() -> str:
    digest = hashlib.sha256()
    for name in _LOADER_SOURCES:
        digest.update(name.encode())
        digest.update((CPP_RUNTIME_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def loader_library() -> Path:
    """Path of the built loader, building it into the cache directory when missing."""
    target = cache_dir() / f"libdsparsers_nvinfer_loader-{_loader_key()}.so"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="loader-build-", dir=target.parent))
    try:
        source = work / "src"
        shutil.copytree(CPP_RUNTIME_DIR, source / "cpp_runtime", ignore=shutil.ignore_patterns("__pycache__", "*.py"))
        (source / "meson.build").write_text(LOADER_PROJECT, encoding="utf-8")
        log = work / "build.log"
        meson = meson_command()
        _run(meson + ["setup", str(work / "build"), str(source), "--buildtype=release"], log,
             "building the nvinfer-style loader (meson setup)")
        _run(meson + ["compile", "-C", str(work / "build")], log, "building the nvinfer-style loader")
        staged = work / target.name
        shutil.copy2(work / "build" / "cpp_runtime" / "libdsparsers_nvinfer_loader.so", staged)
        os.replace(staged, target)  # atomic: concurrent builders leave one complete file
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _bridge():
    global _ffi, _lib
    with _lock:
        if _lib is None:
            import cffi

            ffi = cffi.FFI()
            ffi.cdef(loader_cdef())
            _lib = ffi.dlopen(str(loader_library()))
            _ffi = ffi
    return _ffi, _lib


def read_library_info(library: Path) -> dict | None:
    """The build record beside a library built by dsparsers (lib*.so.json), if any."""
    from dsparsers.library.meson_build import read_build_record

    record = read_build_record(Path(library))
    return None if record is None else dict(record.raw or {})


#: the kinds of parse function the harness calls (the nvinfer config key naming each)
DETECTOR = "detector"  # parse-bbox-func-name: NvDsInferParseCustomFunc
INSTANCE_MASK = "instance-mask"  # parse-bbox-instance-mask-func-name: NvDsInferInstanceMaskParseCustomFunc
PARSER_KINDS = (DETECTOR, INSTANCE_MASK)


class ParserLibrary:
    """A parser library opened the way nvinfer opens it. One instance per thread.

    ``kind`` says which signature nvinfer casts the symbol to: a detector (parse-bbox-func-name) or an
    instance-mask parser (parse-bbox-instance-mask-func-name), whose masks are copied and then freed
    with ``delete[]`` as nvinfer frees them.
    """

    def __init__(self, path: str | os.PathLike, function: str, abi: int | None = None, kind: str = DETECTOR):
        if kind not in PARSER_KINDS:
            raise ValueError(f"kind must be one of {PARSER_KINDS}, got {kind!r}")
        self.kind = kind
        self.path = Path(path)
        self.function = function
        if not self.path.is_file():
            raise LibraryError(f"--lib {self.path}: no such file")
        info = read_library_info(self.path)
        recorded = int(info["abi"]) if info and "abi" in info else None
        if abi is None:
            abi = recorded or 9
        elif recorded is not None and recorded != abi:
            raise LibraryError(f"--abi {abi}: {self.path.name} was built for DeepStream ABI {recorded} "
                               f"(see {self.path.name}.json); calling it with the other layout corrupts memory")
        self.abi = abi
        ffi, lib = _bridge()
        self._ffi, self._lib = ffi, lib
        error = ffi.new("char[]", 1024)
        handle = lib.dsp_parser_open(os.fsencode(self.path.resolve()), function.encode(), abi, error, 1024)
        if handle == ffi.NULL:
            message = ffi.string(error).decode("utf-8", "replace")
            if "dlsym" in message:
                exported = exported_parse_functions(self.path)
                hint = f"; it exports {', '.join(exported)}" if exported else "; it exports no NvDsInfer* function"
                raise LibraryError(f"--func {function}: not found in {self.path}{hint}")
            raise LibraryError(f"--lib {self.path}: {message}")
        self._handle = handle

    def parse(self, case: ParserCase) -> ParseOutcome:
        ffi, lib = self._ffi, self._lib
        layers, keep = layer_structs(ffi, [case])
        pre = np.asarray(case.params.precluster, np.float32)
        post = np.asarray(case.params.postcluster, np.float32)
        count = ffi.new("size_t*")
        call = lib.dsp_parser_parse_masks if self.kind == INSTANCE_MASK else lib.dsp_parser_parse
        status = call(
            self._handle, layers, len(case.layers), case.network.width, case.network.height,
            case.network.channels, case.params.num_classes_configured,
            ffi.from_buffer("float[]", pre) if pre.size else ffi.NULL, pre.size,
            ffi.from_buffer("float[]", post) if post.size else ffi.NULL, post.size, count)
        if status in (lib.DSP_PARSER_THREW, lib.DSP_PARSER_BAD_CALL):
            message = ffi.string(lib.dsp_parser_error(self._handle)).decode("utf-8", "replace")
            raise LibraryError(f"{self.path.name}:{self.function}: {message}")
        if self.kind == INSTANCE_MASK:
            return self._mask_outcome(status == lib.DSP_PARSER_TRUE, count[0])
        objects = np.zeros(count[0], DETECTION_DTYPE)
        if count[0]:
            lib.dsp_parser_objects(self._handle, ffi.cast("dsp_object*", ffi.from_buffer(objects)), count[0])
        return ParseOutcome(status == lib.DSP_PARSER_TRUE, objects)

    def _mask_outcome(self, accepted: bool, count: int) -> ParseOutcome:
        """The objects and masks of the last instance-mask call, with the contract checked per object."""
        ffi, lib = self._ffi, self._lib
        infos = ffi.new("dsp_mask_object[]", max(1, count))
        lib.dsp_parser_mask_objects(self._handle, infos, count)
        objects = np.zeros(count, DETECTION_DTYPE)
        masks: list[np.ndarray] = []
        errors: list[str] = []
        for k in range(count):
            info = infos[k]
            objects[k] = (info.class_id, info.left, info.top, info.width, info.height, info.confidence, 0.0)
            floats = info.mask_size // 4
            data = np.zeros(floats, np.float32)
            if floats:
                lib.dsp_parser_mask_data(self._handle, k, ffi.cast("float*", ffi.from_buffer(data)), floats)
            expected = info.mask_width * info.mask_height
            if not info.has_mask:
                errors.append(f"object {k}: mask is NULL (nvdsosd reads mask_width x mask_height floats from it)")
                masks.append(np.zeros((0, 0), np.float32))
            elif info.mask_size != expected * 4:
                errors.append(f"object {k}: mask_size {info.mask_size} bytes, but mask_width x mask_height = "
                              f"{info.mask_width} x {info.mask_height} floats = {expected * 4} bytes")
                masks.append(np.zeros((0, 0), np.float32))
            else:
                masks.append(data.reshape(info.mask_height, info.mask_width))
        if not accepted and count:
            errors.insert(0, f"returned false with {count} object(s) in the list: nvinfer never frees the masks of a "
                             "refused frame (free_masks before returning false)")
        return ParseOutcome(accepted, objects, masks=tuple(masks), mask_errors=tuple(errors))

    def close(self) -> None:
        if getattr(self, "_handle", None) is not None:
            self._lib.dsp_parser_close(self._handle)
            self._handle = None

    def __enter__(self) -> "ParserLibrary":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


    def time(self, cases: list[ParserCase], *, warmup: int, iterations: int) -> np.ndarray:
        """Nanoseconds of each of ``iterations`` calls (after ``warmup``), call k on cases[k % len(cases)].

        The loop runs in C++ (no Python in the timed region). All cases share the network and params
        of the first one. Instance-mask parsers are timed with their masks freed (delete[]) per call.
        """
        ffi, lib = self._ffi, self._lib
        layers, keep = layer_structs(ffi, cases)
        first = cases[0]
        pre = np.asarray(first.params.precluster, np.float32)
        out = np.zeros(iterations, np.float64)
        timer = lib.dsp_parser_time_masks if self.kind == INSTANCE_MASK else lib.dsp_parser_time
        status = timer(
            self._handle, layers, len(first.layers), len(cases), first.network.width, first.network.height,
            first.network.channels, first.params.num_classes_configured,
            ffi.from_buffer("float[]", pre) if pre.size else ffi.NULL, pre.size, warmup, iterations,
            ffi.cast("double*", ffi.from_buffer(out)))
        if status in (lib.DSP_PARSER_THREW, lib.DSP_PARSER_BAD_CALL):
            raise LibraryError(f"{self.path.name}:{self.function}: "
                               + ffi.string(lib.dsp_parser_error(self._handle)).decode("utf-8", "replace"))
        if status != lib.DSP_PARSER_TRUE:
            raise LibraryError(f"{self.path.name}:{self.function} returned false on the benchmark input")
        return out


def layer_structs(ffi, cases: list[ParserCase]):
    """A dsp_layer[] holding the layers of every case back to back, and the objects it points into."""
    count = sum(len(case.layers) for case in cases)
    layers = ffi.new("dsp_layer[]", max(1, count))
    keep = []  # buffers that must outlive the call
    slot_index = 0
    for case in cases:
        for layer in case.layers:
            slot = layers[slot_index]
            slot_index += 1
            data = np.ascontiguousarray(layer.data)
            keep.append(data)
            dims = layer.reported_dims
            slot.data_type = int(layer.reported_type)
            slot.num_dims = len(dims)
            for k, d in enumerate(dims[:8]):
                slot.dims[k] = int(d)
            name = ffi.new("char[]", layer.name.encode("utf-8", "surrogateescape"))
            keep.append(name)
            slot.name = name
            slot.buffer = ffi.from_buffer(data) if data.nbytes else ffi.NULL
    return layers, keep


def read_floor(cases: list[ParserCase], *, warmup: int, iterations: int) -> np.ndarray:
    """Nanoseconds of one pass reading every byte of each case's layers (the speed-of-memory floor)."""
    ffi, lib = _bridge()
    layers, keep = layer_structs(ffi, cases)
    out = np.zeros(iterations, np.float64)
    lib.dsp_read_floor(layers, len(cases[0].layers), len(cases), warmup, iterations, ffi.cast("double*", ffi.from_buffer(out)))
    return out


def exported_parse_functions(library: Path) -> list[str]:
    """Names of the NvDsInfer* functions a library exports (read from its dynamic symbol table)."""
    from dsparsers.library.elf_symbols import dynamic_symbols

    try:
        return sorted(s for s in dynamic_symbols(library) if s.startswith("NvDsInfer"))
    except (OSError, ValueError):
        return []
