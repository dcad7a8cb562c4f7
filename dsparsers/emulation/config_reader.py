"""Reading an nvinfer config the way nvinfer reads it: GKeyFile syntax (or DeepStream's YAML form) into
a typed InferConfig, with ``file:line:`` errors for bad values, and the labels file."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from dsparsers.errors import ConfigError
from dsparsers.generation.config_writer import NvinferConfig
from dsparsers.generation.nvinfer_keys import (CLASS_ATTRS_ALL, CLASS_ATTRS_KEYS, CLASS_ATTRS_PREFIX, PROPERTY_KEYS,
                                               KeySpec, class_section_id, format_value, keys_of)

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
        if spec.length is not None and not spec.length[0] <= len(values) <= spec.length[1]:
            low, high = spec.length
            wanted = f"exactly {low}" if low == high else f"{low} to {high}"
            raise ValueError(f"expected {wanted} values, got {len(values)} (nvinfer refuses it)")
        return values
    value = _scalar(raw, spec.type)
    check_range(spec, value)
    return value


def check_range(spec: KeySpec, value: object) -> None:
    """ValueError when ``value`` is outside the range or choices nvinfer's property parser accepts for the key
    (gstnvinfer_property_parser.cpp: negative thresholds, sizes and topk, nms-iou-threshold outside [0, 1], ...)."""
    if spec.choices is not None and value not in spec.choices:
        raise ValueError(f"expected one of {', '.join(map(str, spec.choices))}, got {value!r}")
    if spec.minimum is not None and value < spec.minimum:
        raise ValueError(f"expected at least {spec.minimum:g}, got {value!r} (nvinfer refuses it)")
    if spec.maximum is not None and value > spec.maximum:
        raise ValueError(f"expected at most {spec.maximum:g}, got {value!r} (nvinfer refuses it)")


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
    #: what nvinfer only warns about (unknown keys, keys in the wrong group, ignored groups), ``file:line: ...``
    warnings: list[str] = field(default_factory=list)

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
        for section in (f"{CLASS_ATTRS_PREFIX}{class_id}", CLASS_ATTRS_ALL):
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
        """dsparsers.emulation.clustering.ClusterSettings of this config: num-detected-classes, cluster-mode,
        ``[class-attrs-all]`` over nvinfer's defaults, each ``[class-attrs-N]`` over ``[class-attrs-all]``."""
        import dataclasses as _dc

        from dsparsers.emulation.clustering import ClassAttrs, ClusterSettings

        num_classes = self.get("num-detected-classes")
        if num_classes is None:
            raise ConfigError(f"{self.path}: num-detected-classes is required for a detector")

        def attrs(section: str, base: ClassAttrs) -> ClassAttrs:
            values = {name: self.get(key, section) for key, name in ClassAttrs.KEYS.items() if self.has(key, section)}
            if self.has("threshold", section):  # the key's old name; gst_nvinfer_parse_class_attrs reads the
                old = self.sections[section]["threshold"]  # keys in file order, so the later of the two wins
                new = self.sections[section].get("pre-cluster-threshold")
                if new is None or old.line > new.line:
                    values["pre_cluster_threshold"] = old.value
            return _dc.replace(base, **values)

        base = attrs(CLASS_ATTRS_ALL, ClassAttrs())
        per_class = {}
        for class_id in self.class_ids():
            section = f"{CLASS_ATTRS_PREFIX}{class_id}"
            if class_id >= num_classes:
                raise ConfigError(f"{self.where(None)}: [{section}]: class {class_id} is not below "
                                  f"num-detected-classes={num_classes}")
            per_class[class_id] = attrs(section, base)
        return ClusterSettings(num_classes, self.cluster_mode(), base, per_class)

    def cluster_mode(self) -> int:
        """The cluster mode nvinfer uses: cluster-mode when the file sets it, else 1 (DBSCAN) when the legacy
        enable-dbscan is true, else 0 (gstnvinfer_property_parser.cpp, gst_nvinfer_parse_props: enable-dbscan
        is ignored when cluster-mode is set; the init params start zeroed, NvDsInferContext_ResetInitParams)."""
        if self.has("cluster-mode"):
            return int(self.get("cluster-mode"))
        return 1 if self.get("enable-dbscan") else 0

    def network_type(self) -> int:
        """network-type, or the legacy is-classifier when network-type is not set (gst_nvinfer_parse_props)."""
        if not self.has("network-type") and self.has("is-classifier"):
            return 1 if self.get("is-classifier") else 0
        return int(self.get("network-type"))

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
        # nvinfer only prints "Unknown key" / "Unknown or legacy key" and goes on
        # (gstnvinfer_property_parser.cpp: gst_nvinfer_parse_other_attribute, gst_nvinfer_parse_class_attrs)
        other = CLASS_ATTRS_KEYS if table is PROPERTY_KEYS else PROPERTY_KEYS
        if key in other:
            home = "[class-attrs-all] or [class-attrs-N]" if other is CLASS_ATTRS_KEYS else "[property]"
            config.warnings.append(f"{where}: {key}: belongs in {home}, not [{section}]; nvinfer ignores it here")
        else:
            config.warnings.append(f"{where}: {key}: unknown key in [{section}]; nvinfer only warns and ignores it"
                                   f"{_suggest(key, table)}")
        return
    try:
        value = convert_value(key, spec, raw)
    except ValueError as exc:
        raise ConfigError(f"{where}: {key}: {exc}") from None
    config.sections.setdefault(section, {})[key] = Setting(value, line)  # GKeyFile: the last one wins


