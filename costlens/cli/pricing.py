"""`costlens pricing ...`: inspect, check, import, compare and explain price sheets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from costlens.cli.common import EXIT_PARTIAL, State, selection_options
from costlens.cli.summary import print_comparison
from costlens.cli.tables import Column, Table, print_line, say
from costlens.money.diff import SheetDiff, diff_sheets
from costlens.money.filters import Filters, parse_when
from costlens.money.pricing import alias_warnings, load_price_table, price_rows_for_display
from costlens.money.sources import SOURCES, import_to_file
from costlens.report.compare import SheetComparison, compare_sheets
from costlens.session import (
    CompareSheet,
    load_prices,
    load_sheet_alone,
    open_session,
    register_compare_sheets,
)
from costlens.store.db import utcnow


@click.group()
def pricing() -> None:
    """Inspect and check price tables."""


# Every cell is a figure, an id or a date: whole. Model, input and output prices stay at any width.
PRICE_SHOW_COLUMNS = (
    Column("model", align="left"),
    Column("match", align="left", priority=2),
    Column("provider", align="left", priority=4),
    Column("service_tier", align="left", priority=1),
    Column("min_prompt_tokens", priority=3),
    Column("input_per_1m"),
    Column("cached_input_per_1m", priority=2),
    Column("cache_write_per_1m", priority=5),
    Column("cache_write_1h_per_1m", priority=6),
    Column("output_per_1m"),
    Column("reasoning_per_1m", priority=4),
    Column("per_request_usd", priority=5),
    Column("effective_from", align="left", priority=3),
    Column("effective_to", align="left", priority=3),
)


@pricing.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def pricing_show(state: State, as_json: bool) -> None:
    """Show the price table in force (shipped, or --pricing, plus --extra-pricing layers)."""
    table = load_prices(state.settings)
    rows = price_rows_for_display(table)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "sheets": list(table.sheets),
                    "sources": [
                        {"path": s.path, "sha256": s.sha256, "rows": s.rows, "kind": s.kind, "sheet": s.sheet}
                        for s in table.sources
                    ],
                    "prices": rows,
                    "aliases": [{"alias": a, "model": m} for a, m in table.aliases],
                },
                indent=2,
            )
        )
        return
    columns: tuple[Column, ...] = PRICE_SHOW_COLUMNS
    if len(table.sheets) > 1:
        columns = (Column("sheet", align="left", priority=1), *columns)
    out = Table("Prices (USD per 1M tokens)", columns)
    for row in rows:
        out.add_row(*(row.get(c.header, "") for c in columns))
    out.print()
    for s in table.sources:
        print_line(f"source {s.path} sha256 {s.sha256} ({s.rows} rows)")


@pricing.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def pricing_check(state: State, file: Path) -> None:
    """Validate a price table FILE; errors name file:line:column and the reason."""
    table = load_price_table([file], state.settings.alias_files())
    for warning in alias_warnings(table):
        say(f"warning: {warning}", err=True)
    models = len({r.model.lower() for r in table.rows})
    say(f"{file}: OK, {len(table.rows)} price rows for {models} models")


@pricing.command("which")
@click.argument("model_id")
@click.option(
    "--tier",
    type=click.Choice(["standard", "batch", "flex", "priority"]),
    default="standard",
    show_default=True,
    help="Service tier of the request.",
)
@click.option(
    "--input-tokens",
    "--prompt-tokens",
    "prompt_tokens",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Input tokens of the request (cache included): picks the long-context row "
    "(min_prompt_tokens). --prompt-tokens is the same option.",
)
@click.option(
    "--at", "at_text", metavar="WHEN", help="When the request ran (ISO date/datetime, UTC); default now."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def pricing_which(
    state: State, model_id: str, tier: str, prompt_tokens: int, at_text: str | None, as_json: bool
) -> None:
    """Which sheet, row and rule would price MODEL_ID, and why: exact id, alias, pattern, provider
    prefix stripped, a fallback sheet, or unpriced (with the reason). Nothing is stored."""
    from costlens.money.which import which  # imported on use

    at = parse_when(at_text, option="--at") if at_text else utcnow()
    with open_session(state.settings) as session:
        result = which(session.conn, model_id, tier=tier, prompt_tokens=prompt_tokens, at=at)
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
        return
    say(
        f"{result.model_id} ({tier}, {prompt_tokens:,} input tokens, at {at:%Y-%m-%d %H:%M:%S} UTC): "
        f"{result.outcome}"
    )
    say(result.reason)
    if result.row is not None:
        shown = result.as_json()["row"]
        say(
            f"sheet {result.sheet}, {shown['price_file']}:{shown['price_line']}: "
            + ", ".join(
                f"{k}={v}"
                for k, v in shown.items()
                if v not in (None, "") and k not in ("price_file", "price_line")
            )
        )
    if result.note:
        say(f"price_note: {result.note}")
    if result.outcome == "unpriced":
        sys.exit(EXIT_PARTIAL)


@pricing.command("import")
@click.argument("source", type=click.Choice(sorted(SOURCES)))
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Price sheet CSV to write (atomically; nothing is written if the source is malformed).",
)
@click.option(
    "--provider",
    "providers",
    multiple=True,
    metavar="P",
    help="Only this provider's models (repeatable; earlier ones win when an id is under several).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the outcome (counts and every listed item) as JSON."
)
def pricing_import(
    source: str, file: Path | None, out: Path, providers: tuple[str, ...], as_json: bool
) -> None:
    """Write a price sheet in costlens's CSV format from a maintained price database, offline:
    genai-prices (the installed package's bundled data; no FILE), or a saved LiteLLM
    model_prices_and_context_window.json, OpenRouter /api/v1/models response or models.dev
    api.json (FILE). What cannot be expressed is listed with model and reason."""

    result = import_to_file(source, file, out, providers)
    counts = {kind: len(result.listed_as(kind)) for kind in ("skipped", "omitted", "rounded", "duplicate")}
    rows = sum(1 for r in result.rows if not r.match)
    matches = len(result.rows) - rows
    if as_json:
        payload = {
            "source": result.source,
            "out": str(out),
            "models_imported": result.models_imported,
            "models_skipped": result.models_skipped,
            "price_rows": rows,
            "match_rows": matches,
            "listed": [
                {"kind": x.kind, "model": x.model, "provider": x.provider, "reason": x.reason}
                for x in result.listed
            ],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    for item in result.listed:
        if item.kind != "duplicate":
            say(f"{item.kind}: {item.provider}/{item.model}: {item.reason}", err=True)
    say(
        f"wrote {out}: {result.models_imported:,} models ({rows:,} price rows, {matches:,} match rows) from "
        f"{result.source}; {counts['skipped']:,} skipped, {counts['omitted']:,} prices omitted, "
        f"{counts['rounded']:,} rounded, {counts['duplicate']:,} ids also under another provider (see --json)"
    )


def print_sheet_diff(diff: SheetDiff) -> None:
    say(f"Price rows: {diff.old} -> {diff.new}")
    for row in diff.rows:
        if row.kind == "changed":
            detail = ", ".join(
                f"{c.column} {c.old or '(empty)'} -> {c.new or '(empty)'}" for c in row.changes
            )
        else:
            shown = {k: v for k, v in row.cells.items() if k != "model" and (k, v) != ("currency", "USD")}
            detail = ", ".join(f"{k}={v}" for k, v in shown.items())
        say(f"  {row.kind:<8} {row.label}: {detail}")
    for m in diff.matches:
        say(f"  {'match ' + m.kind:<14} {m.rule} -> {m.model}")
    say(
        f"{diff.count('added'):,} added, {diff.count('removed'):,} removed, {diff.count('changed'):,} changed, "
        f"{diff.unchanged:,} unchanged; match rows: "
        f"{sum(m.kind == 'added' for m in diff.matches):,} added, "
        f"{sum(m.kind == 'removed' for m in diff.matches):,} removed."
    )


@pricing.command("diff")
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@selection_options(scope="Traffic: ")
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON: cells as plain decimals, money as exact strings."
)
@click.pass_obj
def pricing_diff(
    state: State,
    old: str,
    new: str,
    filters: Filters,
    as_json: bool,
) -> None:
    """Compare two price sheets OLD and NEW (CSV paths or genai-prices): rows added, removed and
    changed (cell by cell) and match rows added or removed; then, when the database (--db) exists,
    what the selected traffic costs on each sheet and the difference (NEW - OLD, over the requests
    priced on both). Each sheet is priced alone, with the alias files and no fallback sheet.
    The filters select traffic only; the sheet diff covers every row. Nothing is stored."""
    old_name, new_name = old, new  # a sheet is shown under the name it was given
    sheets = [
        CompareSheet(old_name, old, load_sheet_alone(state.settings, old)),
        CompareSheet(new_name, new, load_sheet_alone(state.settings, new)),
    ]
    diff = diff_sheets(sheets[0].table, sheets[1].table, old_name=old_name, new_name=new_name)
    traffic: SheetComparison | None = None
    if state.settings.db_path.exists():
        with open_session(state.settings) as session:
            (base, other) = register_compare_sheets(session, sheets)
            traffic = compare_sheets(session.conn, filters, [other], base=base)
    else:
        click.echo(
            f"costlens: no database: only the sheet diff ({state.settings.db_path} does not exist)", err=True
        )
    if as_json:
        payload = {"diff": diff.as_json(), "traffic": None if traffic is None else traffic.as_json()}
        click.echo(json.dumps(payload, indent=2))
        return
    print_sheet_diff(diff)
    if traffic is not None:
        print_comparison(traffic, title=f"Selected traffic on {old_name} and {new_name}")
