"""The result formats ``costlens replay`` reads, one module per format (README "Input formats").

Each member module defines ``FORMAT``, a ``base.ResultFormat``: its part of the line shape, a
detection predicate and the SQL of its rules. ``costlens.ingest.replay`` builds one staging
statement from ``FORMATS``; adding a format is adding a module and naming it here, in the order
its lines are to be recognised (the first format whose ``detect`` holds names the line).

Not members: ``base`` (the interface), ``usage`` (usage dialects several formats share) and
``totals`` (checking a job's totals file, such as Bedrock's manifest, against a replay).
"""

from __future__ import annotations

from costlens.ingest.formats import (
    anthropic_batch,
    bedrock_batch,
    chat_completion,
    gemini_batch,
    openai_batch,
    vertex_batch,
    vllm_batch,
)
from costlens.ingest.formats.base import FastPath, JobTotals, ResultFormat

__all__ = ["FORMATS", "FastPath", "JobTotals", "ResultFormat"]

# Detection order. Anthropic results are told by result.type alone; Vertex, Gemini and Bedrock
# lines carry no custom_id and keys no other format has, and come before openai_batch, whose
# `response` they may share; vLLM's ids are told apart before OpenAI's; chat_completion, the
# loosest, is last.
FORMATS: tuple[ResultFormat, ...] = (
    anthropic_batch.FORMAT,
    vertex_batch.FORMAT,
    gemini_batch.FORMAT,
    bedrock_batch.FORMAT,
    vllm_batch.FORMAT,
    openai_batch.FORMAT,
    chat_completion.FORMAT,
)
