"""Stage 5, verification: loading a parser library the way nvinfer does (``loader``: dlopen + dlsym
through cffi), conformance against the reference decoders (``conformance``, ``hostile``, ``strategies``),
fuzzing and leak replay (``fuzz``, ``replay``), benchmarks (``bench``, ``bench_inputs``) and the pytest
plugin for plugin authors (``pytest_plugin``). Hypothesis and the loader are imported only here."""
