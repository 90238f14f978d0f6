"""Replay recorded results into the store without sending anything.

Reads, auto-detected per line (README "Input formats"):
- OpenAI Batch API output and error lines (``openai_batch``),
- vLLM ``run-batch`` output lines, ids ``vllm-…`` (``vllm_batch``),
- Anthropic Message Batches results (``anthropic_batch``),
- plain ``chat.completion`` objects, optional top-level ``custom_id`` (``chat_completion``).

Shape: the file is streamed in chunks (``costlens.ingest.jsonl``); DuckDB parses each
chunk with one ``from_json`` into a struct covering every format, normalises
usage into disjoint token buckets, and computes every rejection reason in the
same statement. Plain OpenAI/vLLM success lines (nearly all of a real batch
file) first take a cheaper fast path that gives the same rows; the full
statement stages the rest (``ChunkStager``). Accepted rows go to ``requests``/``results`` and rejected ones to
``rejects`` with bulk INSERT … SELECT — never a Python loop over rows. One file
is one run and one transaction: a replay lands whole or not at all, and a file
already replayed into the DB (same sha256) is refused unless forced.

Usage normalisation (the bugs this exists to avoid, see FORMATS.md §3):
- OpenAI: ``prompt_tokens`` includes ``cached_tokens``; ``completion_tokens``
  includes ``reasoning_tokens``. Stored as reported; the cost view subtracts.
- Anthropic: ``input_tokens`` excludes cache reads and writes, so
  prompt_tokens = input + cache_creation + cache_read is stored, with
  cached_tokens = cache_read and cache_write_tokens = cache_creation.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, NamedTuple

import duckdb
import pyarrow as pa

from costlens import __version__
from costlens.errors import AlreadyReplayedError, InputError, StoreError
from costlens.ingest.jsonl import DEFAULT_CHUNK_BYTES, FileDigest, LineChunk, read_line_chunks
from costlens.ingest.rejects import RAW_LIMIT, Reject, explain_unparsed
from costlens.ingest.requests_file import RequestFile, stage_request_file
from costlens.store.db import utcnow
from costlens.store.macros import install_macros, scalar

__all__ = ["ReplayOptions", "ReplayOutcome", "ReplayResult", "TierMode", "replay_files"]

TierMode = Literal["auto", "standard", "batch", "flex", "priority"]

_USAGE = {
    "prompt_tokens": "JSON",
    "completion_tokens": "JSON",
    "total_tokens": "JSON",
    "prompt_tokens_details": {"cached_tokens": "JSON"},
    "completion_tokens_details": {"reasoning_tokens": "JSON"},
    "input_tokens": "JSON",
    "output_tokens": "JSON",
    "cache_creation_input_tokens": "JSON",
    "cache_read_input_tokens": "JSON",
    "cache_creation": {"ephemeral_5m_input_tokens": "JSON", "ephemeral_1h_input_tokens": "JSON"},
}
_COMPLETION = {
    "id": "VARCHAR",
    "object": "VARCHAR",
    "model": "VARCHAR",
    "created": "JSON",
    "service_tier": "VARCHAR",
    "usage": "JSON",
    "choices": [{"finish_reason": "VARCHAR", "message": {"content": "JSON"}}],
    "error": "JSON",
}
# Without --store-content the completion text is not even parsed out: it is the
# largest part of a line, and the source file keeps it anyway.
_COMPLETION_LEAN = {**_COMPLETION, "choices": [{"finish_reason": "VARCHAR"}]}
_LINE = {
    **_COMPLETION,
    "custom_id": "JSON",
    "response": {"status_code": "JSON", "request_id": "VARCHAR", "body": _COMPLETION},
    "result": {
        "type": "VARCHAR",
        "message": {
            "id": "VARCHAR",
            "model": "VARCHAR",
            "usage": "JSON",
            "stop_reason": "VARCHAR",
            "content": [{"type": "VARCHAR", "text": "VARCHAR"}],
        },
        "error": {
            "type": "VARCHAR",
            "message": "VARCHAR",
            "error": {"type": "VARCHAR", "message": "VARCHAR"},
        },
    },
}
_LINE_LEAN = {
    **_LINE,
    **_COMPLETION_LEAN,
    "response": {"status_code": "JSON", "request_id": "VARCHAR", "body": _COMPLETION_LEAN},
    "result": {
        **_LINE["result"],  # type: ignore[dict-item]
        "message": {"id": "VARCHAR", "model": "VARCHAR", "usage": "JSON", "stop_reason": "VARCHAR"},
    },
}
_ERROR = {"code": "JSON", "type": "VARCHAR", "message": "VARCHAR"}

_BATCH_FORMATS = "('openai_batch', 'vllm_batch', 'anthropic_batch')"
_TOKEN_FIELDS = (
    ("usage.prompt_tokens", "u.prompt_tokens"),
    ("usage.completion_tokens", "u.completion_tokens"),
    ("usage.total_tokens", "u.total_tokens"),
    ("usage.prompt_tokens_details.cached_tokens", "u.prompt_tokens_details.cached_tokens"),
    ("usage.completion_tokens_details.reasoning_tokens", "u.completion_tokens_details.reasoning_tokens"),
    ("usage.input_tokens", "u.input_tokens"),
    ("usage.output_tokens", "u.output_tokens"),
    ("usage.cache_creation_input_tokens", "u.cache_creation_input_tokens"),
    ("usage.cache_read_input_tokens", "u.cache_read_input_tokens"),
    ("usage.cache_creation.ephemeral_5m_input_tokens", "u.cache_creation.ephemeral_5m_input_tokens"),
    ("usage.cache_creation.ephemeral_1h_input_tokens", "u.cache_creation.ephemeral_1h_input_tokens"),
)
_TOKEN_ERRORS = ",\n".join(f"cl_count_error('{name}', {expr})" for name, expr in _TOKEN_FIELDS)

# Stage one chunk: parse, detect the format, pull out the fields, normalise usage,
# and give every line either clean values or a reason.
_STAGE = f"""
WITH parsed AS (
    SELECT line_no, line, try(from_json(line, '__LINE_SHAPE__')) AS j
    FROM cl_chunk WHERE NOT cl_blank(line)
),
detected AS (
    SELECT *,
        CASE
            WHEN j IS NULL THEN NULL
            WHEN j.result.type IS NOT NULL THEN 'anthropic_batch'
            WHEN j.object = 'chat.completion' THEN 'chat_completion'
            WHEN j.response IS NOT NULL OR (j.error IS NOT NULL AND j.custom_id IS NOT NULL)
                THEN CASE WHEN starts_with(coalesce(j.id, ''), 'vllm-') THEN 'vllm_batch' ELSE 'openai_batch' END
            WHEN j.choices IS NOT NULL AND j.model IS NOT NULL THEN 'chat_completion'
        END AS fmt
    FROM parsed
),
fields AS (
    SELECT line_no, j, fmt,
        CASE WHEN fmt = 'chat_completion' THEN coalesce(cl_str(j.custom_id), CAST(line_no AS VARCHAR))
             ELSE cl_str(j.custom_id) END AS custom_id,
        CASE fmt WHEN 'chat_completion' THEN j.id WHEN 'anthropic_batch' THEN j.result.message.id
                 ELSE j.response.body.id END AS response_id,
        CASE fmt WHEN 'chat_completion' THEN j.model WHEN 'anthropic_batch' THEN j.result.message.model
                 ELSE j.response.body.model END AS response_model,
        CASE fmt WHEN 'chat_completion' THEN j.created WHEN 'anthropic_batch' THEN NULL
                 ELSE j.response.body.created END AS created_json,
        CASE fmt WHEN 'chat_completion' THEN j.service_tier ELSE j.response.body.service_tier END AS body_tier,
        CASE fmt WHEN 'chat_completion' THEN j.usage WHEN 'anthropic_batch' THEN j.result.message.usage
                 ELSE j.response.body.usage END AS usage_json,
        CASE fmt WHEN 'anthropic_batch' THEN CASE WHEN j.result.message.stop_reason IS NOT NULL
                                                  THEN [j.result.message.stop_reason] END
                 WHEN 'chat_completion' THEN list_transform(j.choices, lambda c: c.finish_reason)
                 ELSE list_transform(j.response.body.choices, lambda c: c.finish_reason) END AS finish_reasons,
        __COMPLETION__ AS completion,
        CASE WHEN fmt IN ('openai_batch', 'vllm_batch') THEN j.response.request_id END AS provider_request_id,
        CASE WHEN fmt IN ('openai_batch', 'vllm_batch') THEN cl_int(j.response.status_code) END AS http_status,
        CASE fmt WHEN 'chat_completion' THEN j.error WHEN 'anthropic_batch' THEN NULL
                 ELSE coalesce(j.response.body.error, j.error) END AS error_json
    FROM detected
),
usage AS (
    SELECT *,
        usage_json IS NOT NULL AS has_usage,
        CASE WHEN json_type(usage_json) = 'OBJECT' THEN from_json(usage_json, '{json.dumps(_USAGE)}') END AS u,
        CASE WHEN json_type(error_json) = 'OBJECT' THEN from_json(error_json, '{json.dumps(_ERROR)}') END AS e
    FROM fields
),
buckets AS (
    SELECT *,
        (u.prompt_tokens IS NULL AND u.completion_tokens IS NULL
         AND (u.input_tokens IS NOT NULL OR u.output_tokens IS NOT NULL)) AS anthropic_usage
    FROM usage
),
normalised AS (
    SELECT *,
        CASE WHEN anthropic_usage
             THEN cl_int(u.input_tokens) + coalesce(cl_int(u.cache_creation_input_tokens), 0)
                  + coalesce(cl_int(u.cache_read_input_tokens), 0)
             ELSE cl_int(u.prompt_tokens) END AS prompt_tokens,
        CASE WHEN anthropic_usage THEN cl_int(u.output_tokens) ELSE cl_int(u.completion_tokens) END
            AS completion_tokens,
        CASE WHEN anthropic_usage THEN cl_int(u.cache_read_input_tokens)
             ELSE cl_int(u.prompt_tokens_details.cached_tokens) END AS cached_tokens,
        CASE WHEN anthropic_usage THEN coalesce(cl_int(u.cache_creation_input_tokens),
             cl_int(u.cache_creation.ephemeral_5m_input_tokens) + cl_int(u.cache_creation.ephemeral_1h_input_tokens))
             END AS cache_write_tokens,
        -- FORMATS.md §8: the 1-hour part of the cache writes (the 5-minute part is the rest).
        CASE WHEN anthropic_usage THEN cl_int(u.cache_creation.ephemeral_1h_input_tokens) END
            AS cache_write_1h_tokens,
        CASE WHEN anthropic_usage THEN cl_int(u.cache_creation.ephemeral_5m_input_tokens) END
            AS cache_write_5m_tokens,
        CASE WHEN anthropic_usage THEN NULL
             ELSE cl_int(u.completion_tokens_details.reasoning_tokens) END AS reasoning_tokens,
        cl_unix_time(created_json) AS created_at
    FROM buckets
),
judged AS (
    SELECT *,
        CASE fmt
            WHEN 'anthropic_batch' THEN CASE WHEN j.result.type = 'succeeded' THEN 'ok' ELSE 'error' END
            WHEN 'chat_completion' THEN CASE WHEN error_json IS NULL THEN 'ok' ELSE 'error' END
            ELSE CASE WHEN http_status BETWEEN 200 AND 299 AND j.response.body IS NOT NULL AND error_json IS NULL
                      THEN 'ok' ELSE 'error' END
        END AS status,
        CASE
            WHEN j IS NULL THEN 'invalid JSON'
            WHEN fmt IS NULL THEN 'unrecognised line: expected an OpenAI/vLLM batch output line, '
                                  || 'an Anthropic batch result or a chat.completion object'
            ELSE nullif(concat_ws('; ',
                CASE WHEN j.custom_id IS NOT NULL AND cl_str(j.custom_id) IS NULL THEN 'custom_id must be a string'
                     WHEN custom_id IS NULL THEN 'missing custom_id' END,
                CASE WHEN usage_json IS NOT NULL AND json_type(usage_json) <> 'OBJECT'
                     THEN 'usage is not an object' END,
                {_TOKEN_ERRORS},
                CASE WHEN u IS NOT NULL AND anthropic_usage AND (u.input_tokens IS NULL OR u.output_tokens IS NULL)
                     THEN 'usage lacks input_tokens or output_tokens'
                     WHEN u IS NOT NULL AND NOT anthropic_usage
                          AND (u.prompt_tokens IS NULL OR u.completion_tokens IS NULL)
                     THEN 'usage lacks prompt_tokens or completion_tokens' END,
                CASE WHEN cached_tokens > prompt_tokens AND NOT anthropic_usage
                     THEN 'usage: cached_tokens (' || cached_tokens || ') > prompt_tokens (' || prompt_tokens || ')' END,
                CASE WHEN cache_write_1h_tokens > cache_write_tokens
                     THEN 'usage: cache_creation.ephemeral_1h_input_tokens (' || cache_write_1h_tokens
                          || ') > cache_creation_input_tokens (' || cache_write_tokens || ')'
                     WHEN cache_write_5m_tokens + cache_write_1h_tokens <> cache_write_tokens
                     THEN 'usage: cache_creation (5m ' || cache_write_5m_tokens || ' + 1h ' || cache_write_1h_tokens
                          || ') does not add up to cache_creation_input_tokens (' || cache_write_tokens || ')' END,
                CASE WHEN reasoning_tokens > completion_tokens
                     THEN 'usage: reasoning_tokens (' || reasoning_tokens || ') > completion_tokens ('
                          || completion_tokens || ')' END,
                CASE WHEN created_json IS NOT NULL AND created_at IS NULL
                     THEN 'created is not a Unix timestamp (' || left(CAST(created_json AS VARCHAR), 40) || ')' END,
                CASE WHEN fmt IN ('openai_batch', 'vllm_batch') AND j.response IS NOT NULL AND http_status IS NULL
                     THEN 'response.status_code is not an HTTP status' END
            ), '')
        END AS reason
    FROM normalised
)
SELECT
    line_no, reason, fmt, custom_id, response_id, provider_request_id, response_model,
    status, http_status,
    CASE
        WHEN status = 'ok' THEN NULL
        WHEN fmt = 'anthropic_batch' THEN
            CASE WHEN j.result.type = 'errored'
                 THEN coalesce(j.result.error.error.type, j.result.error.type, 'errored')
                 ELSE j.result.type END
        ELSE coalesce(e.type, cl_str(e.code), CASE WHEN http_status IS NOT NULL THEN 'http_' || http_status END,
                      'error')
    END AS error_type,
    CASE
        WHEN status = 'ok' THEN NULL
        WHEN fmt = 'anthropic_batch' THEN coalesce(j.result.error.error.message, j.result.error.message)
        ELSE coalesce(e.message, CASE WHEN json_type(error_json) = 'VARCHAR' THEN error_json->>'$' END)
    END AS error_message,
    finish_reasons,
    CASE WHEN has_usage THEN 'reported' ELSE 'none' END AS usage_source,
    CASE WHEN has_usage THEN CASE WHEN anthropic_usage THEN 'anthropic' ELSE 'openai' END END AS usage_format,
    prompt_tokens, completion_tokens,
    CASE WHEN anthropic_usage THEN prompt_tokens + completion_tokens
         ELSE coalesce(cl_int(u.total_tokens), prompt_tokens + completion_tokens) END AS total_tokens,
    cached_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens,
    usage_json AS raw_usage,
    created_at,
    CASE
        WHEN $tier <> 'auto' THEN $tier
        WHEN fmt IN {_BATCH_FORMATS} THEN 'batch'
        WHEN body_tier IN ('flex', 'priority') THEN body_tier
        ELSE 'standard'
    END AS service_tier,
    completion
