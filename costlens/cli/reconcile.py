"""`costlens reconcile`: provider usage and cost exports against costlens's figures, cell by cell."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path

import click

from costlens.cli.common import (
    EXIT_RECONCILE_DIFF,
    State,
    lake_option,
    money,
    open_reader,
    redacted_command_line,
    selection_options,
)
from costlens.cli.tables import Column, Table, print_line
from costlens.money.filters import Filters
from costlens.reconcile import (
    MEASURE_LABELS,
    SOURCES,
    Cell,
    Reconciliation,
    parse_tolerance,
    read_exports,
    reconcile,
)
from costlens.reconcile.records import COUNT_MEASURES

CELL_COLUMNS = (
    Column("day", align="left"),
    Column("source", align="left", priority=2),
    Column("model", align="left"),
    Column("tier", align="left", priority=3),
    Column("measure", align="left"),
    Column("provider"),
    Column("costlens"),
    Column("difference"),
    Column("verdict", align="left"),
    Column("cause", align="left", priority=1, whole=False),
    Column("evidence", align="left", priority=4, whole=False),
)
TOTAL_COLUMNS = (
    Column("source", align="left"),
    Column("measure", align="left"),
    Column("provider"),
    Column("costlens"),
    Column("difference"),
    Column("cells", priority=1),
    Column("ok", priority=1),
    Column("differs", priority=2),
    Column("missing in costlens", priority=2),
    Column("missing at provider", priority=2),
)


def figure(measure: str, value: Decimal | None) -> str:
    """A figure for display: counts with thousands separators, money through money()."""
    if value is None:
        return ""
    if measure in COUNT_MEASURES:
        return f"{int(value):,}"
    return money(value)


def signed(measure: str, value: Decimal) -> str:
    if value == 0:
        return "0" if measure in COUNT_MEASURES else "$0"
    return ("-" if value < 0 else "+") + figure(measure, abs(value))


def model_label(cell: Cell) -> str:
    return "(all models)" if cell.model is None else cell.model


def dump_json(result: Reconciliation) -> str:
    """The reconciliation indented like every --json, each cell on one line as DuckDB wrote it: a
    year of 50 models is ~90,000 cells, and re-encoding them here would take seconds."""
    head = json.dumps(result.as_json(with_cells=False), indent=2)
    body = ",\n".join("    " + text for _, text in result.cell_rows)
    return head[:-2] + ',\n  "cells": [' + (f"\n{body}\n  " if body else "") + "]\n}"


def print_reconciliation(result: Reconciliation, *, only_differences: bool) -> None:
    for f in result.inputs:
        span = f", {f.first_day}..{f.last_day}" if f.first_day else ", no days"
        how = "detected" if f.detected else "--source"
        print_line(f"Read {f.file} as {f.kind} ({how}): {f.buckets:,} buckets, {f.results:,} results{span}.")
    shown = result.differing if only_differences else result.cells
    table = Table(f"Reconciliation (tolerance: {result.tolerance.describe()})", CELL_COLUMNS)
    for c in shown:
        table.add_row(
            c.day.isoformat(),
            c.source,
            model_label(c),  # ids are data: the table prints them inert, escaped
            c.tier or "",
            MEASURE_LABELS.get(c.measure, c.measure),
            figure(c.measure, c.provider),
            figure(c.measure, c.costlens),
            signed(c.measure, c.difference),
            c.verdict,
            c.cause or "",
            c.evidence or "",
        )
    table.print()
    totals = Table("Totals", TOTAL_COLUMNS)
    for t in result.totals:
        totals.add_row(
            t.source,
            MEASURE_LABELS.get(t.measure, t.measure),
            figure(t.measure, t.provider),
            figure(t.measure, t.costlens),
            signed(t.measure, t.difference),
            f"{t.cells:,}",
            f"{t.verdicts.get('ok', 0):,}",
            f"{t.verdicts.get('differs', 0):,}",
            f"{t.verdicts.get('missing in costlens', 0):,}",
            f"{t.verdicts.get('missing at provider', 0):,}",
        )
    totals.print()
    for reason, words in (
        ("outside", "on days no export covers"),
        ("unnamed", "of models no export names (another provider's traffic, or billed elsewhere)"),
    ):
        items = [n for n in result.not_compared if n.reason == reason]
        if items:
            requests = sum(n.requests for n in items)
            cost = sum((n.cost_usd for n in items), Decimal(0))
            models = ", ".join(f"{n.model} ({n.requests:,})" for n in items[:10])
            more = f" and {len(items) - 10} more" if len(items) > 10 else ""
            print_line(
                f"Not compared: {requests:,} selected requests {words}, {money(cost)}: {models}{more}. "
                "Narrow the selection (--since, --until, --model, --run, --tag) or give the missing exports."
            )
    runs, requests = result.simulated_left_out
    if runs:
        print_line(
            f"{runs:,} simulated runs ({requests:,} requests) left out (--include-simulated counts them)."
        )
    counts = result.verdict_counts()
    stored = (
        f"Reconciliation {result.reconciliation_id}: "
        if result.reconciliation_id is not None
        else "Reconciliation (not stored): "
    )
    total = len(result.cell_rows)
    if result.status == "ok":
        print_line(f"{stored}all {total:,} cells agree within the tolerance.")
    else:
        parts = ", ".join(
            f"{counts[v]:,} {v}" for v in ("differs", "missing in costlens", "missing at provider")
        )
        print_line(f"{stored}{total - counts['ok']:,} of {total:,} cells beyond the tolerance ({parts}).")


@click.command("reconcile")
@click.argument(
    "files",
    nargs=-1,
    required=True,
    metavar="FILE...",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--source",
    type=click.Choice(list(SOURCES)),
    default=None,
    help="Read every FILE as this export kind (default: detected per file, and said so).",
)
@selection_options()
@click.option(
    "--tolerance",
    "tolerance_text",
    metavar="USD|PCT%",
    default="0.01",
    show_default=True,
    help="How far apart a cell's two figures may be and still agree: a USD amount per cell on money "
    "(counts then agree only when equal), or N% of the provider's figure on every figure.",
)
@click.option("--only-differences", is_flag=True, help="Print only the cells beyond the tolerance.")
@lake_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON: one object per cell, totals, money as exact decimal strings.",
)
@click.pass_obj
def reconcile_command(
    state: State,
    files: tuple[Path, ...],
    source: str | None,
    filters: Filters,
    tolerance_text: str,
    only_differences: bool,
    lake_uri: str | None,
    as_json: bool,
) -> None:
    """Compare provider usage and cost exports (FILE...: OpenAI usage/costs pages, Anthropic usage/cost
    report pages, a LiteLLM spend log) with the selected requests, per UTC day x model x tier.

    Each cell gets a verdict (ok, differs, missing in costlens, missing at provider) and, when it
    differs, the likely cause. The reconciliation is stored in the database (with --lake it is
    compared over the lake and not stored: the lake holds published runs only). Exit 0 when every
    cell agrees within --tolerance, 5 when some do not."""
    tolerance = parse_tolerance(tolerance_text)
    exports = read_exports(files, source)  # every file read and checked before the database is opened
    with open_reader(state, lake_uri) as session:
        result = reconcile(
            session,
            exports,
            filters=filters,
            tolerance=tolerance,
            command_line=redacted_command_line(sys.argv[1:]),
            store=not lake_uri,
        )
    if as_json:
        click.echo(dump_json(result))
    else:
        print_reconciliation(result, only_differences=only_differences)
    if result.status != "ok":
        sys.exit(EXIT_RECONCILE_DIFF)
