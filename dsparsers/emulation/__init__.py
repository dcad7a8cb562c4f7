"""Beside the pipeline, emulation: what nvinfer does around the parser, so ``dsparsers run`` shows what
DeepStream would attach. Pre-processing (``preprocess``), the config reader (``config_reader``),
clustering (``clustering``), back-projection and frame filters (``backproject``), drawing (``draw``),
``run`` itself and its demo (``run``, ``demo``, ``datasets``)."""
