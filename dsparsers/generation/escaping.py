"""Making untrusted strings (layer names, class names, metadata, paths) safe for C++, configs, labels.

Every string that comes from a model passes through one of these before it is written anywhere.
"""

from __future__ import annotations

import re

_C_SAFE = frozenset(b" !#$%&'()*+,-./0123456789:;<=>@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~")


def c_string(value: str | bytes) -> str:
    """A C/C++ string literal (with quotes) that decodes to the UTF-8 bytes of ``value``.

    Printable ASCII stands as is, except ``"`` and ``\\`` (escaped) and ``?`` (escaped, so no
    trigraph can form); every other byte, NUL and non-ASCII included, becomes a three-digit octal
    escape. The result never contains a newline, ``*/`` cannot end a surrounding comment early
    because ``*`` and ``/`` only appear inside the quotes, and it is safe inside ``//`` comments.
    """
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
    out = ['"']
    for byte in data:
        if byte in _C_SAFE:
            out.append(chr(byte))
        elif byte == 0x22:
            out.append('\\"')
        elif byte == 0x5C:
            out.append("\\\\")
        elif byte == 0x3F:
            out.append("\\?")
        else:
            out.append(f"\\{byte:03o}")
    out.append('"')
    return "".join(out)


def comment_text(value: str, limit: int = 120) -> str:
    """Text for a ``//`` or ``#`` comment: printable ASCII only, no backslash or '?', at most ``limit``."""
    text = "".join(ch if (" " <= ch <= "~" and ch not in "\\?") else "_" for ch in value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def meson_string(value: str) -> str:
    """A Meson string literal (single quotes)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return "'" + "".join(ch if ch >= " " else f"\\x{ord(ch):02x}" for ch in escaped) + "'"


def keyfile_value(value: str) -> str:
    """A GKeyFile value (nvinfer reads its config with GKeyFile) that reads back as ``value``.

    NUL cannot be represented and is dropped; invalid UTF-8 (surrogate escapes) becomes U+FFFD.
    """
    value = value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    out = []
    for index, ch in enumerate(value):
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == " " and index == 0:
            out.append("\\s")
        elif ch < " " or ch == "\x7f":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")


def label_text(value: str, fallback: str, limit: int = 256) -> str:
    """One line of labels.txt: control characters and newlines folded to a space, ';' written as ',' (nvinfer
    splits each labels line on ';' and a detector shows only the first token: nvdsinfer_context_impl.cpp,
    InferPostprocessor::parseLabelsFile), trimmed, bounded, never empty (nvinfer skips empty lines, which would
    shift every later class)."""
    value = value.encode("utf-8", "replace").decode("utf-8")
    text = _CONTROL.sub(" ", value).replace(";", ",").strip()
    if len(text) > limit:
        text = text[:limit].rstrip()
    return text or fallback


def identifier(value: str) -> str:
    """A C identifier / file-name fragment derived from ``value`` (letters, digits, '_')."""
    text = re.sub(r"[^A-Za-z0-9_]+", "_", value).strip("_")
    if not text or text[0].isdigit():
        text = "x_" + text
    return text
