"""Stage 1, the ONNX side: reading a model's outputs and graph (``reader``) and rewriting its head
(``patch``). Depends on nothing else in dsparsers but ``errors``."""
