"""The comparison itself, in DuckDB SQL: provider buckets against costlens's requests, cell by cell.

The exports' rows go into a TEMP table (through Arrow, decimals as ``decimal128(38,15)``);
costlens's side is one aggregation of the ``request_costs`` view over the selection (grouped by
UTC day, model ids and tier, never a loop over requests); every later step works on those two
small tables. The tables are TEMP and named ``_recon_*``; :data:`CELLS_TABLE` holds the result
until :func:`drop_tables` (the store copies it from there).

**Cells.** Per export kind: UTC day x model x tier (where the kind has one) x figure
(requests, input / cached / cache-write / output tokens, cost, as far as the kind carries
each). A cell's ``difference`` is costlens minus provider.

**costlens's side** is the selected requests that were billed: successes, and errors that
reported usage (an error without usage is not billed). Requests counts successes; tokens are
as reported (NULL = 0); cost is the priced requests' cost (unpriced ones are counted apart and
named as a cause). Only days an export covers are compared, per kind; traffic on other days,
and traffic of models no export names, is left out and reported as not compared.

**Model alignment.** Export and costlens name models differently (``gpt-4o-2024-08-06`` at the
provider, ``gpt-4o`` priced by costlens). A request belongs to the export's model that equals,
case-insensitively, its response model, else its requested model, else the model costlens
priced it as, else the response or requested model without its provider prefix
(``openai/gpt-4o`` -> ``gpt-4o``): the first that the export names wins, so the most specific id
(what actually ran) is preferred. An export not grouped by model compares every request.

**Tiers.** A kind grouped by tier compares costlens's ``service_tier`` as is; one grouped by the
batch flag alone compares ``batch`` against everything else (``non-batch``); otherwise tiers
are not split.

**Verdicts**: ``ok`` when the difference is within the tolerance; else ``missing in costlens``
(costlens has no request in the cell), ``missing at provider`` (the export has no figure for
it), or ``differs``.

**Causes**, the first that the evidence supports (a cell's own figures, the other figures of the
same day and model from the same provider — the usage export explains the cost export — and the
days next to it):

1. ``charge without a model`` — the export names no model for it (web search, a line item
   without a model id): costlens cannot attribute it.
2. ``window or time zone`` — the same figure differs the other way on the day before or after
   (traffic dated across midnight), or costlens has traffic on a day the export shows none for
   (the day is present on one side only; undated requests are counted in the evidence).
3. ``traffic costlens never saw`` — the export has figures where costlens has no request, or
   more requests (without request counts: more input and output tokens).
4. ``unpriced in costlens`` — costlens is short on money and some of its requests have no price.
5. ``traffic the export does not show`` — costlens has more requests than the export.
6. ``batch discount never applied`` / ``applied twice`` — batch traffic (the cell's tier, or
   all of costlens's requests in it) where costlens is 2x / 0.5x the provider's cost (costs
   include the batch discount once).
7. ``cache not reported`` / ``cache writes not reported`` — costlens counts fewer cached (or
   cache-write) tokens than the provider (usage without a cache figure), on that figure and on
   the money it changes.
8. ``price sheet differs`` — every token and request figure agrees, the money does not.
9. ``token counts differ`` — otherwise, when token figures differ; ``unexplained`` for money
   with no token figures from the provider to compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final

import duckdb
import pyarrow as pa

from costlens.errors import StoreError
from costlens.money.filters import Filters
from costlens.reconcile.exports import Export, KindPlan
from costlens.reconcile.records import NotCompared, Total
from costlens.reconcile.sources.base import MEASURES
from costlens.reconcile.tolerance import Tolerance

__all__ = ["ALL_MODELS", "CELLS_TABLE", "NO_MODEL", "Comparison", "compare", "drop_tables"]

CELLS_TABLE: Final = "_recon_out"
NO_MODEL: Final = "(no model)"  # the model column of a charge the export names no model for
ALL_MODELS: Final = ""  # key of a cell of an export not grouped by model (shown as "(all models)")
_TABLES: Final = (
    "_recon_rows",
    "_recon_kinds",
    "_recon_days",
    "_recon_measures",
    "_recon_models",
    "_recon_costlens",
    "_recon_assigned",
    "_recon_c",
    "_recon_p",
    "_recon_cells",
    CELLS_TABLE,
)
_MONEY: Final = pa.decimal128(38, 15)

_COSTLENS_SQL: Final = """
CREATE OR REPLACE TEMP TABLE _recon_costlens AS
SELECT row_number() OVER () AS group_id, *
FROM (
    SELECT
        CAST(c.occurred_at AS DATE) AS day,
        c.response_model, c.requested_model, c.priced_model, c.service_tier,
        count(*) FILTER (WHERE c.status = 'ok') AS requests,
        coalesce(sum(c.prompt_tokens), 0) AS input_tokens,
        coalesce(sum(c.cached_tokens), 0) AS cached_tokens,
        coalesce(sum(c.cache_write_tokens), 0) AS cache_write_tokens,
        coalesce(sum(c.completion_tokens), 0) AS output_tokens,
        coalesce(sum(c.cost_usd) FILTER (WHERE c.priced), 0) AS cost_usd,
        count(*) AS logged,
        count(*) FILTER (WHERE NOT c.priced) AS unpriced,
        count(*) FILTER (WHERE c.tier_fallback) AS tier_fallback,
        count(*) FILTER (WHERE c.service_tier = 'batch') AS batch_requests,
        count(*) FILTER (WHERE c.created_at IS NULL AND c.started_at IS NULL) AS undated,
        count(*) FILTER (WHERE c.prompt_tokens IS NOT NULL AND c.cached_tokens IS NULL) AS no_cache_figure
    FROM request_costs c
    WHERE {where} AND (c.status = 'ok' OR c.usage_source <> 'none')
    GROUP BY ALL
)
"""

# Each costlens group, once per kind covering its day: the export's model it belongs to (NULL:
# none) and its tier in the kind's terms.
_ASSIGN_SQL: Final = f"""
CREATE OR REPLACE TEMP TABLE _recon_assigned AS
SELECT k.kind, b.group_id, b.day,
    CASE WHEN k.all_models THEN '{ALL_MODELS}'
         ELSE coalesce(m1.model_key, m2.model_key, m3.model_key, m4.model_key, m5.model_key) END AS model_key,
    CASE k.tier_mode
        WHEN 'none' THEN ''
        WHEN 'batch' THEN CASE WHEN b.service_tier = 'batch' THEN 'batch' ELSE 'non-batch' END
        ELSE b.service_tier END AS tier
