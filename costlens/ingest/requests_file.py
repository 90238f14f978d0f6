"""Read and validate a file of chat-completion requests (JSONL) into DuckDB.

Accepted line shapes (README "Input formats"):
- an OpenAI Batch input line ``{custom_id, method, url, body}`` (also Azure's
  ``/chat/completions`` url),
- ``{custom_id, body}`` (Together, Mistral),
- a bare request body ``{model, messages, ...}`` — custom_id is then the line number.

Every rule of the seed's parameter table is checked in SQL (DuckDB parses the
JSON); a line that breaks one is rejected with its line number and every reason,
and the other lines still load. Unknown parameters pass through and are kept as
JSON in ``extra_params``. The result is the TEMP table ``cl_req_input``, which
``replay`` joins on custom_id and ``run`` sends from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from costlens.ingest.jsonl import FileDigest, read_line_chunks
from costlens.ingest.rejects import Reject, explain_unparsed
from costlens.store.macros import install_macros, scalar

__all__ = ["ALLOWED_ROLES", "KNOWN_PARAMS", "RequestFile", "stage_request_file"]

ALLOWED_ROLES = ("system", "user", "assistant", "tool", "developer")
# The seed's parameter table; anything else is passed through as extra_params.
KNOWN_PARAMS = (
    "model", "messages", "temperature", "max_tokens", "stream", "top_p",
    "frequency_penalty", "presence_penalty", "stop", "n", "user",
)  # fmt: skip

_LINE_SHAPE = json.dumps(
    {"custom_id": "JSON", "method": "JSON", "url": "JSON", "body": "JSON", "messages": "JSON"}
)
_BODY_SHAPE = json.dumps({name: "JSON" for name in KNOWN_PARAMS})
_MESSAGES_SHAPE = json.dumps([{"role": "JSON"}])
_STRIP_KNOWN = json.dumps({name: None for name in KNOWN_PARAMS})
_ROLE_LIST = ", ".join(f"'{r}'" for r in ALLOWED_ROLES)

_CREATE = """
CREATE OR REPLACE TEMP TABLE cl_req_input (
    custom_id VARCHAR, line_no BIGINT, model VARCHAR, body JSON,
    temperature DOUBLE, max_tokens BIGINT, stream BOOLEAN, top_p DOUBLE,
    frequency_penalty DOUBLE, presence_penalty DOUBLE, stop JSON, n INTEGER, "user" VARCHAR,
    extra_params JSON, msg_count INTEGER, msg_system INTEGER, msg_user INTEGER, msg_assistant INTEGER,
    msg_tool INTEGER, msg_developer INTEGER, messages_sha256 VARCHAR, messages JSON
)
"""

# One statement per chunk: parse each line once, pull the known parameters out as
# JSON leaves, and compute every rejection reason alongside the clean values.
_STAGE = f"""
CREATE OR REPLACE TEMP TABLE cl_req_stage AS
WITH parsed AS (
    SELECT line_no, line, try(from_json(line, '{_LINE_SHAPE}')) AS j
    FROM cl_chunk WHERE NOT cl_blank(line)
),
shaped AS (
    SELECT line_no, line, j,
        CASE WHEN j IS NULL THEN NULL
             WHEN j.body IS NOT NULL THEN j.body
             WHEN j.messages IS NOT NULL THEN CAST(line AS JSON) END AS body
    FROM parsed
),
fields AS (
    SELECT *, from_json(body, '{_BODY_SHAPE}') AS b FROM shaped
),
typed AS (
    SELECT *,
        CASE WHEN json_type(b.messages) = 'ARRAY'
             THEN from_json(b.messages, '{_MESSAGES_SHAPE}') END AS msgs,
        coalesce(cl_str(j.custom_id), CAST(line_no AS VARCHAR)) AS custom_id,
        coalesce(cl_str(b.model), $default_model) AS model
    FROM fields
),
checked AS (
    SELECT *,
        list_transform(msgs, lambda m: m.role->>'$') AS roles,
        CASE
          WHEN j IS NULL THEN 'invalid JSON'
          WHEN body IS NULL THEN 'expected a batch input line (custom_id, body) or a chat request body (model, messages)'
          WHEN json_type(body) <> 'OBJECT' THEN 'body is not a JSON object'
          ELSE nullif(concat_ws('; ',
            CASE WHEN j.custom_id IS NOT NULL AND cl_str(j.custom_id) IS NULL
                 THEN 'custom_id must be a string' END,
            CASE WHEN j.method IS NOT NULL AND upper(cl_str(j.method)) IS DISTINCT FROM 'POST'
                 THEN 'method must be POST' END,
            CASE WHEN j.url IS NOT NULL AND NOT coalesce(ends_with(cl_str(j.url), '/chat/completions'), false)
                 THEN 'url ' || coalesce(cl_str(j.url), '?') || ' is not a chat completions endpoint' END,
            CASE WHEN b.model IS NOT NULL AND json_type(b.model) <> 'VARCHAR' THEN 'model must be a string'
                 WHEN coalesce(cl_str(b.model), $default_model) IS NULL OR coalesce(cl_str(b.model), $default_model) = ''
                 THEN 'model is required (in the body or with --model)' END,
            CASE WHEN b.messages IS NULL THEN 'messages is required'
                 WHEN json_type(b.messages) <> 'ARRAY' THEN 'messages must be an array'
                 WHEN json_array_length(b.messages) = 0 THEN 'messages must not be empty' END,
            CASE WHEN msgs IS NOT NULL AND len(list_filter(msgs, lambda m: m.role IS NULL OR json_type(m.role) <> 'VARCHAR'
                                                                    OR NOT list_contains([{_ROLE_LIST}], m.role->>'$'))) > 0
                 THEN 'messages[' || CAST(list_position(list_transform(msgs, lambda m: m.role IS NULL OR json_type(m.role) <> 'VARCHAR'
                                                                    OR NOT list_contains([{_ROLE_LIST}], m.role->>'$')), true) - 1 AS VARCHAR)
                      || '].role must be one of {", ".join(ALLOWED_ROLES)}' END,
            CASE WHEN b.temperature IS NOT NULL AND NOT coalesce(cl_num(b.temperature) BETWEEN 0 AND 2, false)
                 THEN 'temperature must be a number from 0 to 2 (got ' || left(CAST(b.temperature AS VARCHAR), 40) || ')' END,
            CASE WHEN b.top_p IS NOT NULL AND NOT coalesce(cl_num(b.top_p) BETWEEN 0 AND 1, false)
                 THEN 'top_p must be a number from 0 to 1 (got ' || left(CAST(b.top_p AS VARCHAR), 40) || ')' END,
            CASE WHEN b.frequency_penalty IS NOT NULL AND NOT coalesce(cl_num(b.frequency_penalty) BETWEEN -2 AND 2, false)
                 THEN 'frequency_penalty must be a number from -2 to 2 (got '
                      || left(CAST(b.frequency_penalty AS VARCHAR), 40) || ')' END,
            CASE WHEN b.presence_penalty IS NOT NULL AND NOT coalesce(cl_num(b.presence_penalty) BETWEEN -2 AND 2, false)
                 THEN 'presence_penalty must be a number from -2 to 2 (got '
                      || left(CAST(b.presence_penalty AS VARCHAR), 40) || ')' END,
            CASE WHEN b.stop IS NOT NULL AND NOT (
                     json_type(b.stop) = 'VARCHAR'
                     OR (json_type(b.stop) = 'ARRAY' AND json_array_length(b.stop) <= 4
                         AND len(list_filter(CAST(json_extract(b.stop, '$[*]') AS JSON[]),
                                             lambda s: json_type(s) <> 'VARCHAR')) = 0))
                 THEN 'stop must be a string or an array of at most 4 strings' END,
            CASE WHEN b.n IS NOT NULL AND NOT (json_type(b.n) = 'UBIGINT' AND coalesce(cl_int(b.n) >= 1, false))
                 THEN 'n must be an integer >= 1 (got ' || left(CAST(b.n AS VARCHAR), 40) || ')' END,
            CASE WHEN b.max_tokens IS NOT NULL
                      AND NOT (json_type(b.max_tokens) = 'UBIGINT' AND coalesce(cl_int(b.max_tokens) >= 1, false))
                 THEN 'max_tokens must be an integer >= 1 (got ' || left(CAST(b.max_tokens AS VARCHAR), 40) || ')' END,
            CASE WHEN b.stream IS NOT NULL AND json_type(b.stream) <> 'BOOLEAN'
                 THEN 'stream must be true or false' END,
            CASE WHEN b."user" IS NOT NULL AND json_type(b."user") <> 'VARCHAR'
                 THEN 'user must be a string' END
          ), '')
        END AS reason
    FROM typed
)
SELECT
    line_no, line, reason, custom_id, model, body,
    cl_num(b.temperature) AS temperature, cl_int(b.max_tokens) AS max_tokens,
    CASE WHEN json_type(b.stream) = 'BOOLEAN' THEN CAST(CAST(b.stream AS VARCHAR) AS BOOLEAN) END AS stream,
    cl_num(b.top_p) AS top_p, cl_num(b.frequency_penalty) AS frequency_penalty,
    cl_num(b.presence_penalty) AS presence_penalty, b.stop AS stop,
    CAST(cl_int(b.n) AS INTEGER) AS n, cl_str(b."user") AS "user",
    nullif(CAST(json_merge_patch(body, '{_STRIP_KNOWN}') AS VARCHAR), '{{}}') AS extra_params,
    len(roles) AS msg_count,
    len(list_filter(roles, lambda r: r = 'system')) AS msg_system,
    len(list_filter(roles, lambda r: r = 'user')) AS msg_user,
    len(list_filter(roles, lambda r: r = 'assistant')) AS msg_assistant,
    len(list_filter(roles, lambda r: r = 'tool')) AS msg_tool,
    len(list_filter(roles, lambda r: r = 'developer')) AS msg_developer,
    sha256(CAST(json(b.messages) AS VARCHAR)) AS messages_sha256,
    CASE WHEN $store_content THEN json(b.messages) END AS messages
