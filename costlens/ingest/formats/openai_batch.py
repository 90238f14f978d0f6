"""OpenAI Batch API output and error lines (FORMATS.md §2), and the files that share their shape.

``{"id", "custom_id", "response": {"status_code", "request_id", "body": chat.completion}, "error"}``.
Status ``ok`` for HTTP 2xx with a body and no error; otherwise ``error`` with the error's
``type``, else its ``code``, else ``http_NNN``. Also read as openai_batch (FORMATS.md §7):

- Mistral batch output: the same shape, in any order; ``error`` is sometimes a bare string
  (error_type ``error``, the string as the message);
- Azure OpenAI global batch output: no top-level ``id``; ``response.request_id`` (a UUID) is kept
  as provider_request_id; ``prompt_filter_results`` / ``content_filter_results`` are not read;
  ``body.model`` is the base model (e.g. ``gpt-4o-2024-05-13``), which is what is priced.

vLLM ``run-batch`` lines are this shape too (``vllm_batch``). Nearly every line of a real file is a
plain success line: those take ``FAST``, a narrower statement giving the same rows.
"""

from __future__ import annotations

import json

from costlens.ingest.formats.base import FastPath, ResultFormat, merge_shapes
from costlens.ingest.formats.usage import ANTHROPIC, OPENAI, OPENAI_OR_ANTHROPIC

__all__ = ["CHAT_ERROR_MESSAGE", "CHAT_ERROR_TYPE", "DETECT", "FAST", "FORMAT"]

BODY = {
    "id": "VARCHAR",
    "object": "VARCHAR",
    "model": "VARCHAR",
    "created": "JSON",
    "service_tier": "VARCHAR",
    "usage": "JSON",
    "choices": [{"finish_reason": "VARCHAR"}],
    "error": "JSON",
}
BODY_CONTENT = {"choices": [{"message": {"content": "JSON"}}]}

# An OpenAI-style error (an object with type / code / message, or a bare string), as
# chat_completion lines carry it too. http_status is NULL where the format has none.
CHAT_ERROR_TYPE = "coalesce(e.type, cl_str(e.code), 'http_' || http_status, 'error')"
CHAT_ERROR_MESSAGE = (
    "coalesce(e.message, CASE WHEN json_type(error_json) = 'VARCHAR' THEN error_json->>'$' END)"
)
CREATED_CHECK = (
    "CASE WHEN {created} IS NOT NULL AND created_at IS NULL "
    "THEN 'created is not a Unix timestamp (' || left(CAST({created} AS VARCHAR), 40) || ')' END"
)

# A chat.completion object is chat_completion's, even inside this shape.
DETECT = (
    "coalesce(j.object, '') <> 'chat.completion' "
    "AND (j.response IS NOT NULL OR (j.error IS NOT NULL AND j.custom_id IS NOT NULL))"
)


