"""Every figure of ``costlens report``, aggregated in DuckDB and returned as frozen dataclasses.

The report is an audit document, so its numbers must be the ones ``costlens summary`` prints for
the same filters and must be reproducible from the DB file and the price table. Hence:

* The rows are selected once, with :meth:`Filters.where` (the condition ``summary`` uses), out of
  the cost view ``request_costs`` into the TEMP table ``report_rows`` (``sql/report_rows.sql``).
  One scan of the view instead of one per section is what keeps a million-request report inside
  its time budget; money is copied as the view computed it, never recomputed.
* Each section is one query in ``costlens/report/sql/report_*.sql``; they return sums, counts and
  quantiles over a handful of groups. Ratios of money (shares, cost per 1K requests, changes)
  are taken here in Python ``Decimal`` on those aggregated rows, because DuckDB's decimal
  division returns DOUBLE.
* Every query orders its rows completely, so the same data always gives the same
  :class:`ReportData`, and therefore byte-identical HTML and JSON (``costlens.report.html``).

Nothing here formats for display; ``costlens.report.html`` renders what this module returns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

import duckdb

from costlens import __version__
from costlens.errors import ConfigError, StoreError
from costlens.money.filters import Filters
from costlens.money.pricing import PriceTable
from costlens.reconcile import ReconciliationSummary, latest_reconciliation
from costlens.report.compare import SheetComparison, compare_sheets
from costlens.report.summary import SimulatedRuns, simulated_runs

__all__ = [
    "COST_FORMULA",
    "Comparison",
    "ComparisonRow",
    "Coverage",
    "DailyRow",
    "ErrorRow",
    "FinishRow",
    "Headline",
    "LatencyRow",
    "Method",
    "ModelRow",
    "PriceRowUsed",
    "PriceSourceRef",
    "ReportData",
    "RunChange",
    "RunRef",
    "ScatterPoint",
    "TagRow",
    "TierFallback",
    "TopRequest",
    "UserRow",
    "WhatIf",
    "WhatIfRow",
    "build_report_data",
    "check_timezone",
    "describe_filters",
]

USERS_LISTED: Final = 50
TOP_REQUESTS: Final = 20
COMPLETION_CHARS: Final = 500

COST_FORMULA: Final = (
    "Each request is priced by the price-sheet row of its model (response model, else requested; "
    "exact id, then alias, then pattern, most specific first, then all again without the provider "
    "prefix; a fallback sheet only for a model the main sheet does not know) and service tier that "
    "is in force at the response's creation time (else the replay time); when the model has no row "
    "for that tier, the standard row is used and counted as a tier fallback. "
    "Cost = (prompt tokens - cache reads - cache writes) x input price "
    "+ cache reads x cached-input price (else input) "
    "+ 5-minute cache writes x cache-write price (else input) "
    "+ 1-hour cache writes x 1-hour cache-write price (else cache-write, else input) "
    "+ (completion tokens - reasoning tokens) x output price "
    "+ reasoning tokens x reasoning price (else output) "
    "+ the per-request fee for a successful request, prices in USD per 1M tokens, "
    "computed exactly as DECIMAL(38,15) in DuckDB (costlens/money/sql/request_costs.sql). "
    "A failed request that reported no usage costs 0 (not billed); a request whose model or price "
    "is unknown is unpriced: counted, never added to a total as $0."
)


# --- records ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRow:
    """One model's totals (or the grand total, ``model == "TOTAL"``); money only over priced requests."""

    model: str
    requests: int
    ok: int
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
    priced_tokens: int
    priced_by_fallback_sheet: int
    cost_per_1k_requests: Decimal | None
    cost_per_1m_tokens: Decimal | None
    share_of_spend: Decimal | None
    # The provider's own figures where it gave one (usage.cost, x-litellm-response-cost), and costlens's
    # cost over the same requests (``reported_compared`` of them: those costlens prices too).
    reported_requests: int = 0
    reported_compared: int = 0
    reported_compared_usd: Decimal | None = None
    computed_compared_usd: Decimal | None = None
    reported_difference_usd: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TierFallback:
    tier: str
    requests: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Coverage:
    """Price coverage: how much of the selection the total actually includes, and how."""

    requests: int
    priced: int
    unpriced: int
    unpriced_tokens: int
    tier_fallback: int
    fallback_by_tier: tuple[TierFallback, ...]
    # Priced by a --fallback-pricing sheet (part of ``priced``), and the names of those sheets.
    priced_by_fallback_sheet: int = 0
    fallback_sheets: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.unpriced == 0 and self.tier_fallback == 0 and self.priced_by_fallback_sheet == 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRef:
    run_id: int
    name: str | None
    kind: str
    source_file: str | None
    started_at: datetime
    tags: tuple[tuple[str, str], ...]
    requests: int
    cost_usd: Decimal | None
    simulated: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Headline:
    total: ModelRow
    success_rate: Decimal | None
    first_at: datetime | None
    last_at: datetime | None
    runs: tuple[RunRef, ...]
    coverage: Coverage
    # Requests with no time of their own (Anthropic batch results, expired lines): dated at the
    # replay (or `replay --at`), so they stretch the period to the day of the replay.
    undated: int = 0
    # Simulated runs (costlens serve-sim) counted on the page, or left out of it.
    simulated: SimulatedRuns = SimulatedRuns(included=False, runs=0, requests=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class ComparisonRow:
    """One model against the baseline, over the custom_ids both ran (``pairs``)."""

    model: str
    pairs: int
    priced_pairs: int
    cost_usd: Decimal | None
    baseline_cost_usd: Decimal | None
    total_cost_ratio: Decimal | None
    mean_cost_ratio: float | None
    ok_pairs: int
    output_tokens: int
    baseline_output_tokens: int
    output_ratio: Decimal | None
    latency_pairs: int
    mean_latency_ms: float | None
    baseline_mean_latency_ms: float | None
    latency_ratio: float | None
    failed: int
    baseline_failed: int
    failure_rate: Decimal | None
    baseline_failure_rate: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScatterPoint:
    """A model's mean cost and latency over its requests among the shared custom_ids."""

    model: str
    requests: int
    priced: int
    mean_cost_usd: Decimal | None
    latency_n: int
    mean_latency_ms: float | None
    pareto: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    baseline: str
    baseline_source: Literal["--baseline", "most requests"]
    shared_custom_ids: int
    rows: tuple[ComparisonRow, ...]
    points: tuple[ScatterPoint, ...]
    latency_known: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class WhatIfRow:
    model: str
    provider: str | None
    ran_here: bool
    input_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    output_basis: Literal["observed ratio", "same output"]
    observed_output_ratio: Decimal | None
    # How many requests of the selection the observed ratio rests on (None: the model did not run here).
    observed_requests: int | None
    input_cost_usd: Decimal | None
    output_cost_usd: Decimal | None
    cost_usd: Decimal | None
    vs_actual: Decimal | None
    price_ids: tuple[int, ...]
    note: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class WhatIf:
    as_of: datetime
    actual_cost_usd: Decimal | None
    rows: tuple[WhatIfRow, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DailyRow:
    day: date
    model: str
    requests: int
    cost_usd: Decimal | None
    unpriced: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunChange:
    """A run against the previous run of the same name in the selection ("tonight vs last night")."""

    name: str
    run_id: int
    started_at: datetime
    requests: int
    cost_usd: Decimal | None
    previous_run_id: int
    previous_requests: int
    previous_cost_usd: Decimal | None
    cost_change: Decimal | None
    cost_per_request_change: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyRow:
    model: str
    requests: int
    latency_n: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    ttft_n: int
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    ttft_p99_ms: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserRow:
    """``user`` None = not set on the request; ``users`` > 1 only on the folded "others" row."""

    user: str | None
    listed: bool
    users: int
    requests: int
    failed: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None
    unpriced: int
    share_of_spend: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TagRow:
    key: str
    value: str | None
    runs: int
    requests: int
    cost_usd: Decimal | None
    unpriced: int
    share_of_spend: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishRow:
    reason: str | None
    model: str
    choices: int
    share_of_model: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorRow:
    error_type: str | None
    model: str
    requests: int
    http_statuses: str | None
    example_message: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TopRequest:
    run_id: int
    request_id: int
    custom_id: str
    model: str
    user: str | None
    occurred_at: datetime
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: Decimal
    completion: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceRowUsed:
    price_id: int
    model: str
    service_tier: str
    min_prompt_tokens: int
    input_per_1m: Decimal | None
    cached_input_per_1m: Decimal | None
    cache_write_per_1m: Decimal | None
    cache_write_1h_per_1m: Decimal | None
    output_per_1m: Decimal | None
    reasoning_per_1m: Decimal | None
    per_request_usd: Decimal | None
    effective_from: datetime | None
    effective_to: datetime | None
    file: str
    line: int
    requests: int
    used_for: Literal["costs", "what-if", "costs and what-if"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceSourceRef:
    path: str
    sha256: str
    rows: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Method:
    costlens_version: str
    db_path: str
    cost_formula: str
    price_sources: tuple[PriceSourceRef, ...]
    price_rows: tuple[PriceRowUsed, ...]
    filters: tuple[str, ...]
    tz: str
    as_of: datetime
    omitted: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportData:
    """Everything the report shows. Times are naive and in ``tz``, except ``as_of`` and price dates (UTC)."""

    tz: str
    headline: Headline
    models: tuple[ModelRow, ...]
    comparison: Comparison | None
    whatif: WhatIf | None
    daily: tuple[DailyRow, ...]
    run_changes: tuple[RunChange, ...]
    latency: tuple[LatencyRow, ...]
    users: tuple[UserRow, ...]
    tags: tuple[TagRow, ...]
    finish_reasons: tuple[FinishRow, ...]
    failures: tuple[ErrorRow, ...]  # failed requests by error type and model
    top_requests: tuple[TopRequest, ...]
    method: Method
    # --compare-pricing: the same requests on each named sheet (costlens.report.compare); None without it.
    sheet_comparison: SheetComparison | None = None
    # The newest stored `costlens reconcile` over the same selection and period, if any.
    reconciliation: ReconciliationSummary | None = None

    @property
    def latency_recorded(self) -> bool:
        return any(row.latency_n or row.ttft_n for row in self.latency)


# --- queries ----------------------------------------------------------------------------------


def _sql(name: str) -> str:
    return resources.files("costlens.report").joinpath(f"sql/report_{name}.sql").read_text(encoding="utf-8")


def _rows(
    conn: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    sql = _sql(name)
    try:
        cursor = conn.execute(sql, dict(params) if params else None)
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, raw, strict=True)) for raw in cursor.fetchall()]
    except duckdb.Error as e:
        raise StoreError(f"report query report_{name}.sql failed: {e}") from e


def _ratio(numerator: Decimal | int | None, denominator: Decimal | int | None) -> Decimal | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return Decimal(numerator) / Decimal(denominator)


def _change(new: Decimal | None, old: Decimal | None) -> Decimal | None:
    ratio = _ratio(new, old)
    return None if ratio is None else ratio - 1


def _model_row(row: Mapping[str, Any], total_cost: Decimal | None) -> ModelRow:
    cost: Decimal | None = row["cost_usd"]
    priced: int = row["priced"]
    return ModelRow(
        model="TOTAL" if row["is_total"] else row["model"],
        requests=row["requests"],
        ok=row["ok"],
        failed=row["failed"],
        input_tokens=int(row["input_tokens"]),
        cached_tokens=int(row["cached_tokens"]),
        cache_write_tokens=int(row["cache_write_tokens"]),
        output_tokens=int(row["output_tokens"]),
        reasoning_tokens=int(row["reasoning_tokens"]),
        input_cost_usd=row["input_cost_usd"],
        output_cost_usd=row["output_cost_usd"],
        cost_usd=cost,
        priced=priced,
        unpriced=row["unpriced"],
        tier_fallback=row["tier_fallback"],
        unpriced_tokens=int(row["unpriced_tokens"]),
        priced_tokens=int(row["priced_tokens"]),
        priced_by_fallback_sheet=int(row["sheet_fallback"]),
        # Same definition as summary.ModelSummary.cost_per_1k_requests.
        cost_per_1k_requests=None if cost is None or priced == 0 else cost * 1000 / priced,
        cost_per_1m_tokens=_ratio(None if cost is None else cost * 1_000_000, int(row["priced_tokens"])),
        share_of_spend=_ratio(cost, total_cost),
        reported_requests=int(row.get("reported_requests") or 0),
        reported_compared=int(row.get("reported_compared") or 0),
        reported_compared_usd=row.get("reported_compared_usd"),
        computed_compared_usd=row.get("computed_compared_usd"),
        reported_difference_usd=None
        if row.get("reported_compared_usd") is None or row.get("computed_compared_usd") is None
        else row["reported_compared_usd"] - row["computed_compared_usd"],
    )


def _empty_total() -> dict[str, Any]:
    zero_keys = (
        "requests", "ok", "failed", "input_tokens", "cached_tokens", "cache_write_tokens",
        "output_tokens", "reasoning_tokens", "priced", "unpriced", "tier_fallback",
        "unpriced_tokens", "priced_tokens", "sheet_fallback",
    )  # fmt: skip
    row: dict[str, Any] = dict.fromkeys(zero_keys, 0)
    row.update(is_total=1, model=None, input_cost_usd=None, output_cost_usd=None, cost_usd=None)
    row.update(first_at=None, last_at=None)
    return row


def _pareto(points: Sequence[tuple[str, Decimal, float]]) -> set[str]:
    """Models no other model beats on both cost and latency (lower is better on both)."""
    front: set[str] = set()
    for name, cost, latency in points:
        dominated = any(c <= cost and lat <= latency and (c < cost or lat < latency) for _, c, lat in points)
        if not dominated:
            front.add(name)
    return front


def _comparison(
    conn: duckdb.DuckDBPyConnection, models: Sequence[ModelRow], baseline: str | None
) -> Comparison | None:
    try:
        conn.execute(_sql("compare_rows"))
    except duckdb.Error as e:
        raise StoreError(f"report query report_compare_rows.sql failed: {e}") from e
    members = _rows(conn, "compare_models")
    if not members:
        return None
    in_comparison = {m["model"] for m in members}
    if baseline is not None:
        chosen = next(m.model for m in models if m.model.lower() == baseline.lower())
        source: Literal["--baseline", "most requests"] = "--baseline"
    else:
        # models are ordered by cost; "most used" is by requests, ties broken by name.
        ranked = sorted((m for m in models if m.model in in_comparison), key=lambda m: (-m.requests, m.model))
        chosen = ranked[0].model
        source = "most requests"
    rows: list[ComparisonRow] = []
    for r in _rows(conn, "compare", {"baseline": chosen}):
        mean_latency, base_latency = r["mean_latency_ms"], r["baseline_mean_latency_ms"]
        rows.append(
            ComparisonRow(
                model=r["model"],
                pairs=r["pairs"],
                priced_pairs=r["priced_pairs"],
                cost_usd=r["cost_usd"],
                baseline_cost_usd=r["baseline_cost_usd"],
                total_cost_ratio=_ratio(r["cost_usd"], r["baseline_cost_usd"]),
                mean_cost_ratio=r["mean_cost_ratio"],
                ok_pairs=r["ok_pairs"],
                output_tokens=int(r["output_tokens"]),
                baseline_output_tokens=int(r["baseline_output_tokens"]),
                output_ratio=_ratio(int(r["output_tokens"]), int(r["baseline_output_tokens"])),
                latency_pairs=r["latency_pairs"],
                mean_latency_ms=mean_latency,
                baseline_mean_latency_ms=base_latency,
                latency_ratio=None
                if mean_latency is None or not base_latency
                else mean_latency / base_latency,
                failed=r["failed"],
                baseline_failed=r["baseline_failed"],
                failure_rate=_ratio(r["failed"], r["pairs"]),
                baseline_failure_rate=_ratio(r["baseline_failed"], r["pairs"]),
            )
        )
    means = {
        m["model"]: (None if m["cost_usd"] is None else _ratio(m["cost_usd"], m["priced"])) for m in members
    }
    candidates = [
        (m["model"], cost, float(m["mean_latency_ms"]))
        for m in members
        if (cost := means[m["model"]]) is not None and m["mean_latency_ms"] is not None
    ]
    front = _pareto(candidates)
    points = tuple(
        ScatterPoint(
            model=m["model"],
            requests=m["requests"],
            priced=m["priced"],
            mean_cost_usd=means[m["model"]],
            latency_n=m["latency_n"],
            mean_latency_ms=m["mean_latency_ms"],
            pareto=m["model"] in front,
        )
        for m in members
    )
    return Comparison(
        baseline=chosen,
        baseline_source=source,
        shared_custom_ids=members[0]["shared_ids"],
        rows=tuple(rows),
        points=points,
        latency_known=any(p.latency_n for p in points),
    )


def _whatif(conn: duckdb.DuckDBPyConnection, as_of: datetime, actual: Decimal | None) -> WhatIf | None:
    rows: list[WhatIfRow] = []
    for r in _rows(conn, "whatif", {"as_of": as_of}):
        observed_ratio = _ratio(r["observed_output_tokens"], r["observed_input_tokens"])
        note = None
        if r["missing_row"]:
            note = "no standard price row in force"
        elif r["cost_usd"] is None:
            note = "price cell empty"
        rows.append(
            WhatIfRow(
                model=r["model"],
                provider=r["provider"],
                ran_here=r["ran_here"],
                input_tokens=r["input_tokens"],
                cached_tokens=r["cached_tokens"],
                cache_write_tokens=r["cache_write_tokens"],
                output_tokens=r["output_tokens"],
                reasoning_tokens=r["reasoning_tokens"],
                output_basis="observed ratio" if r["ran_here"] else "same output",
                observed_output_ratio=observed_ratio,
                observed_requests=None if r["observed_requests"] is None else int(r["observed_requests"]),
                input_cost_usd=r["input_cost_usd"],
                output_cost_usd=r["output_cost_usd"],
                cost_usd=r["cost_usd"],
                vs_actual=_ratio(r["cost_usd"], actual),
                price_ids=tuple(r["price_ids"] or ()),
                note=note,
            )
        )
    if not rows:
        return None
    return WhatIf(as_of=as_of, actual_cost_usd=actual, rows=tuple(rows))


def _price_rows(conn: duckdb.DuckDBPyConnection, whatif: WhatIf | None) -> tuple[PriceRowUsed, ...]:
    used = {r["price_id"]: r for r in _rows(conn, "prices_used")}
    whatif_ids = {pid for row in (whatif.rows if whatif else ()) for pid in row.price_ids}
    extra: dict[int, dict[str, Any]] = {}
    if whatif_ids - set(used):
        ids = sorted(whatif_ids - set(used))
        cursor = conn.execute(
            "SELECT price_id, model, service_tier, min_prompt_tokens, input_per_1m, cached_input_per_1m, "
            "cache_write_per_1m, cache_write_1h_per_1m, output_per_1m, reasoning_per_1m, per_request_usd, "
            "effective_from, effective_to, "
            f"price_file, price_line, 0 AS requests FROM prices WHERE price_id IN ({', '.join('?' * len(ids))})",
            ids,
        )
        names = [d[0] for d in cursor.description or ()]
        extra = {raw[0]: dict(zip(names, raw, strict=True)) for raw in cursor.fetchall()}
    out: list[PriceRowUsed] = []
    for pid, r in sorted({**used, **extra}.items(), key=lambda kv: (kv[1]["model"].lower(), kv[0])):
        in_costs, in_whatif = pid in used, pid in whatif_ids
        out.append(
            PriceRowUsed(
                price_id=pid,
                model=r["model"],
                service_tier=r["service_tier"],
                min_prompt_tokens=r["min_prompt_tokens"],
                input_per_1m=r["input_per_1m"],
                cached_input_per_1m=r["cached_input_per_1m"],
                cache_write_per_1m=r["cache_write_per_1m"],
                cache_write_1h_per_1m=r["cache_write_1h_per_1m"],
                output_per_1m=r["output_per_1m"],
                reasoning_per_1m=r["reasoning_per_1m"],
                per_request_usd=r["per_request_usd"],
                effective_from=r["effective_from"],
                effective_to=r["effective_to"],
                file=r["price_file"],
                line=r["price_line"],
                requests=r["requests"],
                used_for="costs and what-if"
                if in_costs and in_whatif
                else "costs"
                if in_costs
                else "what-if",
            )
        )
    return tuple(out)


def describe_filters(filters: Filters) -> tuple[str, ...]:
    """The selection in words, for the method footer (empty = every request in the DB)."""
    out: list[str] = []
    if filters.run_ids:
        out.append("runs " + ", ".join(str(r) for r in sorted(filters.run_ids)))
    if filters.run_uuids:
        out.append("runs " + ", ".join(sorted(filters.run_uuids)))
    if filters.since is not None:
        out.append(f"since {filters.since.isoformat(sep=' ')} UTC (inclusive)")
    if filters.until is not None:
        out.append(f"until {filters.until.isoformat(sep=' ')} UTC (exclusive)")
    if filters.models:
        out.append("models " + ", ".join(sorted(filters.models)))
    for key, value in sorted(filters.tags.items()):
        out.append(f"tag {key}={value}")
    return tuple(out)


def check_timezone(conn: duckdb.DuckDBPyConnection, tz: str) -> str:
    """The zone's canonical spelling in DuckDB's ICU database, or ConfigError."""
    rows = conn.execute(
        "SELECT name FROM pg_timezone_names() WHERE lower(name) = lower(?) ORDER BY name = ? DESC, name",
        [tz, tz],
    ).fetchall()
    if not rows:
        raise ConfigError(
            f"--tz {tz!r}: unknown time zone (use an IANA name such as UTC, Europe/Paris, America/New_York)"
        )
    return str(rows[0][0])


def _database_path(conn: duckdb.DuckDBPyConnection) -> str:
    rows = conn.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    return str(rows[0][0]) if rows and rows[0][0] else ":memory:"


def build_report_data(
    conn: duckdb.DuckDBPyConnection,
    filters: Filters | None = None,
    *,
    prices: PriceTable,
    as_of: datetime,
    baseline: str | None = None,
    tz: str = "UTC",
    db_path: str | None = None,
    compare: Sequence[tuple[str, str]] = (),
    full_paths: bool = False,
) -> ReportData:
    """Aggregate the report's figures for the requests ``filters`` selects.

    ``conn`` must come from :func:`costlens.session.open_session` (cost view and TEMP
    ``prices`` installed). ``as_of`` (naive UTC) picks the price rows "in force now" for
    the what-if and is recorded in the footer; pass a fixed value for reproducible output.
    ``compare`` names ``(name, suffix)`` sheets registered with
    :func:`costlens.session.register_compare_sheets`: the "price sheets side by side" section.
    The page is forwarded to people who have no business with this machine's directories, so
    the DB and price files are named by file name (with their sha256) unless ``full_paths``.
    """
    filters = filters or Filters()
    tz = check_timezone(conn, tz)
    where, params = filters.where("c")
    try:
        conn.execute(_sql("rows").format(where=where), params)
    except duckdb.Error as e:
        raise StoreError(f"cannot select the report's requests: {e}") from e
    try:
        data = _build(conn, filters, prices=prices, as_of=as_of, baseline=baseline, tz=tz, db_path=db_path)
    finally:
        conn.execute("DROP TABLE IF EXISTS report_compare_rows")
        conn.execute("DROP TABLE IF EXISTS report_rows")
    if not full_paths:
        data = _file_names_only(data)
    data = replace(data, reconciliation=latest_reconciliation(conn, filters))
    if not compare:
        return data
    # Straight from the cost views with the same Filters.where, like summary (not from report_rows).
    return replace(data, sheet_comparison=compare_sheets(conn, filters, compare))


def _file_name(path: str) -> str:
    return Path(path).name or path


def _file_names_only(data: ReportData) -> ReportData:
    m = data.method
    method = replace(
        m,
        db_path=_file_name(m.db_path),
        price_sources=tuple(replace(s, path=_file_name(s.path)) for s in m.price_sources),
        price_rows=tuple(replace(r, file=_file_name(r.file)) for r in m.price_rows),
    )
    return replace(data, method=method)


def _build(
    conn: duckdb.DuckDBPyConnection,
    filters: Filters,
    *,
    prices: PriceTable,
    as_of: datetime,
    baseline: str | None,
    tz: str,
    db_path: str | None,
) -> ReportData:
    tzp = {"tz": tz}
    raw_models = _rows(conn, "models", tzp)
    raw_total = next((r for r in raw_models if r["is_total"]), None) or _empty_total()
    total_cost: Decimal | None = raw_total["cost_usd"]
    total = _model_row(raw_total, total_cost)
    models = tuple(_model_row(r, total_cost) for r in raw_models if not r["is_total"])
    if baseline is not None and not any(m.model.lower() == baseline.lower() for m in models):
        names = ", ".join(m.model for m in models) or "none"
        raise ConfigError(
            f"--baseline {baseline!r}: no request of that model in the selection (models: {names})"
        )

    runs: list[RunRef] = []
    changes: list[RunChange] = []
    for r in _rows(conn, "runs", tzp):
        runs.append(
            RunRef(
                run_id=r["run_id"],
                name=r["name"],
                kind=r["kind"],
                source_file=r["source_file"],
                started_at=r["started_at"],
                tags=tuple(sorted((str(k), str(v)) for k, v in json.loads(r["tags"]).items())),
                requests=r["requests"],
                cost_usd=r["cost_usd"],
                simulated=bool(r["simulated"]),
            )
        )
        if r["previous_run_id"] is not None:
            per_request = _ratio(r["cost_usd"], r["priced"])
            previous_per_request = _ratio(r["previous_cost_usd"], r["previous_priced"])
            changes.append(
                RunChange(
                    name=r["name"],
                    run_id=r["run_id"],
                    started_at=r["started_at"],
                    requests=r["requests"],
                    cost_usd=r["cost_usd"],
                    previous_run_id=r["previous_run_id"],
                    previous_requests=r["previous_requests"],
                    previous_cost_usd=r["previous_cost_usd"],
                    cost_change=_change(r["cost_usd"], r["previous_cost_usd"]),
                    cost_per_request_change=_change(per_request, previous_per_request),
                )
            )
    changes.sort(key=lambda c: (c.name, c.started_at, c.run_id))

    fallback = tuple(
        TierFallback(tier=r["service_tier"], requests=r["requests"]) for r in _rows(conn, "fallback")
    )
    coverage = Coverage(
        requests=total.requests,
        priced=total.priced,
        unpriced=total.unpriced,
        unpriced_tokens=total.unpriced_tokens,
        tier_fallback=total.tier_fallback,
        fallback_by_tier=fallback,
        priced_by_fallback_sheet=total.priced_by_fallback_sheet,
        fallback_sheets=tuple(r["price_sheet_name"] for r in _rows(conn, "fallback_sheets")),
    )
    headline = Headline(
        total=total,
        success_rate=_ratio(total.ok, total.requests),
        first_at=raw_total["first_at"],
        last_at=raw_total["last_at"],
        runs=tuple(runs),
        coverage=coverage,
        undated=int(conn.execute("SELECT count(*) FROM report_rows WHERE undated").fetchall()[0][0]),
        simulated=simulated_runs(conn, filters),
    )

    comparison = _comparison(conn, models, baseline) if total.requests else None
    whatif = _whatif(conn, as_of, total_cost) if total.requests else None

    daily = tuple(
        DailyRow(
            day=r["day"],
            model=r["model"],
            requests=r["requests"],
            cost_usd=r["cost_usd"],
            unpriced=r["unpriced"],
        )
        for r in _rows(conn, "daily", tzp)
    )
    latency = tuple(
        LatencyRow(
            model=r["model"],
            requests=r["requests"],
            latency_n=r["latency_n"],
            latency_p50_ms=r["latency_p50"],
            latency_p95_ms=r["latency_p95"],
            latency_p99_ms=r["latency_p99"],
            ttft_n=r["ttft_n"],
            ttft_p50_ms=r["ttft_p50"],
            ttft_p95_ms=r["ttft_p95"],
            ttft_p99_ms=r["ttft_p99"],
        )
        for r in _rows(conn, "latency")
    )
    user_rows = _rows(conn, "users", {"limit": USERS_LISTED})
    users = tuple(
        UserRow(
            user=r["user"],
            listed=r["listed"],
            users=r["users"],
            requests=int(r["requests"]),
            failed=int(r["failed"]),
            input_tokens=int(r["input_tokens"]),
            output_tokens=int(r["output_tokens"]),
            cost_usd=r["cost_usd"],
            unpriced=int(r["unpriced"]),
            share_of_spend=_ratio(r["cost_usd"], total_cost),
        )
        for r in user_rows
    )
    # Only worth a table when some request carried a user id.
    if all(u.user is None for u in users if u.listed):
        users = ()
    tags = tuple(
        TagRow(
            key=r["key"],
            value=r["value"],
            runs=r["runs"],
            requests=int(r["requests"]),
            cost_usd=r["cost_usd"],
            unpriced=int(r["unpriced"]),
            share_of_spend=_ratio(r["cost_usd"], total_cost),
        )
        for r in _rows(conn, "tags")
    )
    finish_raw = _rows(conn, "finish")
    per_model: dict[str, int] = {}
    for r in finish_raw:
        per_model[r["model"]] = per_model.get(r["model"], 0) + r["choices"]
    finish = tuple(
        FinishRow(
            reason=r["reason"],
            model=r["model"],
            choices=r["choices"],
            share_of_model=Decimal(r["choices"]) / per_model[r["model"]],
        )
        for r in finish_raw
    )
    failures = tuple(
        ErrorRow(
            error_type=r["error_type"],
            model=r["model"],
            requests=r["requests"],
            http_statuses=r["http_statuses"] or None,
            example_message=r["example_message"],
        )
        for r in _rows(conn, "errors")
    )
    top = tuple(
        TopRequest(
            run_id=r["run_id"],
            request_id=r["request_id"],
            custom_id=r["custom_id"],
            model=r["model"],
            user=r["user"],
            occurred_at=r["occurred_at"],
            input_tokens=r["prompt_tokens"],
            output_tokens=r["completion_tokens"],
            cost_usd=r["cost_usd"],
            completion=r["completion"],
        )
        for r in _rows(conn, "top", {"limit": TOP_REQUESTS, "tz": tz, "max_chars": COMPLETION_CHARS})
    )

    omitted: list[str] = []
    if total.requests and comparison is None:
        omitted.append("model comparison: no custom_id ran on more than one model in this selection")
    if total.requests and whatif is None:
        omitted.append("what-if: the price table has no models")
    method = Method(
        costlens_version=__version__,
        db_path=db_path if db_path is not None else _database_path(conn),
        cost_formula=COST_FORMULA,
        price_sources=tuple(
            PriceSourceRef(path=s.path, sha256=s.sha256, rows=s.rows) for s in prices.sources
        ),
        price_rows=_price_rows(conn, whatif),
        filters=describe_filters(filters),
        tz=tz,
        as_of=as_of,
        omitted=tuple(omitted),
    )
    return ReportData(
        tz=tz,
        headline=headline,
        models=models,
        comparison=comparison,
        whatif=whatif,
        daily=daily,
        run_changes=tuple(changes),
        latency=latency,
        users=users,
        tags=tags,
        finish_reasons=finish,
        failures=failures,
        top_requests=top,
        method=method,
    )
