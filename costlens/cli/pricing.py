"""`costlens pricing ...`: inspect, check, import, compare and explain price sheets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from costlens.cli.common import EXIT_PARTIAL, State, make_console
from costlens.money.pricing import alias_warnings, load_price_table, price_rows_for_display
from costlens.report.filters import parse_when
from costlens.session import load_prices, open_session
from costlens.store.db import utcnow


@click.group()
def pricing() -> None:
    """Inspect and check price tables."""


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
    out = Table(title="Prices (USD per 1M tokens)", title_justify="left")
    columns: tuple[str, ...] = (
        "model", "match", "provider", "service_tier", "min_prompt_tokens", "input_per_1m", "cached_input_per_1m",
        "cache_write_per_1m", "cache_write_1h_per_1m", "output_per_1m", "reasoning_per_1m", "per_request_usd",
        "effective_from", "effective_to",
    )  # fmt: skip
    if len(table.sheets) > 1:
        columns = ("sheet", *columns)
    for name in columns:
        out.add_column(name)
    for row in rows:
        out.add_row(*(row.get(name, "") for name in columns))
    console = make_console()
    console.print(out)
    for s in table.sources:
        console.print(f"source {s.path} sha256 {s.sha256} ({s.rows} rows)", markup=False)


@pricing.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def pricing_check(state: State, file: Path) -> None:
    """Validate a price table FILE; errors name file:line:column and the reason."""
    table = load_price_table([file], state.settings.alias_files())
    for warning in alias_warnings(table):
        click.echo(f"warning: {warning}", err=True)
    models = len({r.model.lower() for r in table.rows})
    click.echo(f"{file}: OK, {len(table.rows)} price rows for {models} models")


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
    "--prompt-tokens",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Prompt tokens (cache included): picks the long-context row.",
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
    console = make_console()
    console.print(
        f"{result.model_id} ({tier}, {prompt_tokens:,} prompt tokens, at {at:%Y-%m-%d %H:%M:%S} UTC): "
        f"{result.outcome}",
        markup=False,
    )
    console.print(result.reason, markup=False)
    if result.row is not None:
        shown = result.as_json()["row"]
        console.print(
            f"sheet {result.sheet}, {shown['price_file']}:{shown['price_line']}: "
            + ", ".join(
                f"{k}={v}"
                for k, v in shown.items()
                if v not in (None, "") and k not in ("price_file", "price_line")
            ),
            markup=False,
        )
    if result.note:
        console.print(f"price_note: {result.note}", markup=False)
    if result.outcome == "unpriced":
        sys.exit(EXIT_PARTIAL)
