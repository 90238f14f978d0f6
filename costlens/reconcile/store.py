"""Reconciliations in the database (migration 8): writing one, and reading the latest back.

A reconciliation is written in one transaction — its row in ``reconciliations``, its input
files in ``reconciliation_inputs`` and every cell in ``reconciliation_cells`` (copied in SQL
from the comparison's TEMP table) — so it lands whole or not at all.

:func:`latest_reconciliation` is what the report calls: the newest reconciliation made over
the same selection as the report's (same runs, models, tags and simulated rule) whose compared
days overlap the report's period (``--since``/``--until``; none = any), as a
:class:`~costlens.reconcile.records.ReconciliationSummary`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final, cast

import duckdb

from costlens import __version__
from costlens.errors import StoreError
from costlens.money.filters import Filters
from costlens.reconcile.records import (
    VERDICTS,
    Cell,
    InputFile,
    Reconciliation,
    ReconciliationSummary,
    Status,
    Total,
    Verdict,
)

__all__ = ["latest_reconciliation", "reconciliation_summary", "save_reconciliation", "selection_json"]

# Differing cells a summary carries at most (money first, largest first); the rest are in the DB.
SUMMARY_DIFFERENCES: Final = 500


def selection_json(filters: Filters) -> dict[str, Any]:
    """The selection as stored with a reconciliation (canonical: sorted, ISO times, UTC)."""
    return {
        "run_ids": sorted(filters.run_ids),
        "run_uuids": sorted(filters.run_uuids),
        "exclude_run_ids": sorted(filters.exclude_run_ids),
        "since": filters.since.isoformat() if filters.since else None,
        "until": filters.until.isoformat() if filters.until else None,
        "models": sorted(filters.models),
        "tags": dict(sorted(filters.tags.items())),
        "include_simulated": filters.include_simulated,
    }


def save_reconciliation(
    conn: duckdb.DuckDBPyConnection,
    result: Reconciliation,
    *,
    cells_table: str,
    command_line: str | None,
    pricing_sha256: str | None,
) -> int:
    """Store ``result`` (its cells from ``cells_table``) in one transaction; returns its id."""
    counts = result.verdict_counts()
    try:
        conn.execute("BEGIN TRANSACTION")
        (row,) = conn.execute(
            "SELECT coalesce(max(reconciliation_id), 0) + 1 FROM reconciliations"
        ).fetchall()
        rid = int(row[0])
        conn.execute(
            """INSERT INTO reconciliations (reconciliation_id, created_at, kinds, tolerance, selection,
                   command_line, costlens_version, pricing_sha256, status, period_start, period_end, cells,
                   cells_differing, not_compared)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                rid,
                result.created_at,
                ",".join(result.kinds),
                result.tolerance.text,
                json.dumps(dict(result.selection)),
                command_line,
                __version__,
                pricing_sha256,
                result.status,
                result.period[0] if result.period else None,
                result.period[1] if result.period else None,
                len(result.cell_rows),
                len(result.cell_rows) - counts["ok"],
                json.dumps([n.as_json() for n in result.not_compared]),
            ],
        )
        for number, f in enumerate(result.inputs, start=1):
            conn.execute(
                "INSERT INTO reconciliation_inputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    rid,
                    number,
                    f.file,
                    f.sha256,
                    f.kind,
                    f.detected,
                    f.buckets,
                    f.results,
                    f.first_day,
                    f.last_day,
                ],
            )
        conn.execute(
            f"""INSERT INTO reconciliation_cells
                SELECT ?, source, day, model, tier, measure, provider_value, costlens_value, difference, verdict,
                       cause, evidence
                FROM {cells_table}""",
            [rid],
        )
        conn.execute("COMMIT")
    except duckdb.Error as e:
        conn.execute("ROLLBACK")
        raise StoreError(f"cannot store the reconciliation: {e}") from e
    return rid


