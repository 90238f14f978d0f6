"""`costlens summary` and `costlens runs`: per-model costs and the list of runs, as tables or JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

import click

from costlens.cli.common import State, lake_option, money, open_reader, selection_options
from costlens.cli.tables import Column, Table, print_line
from costlens.money.filters import Filters
from costlens.report.compare import SheetComparison, SheetCost, compare_sheets
from costlens.report.summary import Summary, list_runs, summarize
from costlens.session import load_compare_sheets, open_session, register_compare_sheets

F = TypeVar("F", bound=Callable[..., Any])

COMPARE_HELP = (
    "Also price the same requests on this sheet (a price CSV, or genai-prices) and show the cost "
    "next to the main one, with the difference (repeatable). NAME defaults to FILE as given. Each "
    "such sheet is priced alone: that sheet and the alias files, without --extra-pricing or "
    "--fallback-pricing, so a model it does not know is unpriced there."
)


def compare_pricing_option(command: F) -> F:
    """--compare-pricing [NAME=]FILE, shared by summary and report."""
    return click.option(
        "--compare-pricing",
        "compare",
        multiple=True,
        metavar="[NAME=]FILE|genai-prices",
        help=COMPARE_HELP,
    )(command)


def signed_money(value: Decimal | None) -> str:
    """A difference for display: -$0.009, +$1.25, $0; '-' when there is none."""
    if value is None:
        return "-"
    if value == 0:
        return "$0"
    return ("-" if value < 0 else "+") + money(abs(value))


def signed_percent(value: Decimal | None) -> str:
    if value is None:
        return "-"
    text = format((value * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP), "f")
    return ("+" if value > 0 else "") + text + "%"


def _coverage(cost: SheetCost, requests: int) -> str:
    text = f"{cost.sheet}: {cost.priced:,} of {requests:,} priced"
    if cost.priced_by_fallback_sheet:
        text += f" ({cost.priced_by_fallback_sheet:,} by a fallback sheet)"
    text += f", {cost.unpriced:,} unpriced"
    if cost.tier_fallback:
        text += f", {cost.tier_fallback:,} at standard for lack of a tier price"
    return text


def print_comparison(comparison: SheetComparison, *, title: str = "Cost on other sheets") -> None:
    # Model and sheet names are data (file paths, ids from responses): the table prints them inert.
    columns = [Column("model", align="left"), Column("requests", priority=2), Column(comparison.base)]
    for name in comparison.sheets:
        columns += [
            Column(name, priority=1),
            Column(f"{name} - {comparison.base}", priority=1),
            Column(f"{name} change", priority=3),
        ]
    table = Table(title, columns)
    for row in (*comparison.rows, comparison.total):
        cells = [row.model, f"{row.requests:,}", money(row.base.cost_usd)]
        for cost, diff in zip(row.sheets, row.differences, strict=True):
            # A difference that leaves out requests priced on one side only gets a footnote mark.
            cells += [
                money(cost.cost_usd),
                signed_money(diff.difference_usd) + ("*" if diff.partial else ""),
                signed_percent(diff.relative_difference),
            ]
        table.add_row(*cells, end_section=bool(comparison.rows) and row is comparison.rows[-1])
    table.print()
    total = comparison.total
    parts = [_coverage(c, total.requests) for c in (total.base, *total.sheets)]
    print_line("Price coverage: " + "; ".join(parts) + ".")
    if comparison.partial:
        counts = ", ".join(f"{d.sheet} {d.compared:,} of {total.requests:,}" for d in total.differences)
        print_line(
            f"* Differences are over the requests priced on both sheets only ({counts}); "
            "a request unpriced on either side is left out of them."
        )


# Priority 0 stays at any width; on a narrow terminal the highest numbers go first (tables.py).
SUMMARY_COLUMNS = (
    Column("model", align="left"),
    Column("requests", priority=1),
    Column("failed", priority=3),
    Column("input tok", priority=4),
    Column("cached tok", priority=6),
    Column("output tok", priority=4),
    Column("reasoning tok", priority=6),
    Column("cost"),
    Column("per 1K req", priority=3),
    Column("priced", priority=5),
    Column("unpriced", priority=2),
    Column("tier fallback", priority=7),
)


def print_summary(summary: Summary) -> None:
    table = Table("Cost by model", SUMMARY_COLUMNS)
    for m in (*summary.models, summary.total):
        table.add_row(
            m.model,  # a model id is data, never rich markup (a stray "[/]" would even raise)
            f"{m.requests:,}",
            f"{m.failed:,}",
            f"{m.input_tokens:,}",
            f"{m.cached_tokens:,}",
            f"{m.output_tokens:,}",
            f"{m.reasoning_tokens:,}",
            money(m.cost_usd) if m.priced else "unpriced",
            money(m.cost_per_1k_requests) if m.priced else "-",
            f"{m.priced:,}",
            f"{m.unpriced:,}",
            f"{m.tier_fallback:,}",
            end_section=m is summary.models[-1] if summary.models else False,
        )
    table.print()
    total = summary.total
    if total.unpriced or total.sheet_fallback:
        parts = [
            f"{total.priced - total.sheet_fallback:,} of {total.requests:,} requests priced by the main sheet"
        ]
        if total.sheet_fallback:
            parts.append(f"{total.sheet_fallback:,} by a fallback sheet (see price_note)")
        parts.append(f"{total.unpriced:,} unpriced")
        line = "Price coverage: " + ", ".join(parts) + "."
        if total.unpriced:
            line += f" {total.unpriced_tokens:,} tokens unpriced (not included in the cost)."
        print_line(line)
    if total.tier_fallback:
        print_line(
            f"{total.tier_fallback:,} requests priced at standard for lack of a price row for their tier."
        )
    simulated = summary.simulated.sentence()
    if simulated:
        print_line(simulated)
    if total.reported_requests:
        print_reported(summary)


REPORTED_COLUMNS = (
    Column("model", align="left"),
    Column("with a reported cost", priority=2),
    Column("reported"),
    Column("costlens"),
    Column("reported - costlens"),
    Column("change", priority=1),
)


def print_reported(summary: Summary) -> None:
    """The provider's own figures beside costlens's, over the requests that have both."""
    table = Table("Cost reported by the provider vs computed by costlens", REPORTED_COLUMNS)
    rows = [m for m in summary.models if m.reported_requests]
    for m in (*rows, summary.total):
        diff = m.reported_difference_usd
        relative = None if diff is None or not m.computed_compared_usd else diff / m.computed_compared_usd
        table.add_row(
            m.model,
            f"{m.reported_compared:,} of {m.requests:,}",
            money(m.reported_compared_usd) if m.reported_compared else "-",
            money(m.computed_compared_usd) if m.reported_compared else "-",
            signed_money(diff),
            signed_percent(relative),
            end_section=bool(rows) and m is rows[-1],
        )
    table.print()
    total = summary.total
    left = total.reported_requests - total.reported_compared
    note = (
        "Reported = what the provider or gateway said each request cost (OpenRouter usage.cost, "
        "LiteLLM's x-litellm-response-cost, which is LiteLLM's own estimate); compared over the "
        "requests costlens prices too."
    )
    if left:
        note += f" {left:,} requests with a reported cost are unpriced here and left out of the comparison."
    print_line(note)


@click.command()
@selection_options()
@compare_pricing_option
@lake_option
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON: exact decimal strings, one object per model."
)
@click.pass_obj
def summary(
    state: State,
    filters: Filters,
    lake_uri: str | None,
    compare: tuple[str, ...],
    as_json: bool,
) -> None:
    """Cost per model: requests, failed, tokens by bucket, cost, cost per 1K requests, price coverage.

    With --compare-pricing, also the same requests' cost on each other sheet and the difference
    (other - main, over the requests priced on both)."""
    sheets = load_compare_sheets(state.settings, compare)  # validated before the database is opened
    comparison: SheetComparison | None = None
    with open_reader(state, lake_uri) as session:
        result = summarize(session.conn, filters)
        if sheets:
            comparison = compare_sheets(session.conn, filters, register_compare_sheets(session, sheets))
    if as_json:
        payload = result.as_json()
        if comparison is not None:
            payload["compare"] = comparison.as_json()
        click.echo(json.dumps(payload, indent=2))
        return
    print_summary(result)
    if comparison is not None:
        print_comparison(comparison)


RUNS_COLUMNS = (
    Column("id"),
    Column("uuid", align="left", priority=3),  # its first 8 characters: enough for --run
    Column("name", align="left"),  # runs of one name differ only by what follows: never cut it
    Column("kind", align="left", priority=2),  # "run (simulated)"; the id's * says so at any width
    Column("status", align="left", priority=1),
    Column("source", align="left", priority=5, whole=False),  # a path may wrap
    Column("started (UTC)", align="left", priority=1, whole=False),
    Column("read", priority=4),
    Column("stored", priority=3),
    Column("rejected", priority=3),
    Column("ok", priority=1),
    Column("failed", priority=1),
    Column("not sent", priority=2),
    Column("models", align="left", priority=4, whole=False),  # a list of ids may wrap between ids
    Column("endpoint", align="left", priority=5),
    Column("cost"),
)


@click.command()
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show only the newest N runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def runs(state: State, limit: int | None, as_json: bool) -> None:
    """List runs and replays, newest first."""
    with open_session(state.settings) as session:
        items = list_runs(session.conn, limit=limit)
    if as_json:
        click.echo(json.dumps([r.as_json() for r in items], indent=2))
        return
    table = Table("Runs", RUNS_COLUMNS)
    for r in items:
        table.add_row(
            f"{r.run_id}*" if r.simulated else str(r.run_id),
            r.run_uuid[:8],
            r.name or "",
            f"{r.kind} (simulated)" if r.simulated else r.kind,
            r.status,
            r.source_file or "",
            r.started_at,
            "" if r.lines_read is None else f"{r.lines_read:,}",
            "" if r.lines_stored is None else f"{r.lines_stored:,}",
            "" if r.lines_rejected is None else f"{r.lines_rejected:,}",
            f"{r.ok:,}",
            f"{r.failed:,}",
            f"{r.not_sent:,}",
            ", ".join(r.models),
            r.endpoint or "",
            money(r.cost_usd),
        )
    table.print()
    if any(r.simulated for r in items):
        print_line(
            "* simulated run: its answers came from costlens serve-sim (made-up latency and tokens); "
            "summary, report and estimate leave it out unless --include-simulated or --run names it."
        )
