"""Jinja2 templates of generated parsers, and the support headers they include (support/).

Installed as the package data ``dsparsers.codegen_templates``; generation copies support/ into every
output directory so that a generated parser builds on its own.
"""
