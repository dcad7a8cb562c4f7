"""Built-in architecture plugins of dsparsers.

This directory is installed as the package ``dsparsers.plugins`` (see ``[tool.setuptools.package-dir]``
in pyproject.toml). A family is one module, ``<family>.py``, named after what it registers and listed in
``dsparsers.api.registry.BUILTIN_PLUGINS``; it registers exactly like a third-party plugin, through
``register_architectures``. Beside it, ``<family>_reference.py`` holds its verification side (NumPy
reference decoder, Hypothesis strategy, bench input), imported only when those run. Modules whose names
start with ``_`` hold what several families share; they are not plugins.
"""
