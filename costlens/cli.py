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
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.table import Table

from costlens import __version__
from costlens.errors import ConfigError, CostlensError
from costlens.filters import Filters, parse_when
from costlens.pricing import alias_warnings, load_price_table, price_rows_for_display
from costlens.replay import ReplayOptions, replay_files
from costlens.session import DEFAULT_BASE_URL, DEFAULT_DB, Settings, open_session
from costlens.summary import Summary, format_decimal, list_runs, summarize

if TYPE_CHECKING:
    from costlens.estimate import Estimate
    from costlens.run import RunOutcome

EXIT_OK = 0
EXIT_PARTIAL = 1  # finished, but some lines were rejected or some requests failed (all recorded)
EXIT_USAGE = 2
EXIT_BUDGET = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130

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


_TIERS = ["auto", "standard", "batch", "flex", "priority"]


def _run_labels(command: F) -> F:
    """--run-name and --tag, shared by the commands that create runs."""
    command = click.option(
        "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Tag the run (repeatable)."
    )(command)
    return click.option(
        "--run-name", help="Name for the run (runs with the same name are compared over time)."
    )(command)


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
    type=click.Choice(_TIERS),
    default="auto",
    show_default=True,
    help="Service tier to price at; auto = batch for batch formats, else the response's service_tier.",
)
@_run_labels
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
        from costlens.export import export_rows  # imported on use: keeps start-up short

        count = export_rows(session.conn, fmt, out, filters)  # type: ignore[arg-type]
    click.echo(f"wrote {count:,} rows to {out}", err=True)


@cli.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write; default reports/costlens-report.html (.json with --format json); '-' = stdout.",
)
@filter_options
@click.option("--model", "models", multiple=True, metavar="MODEL", help="Only this model (repeatable).")
@click.option(
    "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only runs with this tag (repeatable)."
)
@click.option(
    "--tz",
    default="UTC",
    show_default=True,
    metavar="ZONE",
    help="Time zone for days and times on the page (IANA name, e.g. Europe/Paris).",
)
@click.option(
    "--baseline",
    metavar="MODEL",
    help="Model the comparison is made against (default: the one with the most requests).",
)
@click.option(
    "--plotly",
    "plotly_mode",
    type=click.Choice(["inline", "cdn"]),
    default="inline",
    show_default=True,
    help="Embed plotly.js once (the file opens offline) or load it from the plotly CDN (~4.7 MB smaller).",
)
@click.option("--title", default=None, help="Page title (default: costlens report).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "json"]),
    default="html",
    show_default=True,
    help="The HTML page, or the same aggregates as JSON (money as exact decimal strings).",
)
@click.pass_obj
def report(
    state: State,
    out: Path | None,
    run_ids: tuple[int, ...],
    since: str | None,
    until: str | None,
    models: tuple[str, ...],
    tags: tuple[str, ...],
    tz: str,
    baseline: str | None,
    plotly_mode: str,
    title: str | None,
    fmt: str,
) -> None:
    """Write one self-contained HTML cost report (or its figures as JSON) for the selected requests.

    Set COSTLENS_REPORT_TIME (ISO datetime) to fix the generation time: the same data then
    gives a byte-identical file."""
    filters = _filters(run_ids, since, until, models, tags)
    from costlens.report import render_html, render_json, report_time, write_report  # imported on use
    from costlens.report_data import build_report_data

    now = report_time()
    with open_session(state.settings) as session:
        data = build_report_data(
            session.conn,
            filters,
            prices=session.prices,
            as_of=now,
            baseline=baseline,
            tz=tz,
            db_path=str(state.settings.db_path),
        )
    if fmt == "json":
        text = render_json(data)
    else:
        text = render_html(data, plotly_mode=plotly_mode, title=title, generated_at=now)  # type: ignore[arg-type]
    if out is not None and str(out) == "-":
        click.echo(text, nl=False)
        return
    path = out or Path(f"reports/costlens-report.{fmt}")
    write_report(path, text)
    click.echo(f"wrote report to {path}", err=True)


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


class _Usd(click.ParamType):  # type: ignore[type-arg]
    """A USD amount, kept exact (Decimal)."""

    name = "USD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        if isinstance(value, Decimal):
            return value
        try:
            amount = Decimal(str(value).strip().removeprefix("$"))
        except ArithmeticError:
            self.fail(f"{value!r} is not an amount of USD such as 5 or 0.25", param, ctx)
        if not amount.is_finite() or amount < 0:
            self.fail(f"{value!r} is not a non-negative amount of USD", param, ctx)
        return amount


def _resume_hint(run_id: int) -> str:
    args = list(sys.argv[1:])
    if "--resume" not in args and not any(a.startswith("--resume=") for a in args):
        args += ["--resume", str(run_id)]
    return redacted_command_line(args)


