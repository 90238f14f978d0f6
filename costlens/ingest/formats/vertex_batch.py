"""Vertex AI batch prediction output for Gemini (FORMATS.md §7).

``{"status": "", "processed_time": "2025-08-14T16:27:27.775+00:00", "request": {...}, "response": {...}}``:

- no id field: custom_id = the line number in the output file (rows are matched by position,
  not by an id; two files' rows share a custom_id only if they share a position);
- ``processed_time`` (ISO 8601; an offset is honoured, none means UTC) is created_at, which
  prices the row; a ``processed_time`` that is not such a time rejects the line;
- the response is a GenerateContentResponse, read as in gemini_batch (model =
  ``modelVersion``, gemini usage dialect);
- a failed row has an error text in ``status`` and no ``response``: error_type ``error`` (or the
  ``status``/``code`` of a status that is an error object), the text as the message;
- tier ``batch`` under ``--tier auto``.

The echoed ``request`` is not parsed (it can be far larger than the answer): only its presence
is seen, through one small key.
"""

from __future__ import annotations

from costlens.ingest.formats.base import ResultFormat
from costlens.ingest.formats.gemini_batch import (
    ERROR_SHAPE,
    ERROR_TYPE,
    RESPONSE,
    RESPONSE_CONTENT,
    response_fields,
)

__all__ = ["FORMAT"]

_TIME = "j.processed_time->>'$'"
# An ISO time with an offset is converted to UTC; one without is taken as UTC (never as the
# machine's zone, which is what a bare TIMESTAMPTZ cast would do).
_CREATED_AT = f"""CASE WHEN json_type(j.processed_time) = 'VARCHAR' THEN
            CASE WHEN regexp_matches({_TIME}, '[0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}}(\\.[0-9]+)?)?(Z|z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$')
                 THEN CAST(timezone('UTC', TRY_CAST({_TIME} AS TIMESTAMPTZ)) AS TIMESTAMP)
                 ELSE TRY_CAST({_TIME} AS TIMESTAMP) END
        END"""
# A status that says anything is the error; an empty one (or none) is success.
_ERROR_JSON = "CASE WHEN j.status IS NOT NULL AND coalesce(j.status->>'$', '') <> '' THEN j.status END"

FORMAT = ResultFormat(
    name="vertex_batch",
    expected="a Vertex AI batch prediction row",
    batch=True,
    detect="j.custom_id IS NULL AND j.key IS NULL AND (j.processed_time IS NOT NULL "
    "OR (j.status IS NOT NULL AND (j.request IS NOT NULL OR j.response IS NOT NULL)))",
    shape={
        "custom_id": "JSON",
        "key": "JSON",
        "status": "JSON",
        "processed_time": "JSON",
        "request": {"cachedContent": "VARCHAR"},
        "response": RESPONSE,
    },
    content_shape={"response": RESPONSE_CONTENT},
    error_shape=ERROR_SHAPE,
    fields={
        "id_default": "CAST(line_no AS VARCHAR)",
        **response_fields("j.response"),
        "created_at": _CREATED_AT,
        "error_json": _ERROR_JSON,
    },
    usage_dialect="'gemini'",
    ok="j.response IS NOT NULL AND error_json IS NULL",
    error_type=ERROR_TYPE,
    error_message="coalesce(e.message, CASE WHEN json_type(error_json) = 'VARCHAR' THEN error_json->>'$' "
    "ELSE CAST(error_json AS VARCHAR) END)",
    checks=(
        "CASE WHEN j.processed_time IS NOT NULL AND created_at IS NULL "
        "THEN 'processed_time is not an ISO 8601 time (' || left(CAST(j.processed_time AS VARCHAR), 40) || ')' END",
        "CASE WHEN j.response IS NULL AND error_json IS NULL THEN 'no response and no error in status' END",
    ),
    usage_label="usageMetadata",
)
