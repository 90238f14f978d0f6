"""The same requests priced on several price sheets, side by side, per model.

``--compare-pricing`` (summary, report) and ``pricing diff`` ask one question: what would this
traffic have cost on that sheet? The answer must come from the one cost view, never from a
second implementation of the rules, so every sheet is registered under its own suffix
(``costlens.session.register_compare_sheets``) and priced by ``request_costs{suffix}``; this
module joins those views to the base view on ``(run_id, request_id)`` and aggregates in DuckDB:

* **The selection is the base view's.** :meth:`Filters.where` is applied to the base view only
  (``request_costs``, i.e. what ``summary`` reads), so the base columns equal ``summary --json``
  and every sheet is priced on exactly the same requests. Rows are keyed by the base view's
  model name.
* **Each sheet's cost follows summary's rules**: the sum over the requests that sheet prices;
  unpriced requests are counted, never added as $0. A model no request of which is priced on a
  sheet has no cost there (``None``), and no difference.
* **Differences compare like with like**: ``sheet - base`` over the requests priced on *both*
  (``compared`` counts them), so a model priced on one side only never shows up as a saving or
  an extra cost, and the TOTAL row's difference is the sum of the models' differences. When
  every request is priced on both sides it is simply the sheet's cost minus the base cost.
* **Exact.** Sums and the difference are DuckDB ``DECIMAL``; the relative difference is taken
  here in Python ``Decimal`` (DuckDB's ``DECIMAL / DECIMAL`` goes through DOUBLE), and only
  where the base cost of the compared requests is non-zero.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import duckdb

from costlens.errors import StoreError
from costlens.money.costs import COST_VIEW
from costlens.money.decimal_text import format_decimal
from costlens.money.filters import Filters
from costlens.session import MAIN_SHEET

__all__ = ["CompareRow", "SheetComparison", "SheetCost", "SheetDifference", "compare_sheets"]

_SUFFIX: Final = re.compile(r"(_[a-z0-9]+)?")

_SQL: Final = """
WITH sel AS (
    SELECT c.run_id, c.request_id, c.model, c.cost_usd, c.priced, c.tier_fallback, c.sheet_fallback,
        coalesce(c.prompt_tokens, 0) + coalesce(c.completion_tokens, 0) AS tokens
    FROM {base_view} c
    WHERE {where}
)
SELECT
    grouping(s.model) AS is_total,
    s.model,
    count(*) AS requests,
    {columns}