FROM judged
"""

_COMPLETION_TEXT = """CASE
            WHEN fmt = 'anthropic_batch'
                THEN to_json(list_transform(list_filter(j.result.message.content, lambda c: c.type = 'text'),
                                            lambda c: c.text))
            WHEN fmt = 'chat_completion' THEN to_json(list_transform(j.choices, lambda c: c.message.content))
            ELSE to_json(list_transform(j.response.body.choices, lambda c: c.message.content)) END"""


def _stage_sql(*, store_content: bool) -> str:
    """The staging query, parsing the completion text only when it is to be stored."""
    shape = json.dumps(_LINE if store_content else _LINE_LEAN)
    completion = _COMPLETION_TEXT if store_content else "CAST(NULL AS VARCHAR)"
    return _STAGE.replace("__LINE_SHAPE__", shape).replace("__COMPLETION__", completion)


# The fast path. Nearly every line of a real batch output file is the same
# thing: an OpenAI/vLLM success line with status 200, a string custom_id, an
# OpenAI-style usage object of non-negative integers and no error. For those,
# one narrower parse and a handful of checks give exactly the row the full
# staging query above would give (its constant columns filled in at insert
# time, ``fast_filled_sql``); any line that is not plainly of that shape
# (or that the checks cannot vouch for) is left to the full query, which
# remains the single statement of the rules. tests/test_replay_fastpath.py holds the
# two equal on hand-made edge cases and on generated lines.
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
_FAST_LINE_CONTENT = {
    **_FAST_LINE,
    "response": {
        "status_code": "JSON",
        "request_id": "VARCHAR",
        "body": {**_FAST_BODY, "choices": [{"finish_reason": "VARCHAR", "message": {"content": "JSON"}}]},
    },
}
_FAST = f"""
WITH parsed AS (
    -- A blank line parses to NULL here, is not plain, and the full query skips it.
    SELECT line_no, try(from_json(line, '__LINE_SHAPE__')) AS j
    FROM cl_chunk
),
usage AS (
    SELECT line_no, j, j.response.body AS b, CAST(j.response.body.usage AS VARCHAR) AS usage_text
    FROM parsed
),
typed AS (
    SELECT line_no, j, b, usage_text,
        CASE WHEN starts_with(usage_text, '{{') THEN from_json(usage_text, '{json.dumps(_USAGE)}') END AS u
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
            AND u IS NOT NULL
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
# What every fast-path row has in common is not staged (the staged chunks
# cross threads as Arrow, and each column costs on both sides): this fills it
# in, giving the columns of the full query, when the rows are inserted.
_FAST_FILLED = """
SELECT
    line_no, reason, fmt, custom_id, response_id, provider_request_id, response_model,
    'ok' AS status,
    CAST(200 AS BIGINT) AS http_status,
    CAST(NULL AS VARCHAR) AS error_type,
    CAST(NULL AS VARCHAR) AS error_message,
    finish_reasons,
    'reported' AS usage_source,
    'openai' AS usage_format,
    prompt_tokens, completion_tokens, total_tokens, cached_tokens,
    CAST(NULL AS BIGINT) AS cache_write_tokens,
    CAST(NULL AS BIGINT) AS cache_write_1h_tokens,
    reasoning_tokens, raw_usage, created_at,
    CASE WHEN $tier <> 'auto' THEN $tier ELSE 'batch' END AS service_tier,
    __COMPLETION__ AS completion
FROM cl_stage
"""
# Lines the fast path leaves over are staged by the full query this many at a time.
_POOL_ROWS = 50_000
_FAST_COMPLETION_TEXT = "to_json(list_transform(b.choices, lambda c: c.message.content))"


def _fast_sql(*, store_content: bool) -> str:
    shape = json.dumps(_FAST_LINE_CONTENT if store_content else _FAST_LINE)
    completion = f",\n    {_FAST_COMPLETION_TEXT} AS completion" if store_content else ""
    return _FAST.replace("__LINE_SHAPE__", shape).replace("__COMPLETION__", completion)


def fast_filled_sql(*, store_content: bool) -> str:
    """A fast-path chunk (registered as ``cl_stage``) with the full query's columns; takes ``$tier``."""
    return _FAST_FILLED.replace("__COMPLETION__", "completion" if store_content else "CAST(NULL AS VARCHAR)")


# After the whole file is in: a custom_id seen on an earlier line makes every
# later line with it a duplicate. One hash aggregate over the run is far cheaper
# than checking each chunk against everything before it.
_DUPLICATES = """
WITH dup AS (
    SELECT custom_id, min(request_id) AS first_line
    FROM requests WHERE run_id = $run_id
    GROUP BY custom_id HAVING count(*) > 1
)
SELECT q.request_id, q.custom_id, dup.first_line
FROM requests q JOIN dup ON dup.custom_id = q.custom_id
WHERE q.run_id = $run_id AND q.request_id <> dup.first_line
ORDER BY q.request_id
"""

_INSERT_REQUESTS = """
INSERT INTO requests (run_id, request_id, custom_id, line_no, requested_model)
SELECT $run_id, line_no, custom_id, line_no, $model FROM cl_stage WHERE reason IS NULL
"""

# With --requests: the line numbers and models of the batch input file, and
# each matched request's parameters.
_INSERT_REQUESTS_JOINED = """
INSERT INTO requests (run_id, request_id, custom_id, line_no, requested_model)
SELECT $run_id, s.line_no, s.custom_id, coalesce(q.line_no, s.line_no), coalesce(q.model, $model)
FROM cl_stage s LEFT JOIN cl_req_input q ON q.custom_id = s.custom_id
WHERE s.reason IS NULL
"""
_INSERT_PARAMS = """
INSERT INTO request_params (
    run_id, request_id, temperature, max_tokens, stream, top_p, frequency_penalty, presence_penalty,
    stop, n, "user", extra_params, msg_count, msg_system, msg_user, msg_assistant, msg_tool,
    msg_developer, messages_sha256, messages)
SELECT $run_id, s.line_no, q.temperature, q.max_tokens, q.stream, q.top_p, q.frequency_penalty,
       q.presence_penalty, q.stop, q.n, q."user", q.extra_params, q.msg_count, q.msg_system, q.msg_user,
       q.msg_assistant, q.msg_tool, q.msg_developer, q.messages_sha256, q.messages
FROM cl_stage s JOIN cl_req_input q ON q.custom_id = s.custom_id
WHERE s.reason IS NULL
"""

_INSERT_RESULTS = """
INSERT INTO results (
    run_id, request_id, source_line_no, source_format, service_tier, status, http_status, error_type,
    error_message, response_id, provider_request_id, response_model, finish_reasons, usage_source,
    usage_format, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cache_write_tokens,
    cache_write_1h_tokens, reasoning_tokens, raw_usage, created_at, priced_at)
SELECT $run_id, line_no, line_no, fmt, service_tier, status, http_status, error_type, error_message,
       response_id, provider_request_id, response_model, finish_reasons, usage_source, usage_format,
       prompt_tokens, completion_tokens, total_tokens, cached_tokens, cache_write_tokens, cache_write_1h_tokens,
       reasoning_tokens, raw_usage, created_at, coalesce(created_at, $now)
FROM cl_stage WHERE reason IS NULL
"""
# With --store-content: the completion text and its sha256.
_INSERT_DETAILS = """
INSERT INTO result_details (run_id, request_id, completion, completion_sha256)
SELECT $run_id, line_no, completion, sha256(completion)
FROM cl_stage WHERE reason IS NULL AND completion IS NOT NULL
"""


@dataclass(frozen=True, kw_only=True)
class ReplayOptions:
    """What to replay and how; mirrors ``costlens replay``'s options."""

    files: Sequence[Path]
    requests_file: Path | None = None
    # Requested model for lines whose request is not in requests_file (e.g. an
    # expired line carries no model; without this it is "(unknown model)").
    model: str | None = None
    tier: TierMode = "auto"
    run_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    force: bool = False
    # Copy completion text (and its sha256) into the DB; off by default for a
    # replay, whose source file already is the record of the content.
    store_content: bool = False
    command_line: str | None = None
    pricing_sha256: str | None = None
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    # The time (naive UTC) of lines that carry none of their own (Anthropic batch results, expired
    # lines); None = the time of the replay.
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """One replayed file: read = stored + rejected, always."""

    run_id: int
    file: str
    sha256: str
    lines_read: int
    stored: int
    rejected: int
    failed: int
    formats: Mapping[str, int]
    rejects: tuple[Reject, ...]


def _insert_rejects(conn: duckdb.DuckDBPyConnection, run_id: int, rejects: Sequence[Reject]) -> None:
    if not rejects:
        return
    now = utcnow()
    conn.executemany(
        "INSERT INTO rejects VALUES (?, ?, ?, ?, ?, ?)",
        [(run_id, r.file, r.line_no, r.reason, r.raw, now) for r in rejects],
    )


class ChunkStager:
    """Stages chunks of (line_no, line): the fast path first, the full query for the rest.

    Lines the fast path does not take are pooled across chunks and staged by
    the full query a few tens of thousands at a time: planning that query costs
    more than running it on the ~1% of lines a typical chunk leaves over.
    ``fast=False`` runs only the full query (the reference the fast path is
    tested against). After a chunk where fewer than half the lines took the
    fast path (say, an Anthropic results file) it is not tried again for this
    file, so other formats pay for it once at most.
    """

    def __init__(
        self,
        cursor: duckdb.DuckDBPyConnection,
        *,
        tier: str,
        store_content: bool,
        fast: bool = True,
        pool_rows: int = _POOL_ROWS,
    ) -> None:
        self._cursor = cursor
        self._params = {"tier": tier}
        self._full_sql = _stage_sql(store_content=store_content)
        fast_sql = _fast_sql(store_content=store_content)
        # Without try() the parse is cheaper; a chunk holding a line that is not
        # JSON at all makes it fail, and that chunk is parsed again with try().
        self._fast_sql = fast_sql.replace("try(from_json(", "(from_json(", 1)
        self._fast_sql_try = fast_sql
        self.fast = fast
        self._pool_rows = pool_rows
        self._pool: list[pa.Table] = []
        self._pooled = 0

    def stage(self, chunk: pa.Table) -> list[Staged]:
        """Staged rows, with rejected lines as (line_no, reason, line), of this and pooled chunks."""
        out: list[Staged] = []
        rest = chunk
        if self.fast:
            done, rest = self._try_fast(chunk)
            if done.num_rows:
                out.append(Staged(done, [], fast=True))
        if rest.num_rows:
            self._pool.append(rest)
            self._pooled += rest.num_rows
        if self._pooled >= self._pool_rows:
            out.append(self._full())
        return out

    def finish(self) -> list[Staged]:
        """Stage whatever is still pooled; call once after the last chunk."""
        return [self._full()] if self._pooled else []

    def _try_fast(self, chunk: pa.Table) -> tuple[pa.Table, pa.Table]:
        cursor = self._cursor
        cursor.register("cl_chunk", chunk)
        try:
            try:
                tried = cursor.sql(self._fast_sql).to_arrow_table()
            except duckdb.InvalidInputException:
                tried = cursor.sql(self._fast_sql_try).to_arrow_table()
        finally:
            cursor.unregister("cl_chunk")
        # Rows not taken keep a reason, so the loaders skip them (they are
        # staged again by the full query): no copy of the staged chunk.
        import pyarrow.compute as pc  # on first use, in a worker: ~80 ms off the command's start-up

        took = pc.cast(tried.column("fast"), pa.bool_())  # arrow.bool8 under lossless conversion
        done = tried.drop_columns(["fast"])
        taken = pc.sum(took).as_py() or 0
        if taken == chunk.num_rows:
            return done, chunk.slice(0, 0)
        if taken * 2 < chunk.num_rows:
            self.fast = False
        if taken == 0:
            done = done.slice(0, 0)
        left = tried.column("line_no").filter(pc.invert(took))
        return done, chunk.filter(pc.is_in(chunk.column("line_no"), value_set=left))

    def _full(self) -> Staged:
        cursor = self._cursor
        pooled = pa.concat_tables(self._pool)
        self._pool, self._pooled = [], 0
        cursor.register("cl_chunk", pooled)
        try:
            table = cursor.sql(self._full_sql, params=self._params).to_arrow_table()
            cursor.register("cl_staged", table)
            try:
                bad = cursor.execute(
                    "SELECT s.line_no, s.reason, c.line FROM cl_staged s JOIN cl_chunk c USING (line_no) "
                    "WHERE s.reason IS NOT NULL ORDER BY s.line_no"
                ).fetchall()
            finally:
                cursor.unregister("cl_staged")
        finally:
            cursor.unregister("cl_chunk")
        return Staged(table, bad, fast=False)


class Staged(NamedTuple):
    """Staged rows of some lines, and those rejected as (line_no, reason, line).

    ``fast`` rows hold only the columns the fast path varies; ``fast_filled_sql``
    adds the rest.
    """

    table: pa.Table
    rejected: list[tuple[int, str, str]]
    fast: bool


@dataclass(slots=True)
class _StagedChunk:
    table: pa.Table | None
    rejects: list[Reject]
    fast: bool = False


# Parsing threads, and chunks read ahead of the one being inserted.
_WORKERS = 2
_READ_AHEAD = 3


def _staged_chunks(
    conn: duckdb.DuckDBPyConnection, path: Path, digest: FileDigest, options: ReplayOptions
) -> Iterator[_StagedChunk]:
    """Read and parse chunks on worker threads, hand them back in file order.

    Each worker has its own cursor and ``ChunkStager``, and reads the next chunk
    (hashing, line splitting) when its turn comes. DuckDB and the hashing release
    the GIL, so while this thread inserts chunk k the workers read and parse the
    next ones. Meanwhile DuckDB is held to one thread per statement (restored
    after): its own worker threads on top of these only spin for a share of the
    two cores. At most ``_READ_AHEAD`` chunks are in flight, so memory stays bounded.
    """
    cursors: list[duckdb.DuckDBPyConnection] = []
    stagers: list[ChunkStager] = []
    free: queue.SimpleQueue[ChunkStager] = queue.SimpleQueue()
    for _ in range(_WORKERS):
        cursor = conn.cursor()
        cursors.append(cursor)
        # JSON columns (usage, completion) cross to the main connection as
        # arrow.json, so inserting them does not parse and validate them again.
        cursor.execute("SET SESSION arrow_lossless_conversion = true")
        install_macros(cursor)
        stagers.append(ChunkStager(cursor, tier=options.tier, store_content=options.store_content))
        free.put(stagers[-1])

    def stage(chunk: LineChunk) -> list[_StagedChunk]:
        stager = free.get()
        try:
            return staged_chunks(stager.stage(chunk.table), chunk.bad_utf8)
        finally:
            free.put(stager)

    def finish(stager: ChunkStager) -> list[_StagedChunk]:
        return staged_chunks(stager.finish(), [])

    def staged_chunks(staged: list[Staged], bad_utf8: list[tuple[int, str]]) -> list[_StagedChunk]:
        rejects = [Reject(str(path), n, reason, None) for n, reason in bad_utf8]
        out: list[_StagedChunk] = []
        for table, bad, fast in staged:
            rejects.extend(explain_unparsed(str(path), n, reason, line) for n, reason, line in bad)
            out.append(_StagedChunk(table, rejects, fast))
            rejects = []
        if rejects:
            out.append(_StagedChunk(None, rejects))
        return out

    # The workers also read: each takes the next chunk in turn (tickets keep
    # file order), so this thread only inserts.
    reader = read_line_chunks(path, digest, chunk_bytes=options.chunk_bytes, in_use=_WORKERS + 1)
    turn = threading.Condition()
    next_ticket = 0

    def read_and_stage(ticket: int) -> list[_StagedChunk] | None:
        nonlocal next_ticket
        with turn:
            turn.wait_for(lambda: next_ticket == ticket)
            try:
                chunk = next(reader, None)
            finally:
                next_ticket += 1
                turn.notify_all()
        return None if chunk is None else stage(chunk)

    threads = int(scalar(conn, "SELECT current_setting('threads')"))
    # A global setting, set on a cursor of its own: if an insert fails, this
    # connection's transaction is aborted and would refuse to restore it.
    with conn.cursor() as setter:
        setter.execute("SET threads = 1")
    worker = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="costlens-replay-parse")
    pending: deque[Future[list[_StagedChunk] | None]] = deque()
    try:
        tickets = itertools.count()
        pending.extend(worker.submit(read_and_stage, next(tickets)) for _ in range(_READ_AHEAD))
        while (staged := pending.popleft().result()) is not None:
            pending.append(worker.submit(read_and_stage, next(tickets)))
            yield from staged
        while pending:  # past the end: these find no chunk
            pending.popleft().result()
        # Each stager's pooled left-overs, once no chunk is being staged.
        for done in [worker.submit(finish, stager) for stager in stagers]:
            yield from done.result()
    finally:
        for future in pending:
            future.cancel()
        worker.shutdown(wait=True)
        for cursor in cursors:
            cursor.close()
        with conn.cursor() as setter:
            setter.execute(f"SET threads = {threads}")


