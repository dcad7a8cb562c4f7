"""Built-in architecture plugins of dsparsers.

This directory is installed as the package ``dsparsers.plugins`` (see ``[tool.setuptools.package-dir]``
in pyproject.toml). Each module is one plugin, listed in ``dsparsers.api.registry.BUILTIN_PLUGINS`` and
registered at start-up exactly like a third-party plugin: through ``register_architectures``.
"""