def _class_group(config: InferConfig, name: str, line: int) -> str:
    """The canonical ``class-attrs-N`` of a group named ``class-attrs-<text>``, read as nvinfer reads it
    (gstnvinfer_property_parser.cpp, gst_nvinfer_parse_config_file): the class id is what g_ascii_strtoull
    takes from the start of the text (``class-attrs-5x`` is class 5); no digits at all, or a negative id, is
    an error."""
    rest = name[len(CLASS_ATTRS_PREFIX):]
    match = re.match(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)", rest)
    if match is None:
        raise ConfigError(f"{config.path}:{line}: [{name}]: invalid group; nvinfer wants class attributes in "
                          f"[{CLASS_ATTRS_ALL}] or [{CLASS_ATTRS_PREFIX}<class-id>]")
    value = int(match.group(2))
    if match.group(1) == "-" and value:
        raise ConfigError(f"{config.path}:{line}: [{name}]: class-id should be >= 0 (nvinfer refuses it)")
    return f"{CLASS_ATTRS_PREFIX}{value}"


#: the section name under which the keys of a group nvinfer ignores are dropped (no group has this name)
_IGNORED = "\0ignored"


def _open_section(config: InferConfig, name: str, line: int) -> str:
    if name != "property" and name != CLASS_ATTRS_ALL and name.startswith(CLASS_ATTRS_PREFIX):
        name = _class_group(config, name, line)
    try:
        keys_of(name)
    except KeyError:
        # nvinfer reads [property] and the [class-attrs-*] groups and never looks at the others
        config.warnings.append(f"{config.path}:{line}: [{name}]: not a group nvinfer reads ([property], "
                               f"[class-attrs-all], [class-attrs-N]); ignored{_suggest(name, ['property', CLASS_ATTRS_ALL])}")
        return _IGNORED
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
        if section != _IGNORED:
            _add(config, section, key, _unescape(value.strip()), number)
    return _checked(config)


def _checked(config: InferConfig) -> InferConfig:
    """nvinfer's checks on the whole file (gstnvinfer_property_parser.cpp, gst_nvinfer_parse_config_file):
    [property] is mandatory."""
    if "property" not in config.sections:
        raise ConfigError(f"{config.path}: no [property] group (nvinfer: \"Could not find group property\")")
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
        if section == _IGNORED:
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
    return _checked(config)


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


def parse_labels(text: str) -> list[list[str]]:
    """A labels file as nvinfer reads it (nvdsinfer_context_impl.cpp, InferPostprocessor::parseLabelsFile):
    lines split on '\\n' only, empty lines skipped (a line of spaces, or a lone '\\r' of a CRLF file, is not
    empty), each line split on ';' into its tokens, nothing stripped."""
    return [line.split(";") for line in text.split("\n") if line]


def read_labels(path: Path) -> list[str]:
    """The detector label of each class: the first token of each labels line (nvinfer's detector output,
    nvdsinfer_context_impl_output_parsing.cpp, uses ``m_Labels[c][0]``)."""
    return [tokens[0] for tokens in parse_labels(path.read_bytes().decode("utf-8", errors="replace"))]


def cluster_settings_of(text: str, path: Path | str = "<config>"):
    """The ClusterSettings of an nvinfer config file's text ([property] num-detected-classes and
    cluster-mode, [class-attrs-all], [class-attrs-N]); absent keys get nvinfer's defaults."""
    return parse_keyfile(text, path).cluster_settings()
