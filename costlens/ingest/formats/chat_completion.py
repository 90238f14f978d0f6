"""Plain ``chat.completion`` objects, one per line (FORMATS.md §2-3), e.g. logged API responses.

An optional top-level ``custom_id`` names the request, else its line number does. Not a batch
format: under ``--tier auto`` the body's ``service_tier`` (flex, priority) prices it, else
standard. OpenRouter's answers are this shape; their ``usage.cost`` is kept as reported.
"""

from __future__ import annotations

from costlens.ingest.formats.base import ResultFormat
from costlens.ingest.formats.openai_batch import CHAT_ERROR_MESSAGE, CHAT_ERROR_TYPE, CREATED_CHECK
from costlens.ingest.formats.usage import OPENAI_OR_ANTHROPIC

__all__ = ["FORMAT"]

FORMAT = ResultFormat(
    name="chat_completion",
    expected="a chat.completion object",
    batch=False,
    detect="j.object = 'chat.completion' OR (j.choices IS NOT NULL AND j.model IS NOT NULL)",
    shape={
        "id": "VARCHAR",
        "object": "VARCHAR",
        "model": "VARCHAR",
        "created": "JSON",
        "service_tier": "VARCHAR",
        "usage": "JSON",
        "choices": [{"finish_reason": "VARCHAR"}],
        "error": "JSON",
        "custom_id": "JSON",
    },
    content_shape={"choices": [{"message": {"content": "JSON"}}]},
    error_shape={"code": "JSON", "type": "VARCHAR", "message": "VARCHAR"},
    fields={
        "id_json": "j.custom_id",
        "id_default": "CAST(line_no AS VARCHAR)",
        "response_id": "j.id",
        "response_model": "j.model",
        "created_at": "cl_unix_time(j.created)",
        "body_tier": "j.service_tier",
        "usage_json": "j.usage",
        "finish_reasons": "list_transform(j.choices, lambda c: c.finish_reason)",
        "error_json": "j.error",
        "completion": "to_json(list_transform(j.choices, lambda c: c.message.content))",
    },
    usage_dialect=OPENAI_OR_ANTHROPIC,
    ok="error_json IS NULL",
    error_type=CHAT_ERROR_TYPE,
    error_message=CHAT_ERROR_MESSAGE,
    checks=(CREATED_CHECK.format(created="j.created"),),
)
