"""Analyses: one collector per command family, each fed by one scan (``reading``).

Answers are data (dataclasses), no presentation; imports ``reading`` only, never
``rendering``. Docstring only (no imports).
"""
