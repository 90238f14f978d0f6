"""What changed between two price sheets, row by row (``costlens pricing diff``).

A price update is reviewed before it is used: which rows a new sheet adds, which it drops and
which cells it changes. Rows are matched on what makes a row unique within a sheet (the
overlap check in ``pricing.py`` guarantees it): the model (case-insensitive), the service tier,
``min_prompt_tokens`` and ``effective_from``. Cells are compared as ``pricing show`` prints
them (plain decimals, so ``1.50`` and ``1.5`` are the same price). Match rows are matched on
(model, kind, pattern) and are only added or removed.

This is plain Python over two :class:`PriceTable` objects, not SQL: it compares a few hundred
rows of configuration, not per-request money. What the difference costs on recorded traffic
is priced by the cost view (``costlens.report.compare``), never here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from costlens.money.pricing import PRICE_COLUMNS, SERVICE_TIERS, PriceRow, PriceTable, price_rows_for_display

__all__ = ["CellChange", "MatchChange", "RowChange", "SheetDiff", "diff_sheets"]

_KEY_COLUMNS: Final = ("service_tier", "min_prompt_tokens", "effective_from")
# Every cell of a price row but the key and the match column (model is compared for its spelling).
COMPARED_COLUMNS: Final = tuple(c for c in PRICE_COLUMNS if c not in (*_KEY_COLUMNS, "match"))

_Key = tuple[str, int, int, datetime]


@dataclass(frozen=True, slots=True)
class CellChange:
    column: str
    old: str
    new: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RowChange:
    """A price row added, removed or changed. ``cells`` are its non-empty cells (the new ones if
    it exists in NEW); ``changes`` lists each changed cell of a changed row."""

    kind: Literal["added", "removed", "changed"]
    model: str
    service_tier: str
    min_prompt_tokens: int
    effective_from: str
    old_line: int | None
    new_line: int | None
    cells: Mapping[str, str]
    changes: tuple[CellChange, ...] = ()

    @property
    def label(self) -> str:
        """``gpt-4o standard``, plus ``min_prompt_tokens>=N`` and ``from DATE`` when set."""
        text = f"{self.model} {self.service_tier}"
        if self.min_prompt_tokens:
            text += f" min_prompt_tokens>={self.min_prompt_tokens}"
        if self.effective_from:
            text += f" from {self.effective_from}"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "service_tier": self.service_tier,
            "min_prompt_tokens": self.min_prompt_tokens,
            "effective_from": self.effective_from or None,
            "old_line": self.old_line,
            "new_line": self.new_line,
            "cells": dict(self.cells),
            "changes": [{"column": c.column, "old": c.old, "new": c.new} for c in self.changes],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchChange:
    kind: Literal["added", "removed"]
    model: str
    rule: str
    line: int

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "match": self.rule, "line": self.line}


@dataclass(frozen=True, slots=True, kw_only=True)
class SheetDiff:
    """Rows in key order (model, tier, min_prompt_tokens, effective_from), then match rows."""

    old: str
    new: str
    rows: tuple[RowChange, ...]
    matches: tuple[MatchChange, ...]
    unchanged: int

    def count(self, kind: str) -> int:
        return sum(1 for r in self.rows if r.kind == kind)

    @property
    def identical(self) -> bool:
        return not self.rows and not self.matches

    def as_json(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "rows": [r.as_json() for r in self.rows],
            "matches": [m.as_json() for m in self.matches],
            "added": self.count("added"),
            "removed": self.count("removed"),
            "changed": self.count("changed"),
            "unchanged": self.unchanged,
            "matches_added": sum(1 for m in self.matches if m.kind == "added"),
            "matches_removed": sum(1 for m in self.matches if m.kind == "removed"),
        }


def _key(row: PriceRow) -> _Key:
    start = row.effective_from
    return (
        row.model.lower(),
        SERVICE_TIERS.index(row.service_tier),
        row.min_prompt_tokens,
        start or datetime.min,  # an open start sorts first and never equals a real date
    )


def _main_rows(table: PriceTable) -> dict[_Key, tuple[PriceRow, dict[str, str]]]:
    """Sheet 0's rows by key, each with its cells as ``pricing show`` prints them."""
    shown = price_rows_for_display(table)
    return {_key(row): (row, cells) for row, cells in zip(table.rows, shown, strict=False) if row.sheet == 0}


def _cells(cells: Mapping[str, str]) -> dict[str, str]:
    return {c: cells[c] for c in COMPARED_COLUMNS if cells.get(c)}


def diff_sheets(old: PriceTable, new: PriceTable, *, old_name: str, new_name: str) -> SheetDiff:
    """What NEW adds, removes and changes relative to OLD (their main sheets; aliases are shared)."""
    before, after = _main_rows(old), _main_rows(new)
    changes: list[tuple[_Key, RowChange]] = []
    unchanged = 0
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        pair = now if now is not None else was
        assert pair is not None  # the key comes from one side or the other
        row, cells = pair
        common: dict[str, Any] = {
            "model": row.model,
            "service_tier": row.service_tier,
            "min_prompt_tokens": row.min_prompt_tokens,
            "effective_from": cells["effective_from"],
        }
        if was is None:
            changes.append(
                (
                    key,
                    RowChange(kind="added", old_line=None, new_line=row.line, cells=_cells(cells), **common),
                )
            )
        elif now is None:
            changes.append(
                (
                    key,
                    RowChange(
                        kind="removed", old_line=row.line, new_line=None, cells=_cells(cells), **common
                    ),
                )
            )
        else:
            cell_changes = tuple(
                CellChange(c, was[1][c], now[1][c]) for c in COMPARED_COLUMNS if was[1][c] != now[1][c]
            )
            if not cell_changes:
                unchanged += 1
                continue
            changes.append(
                (
                    key,
                    RowChange(
                        kind="changed",
                        old_line=was[0].line,
                        new_line=row.line,
                        cells=_cells(cells),
                        changes=cell_changes,
                        **common,
                    ),
                )
            )
    old_matches = {(m.model.lower(), m.kind, m.pattern): m for m in old.matches if m.sheet == 0}
    new_matches = {(m.model.lower(), m.kind, m.pattern): m for m in new.matches if m.sheet == 0}
    matches = [
        MatchChange(kind="removed", model=m.model, rule=m.rule, line=m.line)
        for k, m in sorted(old_matches.items())
        if k not in new_matches
    ] + [
        MatchChange(kind="added", model=m.model, rule=m.rule, line=m.line)
        for k, m in sorted(new_matches.items())
        if k not in old_matches
    ]
    return SheetDiff(
        old=old_name,
        new=new_name,
        rows=tuple(change for _, change in changes),
        matches=tuple(matches),
        unchanged=unchanged,
    )
