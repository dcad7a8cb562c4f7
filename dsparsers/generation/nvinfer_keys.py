"""The Gst-nvinfer config keys: names, value types, nvinfer's defaults and ranges, and how a value is
written in GKeyFile syntax. PROPERTY_KEYS and CLASS_ATTRS_KEYS are the source of truth for every key
dsparsers writes (``config_writer``) or reads (``dsparsers.emulation.config_reader``): a key not in
them, or a value of the wrong type, cannot reach a user's pipeline.

The ranges are nvinfer's own (DeepStream 9.1 ``gstnvinfer_property_parser.cpp``, which stops on a value
outside them, and the buffers of ``NvDsInferContextInitParams`` in ``nvdsinfer_context.h``: paths are
copied into 4096-byte arrays, function names into 1024-byte ones, at most 4 offsets, batch-size up to
NVDSINFER_MAX_BATCH_SIZE = 1024). Integers are read with g_key_file_get_integer: 32-bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dsparsers.generation.escaping import keyfile_value


@dataclass(frozen=True)
class KeySpec:
    """One nvinfer config key: value type, nvinfer's default, what it does, and whether ``dsparsers run``
    emulates it (``run``; keys with ``run=False`` load fine and are reported as ignored when set)."""

    type: type  # int, float, str, bool (written 0/1), list (';'-separated items of ``item``)
    default: object
    doc: str
    item: type = float  # item type of a list key
    run: bool = False
    choices: tuple | None = None  # the values nvinfer accepts, when it is an enumeration
    minimum: float | None = None
    maximum: float | None = None
    #: lists: how many items nvinfer takes (min, max); each item at least ``item_minimum``
    length: tuple[int, int] | None = None
    item_minimum: int | None = None
    #: text: the longest nvinfer keeps whole (it copies into a fixed char array with g_strlcpy)
    max_length: int | None = None


def _k(type_: type, default: object, doc: str, **kw) -> KeySpec:
    return KeySpec(type_, default, doc, **kw)


#: _PATH_MAX and _MAX_STR_LENGTH of nvdsinfer_context.h, less the terminating NUL
PATH_MAX_LENGTH = 4095
NAME_MAX_LENGTH = 1023
#: NVDSINFER_MAX_BATCH_SIZE
MAX_BATCH_SIZE = 1024
INT32_RANGE = (-(2 ** 31), 2 ** 31 - 1)


#: The documented Gst-nvinfer ``[property]`` keys (DeepStream 6.2 to 9.1).
PROPERTY_KEYS: dict[str, KeySpec] = {
    "gpu-id": _k(int, 0, "GPU to run on", minimum=0),
    "net-scale-factor": _k(float, 1.0, "pixel scale: y = net-scale-factor * (x - offsets)", run=True),
    "offsets": _k(list, None, "per-channel mean subtracted before scaling (network channel order)", run=True,
                   length=(0, 4)),
    "model-color-format": _k(int, 0, "0 RGB, 1 BGR, 2 GRAY", run=True, choices=(0, 1, 2)),
    "onnx-file": _k(str, None, "ONNX model; nvinfer builds the TensorRT engine from it", run=True, max_length=PATH_MAX_LENGTH),
    "model-engine-file": _k(str, None, "serialized TensorRT engine", max_length=PATH_MAX_LENGTH),
    "int8-calib-file": _k(str, None, "INT8 calibration cache", max_length=PATH_MAX_LENGTH),
    "model-file": _k(str, None, "Caffe model", max_length=PATH_MAX_LENGTH),
    "proto-file": _k(str, None, "Caffe prototxt", max_length=PATH_MAX_LENGTH),
    "mean-file": _k(str, None, "PPM mean image subtracted before scaling (not emulated)", max_length=PATH_MAX_LENGTH),
    "uff-file": _k(str, None, "UFF model", max_length=PATH_MAX_LENGTH),
    "uff-input-blob-name": _k(str, None, "UFF input layer name", max_length=NAME_MAX_LENGTH),
    "uff-input-dims": _k(list, None, "UFF input dims C;H;W;order (deprecated)", item=int),
    "uff-input-order": _k(int, 0, "UFF input order: 0 NCHW, 1 NHWC, 2 NC", choices=(0, 1, 2)),
    "tlt-encoded-model": _k(str, None, "TAO encoded model", max_length=PATH_MAX_LENGTH),
    "tlt-model-key": _k(str, None, "TAO model key", max_length=NAME_MAX_LENGTH),
    "custom-network-config": _k(str, None, "custom network config for engine-create-func-name", max_length=PATH_MAX_LENGTH),
    "engine-create-func-name": _k(str, None, "custom engine creation function", max_length=NAME_MAX_LENGTH),
    "labelfile-path": _k(str, None, "class labels, one per line", run=True, max_length=PATH_MAX_LENGTH),
    "batch-size": _k(int, 1, "frames per inference", minimum=1, maximum=MAX_BATCH_SIZE, run=True),
    "network-mode": _k(int, 0, "0 FP32, 1 INT8, 2 FP16, 3 BEST", choices=(0, 1, 2, 3)),
    "num-detected-classes": _k(int, None, "classes the detector reports", minimum=0, run=True),
    "interval": _k(int, 0, "frames skipped between inferences", minimum=0),
    "gie-unique-id": _k(int, 1, "id of this inference element", minimum=1),
    "operate-on-gie-id": _k(int, -1, "secondary mode: infer on objects of this element"),
    "operate-on-class-ids": _k(list, None, "secondary mode: infer on objects of these classes", item=int),
    "process-mode": _k(int, 1, "1 primary (full frame), 2 secondary (objects)", choices=(1, 2), run=True),
    "network-type": _k(int, 0, "0 detector, 1 classifier, 2 segmentation, 3 instance segmentation, 100 other",
                       choices=(0, 1, 2, 3, 100), run=True),
    "cluster-mode": _k(int, 0, "0 groupRectangles, 1 DBSCAN, 2 NMS, 3 DBSCAN+NMS, 4 none",
                       choices=(0, 1, 2, 3, 4), run=True),
    "maintain-aspect-ratio": _k(bool, False, "letterbox instead of stretching", run=True),
    "symmetric-padding": _k(bool, False, "centre the letterbox padding", run=True),
    "parse-bbox-func-name": _k(str, None, "exported parse function", run=True, max_length=NAME_MAX_LENGTH),
    "parse-bbox-instance-mask-func-name": _k(str, None, "exported instance-mask parse function", max_length=NAME_MAX_LENGTH),
    "parse-classifier-func-name": _k(str, None, "exported classifier parse function", max_length=NAME_MAX_LENGTH),
    "custom-lib-path": _k(str, None, "parser library", run=True, max_length=PATH_MAX_LENGTH),
    "output-instance-mask": _k(bool, False, "attach instance masks to objects"),
    "segmentation-threshold": _k(float, 0.0, "mask probability threshold", minimum=0),
    "infer-dims": _k(list, None, "input dims C;H;W when the model does not fix them", item=int, run=True,
                      length=(3, 3), item_minimum=1),
    "input-dims": _k(list, None, "input dims C;H;W;order (deprecated)", item=int),
    "output-blob-names": _k(list, None, "output layer names", item=str),
    "output-io-formats": _k(list, None, "output layer:type:format", item=str),
    "layer-device-precision": _k(list, None, "layer:precision:device", item=str),
    "force-implicit-batch-dim": _k(bool, False, "build an implicit-batch engine"),
    "workspace-size": _k(int, None, "TensorRT workspace (MB)"),
    "network-input-order": _k(int, 0, "0 NCHW, 1 NHWC", choices=(0, 1), run=True),
    "scaling-filter": _k(int, 0, "NvBufSurfTransform interpolation: 0 nearest, 1 bilinear, 2-6 others",
                         choices=(0, 1, 2, 3, 4, 5, 6), run=True),
    "scaling-compute-hw": _k(int, 0, "0 default, 1 GPU, 2 VIC", choices=(0, 1, 2)),
    "output-tensor-meta": _k(bool, False, "attach raw output tensors as metadata"),
    "input-tensor-from-meta": _k(bool, False, "take pre-processed tensors from nvdspreprocess"),
    "disable-output-host-copy": _k(bool, False, "leave output tensors on the GPU"),
    "classifier-threshold": _k(float, None, "classifier: minimum probability", minimum=0),
    "classifier-async-mode": _k(bool, False, "classifier: infer asynchronously"),
    "classifier-type": _k(str, None, "classifier: type label"),
    "secondary-reinfer-interval": _k(int, 0, "secondary: frames between re-inferences of an object"),
    "input-object-min-width": _k(int, 0, "secondary: smallest object inferred", minimum=0),
    "input-object-min-height": _k(int, 0, "secondary: smallest object inferred", minimum=0),
    "input-object-max-width": _k(int, 0, "secondary: largest object inferred", minimum=0),
    "input-object-max-height": _k(int, 0, "secondary: largest object inferred", minimum=0),
    "enable-dbscan": _k(bool, False, "use DBSCAN (deprecated: selects cluster-mode 1 when cluster-mode is not set)",
                        run=True),
    "enable-dla": _k(bool, False, "run on a DLA core"),
    "use-dla-core": _k(int, 0, "DLA core"),
    "filter-out-class-ids": _k(list, None, "class ids dropped from the output", item=int, run=True),
    "crop-objects-to-roi-boundary": _k(bool, False, "clip objects to the ROI (for a primary: the frame)", run=True),
    # read by DeepStream 9.1's gstnvinfer_property_parser.cpp (gst_nvinfer_parse_props); run does not emulate them
    "is-classifier": _k(bool, False, "legacy: network-type 1 when set and network-type is not", run=True),
    "tensor-meta-pool-size": _k(int, None, "output tensor meta buffer pool size"),
    "auto-inc-mem": _k(int, 1, "grow GPU memory on demand"),
    "max-gpu-mem-per": _k(int, 99, "largest share of GPU memory used (percent)"),
    "dump-input-tensor": _k(int, 0, "write the input tensors to files"),
    "dump-output-tensor": _k(int, 0, "write the output tensors to files"),
    "overwrite-input-tensor": _k(int, 0, "replace the input tensor with ip-tensor-file"),
    "overwrite-output-tensor": _k(int, 0, "replace the output tensors with op-tensor-files"),
    "ip-tensor-file": _k(str, None, "input tensor file for overwrite-input-tensor"),
    "op-tensor-files": _k(list, None, "output tensor files for overwrite-output-tensor", item=str),
    "raw-output-file-write": _k(bool, False, "write raw output tensors"),
    "parse-segmentation-func-name": _k(str, None, "exported segmentation parse function"),
    "segmentation-output-order": _k(int, 0, "segmentation output order: 0 NCHW, 1 NHWC", choices=(0, 1)),
    "strongly-typed": _k(bool, False, "build a strongly typed TensorRT network"),
    "dynamic-properties": _k(str, None, "key1=value1;key2=value2 passed to the inference context"),
    "warmup-engine": _k(bool, False, "run the engine once before the first frame"),
    "stabilize-buffer-count": _k(int, None, "buffers before output is considered stable"),
}

#: The ``[class-attrs-all]`` / ``[class-attrs-N]`` keys.
CLASS_ATTRS_KEYS: dict[str, KeySpec] = {
    "pre-cluster-threshold": _k(float, 0.2, "drop objects below this confidence before clustering", run=True,
                                minimum=0),
    "threshold": _k(float, None, "old name of pre-cluster-threshold", run=True, minimum=0),
    "post-cluster-threshold": _k(float, 0.0, "NMS: keep objects strictly above this after clustering", run=True,
                                 minimum=0),
    "nms-iou-threshold": _k(float, 0.3, "NMS overlap threshold", run=True, minimum=0, maximum=1),
    "topk": _k(int, -1, "objects kept per class after clustering (unset: all; nvinfer refuses a negative value)",
               run=True, minimum=0),
    "eps": _k(float, None, "DBSCAN: neighbourhood radius", minimum=0),
    "minBoxes": _k(int, 0, "DBSCAN: minimum boxes of a cluster (0: DBSCAN does not run)", run=True, minimum=0),
    "dbscan-min-score": _k(float, None, "DBSCAN: minimum cluster score", minimum=0),
    "group-threshold": _k(int, None, "groupRectangles: minimum group size", minimum=0),
    "roi-top-offset": _k(int, 0, "objects whose top is above this frame row are dropped (cropped to it with\n"
                         "crop-objects-to-roi-boundary)", run=True, minimum=0),
    "roi-bottom-offset": _k(int, 0, "objects reaching below frame height minus this are dropped (cropped to it\n"
                            "with crop-objects-to-roi-boundary)", run=True, minimum=0),
    "detected-min-w": _k(int, 0, "minimum object width in frame pixels", run=True, minimum=0),
    "detected-min-h": _k(int, 0, "minimum object height in frame pixels", run=True, minimum=0),
    "detected-max-w": _k(int, 0, "maximum object width in frame pixels (0: none)", run=True, minimum=0),
    "detected-max-h": _k(int, 0, "maximum object height in frame pixels (0: none)", run=True, minimum=0),
    "border-color": _k(list, None, "box colour r;g;b;a (0 to 1)", length=(4, 4)),
    "bg-color": _k(list, None, "box background colour r;g;b;a (0 to 1)", length=(4, 4)),
}

CLASS_ATTRS_ALL = "class-attrs-all"
CLASS_ATTRS_PREFIX = "class-attrs-"


def class_section_id(section: str) -> int | None:
    """N for ``class-attrs-N``, else None."""
    rest = section[len(CLASS_ATTRS_PREFIX):] if section.startswith(CLASS_ATTRS_PREFIX) else ""
    return int(rest) if rest.isdigit() else None


def keys_of(section: str) -> dict[str, KeySpec]:
    if section == "property":
        return PROPERTY_KEYS
    if section == CLASS_ATTRS_ALL or class_section_id(section) is not None:
        return CLASS_ATTRS_KEYS
    raise KeyError(f"unknown nvinfer config section [{section}]")


def format_value(key: str, spec: KeySpec, value: object) -> str:
    if spec.type is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{key}: expected a boolean, got {value!r}")
        return "1" if value else "0"
    if spec.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{key}: expected an integer, got {value!r}")
        return str(value)
    if spec.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{key}: expected a number, got {value!r}")
        return repr(float(value))
    if spec.type is list:
        if spec.item is float:
            return ";".join(repr(float(v)) for v in value)
        if spec.item is int:
            return ";".join(str(int(v)) for v in value)
        return ";".join(keyfile_value(str(v)).replace(";", "\\;") for v in value)
    if not isinstance(value, str):
        raise TypeError(f"{key}: expected text, got {value!r}")
    return keyfile_value(value)


def check_value(key: str, spec: KeySpec, value: object) -> None:
    """ValueError unless ``value`` (already of ``spec``'s type) is one nvinfer's property parser takes
    whole: in its enumeration and range, a 32-bit integer, a finite number, a list of the length it reads,
    text no longer than the array nvinfer copies it into."""
    def number(v: object, what: str) -> None:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{key}: {what} {v!r} is not a finite number")
        if isinstance(v, int) and not isinstance(v, bool) and not INT32_RANGE[0] <= v <= INT32_RANGE[1]:
            raise ValueError(f"{key}: {what} {v!r} does not fit the 32-bit integer nvinfer reads")

    if spec.type is list:
        items = list(value)  # type: ignore[arg-type]
        if spec.length is not None and not spec.length[0] <= len(items) <= spec.length[1]:
            wanted = str(spec.length[0]) if spec.length[0] == spec.length[1] else f"{spec.length[0]} to {spec.length[1]}"
            raise ValueError(f"{key}: nvinfer takes {wanted} items, got {len(items)}")
        for item in items:
            if spec.item is not str:
                number(item, "item")
            if spec.item_minimum is not None and item < spec.item_minimum:
                raise ValueError(f"{key}: item {item!r} is below {spec.item_minimum}")
        return
    if spec.type is str:
        # the bytes nvinfer gets once GKeyFile has unescaped the value keyfile_value writes
        size = len(str(value).encode("utf-8", "replace").replace(b"\x00", b""))
        if spec.max_length is not None and size > spec.max_length:
            raise ValueError(f"{key}: {size} bytes; nvinfer keeps at most {spec.max_length}")
        return
    if spec.type is bool:
        return
    number(value, "value")
    if spec.choices is not None and value not in spec.choices:
        raise ValueError(f"{key}: {value!r} is not one of {', '.join(map(str, spec.choices))}")
    if spec.minimum is not None and value < spec.minimum:  # type: ignore[operator]
        raise ValueError(f"{key}: {value!r} is below nvinfer's minimum {spec.minimum:g}")
    if spec.maximum is not None and value > spec.maximum:  # type: ignore[operator]
        raise ValueError(f"{key}: {value!r} is above nvinfer's maximum {spec.maximum:g}")
