"""``costlens reconcile`` without the CLI: compare read exports with the selection, store the outcome.

The exports are read first (:func:`costlens.reconcile.exports.read_exports`, before the
database is opened), so a malformed file stops everything with nothing stored. Then one call
compares in SQL (:mod:`costlens.reconcile.compare`) and writes the reconciliation in one
transaction (:mod:`costlens.reconcile.store`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from costlens.money.filters import Filters, simulated_counts
from costlens.reconcile.compare import CELLS_TABLE, compare, drop_tables
from costlens.reconcile.exports import Export, plan_kinds
from costlens.reconcile.records import InputFile, Reconciliation
from costlens.reconcile.store import save_reconciliation, selection_json
from costlens.reconcile.tolerance import DEFAULT_TOLERANCE, Tolerance
from costlens.session import Session
from costlens.store.db import utcnow

__all__ = ["reconcile"]


def _input(export: Export) -> InputFile:
    days = export.days
    return InputFile(
        file=export.name,
        sha256=export.sha256,
        kind=export.kind,
        detected=export.detected,
        buckets=export.read.buckets,
        results=len(export.read.rows),
        first_day=days[0] if days else None,
        last_day=days[-1] if days else None,
    )


def reconcile(
    session: Session,
    exports: Sequence[Export],
    *,
    filters: Filters | None = None,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    command_line: str | None = None,
    store: bool = True,
) -> Reconciliation:
    """Compare ``exports`` with the requests ``filters`` selects; store the reconciliation unless
    ``store`` is false. Returns every cell, the totals and what was not compared."""
    filters = filters or Filters()
    conn = session.conn
    created = utcnow()
    try:
        comparison = compare(conn, exports, plan_kinds(exports), filters, tolerance)
        left_out = simulated_counts(conn, filters) if filters.drops_simulated else (0, 0)
        result = Reconciliation(
            reconciliation_id=None,
            created_at=created,
            tolerance=tolerance,
            selection=selection_json(filters),
            inputs=tuple(_input(e) for e in exports),
            cell_rows=comparison.cell_rows,
            totals=comparison.totals,
            not_compared=comparison.not_compared,
            simulated_left_out=left_out,
            period=comparison.period,
        )
        if store:
            rid = save_reconciliation(
                conn,
                result,
                cells_table=CELLS_TABLE,
                command_line=command_line,
                pricing_sha256=session.pricing_sha256,
            )
            result = replace(result, reconciliation_id=rid)
    finally:
        drop_tables(conn)
    return result
