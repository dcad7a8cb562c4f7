"""The Gst-nvinfer configuration file: key names, value types, defaults, a writer and a reader.

Two tables (PROPERTY_KEYS, CLASS_ATTRS_KEYS) are the source of truth for every key dsparsers writes or
reads; rendering refuses a key it does not know or a value of the wrong type, so a typo cannot reach a
user's pipeline. Values are written in GKeyFile syntax (what nvinfer parses), escaped with
``keyfile_value``. ``read_config`` reads the GKeyFile form and DeepStream's YAML form back into a
typed InferConfig, with ``file:line:`` errors for unknown keys and sections and for bad values.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .escaping import comment_text, keyfile_value


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


def _k(type_: type, default: object, doc: str, **kw) -> KeySpec:
    return KeySpec(type_, default, doc, **kw)


#: The documented Gst-nvinfer ``[property]`` keys (DeepStream 6.2 to 9.1).
PROPERTY_KEYS: dict[str, KeySpec] = {
    "gpu-id": _k(int, 0, "GPU to run on"),
    "net-scale-factor": _k(float, 1.0, "pixel scale: y = net-scale-factor * (x - offsets)", run=True),
    "offsets": _k(list, None, "per-channel mean subtracted before scaling (network channel order)", run=True),
    "model-color-format": _k(int, 0, "0 RGB, 1 BGR, 2 GRAY", run=True, choices=(0, 1, 2)),
    "onnx-file": _k(str, None, "ONNX model; nvinfer builds the TensorRT engine from it", run=True),
    "model-engine-file": _k(str, None, "serialized TensorRT engine"),
    "int8-calib-file": _k(str, None, "INT8 calibration cache"),
    "model-file": _k(str, None, "Caffe model"),
    "proto-file": _k(str, None, "Caffe prototxt"),
    "mean-file": _k(str, None, "PPM mean image subtracted before scaling (not emulated)"),
    "uff-file": _k(str, None, "UFF model"),
    "uff-input-blob-name": _k(str, None, "UFF input layer name"),
    "uff-input-dims": _k(list, None, "UFF input dims C;H;W;order (deprecated)", item=int),
    "uff-input-order": _k(int, 0, "UFF input order: 0 NCHW, 1 NHWC, 2 NC", choices=(0, 1, 2)),
    "tlt-encoded-model": _k(str, None, "TAO encoded model"),
    "tlt-model-key": _k(str, None, "TAO model key"),
    "custom-network-config": _k(str, None, "custom network config for engine-create-func-name"),
    "engine-create-func-name": _k(str, None, "custom engine creation function"),
    "labelfile-path": _k(str, None, "class labels, one per line", run=True),
    "batch-size": _k(int, 1, "frames per inference", minimum=1, run=True),
    "network-mode": _k(int, 0, "0 FP32, 1 INT8, 2 FP16, 3 BEST", choices=(0, 1, 2, 3)),
    "num-detected-classes": _k(int, None, "classes the detector reports", minimum=1, run=True),
    "interval": _k(int, 0, "frames skipped between inferences", minimum=0),
    "gie-unique-id": _k(int, 1, "id of this inference element"),
    "operate-on-gie-id": _k(int, -1, "secondary mode: infer on objects of this element"),
    "operate-on-class-ids": _k(list, None, "secondary mode: infer on objects of these classes", item=int),
    "process-mode": _k(int, 1, "1 primary (full frame), 2 secondary (objects)", choices=(1, 2), run=True),
    "network-type": _k(int, 0, "0 detector, 1 classifier, 2 segmentation, 3 instance segmentation, 100 other",
                       choices=(0, 1, 2, 3, 100), run=True),
    "cluster-mode": _k(int, 0, "0 groupRectangles, 1 DBSCAN, 2 NMS, 3 DBSCAN+NMS, 4 none",
                       choices=(0, 1, 2, 3, 4), run=True),
    "maintain-aspect-ratio": _k(bool, False, "letterbox instead of stretching", run=True),
    "symmetric-padding": _k(bool, False, "centre the letterbox padding", run=True),
    "parse-bbox-func-name": _k(str, None, "exported parse function", run=True),
    "parse-bbox-instance-mask-func-name": _k(str, None, "exported instance-mask parse function"),
    "parse-classifier-func-name": _k(str, None, "exported classifier parse function"),
    "custom-lib-path": _k(str, None, "parser library", run=True),
    "output-instance-mask": _k(bool, False, "attach instance masks to objects"),
    "segmentation-threshold": _k(float, None, "mask probability threshold"),
    "infer-dims": _k(list, None, "input dims C;H;W when the model does not fix them", item=int, run=True),
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
    "classifier-threshold": _k(float, None, "classifier: minimum probability"),
    "classifier-async-mode": _k(bool, False, "classifier: infer asynchronously"),
    "classifier-type": _k(str, None, "classifier: type label"),
    "secondary-reinfer-interval": _k(int, 0, "secondary: frames between re-inferences of an object"),
    "input-object-min-width": _k(int, 0, "secondary: smallest object inferred"),
    "input-object-min-height": _k(int, 0, "secondary: smallest object inferred"),
    "input-object-max-width": _k(int, 0, "secondary: largest object inferred"),
    "input-object-max-height": _k(int, 0, "secondary: largest object inferred"),
    "enable-dbscan": _k(bool, False, "use DBSCAN (deprecated: cluster-mode)"),
    "enable-dla": _k(bool, False, "run on a DLA core"),
    "use-dla-core": _k(int, 0, "DLA core"),
    "filter-out-class-ids": _k(list, None, "class ids dropped from the output", item=int, run=True),
    "crop-objects-to-roi-boundary": _k(bool, False, "clip objects to the ROI (for a primary: the frame)", run=True),
}

#: The ``[class-attrs-all]`` / ``[class-attrs-N]`` keys.
CLASS_ATTRS_KEYS: dict[str, KeySpec] = {
    "pre-cluster-threshold": _k(float, 0.2, "drop objects below this confidence before clustering", run=True),
    "threshold": _k(float, None, "old name of pre-cluster-threshold", run=True),
    "post-cluster-threshold": _k(float, 0.0, "keep objects strictly above this after clustering", run=True),
    "nms-iou-threshold": _k(float, 0.3, "NMS overlap threshold", run=True),
    "topk": _k(int, -1, "objects kept per class after clustering (-1: all)", run=True),
    "eps": _k(float, None, "DBSCAN: neighbourhood radius"),
    "minBoxes": _k(int, None, "DBSCAN: minimum boxes of a cluster"),
    "dbscan-min-score": _k(float, None, "DBSCAN: minimum cluster score"),
    "group-threshold": _k(int, None, "groupRectangles: minimum group size"),
    "roi-top-offset": _k(int, 0, "objects above this frame row are dropped (not emulated)"),
    "roi-bottom-offset": _k(int, 0, "objects below frame height minus this are dropped (not emulated)"),
    "detected-min-w": _k(int, 0, "minimum object width in frame pixels", run=True),
    "detected-min-h": _k(int, 0, "minimum object height in frame pixels", run=True),
    "detected-max-w": _k(int, 0, "maximum object width in frame pixels (0: none)", run=True),
    "detected-max-h": _k(int, 0, "maximum object height in frame pixels (0: none)", run=True),
}

CLASS_ATTRS_ALL = "class-attrs-all"
_CLASS_ATTRS_PREFIX = "class-attrs-"


def class_section_id(section: str) -> int | None:
    """N for ``class-attrs-N``, else None."""
    rest = section[len(_CLASS_ATTRS_PREFIX):] if section.startswith(_CLASS_ATTRS_PREFIX) else ""
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


# -- reading ---------------------------------------------------------------------------------------
#
# nvinfer reads its config with GKeyFile (or, for a .yml/.yaml path, as YAML with the same groups as
# top-level mappings). GKeyFile semantics kept here: '#' comment lines, [group] headers, key=value
# with the key's trailing and the value's surrounding whitespace trimmed, the escapes \s \n \t \r \\,
# lists separated by ';' (a trailing ';' allowed), booleans 0/1 or true/false.


@dataclass(frozen=True)
class Setting:
    """A value read from a config and the line it came from (0: not from a file, e.g. an override)."""

    value: object
    line: int


_BOOLEANS = {"1": True, "true": True, "0": False, "false": False}
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\", ";": "\\;"}.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _scalar(text: str, kind: type) -> object:
    """``text`` converted to ``kind``; ValueError with the reason (no location) when it cannot be."""
    if kind is str:
        return text.replace("\\;", ";")
    if kind is bool:
        value = _BOOLEANS.get(text.strip().lower())
        if value is None:
            raise ValueError(f"expected 0/1 or true/false, got {text!r}")
        return value
    if kind is int:
        if not _INTEGER.fullmatch(text.strip()):
            raise ValueError(f"expected an integer, got {text!r}")
        return int(text.strip())
    if not _NUMBER.fullmatch(text.strip()):
        raise ValueError(f"expected a number, got {text!r}")
    return float(text.strip())


def convert_value(key: str, spec: KeySpec, raw: str) -> object:
    """The typed value of ``raw`` (unescaped config text) for ``key``; ValueError naming the problem."""
    if spec.type is list:
        items = re.split(r"(?<!\\);", raw)
        if len(items) > 1 and items[-1].strip() == "":
            items = items[:-1]  # GKeyFile lists may end with the separator
        if items == [""] or items == []:
            return []
        values = []
        for index, item in enumerate(items, 1):
            if spec.item is not str and item.strip() == "":
                raise ValueError(f"item {index} is empty in {raw!r}")
            try:
                values.append(_scalar(item if spec.item is str else item.strip(), spec.item))
            except ValueError as exc:
                raise ValueError(f"item {index}: {exc}") from None
        return values
    value = _scalar(raw, spec.type)
    if spec.choices is not None and value not in spec.choices:
        raise ValueError(f"expected one of {', '.join(map(str, spec.choices))}, got {value!r}")
    if spec.minimum is not None and value < spec.minimum:
        raise ValueError(f"expected at least {spec.minimum:g}, got {value!r}")
    return value


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass
class InferConfig:
    """A read nvinfer config: typed values per section with their lines, and nvinfer's defaults.

    ``path`` is the config file as the user named it (messages show it); relative paths inside the
    config resolve against its directory, as nvinfer resolves them.
    """

    path: Path
    sections: dict[str, dict[str, Setting]] = field(default_factory=dict)

    # -- locations and errors ---------------------------------------------------------------
    def where(self, key: str | None = None, section: str = "property") -> str:
        """``file:line`` of ``key`` (just ``file`` when it is not in the file)."""
        setting = self.sections.get(section, {}).get(key) if key else None
        return f"{self.path}:{setting.line}" if setting is not None and setting.line else f"{self.path}"

    def error(self, key: str, message: str, section: str = "property") -> ConfigError:
        """A ConfigError ``file:line: key: message``."""
        return ConfigError(f"{self.where(key, section)}: {key}: {message}")

    # -- values -----------------------------------------------------------------------------
    def has(self, key: str, section: str = "property") -> bool:
        return key in self.sections.get(section, {})

    def get(self, key: str, section: str = "property") -> object:
        """The value of ``key`` in ``section``, or nvinfer's default when the file does not set it."""
        setting = self.sections.get(section, {}).get(key)
        if setting is not None:
            return setting.value
        return keys_of(section)[key].default

    def class_ids(self) -> list[int]:
        """The N of every ``[class-attrs-N]`` section, sorted."""
        return sorted(n for n in (class_section_id(s) for s in self.sections) if n is not None)

    def class_attr(self, class_id: int, key: str) -> object:
        """What applies to ``class_id``: ``[class-attrs-N]`` if it sets ``key``, else ``[class-attrs-all]``,
        else nvinfer's default (whatever order the sections have in the file)."""
        for section in (f"{_CLASS_ATTRS_PREFIX}{class_id}", CLASS_ATTRS_ALL):
            if self.has(key, section):
                return self.get(key, section)
        return CLASS_ATTRS_KEYS[key].default

    def set(self, key: str, value: object, section: str = "property") -> None:
        """Override ``key`` (typed value, checked against the table), e.g. from a command-line option."""
        spec = keys_of(section).get(key)
        if spec is None:
            raise ConfigError(f"[{section}] {key}: not an nvinfer key{_suggest(key, keys_of(section))}")
        format_value(key, spec, value)
        self.sections.setdefault(section, {})[key] = Setting(value, 0)

    def ignored(self) -> list[str]:
        """``[section] key`` of every key the file sets that ``dsparsers run`` does not emulate."""
        return [f"[{section}] {key}" for section, entries in self.sections.items() for key in entries
                if not keys_of(section)[key].run]

    def file(self, key: str, *, required: bool = True) -> Path | None:
        """The file ``key`` names, resolved against the config's directory (as nvinfer does); a
        ConfigError naming the line when it is missing (or, with ``required``, not set)."""
        value = self.get(key)
        if not value:
            if required:
                raise ConfigError(f"{self.path}: {key} is not set")
            return None
        path = Path(str(value)).expanduser()
        if not path.is_absolute():
            path = self.path.parent / path
        if not path.is_file():
            raise self.error(key, f"no such file {path}")
        return path

    def cluster_settings(self):
        """dsparsers.postprocess.ClusterSettings of this config: num-detected-classes, cluster-mode,
        ``[class-attrs-all]`` over nvinfer's defaults, each ``[class-attrs-N]`` over ``[class-attrs-all]``."""
        import dataclasses as _dc

        from .postprocess import ClassAttrs, ClusterSettings

        num_classes = self.get("num-detected-classes")
        if num_classes is None:
            raise ConfigError(f"{self.path}: num-detected-classes is required for a detector")

        def attrs(section: str, base: ClassAttrs) -> ClassAttrs:
            values = {name: self.get(key, section) for key, name in ClassAttrs.KEYS.items() if self.has(key, section)}
            if "pre_cluster_threshold" not in values and self.has("threshold", section):
                values["pre_cluster_threshold"] = self.get("threshold", section)  # the key's old name
            return _dc.replace(base, **values)

        base = attrs(CLASS_ATTRS_ALL, ClassAttrs())
        per_class = {}
        for class_id in self.class_ids():
            section = f"{_CLASS_ATTRS_PREFIX}{class_id}"
            if class_id >= num_classes:
                raise ConfigError(f"{self.where(None)}: [{section}]: class {class_id} is not below "
                                  f"num-detected-classes={num_classes}")
            per_class[class_id] = attrs(section, base)
        return ClusterSettings(num_classes, self.get("cluster-mode"), base, per_class)

    def to_nvinfer_config(self) -> NvinferConfig:
        """The same values as a writable NvinferConfig (no comments), sections and keys in file order."""
        cfg = NvinferConfig()
        for section, entries in self.sections.items():
            cfg.sections.setdefault(section, [])
            for key, setting in entries.items():
                cfg.set(section, key, setting.value)
        return cfg


