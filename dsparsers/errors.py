"""Errors that reach the user: one line, naming the file, tensor or option at fault."""

from __future__ import annotations


class DsparsersError(Exception):
    """A failure the CLI reports as one line and a non-zero exit status."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None, details: str = ""):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
        #: optional extra lines shown after the message (candidate lists, log excerpts)
        self.details = details


class UsageError(DsparsersError):
    """A bad option or argument."""

    exit_code = 2


class ModelError(DsparsersError):
    """An ONNX file that cannot be read or does not describe a usable detector."""

    exit_code = 2


class RegistryError(DsparsersError):
    """Plugins that contradict each other (a name provided twice, a malformed architecture)."""


class BuildError(DsparsersError):
    """meson or the compiler failed."""


class LibraryError(DsparsersError):
    """A parser library that cannot be loaded or lacks the named function."""


class ConfigError(UsageError, ValueError):
    """An nvinfer config that cannot be used: unknown key or section, bad value, missing file.
    The message starts with ``file:line:`` where the line is known."""
