"""dsparsers: DeepStream Gst-nvinfer custom output parsers, generated from ONNX and proven right."""

import pluggy

__version__ = "0.1.0"

#: Decorator for plugin hook implementations (``@dsparsers.hookimpl``).
hookimpl = pluggy.HookimplMarker("dsparsers")

__all__ = ["__version__", "hookimpl"]
