"""``ttsops logs``: answers from app.log and its rotated .gz files.

Layers, bottom up (each module has one job):

* ``timeargs``  -- time arguments (absolute, dates, relative ``2h``) to log timestamps
* ``sources``   -- which files, in which order, opened as one consistent snapshot
* ``reader``    -- bytes of one file as chunks of whole records, per index block or
                   streamed; damage (truncation, corruption) reported, never raised
* ``scan``      -- a ``Query`` (window, literal needles, ids) over a snapshot: records
                   merged by time across directories, with index pruning
* ``assemble``  -- the records of one synthesis joined into one ``Synthesis``
* one module per command family (window, trace, patterns, top, stages, cache, audio,
  precursors, check, diagnose), each a collector fed by one scan
* ``output``    -- rich tables, ``--json`` and ``--csv``
"""
