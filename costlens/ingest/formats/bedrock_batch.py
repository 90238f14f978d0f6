"""AWS Bedrock batch inference output, ``*.jsonl.out`` (FORMATS.md §7).

``{"recordId", "modelInput": {...}, "modelOutput": {...}}``, or ``"error": {"errorCode", "errorMessage"}``
in place of ``modelOutput``:

- custom_id = ``recordId``; status ``ok`` with a ``modelOutput`` and no error; an ``error`` is a
  failed request, error_type its ``errorCode`` (e.g. ``400``), the message its ``errorMessage``;
- ``modelOutput`` is the model's own body, its dialect told by its fields (usage.py):
  an Anthropic Message (``usage.input_tokens`` ..., with the ``cache_creation`` split; model id in
  ``model``), a Converse answer (``usage.inputTokens`` ..., ``cacheDetails`` by ``ttl``: 1-hour
  writes are cache_write_1h_tokens), Llama (``prompt_token_count``, ``generation_token_count``),
  Titan (``inputTextTokenCount``, ``results[].tokenCount``), or an OpenAI-style body;
- model = the body's ``model`` where it has one (Anthropic), else the requested model
  (``--model``): Bedrock's other bodies do not name their model;
- no time of its own: priced at ``--at`` or at the replay; tier ``batch`` under ``--tier auto``.

The job's ``manifest.json.out`` totals the job; ``TOTALS`` says which of its figures are checked
against the replay (costlens.ingest.formats.totals).
"""

from __future__ import annotations

from costlens.ingest.formats.anthropic_batch import (
    MESSAGE,
    MESSAGE_CONTENT,
    message_completion,
    message_finish_reasons,
)
from costlens.ingest.formats.base import JobTotals, ResultFormat

__all__ = ["FORMAT", "TOTALS"]

_BODY = {
    **MESSAGE,  # Anthropic: id, type, model, usage, stop_reason (also Llama's stop_reason)
    "stopReason": "VARCHAR",  # Converse (its usage is also `usage`)
    "prompt_token_count": "JSON",  # Llama
    "generation_token_count": "JSON",
    "inputTextTokenCount": "JSON",  # Titan
    "results": [{"tokenCount": "JSON", "completionReason": "VARCHAR"}],
    "choices": [{"finish_reason": "VARCHAR"}],  # OpenAI-style bodies
}
_BODY_CONTENT = {
    **MESSAGE_CONTENT,
    "output": {"message": {"content": [{"text": "VARCHAR"}]}},
    "generation": "VARCHAR",
    "results": [{"outputText": "VARCHAR"}],
    "choices": [{"message": {"content": "JSON"}}],
}

_OUT = "j.modelOutput"
_LLAMA = f"({_OUT}.prompt_token_count IS NOT NULL OR {_OUT}.generation_token_count IS NOT NULL)"
_TITAN = f"{_OUT}.inputTextTokenCount IS NOT NULL"
# Llama and Titan report their counts beside the text: those fields alone are their usage object.
_USAGE_JSON = f"""CASE
            WHEN {_LLAMA} THEN json_object('prompt_token_count', {_OUT}.prompt_token_count,
                                           'generation_token_count', {_OUT}.generation_token_count)
            WHEN {_TITAN} THEN json_object('inputTextTokenCount', {_OUT}.inputTextTokenCount,
                'results', list_transform({_OUT}.results, lambda r: json_object('tokenCount', r.tokenCount)))
            ELSE {_OUT}.usage END"""
_DIALECT = f"""CASE
            WHEN {_LLAMA} THEN 'llama'
            WHEN {_TITAN} THEN 'titan'
            WHEN u.inputTokens IS NOT NULL OR u.outputTokens IS NOT NULL THEN 'converse'
            WHEN u.prompt_tokens IS NOT NULL OR u.completion_tokens IS NOT NULL THEN 'openai'
            ELSE 'anthropic' END"""
_FINISH = f"""CASE
            WHEN {_OUT}.stop_reason IS NOT NULL THEN {message_finish_reasons(_OUT)}
            WHEN {_OUT}.stopReason IS NOT NULL THEN [{_OUT}.stopReason]
            WHEN {_OUT}.results IS NOT NULL THEN list_transform({_OUT}.results, lambda r: r.completionReason)
            WHEN {_OUT}.choices IS NOT NULL THEN list_transform({_OUT}.choices, lambda c: c.finish_reason) END"""
_COMPLETION = f"""CASE
            WHEN {_OUT}.content IS NOT NULL THEN {message_completion(_OUT)}
            WHEN {_OUT}.output.message.content IS NOT NULL
                THEN to_json(list_transform(list_filter({_OUT}.output.message.content, lambda c: c.text IS NOT NULL),
                                            lambda c: c.text))
            WHEN {_OUT}.generation IS NOT NULL THEN to_json([{_OUT}.generation])
            WHEN {_OUT}.results IS NOT NULL THEN to_json(list_transform({_OUT}.results, lambda r: r.outputText))
            WHEN {_OUT}.choices IS NOT NULL
                THEN to_json(list_transform({_OUT}.choices, lambda c: c.message.content)) END"""

TOTALS = JobTotals(
    file_name="manifest.json.out",
    result_suffix=".jsonl.out",
    figures={
        "totalRecordCount": "lines_read",
        "processedRecordCount": "stored",
        "successRecordCount": "ok",
        "errorRecordCount": "failed",
        # Input as costlens counts it: the prompt with cache reads and writes.
        "inputTokenCount": "input_tokens",
        "outputTokenCount": "output_tokens",
    },
)

FORMAT = ResultFormat(
    name="bedrock_batch",
    expected="a Bedrock batch record",
    batch=True,
    detect="j.custom_id IS NULL AND (j.recordId IS NOT NULL OR j.modelOutput IS NOT NULL OR j.modelInput IS NOT NULL)",
    shape={
        "custom_id": "JSON",
        "recordId": "JSON",
        # Its presence only: the request body is not read.
        "modelInput": {"anthropic_version": "VARCHAR"},
        "modelOutput": _BODY,
        "error": "JSON",
    },
    content_shape={"modelOutput": _BODY_CONTENT},
    error_shape={
        "errorCode": "JSON",
        "errorMessage": "VARCHAR",
        "code": "JSON",
        "type": "VARCHAR",
        "message": "VARCHAR",
    },
    fields={
        "id_json": "j.recordId",
        "response_id": f"{_OUT}.id",
        "response_model": f"{_OUT}.model",
        "usage_json": _USAGE_JSON,
        "finish_reasons": _FINISH,
        "error_json": "j.error",
        "completion": _COMPLETION,
    },
    usage_dialect=_DIALECT,
    ok=f"{_OUT} IS NOT NULL AND error_json IS NULL",
    error_type="coalesce(cl_str(e.errorCode), e.type, cl_str(e.code), 'error')",
    error_message="coalesce(e.errorMessage, e.message, CASE WHEN json_type(error_json) = 'VARCHAR' "
    "THEN error_json->>'$' END)",
    checks=(f"CASE WHEN {_OUT} IS NULL AND error_json IS NULL THEN 'neither modelOutput nor error' END",),
    id_name="recordId",
    totals=TOTALS,
)