def _remove_duplicates(conn: duckdb.DuckDBPyConnection, run_id: int, path: Path) -> list[Reject]:
    """Move every repeat of a custom_id (after its first line) from requests/results to rejects."""
    duplicates = conn.execute(_DUPLICATES, {"run_id": run_id}).fetchall()
    if not duplicates:
        return []
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE cl_dup_ids AS SELECT unnest(?::BIGINT[]) AS request_id",
        [[d[0] for d in duplicates]],
    )
    for table in ("requests", "request_params", "results", "result_details"):
        conn.execute(
            f"DELETE FROM {table} WHERE run_id = ? AND request_id IN (SELECT request_id FROM cl_dup_ids)",
            [run_id],
        )
    raw = _read_lines(path, {d[0] for d in duplicates})
    return [
        Reject(
            str(path), line_no, f"duplicate custom_id '{custom_id}' (first at line {first})", raw.get(line_no)
        )
        for line_no, custom_id, first in duplicates
    ]


def _read_lines(path: Path, wanted: set[int]) -> dict[int, str]:
    """The raw text of a few lines (for the rejects table), by number."""
    found: dict[int, str] = {}
    last = max(wanted)
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if line_no in wanted:
                found[line_no] = raw.decode("utf-8", "replace").rstrip("\r\n")[:RAW_LIMIT]
            if line_no >= last:
                break
    return found


