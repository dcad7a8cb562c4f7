"""Stage 4, the library: a generated directory -> the ``.so`` nvinfer loads (``meson_build``), the one
render -> write -> build path every caller uses (``parser_build``), and the ELF symbol reader
(``elf_symbols``)."""