def _add(config: InferConfig, section: str, key: str, raw: str, line: int) -> None:
    where = f"{config.path}:{line}"
    try:
        table = keys_of(section)
    except KeyError:  # checked when the section opened; keep mypy and odd callers honest
        raise ConfigError(f"{where}: [{section}]: unknown section") from None
    spec = table.get(key)
    if spec is None:
        other = CLASS_ATTRS_KEYS if table is PROPERTY_KEYS else PROPERTY_KEYS
        if key in other:
            home = "[class-attrs-all] or [class-attrs-N]" if other is CLASS_ATTRS_KEYS else "[property]"
            raise ConfigError(f"{where}: {key}: belongs in {home}, not [{section}]")
        raise ConfigError(f"{where}: {key}: unknown nvinfer key in [{section}]{_suggest(key, table)}")
    try:
        value = convert_value(key, spec, raw)
    except ValueError as exc:
        raise ConfigError(f"{where}: {key}: {exc}") from None
    config.sections.setdefault(section, {})[key] = Setting(value, line)  # GKeyFile: the last one wins


def _open_section(config: InferConfig, name: str, line: int) -> str:
    try:
        keys_of(name)
    except KeyError:
        known = ["property", CLASS_ATTRS_ALL, "class-attrs-0"]
        raise ConfigError(f"{config.path}:{line}: [{name}]: unknown section (nvinfer reads [property], "
                          f"[class-attrs-all] and [class-attrs-N]){_suggest(name, known)}") from None
    config.sections.setdefault(name, {})
    return name


