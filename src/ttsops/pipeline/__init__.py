"""The synthesis pipeline: text_normalize -> llm_prompt_gen -> llm_inference ->
llm_postproc -> audio_render. ``Pipeline`` (runner.py) runs it; ``types`` is the contract
with the workers and the server. Imports are lazy so that ``ttsops.pipeline.types`` stays
cheap to import."""

from __future__ import annotations

from typing import Any

__all__ = ["Pipeline", "new_id"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(name)