FROM _recon_costlens b
JOIN _recon_days d ON d.day = b.day
JOIN _recon_kinds k ON k.kind = d.kind
LEFT JOIN _recon_models m1 ON m1.kind = k.kind AND m1.model_key = lower(b.response_model)
LEFT JOIN _recon_models m2 ON m2.kind = k.kind AND m2.model_key = lower(b.requested_model)
LEFT JOIN _recon_models m3 ON m3.kind = k.kind AND m3.model_key = lower(b.priced_model)
LEFT JOIN _recon_models m4
    ON m4.kind = k.kind AND m4.model_key = lower(regexp_replace(b.response_model, '^[^/]*/', ''))
LEFT JOIN _recon_models m5
    ON m5.kind = k.kind AND m5.model_key = lower(regexp_replace(b.requested_model, '^[^/]*/', ''))
"""

_COSTLENS_CELLS_SQL: Final = """
CREATE OR REPLACE TEMP TABLE _recon_c AS
SELECT a.kind, a.day, a.model_key, a.tier,
    sum(b.requests) AS requests, sum(b.input_tokens) AS input_tokens, sum(b.cached_tokens) AS cached_tokens,
    sum(b.cache_write_tokens) AS cache_write_tokens, sum(b.output_tokens) AS output_tokens,
    sum(b.cost_usd) AS cost_usd, sum(b.logged) AS logged, sum(b.unpriced) AS unpriced,
    sum(b.tier_fallback) AS tier_fallback, sum(b.batch_requests) AS batch_requests, sum(b.undated) AS undated,
    sum(b.no_cache_figure) AS no_cache_figure
FROM _recon_assigned a JOIN _recon_costlens b ON b.group_id = a.group_id
WHERE a.model_key IS NOT NULL
GROUP BY a.kind, a.day, a.model_key, a.tier
"""

_PROVIDER_CELLS_SQL: Final = """
CREATE OR REPLACE TEMP TABLE _recon_p AS
SELECT kind, day, model_key, tier,
    sum(requests) AS requests, sum(input_tokens) AS input_tokens, sum(cached_tokens) AS cached_tokens,
    sum(cache_write_tokens) AS cache_write_tokens, sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd,
    array_to_string(list_sort(list(DISTINCT unattributed) FILTER (WHERE unattributed IS NOT NULL)), '; ')
        AS unattributed
