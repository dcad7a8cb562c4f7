"""Stage 2, the plugin API: the architecture contract (``architecture``), the hook specs and the
registry that collects plugins (``hookspecs``, ``registry``), the choice of an architecture for a model
(``selection``), the ABI data model a parser reads and writes (``abi_types``) and the NumPy pieces
reference decoders share (``reference``). Plugin authors import these names from ``dsparsers``."""
