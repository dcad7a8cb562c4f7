"""The DeepStream releases whose rules emulation follows where releases differ (no NumPy: the CLI's
options read it at import)."""

#: oldest first; the last is the default
DEEPSTREAM_VERSIONS = ("6.2", "6.3", "9.0", "9.1")
NEWEST_DEEPSTREAM = DEEPSTREAM_VERSIONS[-1]
