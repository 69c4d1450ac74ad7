"""``ttsops logs``: answers from app.log and its rotated .gz files.

Layers, top down; each imports only the layers below it (docstring-only
``__init__.py`` files, so importing one module loads only what it needs):

* the CLI layer, here: ``cli`` (the click group), ``quick`` (window/trace/patterns
  without importing click), ``commands`` (the click-free common part both use)
* ``rendering/`` -- printing answers and the HTML report
    * ``output``    -- rich tables, ``--json`` and ``--csv``
    * ``report`` (+ ``report_data``, ``report_html``, ``report_template.html``,
      ``svgchart``) -- the self-contained HTML report
* ``analyses/`` -- one module per command family (window, trace, patterns, top, stages,
  cache, audio, precursors, check), each a collector fed by one scan, answering with an
  ``answer.Report`` (the answer as data: summary, tables, JSON data, problems)
    * ``diagnose`` in three steps: ``diagnose_collect`` (the pass, data),
      ``diagnose_judge`` (findings, severity rules as a table), ``diagnose_render``
      (the findings as a Report)
    * ``rules`` (+ ``rule_model``, ``default_rules.toml``) / ``alerts`` / ``tail`` --
      alert rules, over history and live
    * ``check`` (+ ``check_frames``, ``check_ids``, ``dialect``), ``precursor_signals``,
      ``stats``
* ``reading/`` -- files, bytes and scans; imports neither layer above
    * ``timeargs``  -- time arguments (absolute, dates, relative ``2h``) to log timestamps
    * ``sources``   -- which files, in which order, opened as one consistent snapshot
      (``logfiles``: LogFile, Snapshot, Problem; ``_naming``: log file names and
      opening them)
    * ``reader``    -- bytes of one file as chunks of whole records, per index block or
      streamed; damage (truncation, corruption) reported, never raised (``_inflate``:
      gzip inflation and cutting at record starts)
    * ``parallel`` / ``fanout`` -- read-ahead: units of work decompressed on several
      threads or processes, in order
    * ``plan`` / ``coverage`` -- which index blocks answer a count from their statistics
    * ``scan``      -- a ``Query`` (window, literal needles, ids) over a snapshot: records
      merged by time across directories, with index pruning (``match``: literal search
      and window checks on the raw bytes; ``filters``: --where/--by/--bucket;
      ``sidecar`` + ``_sidecar_store``: parsed rotated files kept once)
    * ``assemble``  -- the records of one synthesis joined into one ``Synthesis``
    * ``vector``    -- Polars for aggregations that read nearly every line (stages);
      ``vector_frames`` the same over the sidecars' frames
    * ``indexer``   -- ``logs index``: block indexes for files that lack them
    * ``progress``  -- progress bars for long reads

The line parser's fast path is ``ttsops.logformat.fastparse``.
"""
