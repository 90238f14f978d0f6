"""Per-model cost summary and the list of runs — aggregated in DuckDB over ``request_costs``.

Sums stay DECIMAL in SQL. Ratios (cost per 1K requests) are computed here with
Python ``Decimal``, on a handful of aggregated rows, because DuckDB's decimal
division returns DOUBLE.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

from costlens.money.decimal_text import format_decimal
from costlens.money.filters import Filters, simulated_counts

__all__ = ["ModelSummary", "RunInfo", "SimulatedRuns", "Summary", "list_runs", "simulated_runs", "summarize"]

_SUMMARY_SQL = """
SELECT
    grouping(model) AS is_total,
    model,
    count(*) AS requests,
    count(*) FILTER (WHERE status = 'error') AS failed,
    coalesce(sum(prompt_tokens), 0) AS input_tokens,
    coalesce(sum(cached_tokens), 0) AS cached_tokens,
    coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens,
    coalesce(sum(completion_tokens), 0) AS output_tokens,
    coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
    sum(input_cost_usd) FILTER (WHERE priced) AS input_cost_usd,
    sum(output_cost_usd) FILTER (WHERE priced) AS output_cost_usd,
    sum(cost_usd) FILTER (WHERE priced) AS cost_usd,
    count(*) FILTER (WHERE priced) AS priced,
    count(*) FILTER (WHERE NOT priced) AS unpriced,
    count(*) FILTER (WHERE tier_fallback) AS tier_fallback,
    count(*) FILTER (WHERE sheet_fallback) AS sheet_fallback,
    coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)) FILTER (WHERE NOT priced), 0)
        AS unpriced_tokens,
    count(*) FILTER (WHERE reported_cost_usd IS NOT NULL) AS reported_requests,
    sum(reported_cost_usd) AS reported_cost_usd,
    -- Reported against computed over the same requests: those with a reported cost that costlens prices.
    count(*) FILTER (WHERE reported_cost_usd IS NOT NULL AND priced) AS reported_compared,
    sum(reported_cost_usd) FILTER (WHERE priced) AS reported_compared_usd,
    sum(cost_usd) FILTER (WHERE reported_cost_usd IS NOT NULL AND priced) AS computed_compared_usd,
    min(occurred_at) AS first_at,
    max(occurred_at) AS last_at
