"""Anthropic Message Batches results (FORMATS.md §3): ``{"custom_id", "result": {"type", ...}}``.

``result.type`` succeeded is ``ok``; errored, canceled and expired are ``error`` (errored with the
inner error's type and message). The message carries Anthropic usage (usage.py: input excludes
the cache; ``cache_creation`` splits the writes by lifetime) and no time: such lines are priced
at ``--at`` or at the replay. Bedrock's Claude bodies are the same message (``MESSAGE``).
"""

from __future__ import annotations

from costlens.ingest.formats.base import ResultFormat

__all__ = ["FORMAT", "MESSAGE", "MESSAGE_CONTENT", "message_completion", "message_finish_reasons"]

# An Anthropic Messages API response body.
MESSAGE = {"id": "VARCHAR", "type": "VARCHAR", "model": "VARCHAR", "usage": "JSON", "stop_reason": "VARCHAR"}
MESSAGE_CONTENT = {"content": [{"type": "VARCHAR", "text": "VARCHAR"}]}


def message_finish_reasons(message: str) -> str:
    return f"CASE WHEN {message}.stop_reason IS NOT NULL THEN [{message}.stop_reason] END"


def message_completion(message: str) -> str:
    return f"to_json(list_transform(list_filter({message}.content, lambda c: c.type = 'text'), lambda c: c.text))"


FORMAT = ResultFormat(
    name="anthropic_batch",
    expected="an Anthropic batch result",
    batch=True,
    detect="j.result.type IS NOT NULL",
    shape={
        "custom_id": "JSON",
        "result": {
            "type": "VARCHAR",
            "message": MESSAGE,
            "error": {
                "type": "VARCHAR",
                "message": "VARCHAR",
                "error": {"type": "VARCHAR", "message": "VARCHAR"},
            },
        },
    },
    content_shape={"result": {"message": MESSAGE_CONTENT}},
    fields={
        "id_json": "j.custom_id",
        "response_id": "j.result.message.id",
        "response_model": "j.result.message.model",
        "usage_json": "j.result.message.usage",
        "finish_reasons": message_finish_reasons("j.result.message"),
        "completion": message_completion("j.result.message"),
    },
    usage_dialect="'anthropic'",
    ok="j.result.type = 'succeeded'",
    error_type="CASE WHEN j.result.type = 'errored' "
    "THEN coalesce(j.result.error.error.type, j.result.error.type, 'errored') ELSE j.result.type END",
    error_message="coalesce(j.result.error.error.message, j.result.error.message)",
)
