"""`costlens summary` and `costlens runs`: per-model costs and the list of runs, as tables or JSON."""

from __future__ import annotations

import json

import click
from rich.table import Table

from costlens.cli.common import State, filter_options, make_console, make_filters, money
from costlens.report.summary import Summary, list_runs, summarize
from costlens.session import open_session


def print_summary(summary: Summary) -> None:
    console = make_console()
    table = Table(title="Cost by model", title_justify="left")
    for name in (
        "model", "requests", "errors", "input tok", "cached tok", "output tok", "reasoning tok",
        "cost", "per 1K req", "priced", "unpriced", "tier fallback",
    ):  # fmt: skip
        table.add_column(name, justify="left" if name == "model" else "right")
    for m in (*summary.models, summary.total):
        table.add_row(
            m.model,
            f"{m.requests:,}",
            f"{m.errors:,}",
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
    console.print(table)
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
        console.print(line, markup=False)
    if total.tier_fallback:
        console.print(
            f"{total.tier_fallback:,} requests priced at standard for lack of a price row for their tier.",
            markup=False,
        )


@click.command()
@filter_options
@click.option("--model", "models", multiple=True, metavar="MODEL", help="Only this model (repeatable).")
@click.option(
    "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only runs with this tag (repeatable)."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON: exact decimal strings, one object per model."
)
@click.pass_obj
def summary(
    state: State,
    run_ids: tuple[int, ...],
    since: str | None,
    until: str | None,
    models: tuple[str, ...],
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """Cost per model: requests, errors, tokens by bucket, cost, cost per 1K requests, price coverage."""
    filters = make_filters(run_ids, since, until, models, tags)
    with open_session(state.settings) as session:
        result = summarize(session.conn, filters)
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        print_summary(result)


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
    table = Table(title="Runs", title_justify="left")
    for name in (
        "id",
        "name",
        "kind",
        "status",
        "source",
        "started (UTC)",
        "read",
        "stored",
        "rejected",
        "cost",
    ):
        table.add_column(
            name, justify="right" if name in ("id", "read", "stored", "rejected", "cost") else "left"
        )
    for r in items:
        table.add_row(
            str(r.run_id),
            r.name or "",
            r.kind,
            r.status,
            r.source_file or "",
            r.started_at,
            "" if r.lines_read is None else f"{r.lines_read:,}",
            "" if r.lines_stored is None else f"{r.lines_stored:,}",
            "" if r.lines_rejected is None else f"{r.lines_rejected:,}",
            money(r.cost_usd),
        )
    make_console().print(table)
