"""Export priced request rows (CSV, Parquet, JSONL) with a stable, documented column set.

DuckDB's COPY writes the file straight from the cost view. Money columns stay
DECIMAL(38,15) in Parquet; in CSV and JSONL they are plain decimal strings (no
exponent, no float artefacts, trailing zeros trimmed). In CSV, text cells that
a spreadsheet would run as a formula (starting with = + - @, tab or CR) get a
leading apostrophe.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import duckdb

from costlens.errors import ConfigError, StoreError
from costlens.money.filters import Filters
from costlens.store.macros import scalar

__all__ = ["EXPORT_COLUMNS", "ExportFormat", "export_rows"]

ExportFormat = Literal["csv", "parquet", "jsonl"]

# (name, kind): kind drives per-format rendering. Order is the file's column order.
EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "int"),
    ("request_id", "int"),
    ("custom_id", "text"),
    ("line_no", "int"),
    ("requested_model", "text"),
    ("response_model", "text"),
    ("priced_model", "text"),
    ("service_tier", "text"),
    ("price_tier", "text"),
    ("status", "text"),
    ("http_status", "int"),
    ("error_type", "text"),
    ("error_message", "text"),
    ("finish_reasons", "list"),
    ("usage_source", "text"),
    ("input_tokens", "int"),
    ("output_tokens", "int"),
    ("total_tokens", "int"),
    ("cached_tokens", "int"),
    ("cache_write_tokens", "int"),
    ("reasoning_tokens", "int"),
    ("input_cost_usd", "money"),
    ("output_cost_usd", "money"),
    ("cost_usd", "money"),
    ("priced", "bool"),
    ("price_note", "text"),
    ("price_id", "int"),
    ("latency_ms", "float"),
    ("ttft_ms", "float"),
    ("started_at", "time"),
    ("created_at", "time"),
    ("priced_at", "time"),
    ("user", "text"),
    ("temperature", "float"),
    ("max_tokens", "int"),
    ("stream", "bool"),
    ("top_p", "float"),
    ("frequency_penalty", "float"),
    ("presence_penalty", "float"),
    ("stop", "json"),
    ("n", "int"),
    ("extra_params", "json"),
    ("source_format", "text"),
    ("source_line_no", "int"),
    # Added later: new columns go at the end, so existing readers keep working.
    ("cache_write_1h_tokens", "int"),
    ("request_cost_usd", "money"),
    ("price_sheet", "text"),
    ("price_match", "text"),
    ("simulated", "bool"),
    ("reported_cost_usd", "money"),
    ("reported_cost_source", "text"),
)

# Export names that differ from the cost view's: the README's vocabulary (input/output tokens) over
# the DB's wire names (prompt/completion), and facts of the run rather than of the request.
_SOURCE = {
    "input_tokens": 'c."prompt_tokens"',
    "output_tokens": 'c."completion_tokens"',
    "price_sheet": 'c."price_sheet_name"',
    "simulated": "c.run_id IN (SELECT run_id FROM runs WHERE simulated)",
}

_MONEY_TEXT = "CASE WHEN {c} IS NULL THEN NULL ELSE rtrim(rtrim(CAST({c} AS VARCHAR), '0'), '.') END"
_FORMULA_SAFE = "CASE WHEN regexp_matches({c}, '^[=+\\-@\\t\\r]') THEN '''' || {c} ELSE {c} END"


def _select_list(fmt: ExportFormat) -> str:
    parts: list[str] = []
    for name, kind in EXPORT_COLUMNS:
        col = _SOURCE.get(name, f'c."{name}"')
        if kind == "money" and fmt != "parquet":
            expr = _MONEY_TEXT.format(c=col)
        elif kind == "json" and fmt == "parquet":
            # DuckDB writes its JSON type to Parquet as bytes; readers (Spark, pandas) want text.
            expr = f"CAST({col} AS VARCHAR)"
        elif kind == "time" and fmt == "parquet":
            # Stored naive in UTC; in Parquet an instant (isAdjustedToUTC), so no reader guesses a zone.
            expr = f"timezone('UTC', {col})"
        elif kind in ("list", "json") and fmt == "csv":
            expr = f"CAST(to_json({col}) AS VARCHAR)" if kind == "list" else f"CAST({col} AS VARCHAR)"
            expr = _FORMULA_SAFE.format(c=f"({expr})")
        elif kind == "text" and fmt == "csv":
            expr = _FORMULA_SAFE.format(c=col)
        else:
            expr = col
        parts.append(f'{expr} AS "{name}"')
    return ",\n    ".join(parts)


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def export_rows(
    conn: duckdb.DuckDBPyConnection, fmt: ExportFormat, out: Path, filters: Filters | None = None
) -> int:
    """Write the filtered rows to ``out`` (atomically: temp file then rename); return the row count."""
    if fmt not in ("csv", "parquet", "jsonl"):
        raise ConfigError(f"unknown export format {fmt!r} (csv, parquet or jsonl)")
    if not out.parent.exists():
        raise ConfigError(f"--out: directory {out.parent} does not exist")
    where, params = (filters or Filters()).where("c")
    query = (
        f"SELECT\n    {_select_list(fmt)}\nFROM request_costs c WHERE {where} ORDER BY c.run_id, c.request_id"
    )
    options = {
        "csv": "FORMAT csv, HEADER true",
        "parquet": "FORMAT parquet",
        "jsonl": "FORMAT json",
    }[fmt]
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        conn.execute(f"COPY ({query}) TO {_sql_string(str(tmp))} ({options})", params)
        os.replace(tmp, out)
    except duckdb.Error as e:
        raise StoreError(f"export to {out} failed: {e}") from e
    finally:
        if tmp.exists():
            tmp.unlink()
    count = scalar(conn, f"SELECT count(*) FROM request_costs c WHERE {where}", params)
    return int(count or 0)