FROM checked
"""

_MARK_DUPLICATES = """
UPDATE cl_req_stage SET reason = 'duplicate custom_id ''' || d.custom_id || ''' (first at line ' || d.first_line || ')'
FROM (
    SELECT s.line_no, s.custom_id,
           coalesce(seen.line_no, min(s.line_no) OVER (PARTITION BY s.custom_id)) AS first_line
    FROM cl_req_stage s LEFT JOIN cl_req_input seen ON seen.custom_id = s.custom_id
    WHERE s.reason IS NULL
) d
WHERE cl_req_stage.line_no = d.line_no AND d.first_line <> d.line_no
"""

_KEEP = """
INSERT INTO cl_req_input
SELECT custom_id, line_no, model, body, temperature, max_tokens, stream, top_p, frequency_penalty,
       presence_penalty, stop, n, "user", extra_params, msg_count, msg_system, msg_user, msg_assistant,
       msg_tool, msg_developer, messages_sha256, messages
FROM cl_req_stage WHERE reason IS NULL
"""


def _create_request_table(conn: duckdb.DuckDBPyConnection) -> None:
    """(Re)create the empty TEMP table ``cl_req_input``."""
    conn.execute(_CREATE)


@dataclass(frozen=True, slots=True)
class RequestFile:
    """What staging a request file found; accepted rows are in TEMP table cl_req_input."""

    path: str
    sha256: str
    lines_read: int
    accepted: int
    rejects: tuple[Reject, ...]


def stage_request_file(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    default_model: str | None = None,
    store_content: bool = True,
) -> RequestFile:
    """Parse and validate ``path`` into TEMP table ``cl_req_input``; return counts and rejects."""
    install_macros(conn)
    _create_request_table(conn)
    digest = FileDigest()
    rejects: list[Reject] = []
    read = 0
    params = {"default_model": default_model, "store_content": store_content}
    for chunk in read_line_chunks(path, digest):
        rejects.extend(Reject(str(path), line_no, reason, None) for line_no, reason in chunk.bad_utf8)
        read += len(chunk.bad_utf8)
        conn.register("cl_chunk", chunk.table)
        try:
            conn.execute(_STAGE, params)
        finally:
            conn.unregister("cl_chunk")
        conn.execute(_MARK_DUPLICATES)
        conn.execute(_KEEP)
        read += scalar(conn, "SELECT count(*) FROM cl_req_stage")
        bad = conn.execute(
            "SELECT line_no, reason, line FROM cl_req_stage WHERE reason IS NOT NULL ORDER BY line_no"
        ).fetchall()
        rejects.extend(explain_unparsed(str(path), line_no, reason, line) for line_no, reason, line in bad)
    return RequestFile(
        path=str(path),
        sha256=digest.sha256,
        lines_read=read,
        accepted=scalar(conn, "SELECT count(*) FROM cl_req_input"),
        rejects=tuple(sorted(rejects, key=lambda r: r.line_no)),
    )