def parse_keyfile(text: str, path: Path | str = "<config>") -> InferConfig:
    """An nvinfer config in GKeyFile syntax."""
    config = InferConfig(Path(path))
    section: str | None = None
    for number, raw_line in enumerate(text.splitlines(), 1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ConfigError(f"{config.path}:{number}: expected [section], got {line!r}")
            section = _open_section(config, line[1:-1].strip(), number)
            continue
        if "=" not in line:
            raise ConfigError(f"{config.path}:{number}: expected key=value, got {line!r}")
        key, value = line.split("=", 1)
        key = key.strip()
        if section is None:
            raise ConfigError(f"{config.path}:{number}: {key}: before any [section] (nvinfer wants [property] first)")
        _add(config, section, key, _unescape(value.strip()), number)
    return config


def parse_yaml(text: str, path: Path | str = "<config>") -> InferConfig:
    """An nvinfer config in DeepStream's YAML form: top-level ``property:``, ``class-attrs-all:`` and
    ``class-attrs-N:`` mappings; a list value may be a YAML sequence or a ';'-separated string."""
    import yaml

    config = InferConfig(Path(path))
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{config.path}{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if root is None:
        return config
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{config.path}:{root.start_mark.line + 1}: expected a mapping of sections (property: ...)")
    for section_node, body in root.value:
        number = section_node.start_mark.line + 1
        section = _open_section(config, str(section_node.value), number)
        if isinstance(body, yaml.ScalarNode) and body.value in ("", "~", "null"):
            continue
        if not isinstance(body, yaml.MappingNode):
            raise ConfigError(f"{config.path}:{number}: [{section}]: expected a mapping of key: value")
        for key_node, value_node in body.value:
            line = key_node.start_mark.line + 1
            if isinstance(value_node, yaml.SequenceNode):
                if not all(isinstance(v, yaml.ScalarNode) for v in value_node.value):
                    raise ConfigError(f"{config.path}:{line}: {key_node.value}: expected a list of plain values")
                raw = ";".join(str(v.value).replace(";", "\\;") for v in value_node.value)
            elif isinstance(value_node, yaml.ScalarNode):
                raw = str(value_node.value)
            else:
                raise ConfigError(f"{config.path}:{line}: {key_node.value}: expected a value, got a mapping")
            _add(config, section, str(key_node.value), raw, line)
    return config


def read_config(path: Path | str) -> InferConfig:
    """Read the nvinfer config at ``path`` (YAML when it ends in .yml/.yaml, else GKeyFile)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not an nvinfer config") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if path.suffix.lower() in (".yml", ".yaml"):
        return parse_yaml(text, path)
    return parse_keyfile(text, path)


def read_labels(path: Path) -> list[str]:
    """The labels of a labelfile-path file: one per line (nvinfer also splits a line on ';' for
    classifiers; a detector's label is the whole line), trailing empty lines dropped."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]
