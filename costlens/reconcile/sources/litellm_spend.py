"""A LiteLLM spend-log export: the proxy's ``LiteLLM_SpendLogs`` rows, as CSV or a JSON list.

One row per request: ``request_id, spend, prompt_tokens, completion_tokens, total_tokens, model,
model_group, custom_llm_provider, api_base, user, end_user, startTime, endTime, metadata,
cache_hit, status``. ``spend`` is LiteLLM's own estimate in USD (from its price map, not a bill),
read as an exact decimal from its text. A row's day is its ``startTime`` in UTC (a time without
an offset is taken as UTC, as the proxy writes it); its model is ``model`` (what was sent to
the provider), else ``model_group``. A row counts as a request unless its ``status`` is a
failure; its tokens and spend count whatever its status. A LiteLLM cache hit is a request
costlens saw too, and counts like any other (its spend is what LiteLLM charged for it).

The log has no buckets: a file covers every day from its first row's to its last row's. The
same ``request_id`` twice (in one file, or in two) is an error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Final

from costlens.reconcile.sources.base import (
    MAX_COUNT,
    ONE_DAY,
    BucketRow,
    Document,
    ExportRead,
    Measure,
    as_object,
    bad,
    decimal_text,
    json_path,
    json_type,
    parse_instant,
    usd,
)

__all__ = ["LitellmSpendReader"]

REQUIRED: Final = ("request_id", "spend", "startTime", "prompt_tokens", "completion_tokens")
_FAILED: Final = frozenset({"failure", "failed", "error"})


class LitellmSpendReader:
    kind = "litellm-spend"
    family = "litellm"
    description = "LiteLLM spend-log export (LiteLLM_SpendLogs rows, CSV or a JSON list)"
    measures: tuple[Measure, ...] = ("requests", "input_tokens", "output_tokens", "cost_usd")

    def detect(self, document: Document) -> bool:
        if document.csv_header is not None:
            return "request_id" in document.csv_header and "spend" in document.csv_header
        data = document.json
        return (
            isinstance(data, list)
            and bool(data)
            and isinstance(data[0], dict)
            and "request_id" in data[0]
            and "spend" in data[0]
        )

    def read(self, document: Document) -> ExportRead:
        rows: list[BucketRow] = []
        identities: list[tuple[str, str]] = []
        seen: dict[str, str] = {}
        for where, line, fields in _records(document):
            row, request_id = _row(fields, where, line, document.file)
            place = f"{document.file}:{line}" if line is not None else f"{document.file} {where}"
            if request_id in seen:
                raise bad(
                    where,
                    f"duplicate request_id {request_id!r} (also at {seen[request_id]})",
                    document.file,
                    line,
                )
            seen[request_id] = place
            rows.append(row)
            identities.append((request_id, place))
        days: list[date] = []
        if rows:
            first, last = min(r.day for r in rows), max(r.day for r in rows)
            days = [first + ONE_DAY * n for n in range((last - first).days + 1)]
        return ExportRead(rows=tuple(rows), buckets=len(rows), days=tuple(days), identities=tuple(identities))


def _records(document: Document) -> Iterator[tuple[str, int | None, Mapping[str, Any]]]:
    """(where, CSV line or None, fields) per row: ``$[3]`` for JSON, the column name for CSV."""
    if document.csv_header is not None:
        missing = [c for c in REQUIRED if c not in document.csv_header]
        if "model" not in document.csv_header and "model_group" not in document.csv_header:
            missing.append("model")
        if missing:
            raise bad(
                "", f"not a LiteLLM spend log: no column {', '.join(missing)} in the header", document.file, 1
            )
        for line, cells in document.csv_rows:
            yield "", line, cells
        return
    data = document.json
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise bad("$", f"expected a JSON list of spend-log rows, got {json_type(data)}", document.file)
    for i, item in enumerate(data):
        yield json_path(i), None, as_object(item, json_path(i), document.file)


def _row(fields: Mapping[str, Any], where: str, line: int | None, file: str) -> tuple[BucketRow, str]:
    csv_row = line is not None

    def place(key: str) -> str:
        return key if csv_row else f"{where}.{key}"

    def present(key: str) -> Any:
        value = fields.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise bad(place(key), "missing", file, line)
        return value

    def count(key: str) -> int:
        value = present(key)
        if isinstance(value, str):
            value = decimal_text(value, place(key), file, line)
        if not isinstance(value, Decimal) or value != value.to_integral_value() or value < 0:
            raise bad(place(key), f"expected a whole number >= 0, got {value!r}", file, line)
        if value > MAX_COUNT:
            raise bad(
                place(key), f"is {value}, above the largest count costlens stores ({MAX_COUNT})", file, line
            )
        return int(value)

    def text(key: str) -> str | None:
        value = fields.get(key)
        if value is not None and not isinstance(value, str):  # a JSON row's number, list or object
            raise bad(place(key), f"expected a string or null, got {json_type(value)}", file, line)
        return None if value is None else value.strip() or None

    request_id = present("request_id")
    if not isinstance(request_id, str):
        raise bad(place("request_id"), f"expected a string, got {json_type(request_id)}", file, line)
    spend = present("spend")
    if isinstance(spend, str):
        spend = decimal_text(spend, place("spend"), file, line)
    elif not isinstance(spend, Decimal):
        raise bad(place("spend"), f"expected a number, got {json_type(spend)}", file, line)
    started = present("startTime")
    if not isinstance(started, str):
        raise bad(place("startTime"), f"expected a time string, got {json_type(started)}", file, line)
    at = parse_instant(started, place("startTime"), file, line, naive_is_utc=True)
    model = text("model") or text("model_group")
    if model is None:
        raise bad(place("model"), "missing (and no model_group)", file, line)
    status = (text("status") or "success").lower()
    row = BucketRow(
        path=place("request_id") if not csv_row else f"line {line}",
        day=at.date(),
        model=model,
        requests=0 if status in _FAILED else 1,
        input_tokens=count("prompt_tokens"),
        output_tokens=count("completion_tokens"),
        cost_usd=usd(spend, place("spend"), file, line),
    )
    return row, request_id