FROM request_costs c
WHERE {where}
GROUP BY ROLLUP (model)
ORDER BY is_total, cost_usd DESC NULLS LAST, model
"""


@dataclass(frozen=True, slots=True)
class ModelSummary:
    model: str
    requests: int
    failed: int
    input_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    input_cost_usd: Decimal | None
    output_cost_usd: Decimal | None
    cost_usd: Decimal | None
    priced: int
    unpriced: int
    tier_fallback: int
    unpriced_tokens: int
    # Priced by a --fallback-pricing sheet (the main sheet does not know the model); part of ``priced``.
    sheet_fallback: int = 0
    # The provider's own figures (usage.cost, x-litellm-response-cost) where it gave one, and costlens's
    # cost over the same requests (``reported_compared`` of them: those costlens prices too).
    reported_requests: int = 0
    reported_cost_usd: Decimal | None = None
    reported_compared: int = 0
    reported_compared_usd: Decimal | None = None
    computed_compared_usd: Decimal | None = None

    @property
    def reported_difference_usd(self) -> Decimal | None:
        """Reported - computed, over the requests that have both."""
        if self.reported_compared_usd is None or self.computed_compared_usd is None:
            return None
        return self.reported_compared_usd - self.computed_compared_usd

    @property
    def cost_per_1k_requests(self) -> Decimal | None:
        """Mean cost of a priced request, times 1,000."""
        if self.cost_usd is None or self.priced == 0:
            return None
        return self.cost_usd * 1000 / self.priced

    def as_json(self) -> dict[str, Any]:
        def money(value: Decimal | None) -> str | None:
            return None if value is None else format_decimal(value)

        return {
            "model": self.model,
            "requests": self.requests,
            "failed": self.failed,
            "input_tokens": self.input_tokens,
            "cached_tokens": self.cached_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "input_cost_usd": money(self.input_cost_usd),
            "output_cost_usd": money(self.output_cost_usd),
            "cost_usd": money(self.cost_usd),
            "cost_per_1k_requests_usd": money(self.cost_per_1k_requests),
            "priced": self.priced,
            "unpriced": self.unpriced,
            "tier_fallback": self.tier_fallback,
            "priced_by_fallback_sheet": self.sheet_fallback,
            "unpriced_tokens": self.unpriced_tokens,
            "reported": {
                "requests": self.reported_requests,
                "reported_cost_usd": money(self.reported_cost_usd),
                "compared_requests": self.reported_compared,
                "reported_compared_usd": money(self.reported_compared_usd),
                "computed_compared_usd": money(self.computed_compared_usd),
                "difference_usd": money(self.reported_difference_usd),
            },
        }


@dataclass(frozen=True, slots=True)
class SimulatedRuns:
    """Simulated runs the selection left out (``included`` False) or counted (True)."""

    included: bool
    runs: int
    requests: int

    def as_json(self) -> dict[str, Any]:
        return {"included": self.included, "runs": self.runs, "requests": self.requests}

    def sentence(self) -> str | None:
        """What a reader must be told, or None when no simulated run is concerned."""
        if not self.runs:
            return None
        what = f"{self.runs:,} simulated run{'' if self.runs == 1 else 's'} ({self.requests:,} requests)"
        if self.included:
            return (
                f"Includes {what}: answers from costlens serve-sim, with made-up latency and "
                "token counts; their cost is not real spend."
            )
        return f"{what} left out: answers from costlens serve-sim (--include-simulated counts them)."


def simulated_runs(conn: duckdb.DuckDBPyConnection, filters: Filters) -> SimulatedRuns:
    runs, requests = simulated_counts(conn, filters)
    return SimulatedRuns(included=not filters.drops_simulated, runs=runs, requests=requests)


@dataclass(frozen=True, slots=True)
class Summary:
    models: tuple[ModelSummary, ...]
    total: ModelSummary
    simulated: SimulatedRuns = SimulatedRuns(included=False, runs=0, requests=0)

    def as_json(self) -> dict[str, Any]:
        return {
            "models": [m.as_json() for m in self.models],
            "total": self.total.as_json(),
            "simulated_runs": self.simulated.as_json(),
        }


def summarize(conn: duckdb.DuckDBPyConnection, filters: Filters | None = None) -> Summary:
    where, params = (filters or Filters()).where("c")
    cursor = conn.execute(_SUMMARY_SQL.format(where=where), params)
    names = [d[0] for d in cursor.description or ()]
    models: list[ModelSummary] = []
    total: ModelSummary | None = None
    for raw in cursor.fetchall():
        row: dict[str, Any] = dict(zip(names, raw, strict=True))
        is_total = bool(row.pop("is_total"))
        row.pop("first_at")
        row.pop("last_at")
        if is_total:
            row["model"] = "TOTAL"
        item = ModelSummary(**row)
        if is_total:
            total = item
        else:
            models.append(item)
    if total is None:  # no rows at all: ROLLUP still yields the grand total, but be safe
        total = ModelSummary("TOTAL", 0, 0, 0, 0, 0, 0, 0, None, None, None, 0, 0, 0, 0)
    return Summary(tuple(models), total, simulated_runs(conn, filters or Filters()))


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: int
    name: str | None
    kind: str
    status: str
    source_file: str | None
    started_at: str
    finished_at: str | None
    lines_read: int | None
    lines_stored: int | None
    lines_rejected: int | None
    tags: dict[str, str]
    requests: int
    cost_usd: Decimal | None
    ok: int = 0
    failed: int = 0
    # Planned but without a result (a run stopped by its budget, interrupted, or killed).
    not_sent: int = 0
    models: tuple[str, ...] = ()
    # Where a live run sent its requests (host[:port]); None for a replay.
    endpoint: str | None = None
    # Its answers said they were made up (costlens serve-sim): readers leave it out unless asked.
    simulated: bool = False
    # The id no other database repeats (runs.run_uuid); --run takes it, or its first 8+ characters.
    run_uuid: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_uuid": self.run_uuid,
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "source_file": self.source_file,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "lines_read": self.lines_read,
            "lines_stored": self.lines_stored,
            "lines_rejected": self.lines_rejected,
            "tags": self.tags,
            "requests": self.requests,
            "cost_usd": None if self.cost_usd is None else format_decimal(self.cost_usd),
            "ok": self.ok,
            "failed": self.failed,
            "not_sent": self.not_sent,
            "models": list(self.models),
            "endpoint": self.endpoint,
            "simulated": self.simulated,
        }


def _endpoint(base_url: str | None) -> str | None:
    if not base_url:
        return None
    parts = urllib.parse.urlsplit(base_url)
    return parts.netloc.rsplit("@", 1)[-1] or None


def list_runs(conn: duckdb.DuckDBPyConnection, *, limit: int | None = None) -> list[RunInfo]:
    rows = conn.execute(
        """
        SELECT r.run_id, r.name, r.kind, r.status, r.source_file,
               strftime(r.started_at, '%Y-%m-%d %H:%M:%S'), strftime(r.finished_at, '%Y-%m-%d %H:%M:%S'),
               r.lines_read, r.lines_stored, r.lines_rejected, coalesce(CAST(r.tags AS VARCHAR), '{}'),
               coalesce(q.planned, 0), c.cost_usd, coalesce(c.ok, 0), coalesce(c.failed, 0),
               coalesce(q.planned, 0) - coalesce(c.results, 0), coalesce(c.models, []), r.base_url,
               coalesce(r.simulated, FALSE), CAST(r.run_uuid AS VARCHAR)
        FROM runs r
        LEFT JOIN (SELECT run_id, count(*) AS planned FROM requests GROUP BY run_id) q ON q.run_id = r.run_id
        LEFT JOIN (SELECT run_id, count(*) AS results, sum(cost_usd) FILTER (WHERE priced) AS cost_usd,
                          count(*) FILTER (WHERE status = 'ok') AS ok,
                          count(*) FILTER (WHERE status = 'error') AS failed,
                          list(DISTINCT model ORDER BY model) AS models
                   FROM request_costs GROUP BY run_id) c ON c.run_id = r.run_id
        ORDER BY r.run_id DESC
        """
        + (" LIMIT ?" if limit else ""),
        [limit] if limit else [],
    ).fetchall()
    return [
        RunInfo(
            run_id=row[0],
            name=row[1],
            kind=row[2],
            status=row[3],
            source_file=row[4],
            started_at=row[5],
            finished_at=row[6],
            lines_read=row[7],
            lines_stored=row[8],
            lines_rejected=row[9],
            tags=json.loads(row[10]),
            requests=row[11],
            cost_usd=row[12],
            ok=row[13],
            failed=row[14],
            not_sent=row[15],
            models=tuple(row[16]),
            endpoint=_endpoint(row[17]),
            simulated=bool(row[18]),
            run_uuid=row[19] or "",
        )
        for row in rows
    ]
