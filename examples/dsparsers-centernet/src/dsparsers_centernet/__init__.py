"""dsparsers-centernet: an example third-party dsparsers plugin for CenterNet-style heatmap heads."""

__version__ = "0.1.0"
