"""Google Gemini API batch mode output (FORMATS.md §7): ``{"key", "response"}`` or ``{"key", "error"}``.

- custom_id = ``key`` (a string; an integer is taken as its text);
- model = ``response.modelVersion``, else the requested model (``--model`` / ``--requests``);
- usage = ``response.usageMetadata`` in the gemini dialect (usage.py): prompt = promptTokenCount
  (cached content included) + toolUsePromptTokenCount; cached = cachedContentTokenCount;
  completion = candidatesTokenCount + thoughtsTokenCount; reasoning = thoughtsTokenCount;
- status ``ok`` with a response and no error; an ``error`` line (a google.rpc.Status:
  ``code``, ``message``, ``status``) is a failed request, error_type its ``status`` (e.g.
  RESOURCE_EXHAUSTED), else its ``code``;
- no time of its own: priced at ``--at`` or at the replay; tier ``batch`` under ``--tier auto``.

The response is a GenerateContentResponse, as in Vertex AI rows (``RESPONSE`` and its SQL are
shared with vertex_batch). A plain success line takes ``FAST``.
"""

from __future__ import annotations

import json

from costlens.ingest.formats.base import FastPath, ResultFormat
from costlens.ingest.formats.usage import GEMINI

__all__ = [
    "ERROR_MESSAGE",
    "ERROR_SHAPE",
    "ERROR_TYPE",
    "FAST",
    "FORMAT",
    "RESPONSE",
    "RESPONSE_CONTENT",
    "candidate_texts",
    "response_fields",
]

RESPONSE = {
    "responseId": "VARCHAR",
    "modelVersion": "VARCHAR",
    "candidates": [{"finishReason": "VARCHAR"}],
    "usageMetadata": "JSON",
}
RESPONSE_CONTENT = {"candidates": [{"content": {"parts": [{"text": "VARCHAR", "thought": "BOOLEAN"}]}}]}
ERROR_SHAPE = {"code": "JSON", "message": "VARCHAR", "status": "VARCHAR"}
ERROR_TYPE = "coalesce(e.status, cl_str(e.code), 'error')"
ERROR_MESSAGE = "coalesce(e.message, CASE WHEN json_type(error_json) = 'VARCHAR' THEN error_json->>'$' END)"


def candidate_texts(response: str) -> str:
    """Each candidate's text (its parts joined, thought summaries left out), as a JSON array."""
    return (
        f"to_json(list_transform({response}.candidates, lambda c: array_to_string(list_transform("
        "list_filter(c.content.parts, lambda p: p.text IS NOT NULL AND NOT coalesce(p.thought, false)), "
        "lambda p: p.text), '')))"
    )


def response_fields(response: str) -> dict[str, str]:
    """The fields a GenerateContentResponse gives, at ``response``."""
    return {
        "response_id": f"{response}.responseId",
        "response_model": f"{response}.modelVersion",
        "usage_json": f"{response}.usageMetadata",
        "finish_reasons": f"list_transform({response}.candidates, lambda c: c.finishReason)",
        "completion": candidate_texts(response),
    }