FROM sel s
{joins}
GROUP BY ROLLUP (s.model)
ORDER BY is_total, s0_cost_usd DESC NULLS LAST, s.model
"""
# One sheet's figures; {a} is its view's alias, {p} the column prefix (s0 = the base sheet).
_SHEET_COLUMNS: Final = """
    sum({a}.cost_usd) FILTER (WHERE {a}.priced) AS {p}_cost_usd,
    count(*) FILTER (WHERE {a}.priced) AS {p}_priced,
    count(*) FILTER (WHERE NOT {a}.priced) AS {p}_unpriced,
    count(*) FILTER (WHERE {a}.tier_fallback) AS {p}_tier_fallback,
    count(*) FILTER (WHERE {a}.sheet_fallback) AS {p}_sheet_fallback,
    coalesce(sum(s.tokens) FILTER (WHERE NOT {a}.priced), 0) AS {p}_unpriced_tokens"""
# Against the base, over the requests both price.
_DIFFERENCE_COLUMNS: Final = """
    count(*) FILTER (WHERE s.priced AND {a}.priced) AS {p}_compared,
    sum(s.cost_usd) FILTER (WHERE s.priced AND {a}.priced) AS {p}_compared_base_usd,
    sum({a}.cost_usd) FILTER (WHERE s.priced AND {a}.priced) AS {p}_compared_usd,
    sum({a}.cost_usd - s.cost_usd) FILTER (WHERE s.priced AND {a}.priced) AS {p}_difference_usd"""
_JOIN: Final = "JOIN {view} {a} ON {a}.run_id = s.run_id AND {a}.request_id = s.request_id"


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class SheetCost:
    """One model (or the total) priced on one sheet; money only over the requests it prices."""

    sheet: str
    cost_usd: Decimal | None
    priced: int
    unpriced: int
    tier_fallback: int
    unpriced_tokens: int
    # Priced by a --fallback-pricing sheet of the base table (part of ``priced``); 0 on a compared sheet.
    priced_by_fallback_sheet: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "cost_usd": _money(self.cost_usd),
            "priced": self.priced,
            "unpriced": self.unpriced,
            "tier_fallback": self.tier_fallback,
            "priced_by_fallback_sheet": self.priced_by_fallback_sheet,
            "unpriced_tokens": self.unpriced_tokens,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SheetDifference:
    """A sheet against the base, over the ``compared`` requests that both price.

    ``difference_usd`` = ``cost_usd - base_cost_usd`` (None when no request is priced on both);
    ``relative_difference`` = that over ``base_cost_usd`` (None unless the base cost is non-zero).
    ``partial``: there is a difference, but some requests are priced on one side only and so are
    left out of it (worth a footnote next to the figure).
    """

    sheet: str
    compared: int
    base_cost_usd: Decimal | None
    cost_usd: Decimal | None
    difference_usd: Decimal | None
    relative_difference: Decimal | None
    partial: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "compared": self.compared,
            "base_cost_usd": _money(self.base_cost_usd),
            "cost_usd": _money(self.cost_usd),
            "difference_usd": _money(self.difference_usd),
            "relative_difference": _money(self.relative_difference),
            "partial": self.partial,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CompareRow:
    """One model (``model == "TOTAL"`` for the grand total) on the base sheet and on each other sheet."""

    model: str
    requests: int
    base: SheetCost
    sheets: tuple[SheetCost, ...]
    differences: tuple[SheetDifference, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "requests": self.requests,
            "base": self.base.as_json(),
            "sheets": [
                {**cost.as_json(), "difference": diff.as_json()}
                for cost, diff in zip(self.sheets, self.differences, strict=True)
            ],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SheetComparison:
    """Per-model rows (ordered like ``summary``: base cost, highest first, then model) and the total.

    Price coverage per sheet is the total row's :class:`SheetCost` (``total.base``, ``total.sheets``).
    """

    base: str
    sheets: tuple[str, ...]
    rows: tuple[CompareRow, ...]
    total: CompareRow

    @property
    def partial(self) -> bool:
        """Some difference shown leaves out requests priced on one side only."""
        return any(d.partial for row in (*self.rows, self.total) for d in row.differences)

    def as_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "sheets": list(self.sheets),
            "models": [row.as_json() for row in self.rows],
            "total": self.total.as_json(),
        }


def _cost(row: Mapping[str, Any], prefix: str, sheet: str) -> SheetCost:
    return SheetCost(
        sheet=sheet,
        cost_usd=row[f"{prefix}_cost_usd"],
        priced=int(row[f"{prefix}_priced"]),
        unpriced=int(row[f"{prefix}_unpriced"]),
        tier_fallback=int(row[f"{prefix}_tier_fallback"]),
        unpriced_tokens=int(row[f"{prefix}_unpriced_tokens"]),
        priced_by_fallback_sheet=int(row[f"{prefix}_sheet_fallback"]),
    )


def _difference(row: Mapping[str, Any], prefix: str, sheet: str) -> SheetDifference:
    base: Decimal | None = row[f"{prefix}_compared_base_usd"]
    difference: Decimal | None = row[f"{prefix}_difference_usd"]
    compared = int(row[f"{prefix}_compared"])
    priced = max(int(row["s0_priced"]), int(row[f"{prefix}_priced"]))
    return SheetDifference(
        sheet=sheet,
        compared=compared,
        base_cost_usd=base,
        cost_usd=row[f"{prefix}_compared_usd"],
        difference_usd=difference,
        relative_difference=None if difference is None or not base else difference / base,
        partial=difference is not None and compared < priced,
    )


def _empty_row(count: int) -> dict[str, Any]:
    row: dict[str, Any] = {"is_total": 1, "model": None, "requests": 0}
    for i in range(count + 1):
        row.update(
            {
                f"s{i}_{k}": 0
                for k in ("priced", "unpriced", "tier_fallback", "sheet_fallback", "unpriced_tokens")
            }
        )
        row[f"s{i}_cost_usd"] = None
        if i:
            row.update({f"s{i}_compared": 0, f"s{i}_compared_base_usd": None})
            row.update({f"s{i}_compared_usd": None, f"s{i}_difference_usd": None})
    return row


def _view(suffix: str) -> str:
    if not _SUFFIX.fullmatch(suffix):
        raise ValueError(f"bad cost view suffix {suffix!r}")
    return COST_VIEW + suffix


def compare_sheets(
    conn: duckdb.DuckDBPyConnection,
    filters: Filters | None,
    sheets: Sequence[tuple[str, str]],
    *,
    base: tuple[str, str] = (MAIN_SHEET, ""),
) -> SheetComparison:
    """The requests ``filters`` selects from the ``base`` view, priced on each ``(name, suffix)`` sheet.

    Each view ``request_costs{suffix}`` must be installed (``register_compare_sheets``); ``base``
    defaults to the session's own ``request_costs`` (the price table in force, with its fallbacks).
    """
    base_name, base_suffix = base
    where, params = (filters or Filters()).where("c")
    columns = [_SHEET_COLUMNS.format(a="s", p="s0")]
    joins: list[str] = []
    for i, (_, suffix) in enumerate(sheets, start=1):
        columns.append(_SHEET_COLUMNS.format(a=f"x{i}", p=f"s{i}"))
        columns.append(_DIFFERENCE_COLUMNS.format(a=f"x{i}", p=f"s{i}"))
        joins.append(_JOIN.format(view=_view(suffix), a=f"x{i}"))
    sql = _SQL.format(
        base_view=_view(base_suffix), where=where, columns=",".join(columns).strip(), joins="\n".join(joins)
    )
    try:
        cursor = conn.execute(sql, params)
        names = [d[0] for d in cursor.description or ()]
        raw = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    except duckdb.Error as e:
        raise StoreError(f"cannot price the selection on the compared sheets: {e}") from e

    def build(row: Mapping[str, Any]) -> CompareRow:
        return CompareRow(
            model="TOTAL" if row["is_total"] else row["model"],
            requests=int(row["requests"]),
            base=_cost(row, "s0", base_name),
            sheets=tuple(_cost(row, f"s{i}", name) for i, (name, _) in enumerate(sheets, start=1)),
            differences=tuple(_difference(row, f"s{i}", name) for i, (name, _) in enumerate(sheets, start=1)),
        )

    total = next((r for r in raw if r["is_total"]), None) or _empty_row(len(sheets))
    return SheetComparison(
        base=base_name,
        sheets=tuple(name for name, _ in sheets),
        rows=tuple(build(r) for r in raw if not r["is_total"]),
        total=build(total),
    )
