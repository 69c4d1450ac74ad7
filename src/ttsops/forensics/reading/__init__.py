"""Reading: which files, their bytes as whole records, and scans over a snapshot.

The bottom layer of ``ttsops logs``: it imports neither ``analyses`` nor ``rendering``.
Docstring only (no imports), so that ``forensics.quick`` stays cheap to import.
"""