FROM _recon_rows
GROUP BY kind, day, model_key, tier
"""


def _figure(table: str) -> str:
    """The figure of ``measure`` in a row of ``table``, as DECIMAL(38,15) (counts fit: 23 digits)."""
    return (
        "CASE m.measure "
        + " ".join(f"WHEN '{name}' THEN CAST({table}.{name} AS DECIMAL(38, 15))" for name in MEASURES)
        + " END"
    )


# The limit a difference may reach and still agree (costlens.reconcile.tolerance states the rule).
_LIMIT: Final = (
    "CASE WHEN $pct IS NOT NULL THEN abs(coalesce({provider}, 0)) * $pct "
    "WHEN {measure} = 'cost_usd' THEN $usd ELSE CAST(0 AS DECIMAL(38, 15)) END"
)

_CELLS_SQL: Final = f"""
CREATE OR REPLACE TEMP TABLE _recon_cells AS
WITH p AS (
    SELECT p.kind, p.day, p.model_key, p.tier, m.measure, m.ord, p.unattributed, {_figure("p")} AS value
    FROM _recon_p p JOIN _recon_measures m ON m.kind = p.kind
),
c AS (
    SELECT c.kind, c.day, c.model_key, c.tier, m.measure, m.ord, {_figure("c")} AS value,
        c.logged, c.unpriced, c.tier_fallback, c.batch_requests, c.undated, c.no_cache_figure
    FROM _recon_c c JOIN _recon_measures m ON m.kind = c.kind
),
joined AS (
    SELECT coalesce(p.kind, c.kind) AS kind, coalesce(p.day, c.day) AS day,
        coalesce(p.model_key, c.model_key) AS model_key, coalesce(p.tier, c.tier) AS tier,
        coalesce(p.measure, c.measure) AS measure, coalesce(p.ord, c.ord) AS ord,
        p.value AS provider_value, c.value AS costlens_value,
        p.kind IS NOT NULL AS has_p, c.kind IS NOT NULL AS has_c,
        coalesce(c.value, 0) - coalesce(p.value, 0) AS difference,
        p.unattributed,
        coalesce(c.logged, 0) AS logged, coalesce(c.unpriced, 0) AS unpriced,
        coalesce(c.tier_fallback, 0) AS tier_fallback, coalesce(c.batch_requests, 0) AS batch_requests,
        coalesce(c.undated, 0) AS undated, coalesce(c.no_cache_figure, 0) AS no_cache_figure
    FROM p FULL OUTER JOIN c
      ON p.kind = c.kind AND p.day = c.day AND p.model_key = c.model_key AND p.tier = c.tier
     AND p.measure = c.measure
)
SELECT *, abs(difference) <= {_LIMIT.format(provider="provider_value", measure="measure")} AS within
FROM joined
"""

# The ratio checks for a batch cell: costlens at 2x (never discounted) or 0.5x (twice) the
# provider's cost, within the tolerance of that figure.
_TWICE: Final = "abs(coalesce(x.costlens_value, 0) - 2 * x.provider_value) <= " + _LIMIT.format(
    provider="2 * x.provider_value", measure="x.measure"
)
# costlens = provider / 2, within the tolerance of that figure, without a division (DuckDB divides
# decimals as doubles): |2c - p| <= 2 x limit(p / 2).
_HALF: Final = (
    "abs(2 * coalesce(x.costlens_value, 0) - x.provider_value) <= "
    "CASE WHEN $pct IS NOT NULL THEN abs(x.provider_value) * $pct ELSE 2 * $usd END"
)
_IS_BATCH: Final = "(x.tier = 'batch' OR (x.tier = '' AND x.logged > 0 AND x.batch_requests = x.logged))"
_COUNT: Final = "CAST(CAST(abs({}) AS HUGEINT) AS VARCHAR)"

_OUT_SQL: Final = f"""
CREATE OR REPLACE TEMP TABLE {CELLS_TABLE} AS
WITH off AS (SELECT * FROM _recon_cells WHERE NOT within),
shifted AS (
    SELECT a.kind, a.day, a.model_key, a.tier, a.measure, min(b.day) AS other_day
    FROM off a JOIN off b
      ON b.kind = a.kind AND b.model_key = a.model_key AND b.tier = a.tier AND b.measure = a.measure
     AND b.day = a.day + 1
    WHERE sign(b.difference) = -sign(a.difference)
    GROUP BY ALL
    UNION ALL
    SELECT a.kind, a.day, a.model_key, a.tier, a.measure, min(b.day) AS other_day
    FROM off a JOIN off b
      ON b.kind = a.kind AND b.model_key = a.model_key AND b.tier = a.tier AND b.measure = a.measure
     AND b.day = a.day - 1
    WHERE sign(b.difference) = -sign(a.difference)
    GROUP BY ALL
),
shift AS (
    SELECT kind, day, model_key, tier, measure, min(other_day) AS other_day FROM shifted GROUP BY ALL
),
-- What the token and request figures of the same provider, day and model say (all tiers).
ev AS (
    SELECT k.family, x.day, x.model_key,
        count(*) AS token_cells,
        bool_and(x.within) AS tokens_ok,
        bool_or(x.measure = 'requests') AS has_requests,
        sum(x.difference) FILTER (WHERE x.measure = 'requests') AS requests_diff,
        bool_or(x.measure = 'requests' AND NOT x.within AND x.difference < 0) AS requests_short,
        bool_or(x.measure = 'requests' AND NOT x.within AND x.difference > 0) AS requests_over,
        bool_or(x.measure = 'input_tokens' AND NOT x.within AND x.difference < 0)
            AND bool_or(x.measure = 'output_tokens' AND NOT x.within AND x.difference < 0) AS tokens_short,
        bool_or(x.measure = 'input_tokens' AND NOT x.within AND x.difference > 0)
            AND bool_or(x.measure = 'output_tokens' AND NOT x.within AND x.difference > 0) AS tokens_over,
        bool_or(x.measure = 'cached_tokens' AND NOT x.within AND x.difference < 0) AS cache_low,
        bool_or(x.measure = 'cache_write_tokens' AND NOT x.within AND x.difference < 0) AS cache_write_low
    FROM _recon_cells x JOIN _recon_kinds k ON k.kind = x.kind
    WHERE x.measure <> 'cost_usd' AND x.model_key <> '{NO_MODEL}'
    GROUP BY ALL
),
caused AS (
    SELECT x.*, k.ord AS kind_ord, s.other_day,
        coalesce(ev.requests_short OR (NOT ev.has_requests AND ev.tokens_short), false) AS short,
        coalesce(ev.requests_over OR (NOT ev.has_requests AND ev.tokens_over), false) AS over,
        ev.has_requests, ev.requests_diff, ev.token_cells, coalesce(ev.tokens_ok, false) AS tokens_ok,
        coalesce(ev.cache_low, false) AS cache_low, coalesce(ev.cache_write_low, false) AS cache_write_low,
        CASE WHEN x.within THEN NULL
             WHEN x.unattributed IS NOT NULL THEN 'charge without a model'
             WHEN s.other_day IS NOT NULL THEN 'window or time zone'
             WHEN NOT x.has_c THEN 'traffic costlens never saw'
             WHEN NOT x.has_p THEN 'window or time zone'
             WHEN x.measure = 'cost_usd' AND x.unpriced > 0 AND x.difference < 0 THEN 'unpriced in costlens'
             WHEN coalesce(ev.requests_short OR (NOT ev.has_requests AND ev.tokens_short), false)
                 THEN 'traffic costlens never saw'
             WHEN coalesce(ev.requests_over OR (NOT ev.has_requests AND ev.tokens_over), false)
                 THEN CASE WHEN x.undated > 0 THEN 'window or time zone' ELSE 'traffic the export does not show' END
             WHEN x.measure = 'cost_usd' AND {_IS_BATCH} AND {_TWICE} THEN 'batch discount never applied'
             WHEN x.measure = 'cost_usd' AND {_IS_BATCH} AND {_HALF} THEN 'batch discount applied twice'
             WHEN coalesce(ev.cache_low, false) AND x.measure IN ('cost_usd', 'cached_tokens') THEN 'cache not reported'
             WHEN coalesce(ev.cache_write_low, false) AND x.measure IN ('cost_usd', 'cache_write_tokens')
                 THEN 'cache writes not reported'
             WHEN x.measure = 'cost_usd' AND coalesce(ev.tokens_ok, false) THEN 'price sheet differs'
             WHEN x.measure = 'cost_usd' AND ev.token_cells IS NULL THEN 'unexplained'
             ELSE 'token counts differ' END AS cause
    FROM _recon_cells x
    JOIN _recon_kinds k ON k.kind = x.kind
    LEFT JOIN shift s
      ON s.kind = x.kind AND s.day = x.day AND s.model_key = x.model_key AND s.tier = x.tier AND s.measure = x.measure
    LEFT JOIN ev ON ev.family = k.family AND ev.day = x.day AND ev.model_key = x.model_key
)
SELECT x.kind AS source, x.day,
    CASE WHEN x.model_key = '{ALL_MODELS}' THEN NULL WHEN x.model_key = '{NO_MODEL}' THEN '{NO_MODEL}'
         ELSE coalesce(m.label, x.model_key) END AS model,
    nullif(x.tier, '') AS tier, x.measure, x.provider_value, x.costlens_value, x.difference,
    CASE WHEN x.within THEN 'ok' WHEN NOT x.has_c THEN 'missing in costlens'
         WHEN NOT x.has_p THEN 'missing at provider' ELSE 'differs' END AS verdict,
    x.cause,
    CASE x.cause
        WHEN 'charge without a model' THEN 'the export names no model for this charge: ' || x.unattributed
        WHEN 'window or time zone' THEN CASE
            WHEN x.other_day IS NOT NULL THEN 'the opposite difference on ' || strftime(x.other_day, '%Y-%m-%d')
                || ': traffic dated on the other side of midnight (UTC)'
            WHEN NOT x.has_p THEN 'the export shows nothing for this day'
            WHEN x.has_requests THEN 'costlens logged ' || {_COUNT.format("x.requests_diff")}
                || ' more requests than the export'
            ELSE 'costlens counts more input and output tokens than the export'
            END || CASE WHEN x.undated > 0 THEN '; ' || CAST(x.undated AS VARCHAR) || ' of costlens''s requests '
                || 'here carry no time of their own and are dated at the replay (replay --at WHEN dates them)'
                ELSE '' END
        WHEN 'traffic costlens never saw' THEN CASE
            WHEN NOT x.has_c THEN 'costlens logged no request for this on this day'
            WHEN x.has_requests THEN 'costlens logged ' || {_COUNT.format("x.requests_diff")} || ' fewer requests'
            ELSE 'costlens counts fewer input and output tokens' END
        WHEN 'traffic the export does not show' THEN CASE
            WHEN x.has_requests THEN 'costlens logged ' || {_COUNT.format("x.requests_diff")}
                || ' more requests than the export'
            ELSE 'costlens counts more input and output tokens than the export' END
        WHEN 'unpriced in costlens' THEN CAST(x.unpriced AS VARCHAR)
            || ' of costlens''s requests here have no price (not counted)'
        WHEN 'batch discount never applied' THEN 'costlens is 2x the provider''s cost of batch traffic'
            || CASE WHEN x.tier_fallback > 0 THEN ': ' || CAST(x.tier_fallback AS VARCHAR)
                || ' requests priced at standard for lack of a batch price' ELSE '' END
        WHEN 'batch discount applied twice' THEN 'costlens is half the provider''s cost of batch traffic'
        WHEN 'cache not reported' THEN CASE WHEN x.no_cache_figure > 0
            THEN CAST(x.no_cache_figure AS VARCHAR)
                || ' of costlens''s requests here report no cached tokens in their usage'
            ELSE 'the provider counts more cached tokens than costlens' END
        WHEN 'cache writes not reported' THEN 'the provider counts more cache-write tokens than costlens'
        WHEN 'price sheet differs' THEN 'tokens agree; costlens is '
            || CAST(round(CAST(x.costlens_value AS DOUBLE) / nullif(CAST(x.provider_value AS DOUBLE), 0), 4) AS VARCHAR)
            || 'x the provider''s figure'
        WHEN 'unexplained' THEN 'no token figures from the provider for this model and day (give its usage export too)'
        WHEN 'token counts differ' THEN CASE WHEN x.measure = 'cost_usd' THEN 'token figures differ (see their rows)'
            ELSE 'same requests, other token counts' END
    END AS evidence,
    x.kind_ord, x.ord