def _start_run(
    conn: duckdb.DuckDBPyConnection, path: Path, options: ReplayOptions, request_file: RequestFile | None
) -> int:
    run_id: int = scalar(
        conn,
        """INSERT INTO runs (name, kind, status, source_file, requests_file, requests_sha256, tier_mode, tags,
                             command_line, costlens_version, pricing_sha256, started_at)
           VALUES (?, 'replay', 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING run_id""",
        [
            options.run_name,
            str(path),
            request_file.path if request_file else None,
            request_file.sha256 if request_file else None,
            options.tier,
            json.dumps(dict(sorted(options.tags.items()))),
            options.command_line,
            __version__,
            options.pricing_sha256,
            utcnow(),
        ],
    )
    return run_id


def _replay_one(
    conn: duckdb.DuckDBPyConnection, run_id: int, path: Path, options: ReplayOptions
) -> ReplayResult:
    now = utcnow()
    digest = FileDigest()
    rejects: list[Reject] = []
    # Lines without a time of their own are dated (and priced) at --at, else at the replay.
    params = {"run_id": run_id, "now": options.at or now}
    fast_params = {**params, "tier": options.tier}
    insert_fast = _INSERT_RESULTS.replace(
        "FROM cl_stage", f"FROM ({fast_filled_sql(store_content=options.store_content)}) AS cl_stage"
    )
    joined = options.requests_file is not None
    for staged in _staged_chunks(conn, path, digest, options):
        rejects.extend(staged.rejects)
        if staged.table is None:
            continue
        # Arrow, not TEMP tables, carries each chunk: a table replaced once per
        # chunk keeps every old version alive until the transaction ends.
        conn.register("cl_stage", staged.table)
        try:
            if joined:
                conn.execute(_INSERT_REQUESTS_JOINED, {"run_id": run_id, "model": options.model})
                conn.execute(_INSERT_PARAMS, {"run_id": run_id})
            else:
                conn.execute(_INSERT_REQUESTS, {"run_id": run_id, "model": options.model})
            if staged.fast:
                conn.execute(insert_fast, fast_params)
            else:
                conn.execute(_INSERT_RESULTS, params)
            if options.store_content:
                conn.execute(_INSERT_DETAILS, {"run_id": run_id})
        finally:
            # After a failed insert the transaction is aborted and DuckDB refuses
            # even this; the insert's own error is the one to report.
            with contextlib.suppress(duckdb.Error):
                conn.unregister("cl_stage")
    rejects.extend(_remove_duplicates(conn, run_id, path))

    previous = scalar(
        conn,
        "SELECT min(run_id) FROM runs WHERE source_sha256 = ? AND kind = 'replay' AND status <> 'running'",
        [digest.sha256],
    )
    if previous is not None and not options.force:
        raise AlreadyReplayedError(
            f"{path} was already replayed into this database as run {previous} (same sha256); "
            "use --force to replay it again"
        )
    rejects.sort(key=lambda r: r.line_no)
    _insert_rejects(conn, run_id, rejects)
    by_format = conn.execute(
        """SELECT source_format, count(*), count(*) FILTER (WHERE status = 'error')
           FROM results WHERE run_id = ? GROUP BY source_format ORDER BY source_format""",
        [run_id],
    ).fetchall()
    formats = {fmt: int(n) for fmt, n, _ in by_format}
    stored = sum(formats.values())
    errors = sum(int(e) for _, _, e in by_format)
    read = stored + len(rejects)
    conn.execute(
        """UPDATE runs SET status = 'completed', source_sha256 = ?, finished_at = ?,
                          lines_read = ?, lines_stored = ?, lines_rejected = ? WHERE run_id = ?""",
        [digest.sha256, utcnow(), read, stored, len(rejects), run_id],
    )
    return ReplayResult(
        run_id=run_id,
        file=str(path),
        sha256=digest.sha256,
        lines_read=read,
        stored=stored,
        rejected=len(rejects),
        failed=errors,
        formats=formats,
        rejects=tuple(rejects),
    )


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    results: tuple[ReplayResult, ...]
    requests: RequestFile | None


