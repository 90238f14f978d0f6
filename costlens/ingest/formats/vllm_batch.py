"""vLLM ``run-batch`` output lines (FORMATS.md §2): the OpenAI batch shape, ids ``vllm-…``.

Everything but the name and the detection is openai_batch's: a failed line has ``"body": null``
and an ``error`` that is a string or an object. The fast path is openai_batch's, which names each
line it takes by the same rule.
"""

from __future__ import annotations

from dataclasses import replace

from costlens.ingest.formats import openai_batch

__all__ = ["FORMAT"]

FORMAT = replace(
    openai_batch.FORMAT,
    name="vllm_batch",
    expected=None,  # said by openai_batch's "an OpenAI/vLLM batch output line"
    detect=f"starts_with(coalesce(j.id, ''), 'vllm-') AND {openai_batch.DETECT}",
)