# The fast path. Nearly every line of a real batch output file is the same
# thing: an OpenAI/vLLM success line with status 200, a string custom_id, an
# OpenAI-style usage object of non-negative integers, no reported cost and no
# error. For those, one narrower parse and a handful of checks give exactly the
# row the full staging statement would give (its constant columns filled in at
# insert time); any line that is not plainly of that shape (or that the checks
# cannot vouch for) is left to the full statement, which remains the single
# statement of the rules. tests/test_replay_fastpath.py holds the two equal on
# hand-made edge cases and on generated lines.
_FAST_BODY = {
    "id": "VARCHAR",
    "model": "VARCHAR",
    "created": "JSON",
    "error": "JSON",
    "usage": "JSON",
    "choices": [{"finish_reason": "VARCHAR"}],
}
_FAST_LINE = {
    "id": "VARCHAR",
    "custom_id": "JSON",
    "object": "JSON",
    "result": "JSON",
    "error": "JSON",
    "response": {"status_code": "JSON", "request_id": "VARCHAR", "body": _FAST_BODY},
}
_FAST_USAGE = merge_shapes(OPENAI.shape, ANTHROPIC.shape, {"cost": "JSON"})
_FAST_SQL = f"""
WITH parsed AS (
    -- A blank line parses to NULL here, is not plain, and the full statement skips it.
    SELECT line_no, try(from_json(line, '__LINE_SHAPE__')) AS j
    FROM cl_chunk
),
usage AS (
    SELECT line_no, j, j.response.body AS b, CAST(j.response.body.usage AS VARCHAR) AS usage_text
    FROM parsed
),
typed AS (
    SELECT line_no, j, b, usage_text,
        CASE WHEN starts_with(usage_text, '{{') THEN from_json(usage_text, '{json.dumps(_FAST_USAGE)}') END AS u
    FROM usage
),
counts AS (
    SELECT line_no, j, b, usage_text, u,
        CAST(u.prompt_tokens AS VARCHAR) AS pt,
        CAST(u.completion_tokens AS VARCHAR) AS ct,
        CAST(u.total_tokens AS VARCHAR) AS tt,
        CAST(u.prompt_tokens_details.cached_tokens AS VARCHAR) AS kt,
        CAST(u.completion_tokens_details.reasoning_tokens AS VARCHAR) AS rt,
        cl_unix_time(b.created) AS created_at
    FROM typed
),
plain AS (
    SELECT *,
        coalesce(j IS NOT NULL AND b IS NOT NULL
            AND j.object IS NULL AND j.result IS NULL AND j.error IS NULL AND b.error IS NULL
            AND CAST(j.response.status_code AS VARCHAR) = '200'
            AND starts_with(CAST(j.custom_id AS VARCHAR), '"')
            AND u IS NOT NULL AND u.cost IS NULL
            AND u.input_tokens IS NULL AND u.output_tokens IS NULL
            AND u.cache_creation_input_tokens IS NULL AND u.cache_read_input_tokens IS NULL
            AND cl_is_count(pt) AND cl_is_count(ct)
            AND (tt IS NULL OR cl_is_count(tt))
            AND (kt IS NULL OR cl_is_count(kt))
            AND (rt IS NULL OR cl_is_count(rt))
            AND (b.created IS NULL OR created_at IS NOT NULL), false) AS plain
    FROM counts
),
valued AS (
    SELECT *,
        CASE WHEN plain THEN CAST(pt AS BIGINT) END AS prompt_tokens,
        CASE WHEN plain THEN CAST(ct AS BIGINT) END AS completion_tokens,
        CASE WHEN plain THEN CAST(kt AS BIGINT) END AS cached_tokens,
        CASE WHEN plain THEN CAST(rt AS BIGINT) END AS reasoning_tokens
    FROM plain
)
SELECT
    line_no,
    plain AND coalesce(cached_tokens <= prompt_tokens, true)
          AND coalesce(reasoning_tokens <= completion_tokens, true) AS fast,
    CASE WHEN NOT fast THEN '(left to the full query)' END AS reason,
    CASE WHEN starts_with(coalesce(j.id, ''), 'vllm-') THEN 'vllm_batch' ELSE 'openai_batch' END AS fmt,
    j.custom_id->>'$' AS custom_id,
    b.id AS response_id,
    j.response.request_id AS provider_request_id,
    b.model AS response_model,
    list_transform(b.choices, lambda c: c.finish_reason) AS finish_reasons,
    prompt_tokens,
    completion_tokens,
    coalesce(CASE WHEN plain THEN CAST(tt AS BIGINT) END, prompt_tokens + completion_tokens) AS total_tokens,
    cached_tokens,
    reasoning_tokens,
    b.usage AS raw_usage,
    CASE WHEN plain THEN created_at END AS created_at__COMPLETION__
FROM valued
"""

FAST = FastPath(
    shape=_FAST_LINE,
    content_shape={"response": {"body": BODY_CONTENT}},
    sql=_FAST_SQL,
    completion="to_json(list_transform(b.choices, lambda c: c.message.content))",
    constants={
        "status": "'ok'",
        "http_status": "CAST(200 AS BIGINT)",
        "error_type": "CAST(NULL AS VARCHAR)",
        "error_message": "CAST(NULL AS VARCHAR)",
        "usage_source": "'reported'",
        "usage_format": "'openai'",
        "cache_write_tokens": "CAST(NULL AS BIGINT)",
        "cache_write_1h_tokens": "CAST(NULL AS BIGINT)",
        "reported_cost_usd": "CAST(NULL AS DECIMAL(38, 15))",
        "reported_cost_source": "CAST(NULL AS VARCHAR)",
    },
)

FORMAT = ResultFormat(
    name="openai_batch",
    expected="an OpenAI/vLLM batch output line",
    batch=True,
    detect=DETECT,
    shape={
        "id": "VARCHAR",
        "object": "VARCHAR",
        "custom_id": "JSON",
        "error": "JSON",
        "response": {"status_code": "JSON", "request_id": "VARCHAR", "body": BODY},
    },
    content_shape={"response": {"body": BODY_CONTENT}},
    error_shape={"code": "JSON", "type": "VARCHAR", "message": "VARCHAR"},
    fields={
        "id_json": "j.custom_id",
        "response_id": "j.response.body.id",
        "provider_request_id": "j.response.request_id",
        "response_model": "j.response.body.model",
        "created_at": "cl_unix_time(j.response.body.created)",
        "usage_json": "j.response.body.usage",
        "finish_reasons": "list_transform(j.response.body.choices, lambda c: c.finish_reason)",
        "http_status": "cl_int(j.response.status_code)",
        "error_json": "coalesce(j.response.body.error, j.error)",
        "completion": "to_json(list_transform(j.response.body.choices, lambda c: c.message.content))",
    },
    usage_dialect=OPENAI_OR_ANTHROPIC,
    ok="http_status BETWEEN 200 AND 299 AND j.response.body IS NOT NULL AND error_json IS NULL",
    error_type=CHAT_ERROR_TYPE,
    error_message=CHAT_ERROR_MESSAGE,
    checks=(
        CREATED_CHECK.format(created="j.response.body.created"),
        "CASE WHEN j.response IS NOT NULL AND http_status IS NULL THEN 'response.status_code is not an HTTP status' END",
    ),
    fast=FAST,
)