def replay_files(conn: duckdb.DuckDBPyConnection, options: ReplayOptions) -> ReplayOutcome:
    """Replay each file as its own run, in one transaction: it lands whole or not at all.

    A failure, Ctrl-C or kill leaves nothing of that file behind (the
    transaction is rolled back, or never committed). The ``--requests`` file is
    read once; its rejects are stored under the first file's run and reported
    in ``ReplayOutcome.requests``.
    """
    for path in options.files:
        if not path.is_file():
            raise InputError("no such file", file=str(path))
    install_macros(conn)
    request_file: RequestFile | None = None
    if options.requests_file is not None:
        request_file = stage_request_file(conn, options.requests_file, store_content=options.store_content)
    results: list[ReplayResult] = []
    for index, path in enumerate(options.files):
        conn.execute("BEGIN TRANSACTION")
        try:
            run_id = _start_run(conn, path, options, request_file)
            result = _replay_one(conn, run_id, path, options)
            if index == 0 and request_file is not None and request_file.rejects:
                _insert_rejects(conn, run_id, request_file.rejects)
            conn.execute("COMMIT")
        except BaseException as e:
            with contextlib.suppress(duckdb.Error):
                conn.execute("ROLLBACK")
            if isinstance(e, duckdb.Error):
                raise StoreError(f"replay of {path} failed in the database: {e}") from e
            raise
        results.append(result)
    return ReplayOutcome(tuple(results), request_file)