FROM caused x
LEFT JOIN _recon_models m ON m.kind = x.kind AND m.model_key = x.model_key
"""


def _json_figure(column: str) -> str:
    """A figure as JSON: a count as an integer, money as an exact decimal string (zeros trimmed)."""
    text = f"CAST({column} AS VARCHAR)"
    return (
        f"CASE WHEN {column} IS NULL THEN NULL "
        f"WHEN measure = 'cost_usd' THEN to_json(rtrim(rtrim({text}, '0'), '.')) "
        f"ELSE to_json(CAST({column} AS HUGEINT)) END"
    )


# Each cell as its JSON object (records.Cell.as_json's keys), in output order: by day, export kind
# (registry order), model, tier and figure. Written by DuckDB: ~90,000 cells for a year of 50 models.
_CELL_JSON_SQL: Final = f"""
SELECT verdict = 'ok', CAST(to_json(struct_pack(
    day := CAST(day AS VARCHAR), source := source, model := model, tier := tier, measure := measure,
    provider := {_json_figure("provider_value")}, costlens := {_json_figure("costlens_value")},
    difference := {_json_figure("difference")}, verdict := verdict, cause := cause, evidence := evidence
)) AS VARCHAR)
FROM {CELLS_TABLE}
ORDER BY day, kind_ord, model NULLS FIRST, tier NULLS FIRST, ord
"""

_TOTALS_SQL: Final = f"""
SELECT source, measure, sum(coalesce(provider_value, 0)), sum(coalesce(costlens_value, 0)), sum(difference),
    count(*), count(*) FILTER (WHERE verdict = 'ok'), count(*) FILTER (WHERE verdict = 'differs'),
    count(*) FILTER (WHERE verdict = 'missing in costlens'), count(*) FILTER (WHERE verdict = 'missing at provider')
