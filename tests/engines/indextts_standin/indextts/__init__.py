"""A stand-in for the ``indextts`` package (IndexTTS-2), for ttsops' tests only.

Same import path and API as the real ``indextts.infer_v2.IndexTTS2`` (constructor and
``infer`` arguments, ``tokenizer``, ``model_version``, the ``>> ..._time`` lines it
prints, the RuntimeWarning for ``max_mel_tokens``, ``(22050, int16 (n, 1))`` result), so
that the adapter's argument mapping, loading, failures and locking are tested without
checkpoints or a GPU. It synthesises a deterministic harmonic "voice", not speech.
"""