def _same_selection(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    keys = ("run_ids", "run_uuids", "exclude_run_ids", "models", "tags", "include_simulated")
    # A selection stored before run UUIDs existed named none.
    return all(stored.get(k, [] if k == "run_uuids" else None) == wanted.get(k) for k in keys)


def _overlaps(period: tuple[date, date] | None, filters: Filters) -> bool:
    if period is None:
        return filters.since is None and filters.until is None
    first, last = period
    if filters.since is not None and last < filters.since.date():
        return False
    # --until is exclusive: a period that starts at or after it is outside.
    return not (filters.until is not None and datetime.combine(first, datetime.min.time()) >= filters.until)


def latest_reconciliation(
    conn: duckdb.DuckDBPyConnection, filters: Filters | None = None
) -> ReconciliationSummary | None:
    """The newest stored reconciliation over ``filters``' selection and period (None: the newest
    of all), or None when there is none."""
    rows = conn.execute(
        "SELECT reconciliation_id, selection, period_start, period_end FROM reconciliations "
        "ORDER BY reconciliation_id DESC"
    ).fetchall()
    wanted = selection_json(filters) if filters is not None else None
    for rid, selection, start, end in rows:
        if wanted is not None and filters is not None:
            period = (start, end) if start is not None else None
            if not _same_selection(json.loads(selection), wanted) or not _overlaps(period, filters):
                continue
        return reconciliation_summary(conn, int(rid))
    return None


def reconciliation_summary(conn: duckdb.DuckDBPyConnection, reconciliation_id: int) -> ReconciliationSummary:
    """The stored reconciliation ``reconciliation_id``; ``StoreError`` when there is none."""
    head = conn.execute(
        """SELECT created_at, status, tolerance, kinds, selection, command_line, costlens_version, pricing_sha256,
                  period_start, period_end, cells, not_compared
           FROM reconciliations WHERE reconciliation_id = ?""",
        [reconciliation_id],
    ).fetchall()
    if not head:
        raise StoreError(f"no reconciliation {reconciliation_id} in this database")
    (
        created,
        status,
        tolerance,
        kinds,
        selection,
        command_line,
        version,
        pricing,
        start,
        end,
        cells,
        left,
    ) = head[0]
    inputs = conn.execute(
        """SELECT file, sha256, kind, detected, buckets, results, first_day, last_day FROM reconciliation_inputs
           WHERE reconciliation_id = ? ORDER BY file_no""",
        [reconciliation_id],
    ).fetchall()
    totals = conn.execute(
        f"""SELECT source, measure, sum(coalesce(provider_value, 0)), sum(coalesce(costlens_value, 0)),
                   sum(difference), count(*),
                   {", ".join(f"count(*) FILTER (WHERE verdict = '{v}')" for v in VERDICTS)}
            FROM reconciliation_cells WHERE reconciliation_id = ?
            GROUP BY source, measure
            ORDER BY list_position(string_split(?, ','), source), source,
                     list_position(['requests', 'input_tokens', 'cached_tokens', 'cache_write_tokens',
                                    'output_tokens', 'cost_usd'], measure)""",
        [reconciliation_id, kinds],
    ).fetchall()
    differing = conn.execute(
        """SELECT source, day, model, tier, measure, provider_value, costlens_value, difference, verdict, cause,
                  evidence
           FROM reconciliation_cells WHERE reconciliation_id = ? AND verdict <> 'ok'
           ORDER BY measure = 'cost_usd' DESC, abs(difference) DESC, day, source, model, tier, measure
           LIMIT ?""",
        [reconciliation_id, SUMMARY_DIFFERENCES],
    ).fetchall()
    verdicts: dict[str, int] = dict.fromkeys(VERDICTS, 0)
    for t in totals:
        for v, n in zip(VERDICTS, t[6:], strict=True):
            verdicts[v] += int(n)
    return ReconciliationSummary(
        reconciliation_id=reconciliation_id,
        created_at=created,
        status=cast(Status, status),
        tolerance=tolerance,
        kinds=tuple(kinds.split(",")) if kinds else (),
        selection=json.loads(selection),
        command_line=command_line,
        costlens_version=version,
        pricing_sha256=pricing,
        period=(start, end) if start is not None else None,
        inputs=tuple(
            InputFile(
                file=i[0],
                sha256=i[1],
                kind=i[2],
                detected=bool(i[3]),
                buckets=int(i[4]),
                results=int(i[5]),
                first_day=i[6],
                last_day=i[7],
            )
            for i in inputs
        ),
        totals=tuple(
            Total(
                source=t[0],
                measure=t[1],
                provider=t[2],
                costlens=t[3],
                difference=t[4],
                cells=int(t[5]),
                verdicts={v: int(n) for v, n in zip(VERDICTS, t[6:], strict=True)},
            )
            for t in totals
        ),
        verdicts=verdicts,
        cells=int(cells),
        differences=tuple(
            Cell(
                source=d[0],
                day=d[1],
                model=d[2],
                tier=d[3],
                measure=d[4],
                provider=d[5],
                costlens=d[6],
                difference=d[7],
                verdict=cast(Verdict, d[8]),
                cause=d[9],
                evidence=d[10],
            )
            for d in differing
        ),
        not_compared=tuple(json.loads(left)) if left else (),
    )