FROM {CELLS_TABLE}
GROUP BY source, measure
ORDER BY min(kind_ord), min(ord)
"""

_NOT_COMPARED_SQL: Final = """
WITH unnamed AS (
    SELECT group_id FROM _recon_assigned GROUP BY group_id HAVING bool_and(model_key IS NULL)
),
left_out AS (
    SELECT 'outside' AS reason, b.* FROM _recon_costlens b WHERE b.day NOT IN (SELECT day FROM _recon_days)
    UNION ALL
    SELECT 'unnamed' AS reason, b.* FROM _recon_costlens b JOIN unnamed u ON u.group_id = b.group_id
)
SELECT reason, coalesce(response_model, requested_model, '(unknown model)') AS model, sum(logged), sum(cost_usd),
    min(day), max(day)
FROM left_out GROUP BY ALL ORDER BY reason, model
"""


@dataclass(frozen=True, slots=True)
class Comparison:
    cell_rows: tuple[tuple[bool, str], ...]  # (ok?, the cell as JSON), in output order
    period: tuple[date, date] | None
    totals: tuple[Total, ...]
    not_compared: tuple[NotCompared, ...]


def _rows_arrow(exports: Sequence[Export]) -> pa.Table:
    rows = [(e.kind, r) for e in exports for r in e.read.rows]

    def model_key(row: Any) -> str:
        if row.unattributed is not None:
            return NO_MODEL
        return ALL_MODELS if row.model is None else str(row.model).lower()

    counts = {
        name: pa.array([getattr(r, name) for _, r in rows], pa.int64())
        for name in ("requests", "input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens")
    }
    return pa.table(
        {
            "kind": pa.array([k for k, _ in rows], pa.string()),
            "day": pa.array([r.day for _, r in rows], pa.date32()),
            "model": pa.array([r.model for _, r in rows], pa.string()),
            "model_key": pa.array([model_key(r) for _, r in rows], pa.string()),
            "unattributed": pa.array([r.unattributed for _, r in rows], pa.string()),
            "tier": pa.array([r.tier or "" for _, r in rows], pa.string()),
            **counts,
            "cost_usd": pa.array([r.cost_usd for _, r in rows], _MONEY),
        }
    )


def _load(conn: duckdb.DuckDBPyConnection, exports: Sequence[Export], plans: Sequence[KindPlan]) -> None:
    conn.register("_recon_rows_arrow", _rows_arrow(exports))
    conn.register(
        "_recon_kinds_arrow",
        pa.table(
            {
                "kind": pa.array([p.kind for p in plans], pa.string()),
                "family": pa.array([p.family for p in plans], pa.string()),
                "all_models": pa.array([p.all_models for p in plans], pa.bool_()),
                "tier_mode": pa.array([p.tier_mode for p in plans], pa.string()),
                "ord": pa.array(range(len(plans)), pa.int32()),
            }
        ),
    )
    days = [(p.kind, d) for p in plans for d in p.days]
    conn.register(
        "_recon_days_arrow",
        pa.table(
            {
                "kind": pa.array([k for k, _ in days], pa.string()),
                "day": pa.array([d for _, d in days], pa.date32()),
            }
        ),
    )
    measures = [(p.kind, m, MEASURES.index(m)) for p in plans for m in p.measures]  # type: ignore[arg-type]
    conn.register(
        "_recon_measures_arrow",
        pa.table(
            {
                "kind": pa.array([k for k, _, _ in measures], pa.string()),
                "measure": pa.array([m for _, m, _ in measures], pa.string()),
                "ord": pa.array([o for _, _, o in measures], pa.int32()),
            }
        ),
    )
    try:
        for name in ("rows", "kinds", "days", "measures"):
            conn.execute(f"CREATE OR REPLACE TEMP TABLE _recon_{name} AS SELECT * FROM _recon_{name}_arrow")
    finally:
        for name in ("rows", "kinds", "days", "measures"):
            conn.unregister(f"_recon_{name}_arrow")
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE _recon_models AS
            SELECT kind, model_key, min(model) AS label FROM _recon_rows
            WHERE model_key NOT IN ('{ALL_MODELS}', '{NO_MODEL}') GROUP BY kind, model_key"""
    )


