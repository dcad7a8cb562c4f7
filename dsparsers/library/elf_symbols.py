"""Reading an ELF64 shared library's dynamic section and symbols, without tools: the exported functions
(``dynamic_symbols``: what nvinfer can dlsym) and the libraries and symbols it needs from elsewhere
(``elf_dynamic``: DT_NEEDED and undefined symbols, e.g. a sanitizer runtime)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

_SHT_DYNAMIC, _SHT_DYNSYM = 6, 11
_DT_NEEDED = 1
_STT_FUNC = 2
_STB_GLOBAL, _STB_WEAK = 1, 2


@dataclass(frozen=True)
class _Symbol:
    name: str
    info: int
    shndx: int


class _Elf:
    """The section table of a little- or big-endian ELF64 file and its strings."""

    def __init__(self, path: Path):
        self.data = data = Path(path).read_bytes()
        if data[:4] != b"\x7fELF" or data[4] != 2:
            raise ValueError(f"{path}: not an ELF64 file")
        self.endian = "<" if data[5] == 1 else ">"
        shoff, = struct.unpack_from(self.endian + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(self.endian + "HH", data, 0x3A)
        self.sections = [struct.unpack_from(self.endian + "IIQQQQIIQQ", data, shoff + i * shentsize)
                         for i in range(shnum)]

    def string(self, strtab_index: int, offset: int) -> str:
        strtab = self.sections[strtab_index]
        start = strtab[4] + offset
        return self.data[start:self.data.index(b"\0", start, strtab[4] + strtab[5])].decode("utf-8", "replace")

    def entries(self, kind: int) -> Iterator[tuple[int, int]]:
        """(entry offset, string table index) of every entry of every section of ``kind``."""
        for _name, section_kind, _flags, _addr, offset, size, link, _info, _align, entsize in self.sections:
            if section_kind == kind and entsize:
                for k in range(size // entsize):
                    yield offset + k * entsize, link

    def dynamic_symbols(self) -> Iterator[_Symbol]:
        for offset, link in self.entries(_SHT_DYNSYM):
            st_name, st_info, _other, st_shndx, _value, _size = struct.unpack_from(self.endian + "IBBHQQ", self.data, offset)
            if st_name:
                yield _Symbol(self.string(link, st_name), st_info, st_shndx)


def dynamic_symbols(path: Path) -> list[str]:
    """Defined global/weak functions in the .dynsym of a little- or big-endian ELF64 file."""
    return [s.name for s in _Elf(path).dynamic_symbols()
            if s.shndx != 0 and (s.info & 0xF) == _STT_FUNC and (s.info >> 4) in (_STB_GLOBAL, _STB_WEAK)]


def elf_dynamic(path: Path) -> tuple[list[str], list[str]]:
    """(DT_NEEDED names, undefined dynamic symbol names) of an ELF64 file."""
    elf = _Elf(path)
    needed = []
    for offset, link in elf.entries(_SHT_DYNAMIC):
        tag, value = struct.unpack_from(elf.endian + "qQ", elf.data, offset)
        if tag == _DT_NEEDED:
            needed.append(elf.string(link, value))
    return needed, [s.name for s in elf.dynamic_symbols() if s.shndx == 0]
