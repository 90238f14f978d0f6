"""The costlens command line: parse options, call one library function, render the result.

No SQL and no HTTP here. Every ``CostlensError`` becomes a one-line message on
stderr and its documented exit code (README "Exit codes"); a traceback is shown
only with ``--debug`` or for a genuine bug.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import traceback
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.table import Table

from costlens import __version__
from costlens.errors import ConfigError, CostlensError
from costlens.export import export_rows
from costlens.filters import Filters, parse_when
from costlens.pricing import alias_warnings, load_price_table, price_rows_for_display
from costlens.replay import ReplayOptions, replay_files
from costlens.session import DEFAULT_DB, Settings, open_session
from costlens.summary import Summary, format_decimal, list_runs, summarize

EXIT_OK = 0
EXIT_PARTIAL = 1  # finished, but some lines were rejected or some requests failed (all recorded)
EXIT_USAGE = 2
EXIT_BUDGET = 3
EXIT_INTERNAL = 4

F = TypeVar("F", bound=Callable[..., Any])

# Option names whose value is a secret: --api-key, --token, --auth-token, --password...
# (not --max-tokens, and not --api-key-env, whose value is only a variable's name).
_SECRET_OPTION = re.compile(r"(key|secret|password|passwd|authorization|bearer|(^|-)token)$", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+\S+)")


def redacted_command_line(argv: Sequence[str]) -> str:
    """The command line as run, with anything that looks like a secret replaced by ***."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        if arg.startswith("--") and _SECRET_OPTION.search(arg.split("=", 1)[0].lstrip("-")):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=***")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(_SECRET_VALUE.sub("***", arg))
    return shlex.join(["costlens", *out])


class State:
    """Global options, resolved once."""

    def __init__(self, settings: Settings, debug: bool) -> None:
        self.settings = settings
        self.debug = debug


def _console(stderr: bool = False) -> Console:
    # Under cron there is no terminal: rich then prints plain text, no colour or cursor codes.
    return Console(
        stderr=stderr, highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200
    )


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"costlens: error: {message}", err=True)
    sys.exit(code)


