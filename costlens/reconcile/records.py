"""What a reconciliation produces: its cells, totals, what was left out, and the stored summary.

Frozen records, so the CLI renders and the report shows exactly what was compared and stored.
In JSON, money is an exact decimal string and counts are integers; a cell's ``difference`` is
costlens's figure minus the provider's (negative: costlens is short of the invoice), with a
side that has no figure counted as 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any, Final, Literal

from costlens.money.decimal_text import format_decimal
from costlens.reconcile.tolerance import Tolerance

__all__ = [
    "CAUSES",
    "COUNT_MEASURES",
    "MEASURE_LABELS",
    "VERDICTS",
    "Cell",
    "InputFile",
    "NotCompared",
    "Reconciliation",
    "ReconciliationSummary",
    "Status",
    "Total",
    "Verdict",
    "figure_json",
]

Verdict = Literal["ok", "differs", "missing in costlens", "missing at provider"]
VERDICTS: Final[tuple[Verdict, ...]] = ("ok", "differs", "missing in costlens", "missing at provider")
Status = Literal["ok", "differences"]

# The causes a differing cell can be given, from the evidence (README "costlens reconcile").
CAUSES: Final = (
    "traffic costlens never saw",
    "traffic the export does not show",
    "window or time zone",
    "price sheet differs",
    "cache not reported",
    "cache writes not reported",
    "batch discount never applied",
    "batch discount applied twice",
    "unpriced in costlens",
    "charge without a model",
    "token counts differ",
    "unexplained",
)

MEASURE_LABELS: Final = {
    "requests": "requests",
    "input_tokens": "input tokens",
    "cached_tokens": "cached tokens",
    "cache_write_tokens": "cache write tokens",
    "output_tokens": "output tokens",
    "cost_usd": "cost",
}
COUNT_MEASURES: Final = frozenset(MEASURE_LABELS) - {"cost_usd"}


def figure_json(measure: str, value: Decimal | None) -> int | str | None:
    """A figure for JSON: counts as integers, money as an exact decimal string."""
    if value is None:
        return None
    if measure in COUNT_MEASURES:
        return int(value)
    return format_decimal(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    """One figure of one UTC day x model (x tier) of one export kind, on both sides.

    ``model`` None: the export is not grouped by model (every model's figure); ``(no model)``: a
    charge the export names no model for. ``tier`` None: the export does not split by tier.
    """

    source: str
    day: date
    model: str | None
    tier: str | None
    measure: str
    provider: Decimal | None
    costlens: Decimal | None
    difference: Decimal
    verdict: Verdict
    cause: str | None
    evidence: str | None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Cell:
        """A cell from its JSON object (money as decimal strings, counts as integers)."""

        def figure(value: int | str | None) -> Decimal | None:
            return None if value is None else Decimal(value)

        difference = figure(obj["difference"])
        assert difference is not None
        return cls(
            source=obj["source"],
            day=date.fromisoformat(obj["day"]),
            model=obj["model"],
            tier=obj["tier"],
            measure=obj["measure"],
            provider=figure(obj["provider"]),
            costlens=figure(obj["costlens"]),
            difference=difference,
            verdict=obj["verdict"],
            cause=obj["cause"],
            evidence=obj["evidence"],
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "source": self.source,
            "model": self.model,
            "tier": self.tier,
            "measure": self.measure,
            "provider": figure_json(self.measure, self.provider),
            "costlens": figure_json(self.measure, self.costlens),
            "difference": figure_json(self.measure, self.difference),
            "verdict": self.verdict,
            "cause": self.cause,
            "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Total:
    """One export kind's figure summed over its cells, on both sides, and its cells' verdicts."""

    source: str
    measure: str
    provider: Decimal
    costlens: Decimal
    difference: Decimal
    cells: int
    verdicts: Mapping[str, int]

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "measure": self.measure,
            "provider": figure_json(self.measure, self.provider),
            "costlens": figure_json(self.measure, self.costlens),
            "difference": figure_json(self.measure, self.difference),
            "cells": self.cells,
            "verdicts": {v: int(self.verdicts.get(v, 0)) for v in VERDICTS},
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class NotCompared:
    """Selected costlens traffic no export covers: on a day no export covers (``outside``), or of
    a model no export names (``unnamed``: another provider's traffic, or billed elsewhere)."""

    reason: Literal["outside", "unnamed"]
    model: str
    requests: int
    cost_usd: Decimal
    first_day: date
    last_day: date

    def as_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "model": self.model,
            "requests": self.requests,
            "cost_usd": format_decimal(self.cost_usd),
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class InputFile:
    """One export file as stored: its name (not its path), sha256, kind and what it held."""

    file: str
    sha256: str
    kind: str
    detected: bool
    buckets: int
    results: int
    first_day: date | None
    last_day: date | None

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "kind": self.kind,
            "detected": self.detected,
            "buckets": self.buckets,
            "results": self.results,
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "last_day": self.last_day.isoformat() if self.last_day else None,
        }


@dataclass(frozen=True, kw_only=True)
class Reconciliation:
    """The whole outcome of ``costlens reconcile``: every cell, the totals, what was left out.

    The cells arrive as DuckDB wrote them, one JSON object per cell (``cell_rows``: whether it is
    ok, and its JSON text, in output order): a year of 50 models is ~90,000 cells, and ``--json``
    prints that text as it is. :attr:`cells` parses them into :class:`Cell` on first use.
    """

    reconciliation_id: int | None
    created_at: datetime
    tolerance: Tolerance
    selection: Mapping[str, Any]
    inputs: tuple[InputFile, ...]
    cell_rows: tuple[tuple[bool, str], ...]
    totals: tuple[Total, ...]
    not_compared: tuple[NotCompared, ...] = ()
    simulated_left_out: tuple[int, int] = (0, 0)  # (runs, requests) the selection left out
    period: tuple[date, date] | None = None

    @cached_property
    def cells(self) -> tuple[Cell, ...]:
        return tuple(Cell.from_json(json.loads(text)) for _, text in self.cell_rows)

    @property
    def differing(self) -> tuple[Cell, ...]:
        return tuple(Cell.from_json(json.loads(text)) for ok, text in self.cell_rows if not ok)

    @property
    def status(self) -> Status:
        return "differences" if any(not ok for ok, _ in self.cell_rows) else "ok"

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.kind for f in self.inputs))

    def verdict_counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(VERDICTS, 0)
        for total in self.totals:
            for verdict, n in total.verdicts.items():
                counts[verdict] += n
        return counts

    def as_json(self, *, with_cells: bool = True) -> dict[str, Any]:
        """Everything as JSON; ``with_cells=False`` leaves ``cells`` out (see :attr:`cell_rows`)."""
        payload = {
            "reconciliation_id": self.reconciliation_id,
            "created_at": self.created_at.isoformat(sep=" "),
            "status": self.status,
            "tolerance": self.tolerance.text,
            "selection": dict(self.selection),
            "period": None
            if self.period is None
            else {"first_day": self.period[0].isoformat(), "last_day": self.period[1].isoformat()},
            "inputs": [f.as_json() for f in self.inputs],
            "verdicts": self.verdict_counts(),
            "totals": [t.as_json() for t in self.totals],
            "not_compared": [n.as_json() for n in self.not_compared],
            "simulated_runs_left_out": {
                "runs": self.simulated_left_out[0],
                "requests": self.simulated_left_out[1],
            },
        }
        if with_cells:
            payload["cells"] = [json.loads(text) for _, text in self.cell_rows]
        return payload


