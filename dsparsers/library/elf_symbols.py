"""Reading the exported (dynamic, defined) function symbols of an ELF64 shared library, without tools."""

from __future__ import annotations

import struct
from pathlib import Path

_SHT_DYNSYM = 11
_STT_FUNC = 2
_STB_GLOBAL, _STB_WEAK = 1, 2


def dynamic_symbols(path: Path) -> list[str]:
    """Defined global/weak functions in the .dynsym of a little- or big-endian ELF64 file."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError(f"{path}: not an ELF64 file")
    endian = "<" if data[5] == 1 else ">"
    shoff, = struct.unpack_from(endian + "Q", data, 0x28)
    shentsize, shnum = struct.unpack_from(endian + "HH", data, 0x3A)
    sections = [struct.unpack_from(endian + "IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names: list[str] = []
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if kind != _SHT_DYNSYM or not entsize:
            continue
        strtab = sections[link]
        str_offset, str_size = strtab[4], strtab[5]
        for k in range(size // entsize):
            st_name, st_info, _other, st_shndx, _value, _size = struct.unpack_from(endian + "IBBHQQ", data, offset + k * entsize)
            if st_shndx == 0 or (st_info & 0xF) != _STT_FUNC or (st_info >> 4) not in (_STB_GLOBAL, _STB_WEAK):
                continue
            start = str_offset + st_name
            end = data.index(b"\0", start, str_offset + str_size)
            names.append(data[start:end].decode("utf-8", "replace"))
    return names
