"""Rendering: tables, ``--json``/``--csv`` and the self-contained HTML report.

The top library layer: may import ``analyses`` (their data types) and ``reading``.
Docstring only (no imports).
"""
