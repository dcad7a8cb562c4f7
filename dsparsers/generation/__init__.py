"""Stage 3, generation: architecture + head parameters -> template context -> the parser directory's
files (``codegen``), with model strings escaped for C++, Meson and config text (``escaping``), the
nvinfer config written from the same settings (``config_writer``, keys in ``nvinfer_keys``), the
directory's manifest (``manifest``) and atomic writes (``output_dir``)."""
