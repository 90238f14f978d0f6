"""Small DuckDB macros shared by the loaders' SQL.

JSON leaf values are extracted as DuckDB ``JSON`` (their text) rather than cast
straight to a SQL type, because ``from_json`` silently rounds ``1.5`` into a
BIGINT and turns a wrong type into NULL; a cost tool must reject such a line
with a reason instead. These macros do the checked conversions.
"""

from __future__ import annotations

from typing import Any

import duckdb

__all__ = ["install_macros", "scalar"]

_MACROS = (
    # A token count: a non-negative integer that fits BIGINT, else NULL.
    "CREATE OR REPLACE TEMP MACRO cl_int(x) AS "
    "CASE WHEN x IS NOT NULL AND regexp_full_match(CAST(x AS VARCHAR), '-?[0-9]{1,18}') "
    "THEN CAST(CAST(x AS VARCHAR) AS BIGINT) END",
    # A usable token count: a non-negative JSON integer that fits BIGINT.
    "CREATE OR REPLACE TEMP MACRO cl_is_count(x) AS regexp_full_match(CAST(x AS VARCHAR), '[0-9]{1,18}')",
    # Why a token count is unusable (NULL when it is fine or absent).
    "CREATE OR REPLACE TEMP MACRO cl_count_error(name, x) AS "
    "CASE WHEN x IS NULL OR cl_is_count(x) THEN NULL "
    "WHEN regexp_full_match(CAST(x AS VARCHAR), '-[0-9]+') "
    "THEN name || ' is negative (' || CAST(x AS VARCHAR) || ')' "
    "ELSE name || ' is not a non-negative integer (' || left(CAST(x AS VARCHAR), 40) || ')' END",
    # A JSON number as DOUBLE (request parameters, never money).
    "CREATE OR REPLACE TEMP MACRO cl_num(x) AS "
    "CASE WHEN json_type(x) IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN CAST(CAST(x AS VARCHAR) AS DOUBLE) END",
    # A JSON string (or a number, rendered) as VARCHAR.
    "CREATE OR REPLACE TEMP MACRO cl_str(x) AS "
    "CASE json_type(x) WHEN 'VARCHAR' THEN x->>'$' "
    "WHEN 'UBIGINT' THEN CAST(x AS VARCHAR) WHEN 'BIGINT' THEN CAST(x AS VARCHAR) END",
    # A Unix timestamp in seconds (a JSON integer of at most 12 digits) as TIMESTAMP, else NULL.
    "CREATE OR REPLACE TEMP MACRO cl_unix_time(x) AS "
    "CASE WHEN x IS NOT NULL AND regexp_full_match(CAST(x AS VARCHAR), '[0-9]{1,12}') "
    "THEN epoch_ms(CAST(CAST(x AS VARCHAR) AS BIGINT) * 1000) END",
    # regexp, not trim(): trim copies every (long) line; the regexp stops at the first non-blank.
    "CREATE OR REPLACE TEMP MACRO cl_blank(line) AS regexp_full_match(line, '[ \t\r\n]*')",
)


def install_macros(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in _MACROS:
        conn.execute(statement)


def scalar(conn: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    """First column of the first row (None if no row); drains the result as DuckDB 2 requires."""
    rows = conn.execute(sql, params).fetchall() if params is not None else conn.execute(sql).fetchall()
    return rows[0][0] if rows else None