# The fast path: a line with a string key, a response whose usageMetadata holds non-negative
# integer counts (promptTokenCount at least) and no cost, and no error stages without the full
# statement, exactly as it would stage there (tests/test_formats_gemini.py holds the two equal).
_FAST_LINE = {"key": "JSON", "custom_id": "JSON", "result": "JSON", "error": "JSON", "response": RESPONSE}
_FAST_USAGE = {**GEMINI.shape, "cost": "JSON"}
_FAST_SQL = f"""
WITH parsed AS (
    SELECT line_no, try(from_json(line, '__LINE_SHAPE__')) AS j
    FROM cl_chunk
),
usage AS (
    SELECT line_no, j, j.response AS r, CAST(j.response.usageMetadata AS VARCHAR) AS usage_text
    FROM parsed
),
typed AS (
    SELECT line_no, j, r,
        CASE WHEN starts_with(usage_text, '{{') THEN from_json(usage_text, '{json.dumps(_FAST_USAGE)}') END AS u
    FROM usage
),
counts AS (
    SELECT line_no, j, r, u,
        CAST(u.promptTokenCount AS VARCHAR) AS pt,
        CAST(u.candidatesTokenCount AS VARCHAR) AS ct,
        CAST(u.thoughtsTokenCount AS VARCHAR) AS th,
        CAST(u.cachedContentTokenCount AS VARCHAR) AS kt,
        CAST(u.toolUsePromptTokenCount AS VARCHAR) AS tu,
        CAST(u.totalTokenCount AS VARCHAR) AS tt
    FROM typed
),
plain AS (
    SELECT *,
        coalesce(j IS NOT NULL AND r IS NOT NULL
            AND j.result IS NULL AND j.custom_id IS NULL AND j.error IS NULL
            AND starts_with(CAST(j.key AS VARCHAR), '"')
            AND u IS NOT NULL AND u.cost IS NULL
            AND cl_is_count(pt)
            AND (ct IS NULL OR cl_is_count(ct))
            AND (th IS NULL OR cl_is_count(th))
            AND (kt IS NULL OR cl_is_count(kt))
            AND (tu IS NULL OR cl_is_count(tu))
            AND (tt IS NULL OR cl_is_count(tt)), false) AS plain
    FROM counts
),
valued AS (
    SELECT line_no, j, r, plain,
        CASE WHEN plain THEN CAST(pt AS BIGINT) END AS prompt_n,
        CASE WHEN plain THEN coalesce(CAST(ct AS BIGINT), 0) + coalesce(CAST(th AS BIGINT), 0) END AS completion_n,
        CASE WHEN plain THEN CAST(th AS BIGINT) END AS thoughts_n,
        CASE WHEN plain THEN CAST(kt AS BIGINT) END AS cached_n,
        CASE WHEN plain THEN coalesce(CAST(tu AS BIGINT), 0) END AS tool_n,
        CASE WHEN plain THEN CAST(tt AS BIGINT) END AS total_n
    FROM plain
)
SELECT
    line_no,
    plain AND coalesce(cached_n <= prompt_n, true) AS fast,
    CASE WHEN NOT fast THEN '(left to the full query)' END AS reason,
    j.key->>'$' AS custom_id,
    r.responseId AS response_id,
    r.modelVersion AS response_model,
    list_transform(r.candidates, lambda c: c.finishReason) AS finish_reasons,
    prompt_n + tool_n AS prompt_tokens,
    completion_n AS completion_tokens,
    coalesce(total_n, prompt_n + tool_n + completion_n) AS total_tokens,
    cached_n AS cached_tokens,
    thoughts_n AS reasoning_tokens,
    r.usageMetadata AS raw_usage__COMPLETION__
FROM valued
"""

FAST = FastPath(
    shape=_FAST_LINE,
    content_shape={"response": RESPONSE_CONTENT},
    sql=_FAST_SQL,
    completion=candidate_texts("r"),
    constants={
        "fmt": "'gemini_batch'",
        "provider_request_id": "CAST(NULL AS VARCHAR)",
        "status": "'ok'",
        "http_status": "CAST(NULL AS BIGINT)",
        "error_type": "CAST(NULL AS VARCHAR)",
        "error_message": "CAST(NULL AS VARCHAR)",
        "usage_source": "'reported'",
        "usage_format": "'gemini'",
        "cache_write_tokens": "CAST(NULL AS BIGINT)",
        "cache_write_1h_tokens": "CAST(NULL AS BIGINT)",
        "created_at": "CAST(NULL AS TIMESTAMP)",
        "reported_cost_usd": "CAST(NULL AS DECIMAL(38, 15))",
        "reported_cost_source": "CAST(NULL AS VARCHAR)",
    },
)

FORMAT = ResultFormat(
    name="gemini_batch",
    expected="a Gemini batch line",
    batch=True,
    # A usageMetadata without a key is a Gemini line that lost its key (rejected for it).
    detect="j.custom_id IS NULL AND ((j.key IS NOT NULL AND (j.response IS NOT NULL OR j.error IS NOT NULL)) "
    "OR j.response.usageMetadata IS NOT NULL)",
    shape={"key": "JSON", "custom_id": "JSON", "response": RESPONSE, "error": "JSON"},
    content_shape={"response": RESPONSE_CONTENT},
    error_shape=ERROR_SHAPE,
    fields={"id_json": "j.key", **response_fields("j.response"), "error_json": "j.error"},
    usage_dialect="'gemini'",
    ok="j.response IS NOT NULL AND error_json IS NULL",
    error_type=ERROR_TYPE,
    error_message=ERROR_MESSAGE,
    id_name="key",
    usage_label="usageMetadata",
    fast=FAST,
)
