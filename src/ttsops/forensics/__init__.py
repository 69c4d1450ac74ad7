"""``ttsops logs``: answers from app.log and its rotated .gz files.

Layers, bottom up (each module has one job):

* ``timeargs``  -- time arguments (absolute, dates, relative ``2h``) to log timestamps
* ``sources``   -- which files, in which order, opened as one consistent snapshot
                   (``logfiles``: LogFile, Snapshot, Problem; ``_naming``: log file
                   names and opening them)
* ``reader``    -- bytes of one file as chunks of whole records, per index block or
                   streamed; damage (truncation, corruption) reported, never raised
                   (``_inflate``: gzip inflation and cutting at record starts)
* ``parallel``  -- read-ahead: units of work decompressed on several threads, in order
* ``plan``      -- which index blocks answer a count from their statistics alone
* ``scan``      -- a ``Query`` (window, literal needles, ids) over a snapshot: records
                   merged by time across directories, with index pruning (``match``:
                   literal search and window checks on the raw bytes; ``sidecar``
                   + ``_sidecar_store``: parsed rotated files kept once)
* ``assemble``  -- the records of one synthesis joined into one ``Synthesis``
* ``vector``    -- Polars for aggregations that read nearly every line (stages);
                   ``vector_frames`` the same over the sidecars' frames
* one module per command family (window, trace, patterns, top, stages, cache, audio,
  precursors, check, diagnose), each a collector fed by one scan; ``diagnose`` in
  three steps: ``diagnose_collect`` (the pass, data), ``diagnose_judge`` (findings,
  severity rules as a table), ``diagnose_render``
* ``rules`` / ``alerts`` / ``tail`` -- alert rules, over history and live
* ``report`` (+ ``report_data``, ``report_html``, ``svgchart``) -- the self-contained
  HTML report
* ``indexer``   -- ``logs index``: block indexes for files that lack them
* ``progress``  -- progress bars for long reads
* ``output``    -- rich tables, ``--json`` and ``--csv``
"""
