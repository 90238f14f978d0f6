"""`costlens estimate`: what a request file would cost, without sending anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from costlens.cli.common import State, money, selection_options
from costlens.cli.tables import Column, Table, print_line, say
from costlens.session import open_session

if TYPE_CHECKING:
    from costlens.money.estimate import Estimate
    from costlens.money.filters import Filters


@click.command()
@click.argument("requests_file", metavar="REQUESTS.jsonl", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="MODEL",
    help="Estimate on this model (repeatable; default: every model of the price table).",
)
@selection_options(models=False, scope="History: ")
@click.option(
    "--actual",
    "actual_run",
    metavar="RUN_ID|last",
    help="Set the estimate beside a finished run (or replay) of this same file: per model, input "
    "tokens counted vs reported, expected vs actual output and cost. The history then stops where "
    "that run began, and leaves it out.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON: exact decimal strings, one object per model."
)
@click.pass_obj
def estimate(
    state: State,
    requests_file: Path,
    models: tuple[str, ...],
    filters: Filters,
    actual_run: str | None,
    as_json: bool,
) -> None:
    """What REQUESTS.jsonl would cost, without sending anything: per model, input tokens counted
    offline, input cost, worst-case output cost (max_tokens x n) and total, and the expected cost
    learned from past requests of the model when the database has any, with the number of past
    requests it rests on ("history n"). The History options select those past requests as
    `summary` selects its requests (simulated runs are left out unless --include-simulated).

    A request without max_tokens uses the model's expected output from past runs as its bound;
    with no history its output is unbounded and only the input cost is given."""
    with open_session(state.settings) as session:
        from costlens.money.estimate import estimate_file  # imported on use

        result = estimate_file(session.conn, requests_file, models, history=filters, actual_run=actual_run)
    for rej in result.requests.rejects[:50]:
        say(f"rejected {rej}", err=True)
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        _print_estimate(result)
    state.exit_partial_if(rejects=len(result.requests.rejects))


ESTIMATE_COLUMNS = (
    Column("model", align="left"),
    Column("input tok", priority=2),
    Column("max output tok", priority=3),
    Column("input cost", priority=1),
    Column("worst-case output", priority=3),
    Column("worst-case total"),
    Column("expected output tok", priority=4),
    Column("expected total", priority=1),
    Column("history n", priority=1),  # the sample each expected figure rests on: goes with them
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
            f"{m.input_tokens:,}",
            f"{m.max_output_tokens:,}" + ("+" if m.unbounded_requests else ""),
            money(m.input_cost_usd),
            worst_out,
            worst_total,
            "-" if m.expected_output_tokens is None else f"{m.expected_output_tokens:,}",
            "-" if m.expected_output_tokens is None else money(m.expected_total_usd),
            f"{m.history_requests:,}",
        )
    table.print()
    for note in notes:
        print_line(note)
    print_line(_history_sentence(result))
    if result.actual is not None:
        _print_actual(result)


def _history_sentence(result: Estimate) -> str:
    h = result.history
    parts = []
    if h.run_ids:
        parts.append("runs " + ", ".join(str(r) for r in h.run_ids))
    if h.run_uuids:
        parts.append("runs " + ", ".join(h.run_uuids))
    if h.tags:
        parts.append("tags " + ", ".join(f"{k}={v}" for k, v in sorted(h.tags.items())))
    if h.since is not None:
        parts.append(f"from {h.since.isoformat(sep=' ')} UTC")
    if h.until is not None:
        parts.append(f"before {h.until.isoformat(sep=' ')} UTC")
    if h.exclude_run_ids:
        parts.append("without run " + ", ".join(str(r) for r in h.exclude_run_ids))
    scope = "; ".join(parts) if parts else "every stored request"
    simulated = "simulated runs included" if h.include_simulated else "simulated runs left out"
    return f"Expected figures learn from past successful requests of each model ({scope}; {simulated})."


ACTUAL_COLUMNS = (
    Column("model", align="left"),
    Column("requests", priority=3),
    Column("input tok est", priority=2),
    Column("input tok actual", priority=2),
    Column("output tok expected", priority=1),
    Column("output tok actual", priority=1),
    Column("expected total"),
    Column("actual cost"),
    Column("actual - expected", priority=1),
    Column("history n", priority=1),
)


def _print_actual(result: Estimate) -> None:
    from costlens.cli.summary import signed_money

    actual = result.actual
    assert actual is not None
    name = f" ({actual.name})" if actual.name else ""
    table = Table(f"Estimate vs actual: run {actual.run_id}{name}", ACTUAL_COLUMNS)
    for m in result.models:
        a = actual.model(m.model)
        expected = None if m.expected_output_tokens is None else m.expected_total_usd
        diff = None if a is None or a.cost_usd is None or expected is None else a.cost_usd - expected
        table.add_row(
            m.model,
            f"{m.requests:,}" if a is None else f"{a.ok:,} ok of {a.requests:,}",
            f"{m.input_tokens:,}",
            "-" if a is None else f"{a.input_tokens:,}",
            "-" if m.expected_output_tokens is None else f"{m.expected_output_tokens:,}",
            "-" if a is None else f"{a.output_tokens:,}",
            "-" if expected is None else money(expected),
            "-" if a is None else money(a.cost_usd),
            signed_money(diff),
            f"{m.history_requests:,}",
        )
    table.print()
    print_line(
        "Input tokens are counted offline and should match the reported ones; output is the expected "
        "(history) figure against what the run produced. Money is over every request of the file; the "
        "actual cost is over the requests that got a result."
    )
