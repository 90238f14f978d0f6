"""`costlens estimate`: what a request file would cost, without sending anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from costlens.cli.common import State, make_console, money
from costlens.cli.tables import Column, Table, print_line
from costlens.session import open_session

if TYPE_CHECKING:
    from costlens.money.estimate import Estimate


@click.command()
@click.argument("requests_file", metavar="REQUESTS.jsonl", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="MODEL",
    help="Estimate on this model (repeatable; default: every model of the price table).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON: exact decimal strings, one object per model."
)
@click.pass_obj
def estimate(state: State, requests_file: Path, models: tuple[str, ...], as_json: bool) -> None:
    """What REQUESTS.jsonl would cost, without sending anything: per model, prompt tokens counted
    offline, input cost, worst-case output cost (max_tokens x n) and total, and the expected cost
    from past runs of the model when the database has any.

    A request without max_tokens uses the model's expected output from past runs as its bound;
    with no history its output is unbounded and only the input cost is given."""
    with open_session(state.settings) as session:
        from costlens.money.estimate import estimate_file  # imported on use

        result = estimate_file(session.conn, requests_file, models)
    err = make_console(stderr=True)
    for rej in result.requests.rejects[:50]:
        err.print(f"rejected {rej}", markup=False)
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        _print_estimate(result)
    state.exit_partial_if(rejects=len(result.requests.rejects))


ESTIMATE_COLUMNS = (
    Column("model", align="left"),
    Column("prompt tok", priority=2),
    Column("max output tok", priority=3),
    Column("input cost", priority=1),
    Column("worst-case output", priority=3),
    Column("worst-case total"),
    Column("expected output tok", priority=4),
    Column("expected total", priority=1),
)


def _print_estimate(result: Estimate) -> None:
    rf = result.requests
    table = Table(
        f"Estimate for {rf.path}: {rf.accepted:,} requests ({len(rf.rejects):,} lines rejected)",
        ESTIMATE_COLUMNS,
    )
    notes: list[str] = []
    for m in result.models:
        if not m.priced:
            worst_out = worst_total = "unpriced"
        elif m.unbounded_requests:
            worst_out = worst_total = "unbounded"
            notes.append(
                f"{m.model}: {m.unbounded_requests:,} requests have no max_tokens and the model has no history "
                "here: output unbounded, input cost only"
            )
        else:
            worst_out, worst_total = money(m.worst_output_cost_usd), money(m.worst_total_usd)
        if m.history_bounded_requests:
            notes.append(
                f"{m.model}: {m.history_bounded_requests:,} requests without max_tokens bounded by the expected "
                f"output of {m.history_requests:,} past requests"
            )
        table.add_row(
            m.model,  # data: printed inert
            f"{m.prompt_tokens:,}",
            f"{m.max_output_tokens:,}" + ("+" if m.unbounded_requests else ""),
            money(m.input_cost_usd),
            worst_out,
            worst_total,
            "-" if m.expected_output_tokens is None else f"{m.expected_output_tokens:,}",
            "-" if m.expected_output_tokens is None else money(m.expected_total_usd),
        )
    table.print()
    for note in notes:
        print_line(note)