def _run_summary(outcome: RunOutcome) -> str:
    o = outcome
    rejected = len(o.rejects)
    spend = money(o.spent_usd)
    if o.unpriced:
        spend += f" (+{o.unpriced:,} unpriced)"
    parts = [
        f"run {o.run_id}{' (resumed)' if o.resumed else ''}: {o.run_requests:,} requests",
        f"{o.run_ok:,} ok",
        f"{o.run_failed:,} failed",
        f"{o.run_unsent:,} not sent",
        f"{rejected:,} rejected line{'' if rejected == 1 else 's'}",
        f"this time {o.sent:,} sent, {o.prompt_tokens + o.completion_tokens:,} tokens",
        f"spent {spend}" + (f" of {money(o.budget_usd)} budget" if o.budget_usd is not None else ""),
        f"{o.elapsed_s:.1f} s",
    ]
    return ", ".join(parts)


@cli.command()
@click.argument("requests_file", metavar="REQUESTS.jsonl", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="MODEL",
    help="Send every request to this model, replacing the body's (repeatable: fans out to each).",
)
@click.option(
    "--base-url",
    envvar="OPENAI_BASE_URL",
    default=DEFAULT_BASE_URL,
    show_default=True,
    help="OpenAI-compatible API root (env OPENAI_BASE_URL); requests go to BASE/chat/completions.",
)
@click.option(
    "--api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    metavar="NAME",
    help="Environment variable holding the API key (never stored or printed).",
)
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=16, show_default=True, help="Requests in flight."
)
@click.option("--rpm", type=click.IntRange(min=1), help="Requests per minute limit.")
@click.option(
    "--tpm",
    type=click.IntRange(min=1),
    help="Tokens per minute limit (prompt counted offline + max_tokens x n).",
)
@click.option(
    "--max-retries", type=click.IntRange(min=0), default=2, show_default=True, help="Retries per request."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=600.0,
    show_default=True,
    help="Seconds to connect, and between bytes of a response, per attempt.",
)
@click.option(
    "--stream/--no-stream",
    default=None,
    help="Force streaming on or off (default: as each request says). Streams ask for usage.",
)
@click.option("--budget", type=_Usd(), help="Stop before spend could pass this many USD (exit 3).")
@click.option(
    "--allow-unpriced", is_flag=True, help="Under --budget, send to models without a price (uncounted)."
)
@click.option(
    "--tier",
    type=click.Choice(_TIERS),
    default="auto",
    show_default=True,
    help="Service tier to price at; auto = the response's service_tier (flex/priority), else standard.",
)
@_run_labels
@click.option(
    "--resume", type=int, metavar="RUN_ID", help="Send what run RUN_ID has no successful result for yet."
)
@click.option(
    "--store-content/--no-store-content",
    default=True,
    show_default=True,
    help="Store messages and completion text; without, only their sha256.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_obj
def run(
    state: State,
    requests_file: Path,
    models: tuple[str, ...],
    base_url: str,
    api_key_env: str,
    concurrency: int,
    rpm: int | None,
    tpm: int | None,
    max_retries: int,
    timeout: float,
    stream: bool | None,
    budget: Decimal | None,
    allow_unpriced: bool,
    tier: str,
    run_name: str | None,
    tags: tuple[str, ...],
    resume: int | None,
    store_content: bool,
    as_json: bool,
) -> None:
    """Send REQUESTS.jsonl (batch input lines, {custom_id, body} or bare bodies) and log every
    outcome with its usage and cost.

    Exit 0 when every request succeeded; 1 when lines were rejected or requests failed (all
    recorded); 3 when --budget stopped it; 130 when interrupted (Ctrl-C): what arrived is kept,
    and the same command with --resume RUN_ID sends the rest."""
    from costlens.progress import RunProgressDisplay  # imported on use: HTTP client, asyncio
    from costlens.run import RunOptions, run_requests

    err = _console(stderr=True)
    display = RunProgressDisplay(err, money)
    with open_session(state.settings) as session:
        options = RunOptions(
            requests_file=requests_file,
            models=models,
            base_url=base_url,
            api_key_env=api_key_env,
            concurrency=concurrency,
            rpm=rpm,
            tpm=tpm,
            max_retries=max_retries,
            timeout=timeout,
            stream=stream,
            budget=budget,
            allow_unpriced=allow_unpriced,
            tier=tier,  # type: ignore[arg-type]
            run_name=run_name,
            tags=_parse_tags(tags),
            resume=resume,
            store_content=store_content,
            command_line=redacted_command_line(sys.argv[1:]),
            pricing_sha256=session.pricing_sha256,
        )
        try:
            outcome = run_requests(session, options, on_progress=display)
        finally:
            display.close()
    for rej in outcome.rejects[:50]:
        err.print(f"rejected {rej}", markup=False)
    if len(outcome.rejects) > 50:
        err.print(
            f"... and {len(outcome.rejects) - 50} more rejected lines (see the rejects table)", markup=False
        )
    if as_json:
        click.echo(json.dumps(_run_json(outcome), indent=2))
    else:
        click.echo(_run_summary(outcome))
    if outcome.status == "interrupted":
        click.echo(
            f"costlens: interrupted; what arrived is stored. Resume with: {_resume_hint(outcome.run_id)}",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    if outcome.status == "budget_stopped":
        click.echo(
            f"costlens: budget reached: {outcome.run_unsent:,} requests not sent. "
            f"Raise --budget and resume with: {_resume_hint(outcome.run_id)}",
            err=True,
        )
        sys.exit(EXIT_BUDGET)
    if outcome.rejects or outcome.run_failed or outcome.run_unsent:
        sys.exit(EXIT_PARTIAL)


def _run_json(o: RunOutcome) -> dict[str, Any]:
    def usd(value: Decimal | None) -> str | None:
        return None if value is None else format_decimal(value)

    return {
        "run_id": o.run_id,
        "status": o.status,
        "resumed": o.resumed,
        "requests_file": {
            "file": o.requests.path,
            "sha256": o.requests.sha256,
            "lines_read": o.requests.lines_read,
            "accepted": o.requests.accepted,
            "rejected": len(o.rejects),
            "rejects": [{"line": r.line_no, "reason": r.reason} for r in o.rejects],
        },
        "run": {
            "requests": o.run_requests,
            "ok": o.run_ok,
            "failed": o.run_failed,
            "not_sent": o.run_unsent,
            "spent_usd": usd(o.spent_usd),
            "unpriced": o.unpriced,
            "budget_usd": usd(o.budget_usd),
        },
        "this_invocation": {
            "sent": o.sent,
            "ok": o.ok,
            "failed": o.failed,
            "not_sent": o.not_sent,
            "prompt_tokens": o.prompt_tokens,
            "completion_tokens": o.completion_tokens,
            "elapsed_s": round(o.elapsed_s, 3),
        },
    }


@cli.command()
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
        from costlens.estimate import estimate_file  # imported on use

        result = estimate_file(session.conn, requests_file, models)
    err = _console(stderr=True)
    for rej in result.requests.rejects[:50]:
        err.print(f"rejected {rej}", markup=False)
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        _print_estimate(result)
    if result.requests.rejects:
        sys.exit(EXIT_PARTIAL)


def _print_estimate(result: Estimate) -> None:
    rf = result.requests
    table = Table(
        title=f"Estimate for {rf.path}: {rf.accepted:,} requests ({len(rf.rejects):,} lines rejected)",
        title_justify="left",
    )
    for name in (
        "model", "prompt tok", "max output tok", "input cost", "worst-case output", "worst-case total",
        "expected output tok", "expected total",
    ):  # fmt: skip
        table.add_column(name, justify="left" if name == "model" else "right")
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
            m.model,
            f"{m.prompt_tokens:,}",
            f"{m.max_output_tokens:,}" + ("+" if m.unbounded_requests else ""),
            money(m.input_cost_usd),
            worst_out,
            worst_total,
            "-" if m.expected_output_tokens is None else f"{m.expected_output_tokens:,}",
            "-" if m.expected_output_tokens is None else money(m.expected_total_usd),
        )
    console = _console()
    console.print(table)
    for note in notes:
        console.print(note, markup=False)


@cli.command("serve-sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback).")
@click.option("--port", type=click.IntRange(0, 65535), default=18181, show_default=True, help="Port.")
@click.option(
    "--latency-ms", type=click.IntRange(min=0), default=0, show_default=True, help="Delay per answer."
)
@click.option(
    "--error-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of attempts that get a fault (429, 500, 503, dropped or cut connection).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for texts and faults.")
def serve_sim(host: str, port: int, latency_ms: int, error_rate: float, seed: int) -> None:
    """Serve a simulated OpenAI-compatible chat API (no real model) for trying `costlens run`:
    costlens run FILE --base-url http://127.0.0.1:18181/v1."""
    from costlens import sim  # lazy: only this command needs the simulator and uvicorn

    sim.serve(host, port, latency_ms=latency_ms, error_rate=error_rate, seed=seed)


def main() -> None:
    cli(prog_name="costlens", auto_envvar_prefix=None)


if __name__ == "__main__":  # pragma: no cover
    main()