def _typed_limits(sql: str) -> str:
    """The tolerance parameters as exact decimals: a fraction as DECIMAL(18,9) keeps its products
    within DECIMAL(38,...) for any figure below 1e14; the USD amount as money is stored."""
    return sql.replace("$pct", "CAST($pct AS DECIMAL(18, 9))").replace(
        "$usd", "CAST($usd AS DECIMAL(38, 15))"
    )


def compare(
    conn: duckdb.DuckDBPyConnection,
    exports: Sequence[Export],
    plans: Sequence[KindPlan],
    filters: Filters,
    tolerance: Tolerance,
) -> Comparison:
    """Compare the exports with the selected requests; leaves :data:`CELLS_TABLE` for the store."""
    where, params = filters.where("c")
    limits: dict[str, Any] = {
        "pct": None if tolerance.percent is None else tolerance.percent / 100,
        "usd": tolerance.usd,
    }
    try:
        _load(conn, exports, plans)
        conn.execute(_COSTLENS_SQL.format(where=where), params)
        conn.execute(_ASSIGN_SQL)
        conn.execute(_COSTLENS_CELLS_SQL)
        conn.execute(_PROVIDER_CELLS_SQL)
        conn.execute(_typed_limits(_CELLS_SQL), limits)
        conn.execute(_typed_limits(_OUT_SQL), limits)
        cell_rows = conn.execute(_CELL_JSON_SQL).fetchall()
        (period_row,) = conn.execute(f"SELECT min(day), max(day) FROM {CELLS_TABLE}").fetchall()
        totals = conn.execute(_TOTALS_SQL).fetchall()
        left_out = conn.execute(_NOT_COMPARED_SQL).fetchall()
    except duckdb.Error as e:
        raise StoreError(f"cannot compare the exports with the database: {e}") from e
    return Comparison(
        cell_rows=tuple((bool(ok), str(text)) for ok, text in cell_rows),
        period=None if period_row[0] is None else (period_row[0], period_row[1]),
        totals=tuple(
            Total(
                source=t[0],
                measure=t[1],
                provider=t[2],
                costlens=t[3],
                difference=t[4],
                cells=int(t[5]),
                verdicts={
                    "ok": int(t[6]),
                    "differs": int(t[7]),
                    "missing in costlens": int(t[8]),
                    "missing at provider": int(t[9]),
                },
            )
            for t in totals
        ),
        not_compared=tuple(
            NotCompared(
                reason=n[0],
                model=n[1],
                requests=int(n[2]),
                cost_usd=Decimal(n[3]),
                first_day=n[4],
                last_day=n[5],
            )
            for n in left_out
        ),
    )


def drop_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for name in _TABLES:
        conn.execute(f"DROP TABLE IF EXISTS {name}")
