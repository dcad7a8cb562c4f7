"""The Gst-nvinfer configuration file: key names, value types, defaults, and a writer.

One table (KEYS) is the source of truth for every key dsparsers writes or reads; rendering refuses a
key it does not know or a value of the wrong type, so a typo cannot reach a user's pipeline.
Values are written in GKeyFile syntax (what nvinfer parses), escaped with ``keyfile_value``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .escaping import comment_text, keyfile_value


@dataclass(frozen=True)
class KeySpec:
    type: type  # int, float, str, bool (written 0/1), list (of floats, ';'-separated)
    default: object
    doc: str


PROPERTY_KEYS: dict[str, KeySpec] = {
    "gpu-id": KeySpec(int, 0, "GPU to run on"),
    "net-scale-factor": KeySpec(float, 1.0, "pixel scale: y = net-scale-factor * (x - offsets)"),
    "offsets": KeySpec(list, None, "per-channel mean subtracted before scaling"),
    "model-color-format": KeySpec(int, 0, "0 RGB, 1 BGR, 2 GRAY"),
    "onnx-file": KeySpec(str, None, "ONNX model; nvinfer builds the TensorRT engine from it"),
    "model-engine-file": KeySpec(str, None, "serialized TensorRT engine"),
    "labelfile-path": KeySpec(str, None, "class labels, one per line"),
    "batch-size": KeySpec(int, 1, "frames per inference"),
    "network-mode": KeySpec(int, 0, "0 FP32, 1 INT8, 2 FP16, 3 BEST"),
    "num-detected-classes": KeySpec(int, None, "classes the detector reports"),
    "interval": KeySpec(int, 0, "frames skipped between inferences"),
    "gie-unique-id": KeySpec(int, 1, "id of this inference element"),
    "process-mode": KeySpec(int, 1, "1 primary (full frame), 2 secondary (objects)"),
    "network-type": KeySpec(int, 0, "0 detector, 1 classifier, 2 segmentation, 3 instance segmentation"),
    "cluster-mode": KeySpec(int, 0, "0 groupRectangles, 1 DBSCAN, 2 NMS, 3 DBSCAN+NMS, 4 none"),
    "maintain-aspect-ratio": KeySpec(bool, False, "letterbox instead of stretching"),
    "symmetric-padding": KeySpec(bool, False, "centre the letterbox padding"),
    "parse-bbox-func-name": KeySpec(str, None, "exported parse function"),
    "parse-bbox-instance-mask-func-name": KeySpec(str, None, "exported instance-mask parse function"),
    "custom-lib-path": KeySpec(str, None, "parser library"),
    "output-instance-mask": KeySpec(bool, False, "attach instance masks to objects"),
    "segmentation-threshold": KeySpec(float, None, "mask probability threshold"),
    "infer-dims": KeySpec(str, None, "input dims C;H;W when the model does not fix them"),
}

CLASS_ATTRS_KEYS: dict[str, KeySpec] = {
    "pre-cluster-threshold": KeySpec(float, 0.2, "drop objects below this confidence before clustering"),
    "post-cluster-threshold": KeySpec(float, 0.0, "keep objects strictly above this after clustering"),
    "nms-iou-threshold": KeySpec(float, 0.3, "NMS overlap threshold"),
    "topk": KeySpec(int, -1, "objects kept per class after clustering (-1: all)"),
    "detected-min-w": KeySpec(int, 0, "minimum object width in frame pixels"),
    "detected-min-h": KeySpec(int, 0, "minimum object height in frame pixels"),
}


def keys_of(section: str) -> dict[str, KeySpec]:
    if section == "property":
        return PROPERTY_KEYS
    if section == "class-attrs-all" or (section.startswith("class-attrs-") and section[12:].isdigit()):
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
        return ";".join(repr(float(v)) for v in value)
    if not isinstance(value, str):
        raise TypeError(f"{key}: expected text, got {value!r}")
    return keyfile_value(value)


@dataclass
class Entry:
    key: str
    value: object
    comment: str = ""


@dataclass
class NvinferConfig:
    """An ordered nvinfer config: header comment lines, then sections of entries."""

    header: list[str] = field(default_factory=list)
    sections: dict[str, list[Entry]] = field(default_factory=dict)

    def set(self, section: str, key: str, value: object, comment: str = "") -> None:
        spec = keys_of(section).get(key)
        if spec is None:
            raise KeyError(f"[{section}] {key}: not an nvinfer key dsparsers knows")
        format_value(key, spec, value)  # type check now, not at render time
        entries = self.sections.setdefault(section, [])
        entries[:] = [e for e in entries if e.key != key]
        entries.append(Entry(key, value, comment))

    def render(self) -> str:
        lines = [f"# {comment_text(line, 200)}".rstrip() for line in self.header]
        for section, entries in self.sections.items():
            if lines:
                lines.append("")
            lines.append(f"[{section}]")
            specs = keys_of(section)
            for entry in entries:
                if entry.comment:
                    lines.append(f"# {comment_text(entry.comment, 200)}")
                lines.append(f"{entry.key}={format_value(entry.key, specs[entry.key], entry.value)}")
        return "\n".join(lines) + "\n"
