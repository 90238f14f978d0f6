"""Reconciliation: costlens's figures against the provider's own exports, cell by cell.

Finance signs off on a number only when it matches the invoice or the difference is explained.
``costlens reconcile`` reads the provider's usage and cost exports as the APIs return them
(:mod:`.sources`, one module per export kind), checks them together (:mod:`.exports`),
compares them in SQL with the selected requests per UTC day x model x tier (:mod:`.compare`),
names the likely cause of each difference, and stores the outcome (:mod:`.store`, migration 8).

This layer sits below ``report`` (which shows the latest reconciliation) and above
``session``; it never imports the CLI or Click.
"""

from __future__ import annotations

from costlens.reconcile.compare import ALL_MODELS, NO_MODEL
from costlens.reconcile.exports import Export, KindPlan, read_exports
from costlens.reconcile.job import reconcile
from costlens.reconcile.records import (
    CAUSES,
    MEASURE_LABELS,
    VERDICTS,
    Cell,
    InputFile,
    NotCompared,
    Reconciliation,
    ReconciliationSummary,
    Total,
    Verdict,
)
from costlens.reconcile.sources import SOURCES
from costlens.reconcile.store import latest_reconciliation, reconciliation_summary, selection_json
from costlens.reconcile.tolerance import DEFAULT_TOLERANCE, Tolerance, parse_tolerance

__all__ = [
    "ALL_MODELS",
    "CAUSES",
    "DEFAULT_TOLERANCE",
    "MEASURE_LABELS",
    "NO_MODEL",
    "SOURCES",
    "VERDICTS",
    "Cell",
    "Export",
    "InputFile",
    "KindPlan",
    "NotCompared",
    "Reconciliation",
    "ReconciliationSummary",
    "Tolerance",
    "Total",
    "Verdict",
    "latest_reconciliation",
    "parse_tolerance",
    "read_exports",
    "reconcile",
    "reconciliation_summary",
    "selection_json",
]