@dataclass(frozen=True, kw_only=True)
class ReconciliationSummary:
    """A stored reconciliation, as the report shows it: when and how it ran, its inputs, totals,
    verdict counts, and the cells that differ (money first, largest difference first)."""

    reconciliation_id: int
    created_at: datetime
    status: Status
    tolerance: str
    kinds: tuple[str, ...]
    selection: Mapping[str, Any]
    command_line: str | None
    costlens_version: str
    pricing_sha256: str | None
    period: tuple[date, date] | None
    inputs: tuple[InputFile, ...]
    totals: tuple[Total, ...]
    verdicts: Mapping[str, int]
    cells: int
    differences: tuple[Cell, ...] = field(default_factory=tuple)
    not_compared: tuple[Mapping[str, Any], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "reconciliation_id": self.reconciliation_id,
            "created_at": self.created_at.isoformat(sep=" "),
            "status": self.status,
            "tolerance": self.tolerance,
            "kinds": list(self.kinds),
            "selection": dict(self.selection),
            "command_line": self.command_line,
            "costlens_version": self.costlens_version,
            "pricing_sha256": self.pricing_sha256,
            "period": None
            if self.period is None
            else {"first_day": self.period[0].isoformat(), "last_day": self.period[1].isoformat()},
            "inputs": [f.as_json() for f in self.inputs],
            "totals": [t.as_json() for t in self.totals],
            "verdicts": dict(self.verdicts),
            "cells": self.cells,
            "differences": [c.as_json() for c in self.differences],
            "not_compared": [dict(n) for n in self.not_compared],
        }