def _parse_tags(values: Sequence[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--tag {value!r}: expected KEY=VALUE")
        tags[key.strip()] = val.strip()
    return tags


def _filters(
    run_ids: Sequence[int],
    since: str | None,
    until: str | None,
    models: Sequence[str] = (),
    tags: Sequence[str] = (),
) -> Filters:
    return Filters(
        run_ids=tuple(run_ids),
        since=parse_when(since, option="--since") if since else None,
        until=parse_when(until, option="--until") if until else None,
        models=tuple(models),
        tags=_parse_tags(tags),
    )


def filter_options(func: F) -> F:
    func = click.option("--until", metavar="WHEN", help="Only requests before this UTC date/datetime.")(func)
    func = click.option("--since", metavar="WHEN", help="Only requests at or after this UTC date/datetime.")(
        func
    )
    func = click.option(
        "--run", "run_ids", type=int, multiple=True, metavar="ID", help="Only this run (repeatable)."
    )(func)
    return func


def money(value: Decimal | None, places: int = 6) -> str:
    """Display only: exact values stay exact in --json and exports."""
    if value is None:
        return "unpriced"
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return "$" + format(value.quantize(Decimal("0.01")), ",f")
    return "$" + format_decimal(
        value.quantize(Decimal(1).scaleb(-places)) if value.adjusted() > -places else value
    )


class CostlensGroup(click.Group):
    """Turns library errors into messages and exit codes, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CostlensError as e:
            if ctx.meta.get("costlens.debug"):
                traceback.print_exc()
            fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            click.echo("costlens: interrupted; nothing from the unfinished step was stored", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort, SystemExit):
            raise
        except Exception as e:  # a bug: say so plainly, keep the traceback for --debug
            if ctx.meta.get("costlens.debug"):
                traceback.print_exc()
            fail(
                f"internal error: {type(e).__name__}: {e} (this is a bug; rerun with --debug for details)",
                EXIT_INTERNAL,
            )


@click.group(
    cls=CostlensGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="COSTLENS_DB",
    default=DEFAULT_DB,
    show_default=True,
    help="DuckDB file where runs, requests and results are stored (env COSTLENS_DB).",
)
@click.option(
    "--pricing",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="COSTLENS_PRICING",
    default=None,
    help="Price table CSV replacing the shipped data/pricing.csv (env COSTLENS_PRICING).",
)
@click.option(
    "--extra-pricing",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="Price table CSV layered on top: its rows replace every row of each model it names (repeatable).",
)
@click.option(
    "--aliases",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="Extra alias,model CSV layered on the shipped data/model_aliases.csv (repeatable).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(__version__, prog_name="costlens")
@click.pass_context
def cli(
    ctx: click.Context,
    db: Path,
    pricing: Path | None,
    extra_pricing: tuple[Path, ...],
    aliases: tuple[Path, ...],
    debug: bool,
) -> None:
    """Know exactly what LLM chat traffic costs, and what it would cost on another model."""
    ctx.meta["costlens.debug"] = debug
    ctx.obj = State(
        Settings(db_path=db, pricing_path=pricing, extra_pricing=extra_pricing, extra_aliases=aliases), debug
    )


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--requests",
    "requests_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Batch input file whose lines are joined on custom_id, so request parameters are logged too.",
)
@click.option(
    "--model",
    help="Requested model for lines whose request is not in --requests (error lines often carry no model).",
)
@click.option(
    "--tier",
    type=click.Choice(["auto", "standard", "batch", "flex", "priority"]),
    default="auto",
    show_default=True,
    help="Service tier to price at; auto = batch for batch formats, else the response's service_tier.",
)
@click.option("--run-name", help="Name for the run (runs with the same name are compared over time).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Tag the run (repeatable).")
@click.option("--force", is_flag=True, help="Replay even if this file (same sha256) was already replayed.")
@click.option(
    "--store-content/--no-store-content",
    default=False,
    show_default=True,
    help="Copy completion and message text (with their sha256) into the DB; the source files keep them anyway.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_obj
def replay(
    state: State,
    files: tuple[Path, ...],
    requests_file: Path | None,
    model: str | None,
    tier: str,
    run_name: str | None,
    tags: tuple[str, ...],
    force: bool,
    store_content: bool,
    as_json: bool,
) -> None:
    """Load recorded results (OpenAI/vLLM batch output, Anthropic batch results, chat.completion
    objects) without sending anything. Each FILE becomes one run.

    Exit 0 when every line was stored and every request succeeded; 1 when some lines
    were rejected or some requests had failed (everything is still recorded)."""
    with open_session(state.settings) as session:
        outcome = replay_files(
            session.conn,
            ReplayOptions(
                files=files,
                requests_file=requests_file,
                model=model,
                tier=tier,  # type: ignore[arg-type]
                run_name=run_name,
                tags=_parse_tags(tags),
                force=force,
                store_content=store_content,
                command_line=redacted_command_line(sys.argv[1:]),
                pricing_sha256=session.pricing_sha256,
            ),
        )
        summary = summarize(session.conn, Filters(run_ids=tuple(r.run_id for r in outcome.results)))
    request_rejects = outcome.requests.rejects if outcome.requests else ()
    all_rejects = [*request_rejects, *(rej for r in outcome.results for rej in r.rejects)]
    if as_json:
        payload = {
            "runs": [
                {
                    "run_id": r.run_id,
                    "file": r.file,
                    "sha256": r.sha256,
                    "lines_read": r.lines_read,
                    "stored": r.stored,
                    "rejected": r.rejected,
                    "errors": r.errors,
                    "formats": dict(r.formats),
                    "rejects": [{"line": x.line_no, "reason": x.reason} for x in r.rejects],
                }
                for r in outcome.results
            ],
            "requests_file": None
            if outcome.requests is None
            else {
                "file": outcome.requests.path,
                "lines_read": outcome.requests.lines_read,
                "accepted": outcome.requests.accepted,
                "rejected": len(outcome.requests.rejects),
                "rejects": [{"line": x.line_no, "reason": x.reason} for x in outcome.requests.rejects],
            },
            "summary": summary.as_json(),
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        err = _console(stderr=True)
        for rej in all_rejects[:50]:
            err.print(f"rejected {rej}", markup=False)
        if len(all_rejects) > 50:
            err.print(
                f"... and {len(all_rejects) - 50} more rejected lines (see the rejects table)", markup=False
            )
        if outcome.requests is not None:
            rf = outcome.requests
            click.echo(
                f"requests {rf.path}: {rf.lines_read} read, {rf.accepted} accepted, {len(rf.rejects)} rejected"
            )
        for r in outcome.results:
            formats = ", ".join(f"{k} {v}" for k, v in r.formats.items()) or "none"
            click.echo(
                f"run {r.run_id} {r.file}: {r.lines_read} lines read, {r.stored} stored, {r.rejected} rejected, "
                f"{r.errors} failed requests ({formats})"
            )
        _print_summary(summary)
    if all_rejects or any(r.errors for r in outcome.results):
        sys.exit(EXIT_PARTIAL)


def _print_summary(summary: Summary) -> None:
    console = _console()
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
    if total.unpriced:
        console.print(
            f"Price coverage: {total.priced:,} of {total.requests:,} requests priced; "
            f"{total.unpriced_tokens:,} tokens unpriced (not included in the cost).",
            markup=False,
        )
    if total.tier_fallback:
        console.print(
            f"{total.tier_fallback:,} requests priced at standard for lack of a price row for their tier.",
            markup=False,
        )


@cli.command()
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
    filters = _filters(run_ids, since, until, models, tags)
    with open_session(state.settings) as session:
        result = summarize(session.conn, filters)
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        _print_summary(result)


@cli.command()
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
    _console().print(table)


@cli.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "jsonl"]),
    required=True,
    help="Output file format.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File to write.")
@filter_options
@click.option("--model", "models", multiple=True, metavar="MODEL", help="Only this model (repeatable).")
@click.option(
    "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only runs with this tag (repeatable)."
)
@click.pass_obj
def export(
    state: State,
    fmt: str,
    out: Path,
    run_ids: tuple[int, ...],
    since: str | None,
    until: str | None,
    models: tuple[str, ...],
    tags: tuple[str, ...],
) -> None:
    """Write one priced row per request (columns: README "Export columns")."""
    filters = _filters(run_ids, since, until, models, tags)
    with open_session(state.settings) as session:
        count = export_rows(session.conn, fmt, out, filters)  # type: ignore[arg-type]
    click.echo(f"wrote {count:,} rows to {out}", err=True)


@cli.group()
def pricing() -> None:
    """Inspect and check price tables."""


@pricing.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def pricing_show(state: State, as_json: bool) -> None:
    """Show the price table in force (shipped, or --pricing, plus --extra-pricing layers)."""
    table = load_price_table(state.settings.price_files(), state.settings.alias_files())
    rows = price_rows_for_display(table)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "sources": [{"path": s.path, "sha256": s.sha256, "rows": s.rows} for s in table.sources],
                    "prices": rows,
                    "aliases": [{"alias": a, "model": m} for a, m in table.aliases],
                },
                indent=2,
            )
        )
        return
    out = Table(title="Prices (USD per 1M tokens)", title_justify="left")
    columns = (
        "model", "provider", "service_tier", "min_prompt_tokens", "input_per_1m", "cached_input_per_1m",
        "cache_write_per_1m", "output_per_1m", "reasoning_per_1m", "effective_from", "effective_to",
    )  # fmt: skip
    for name in columns:
        out.add_column(name)
    for row in rows:
        out.add_row(*(row.get(name, "") for name in columns))
    console = _console()
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


def main() -> None:
    cli(prog_name="costlens", auto_envvar_prefix=None)


if __name__ == "__main__":  # pragma: no cover
    main()
