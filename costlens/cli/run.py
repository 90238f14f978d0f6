"""`costlens run`: send a request file and log every outcome with its usage and cost."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from costlens.cli.common import (
    EXIT_BUDGET,
    EXIT_INTERRUPTED,
    TIERS,
    State,
    Usd,
    make_console,
    money,
    parse_tags,
    redacted_command_line,
    run_labels,
)
from costlens.cli.tables import say
from costlens.money.decimal_text import format_decimal
from costlens.session import DEFAULT_BASE_URL, open_session

if TYPE_CHECKING:
    from costlens.send.run import RunOutcome


class Shard(click.ParamType):  # type: ignore[type-arg]
    """I/N with 1 <= I <= N."""

    name = "I/N"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value  # type: ignore[return-value]
        index, sep, count = str(value).partition("/")
        try:
            shard = (int(index), int(count))
        except ValueError:
            shard = (0, 0)
        if not sep or not 1 <= shard[0] <= shard[1]:
            self.fail(f"{value!r} is not I/N with 1 <= I <= N (e.g. 3/10)", param, ctx)
        return shard


def _resume_hint(run_id: int, budget: Decimal | None = None) -> str:
    """The command line that continues run ``run_id``; with ``budget``, its --budget replaced by that one."""
    args = list(sys.argv[1:])
    if budget is not None:
        kept: list[str] = []
        skip = False
        for arg in args:
            if skip:
                skip = False
                continue
            if arg == "--budget":
                skip = True
                continue
            if arg.startswith("--budget="):
                continue
            kept.append(arg)
        args = [*kept, "--budget", format_decimal(budget)]
    if "--resume" not in args and not any(a.startswith("--resume=") for a in args):
        args += ["--resume", str(run_id)]
    return redacted_command_line(args)


def _budget_advice(outcome: RunOutcome) -> str:
    """How to continue after a budget stop: a resume whose --budget covers everything left."""
    needed = outcome.budget_to_finish
    if needed is None:
        return f"Raise --budget and resume with: {_resume_hint(outcome.run_id)}"
    return (
        f"Spent {money(outcome.spent_usd)}; the rest is at most {money(outcome.remaining_worst_case_usd)}. "
        f"Resume with: {_resume_hint(outcome.run_id, needed)}"
    )


def _run_summary(outcome: RunOutcome) -> str:
    o = outcome
    rejected = len(o.rejects)
    spend = money(o.spent_usd)
    if o.unpriced:
        spend += f" (+{o.unpriced:,} unpriced)"
    parts = [
        f"run {o.run_id}{' (resumed)' if o.resumed else ''}"
        f"{' (SIMULATED: the answers say they are made up)' if o.simulated else ''}: {o.run_requests:,} requests",
        f"{o.run_ok:,} ok",
        f"{o.run_failed:,} failed",
        f"{o.run_unsent:,} not sent",
        f"{rejected:,} rejected line{'' if rejected == 1 else 's'}",
        f"this time {o.sent:,} sent, {o.prompt_tokens + o.completion_tokens:,} tokens",
        f"spent {spend}" + (f" of {money(o.budget_usd)} budget" if o.budget_usd is not None else ""),
        f"{o.elapsed_s:.1f} s",
    ]
    return ", ".join(parts)


@click.command()
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
@click.option("--budget", type=Usd(), help="Stop before spend could pass this many USD (exit 3).")
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    help="max_tokens for every body that has neither max_tokens nor max_completion_tokens "
    "(under --budget each request needs a bound).",
)
@click.option(
    "--allow-unpriced", is_flag=True, help="Under --budget, send to models without a price (uncounted)."
)
@click.option(
    "--tier",
    type=click.Choice(TIERS),
    default="auto",
    show_default=True,
    help="Service tier to price at; auto = the response's service_tier (flex/priority), else standard.",
)
@run_labels
@click.option(
    "--resume", type=int, metavar="RUN_ID", help="Send what run RUN_ID has no successful result for yet."
)
@click.option(
    "--shard",
    type=Shard(),
    metavar="I/N",
    help="Send only shard I of N (1-based): the requests whose custom_id hashes to it (MD5, see README), "
    "so N machines share one request file; the run is tagged shard=I/N.",
)
@click.option(
    "--store-content/--no-store-content",
    default=True,
    show_default=True,
    help="Store messages and completion text; without, only their sha256.",
)
@click.option(
    "--stop-grace",
    "stop_grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="After the first Ctrl-C (or SIGTERM), how long to wait for the answers in flight "
    "(recorded as usual); a second Ctrl-C drops them at once. 0 = drop at once.",
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
    max_tokens: int | None,
    allow_unpriced: bool,
    tier: str,
    run_name: str | None,
    tags: tuple[str, ...],
    resume: int | None,
    store_content: bool,
    stop_grace: float,
    shard: tuple[int, int] | None,
    as_json: bool,
) -> None:
    """Send REQUESTS.jsonl (batch input lines, {custom_id, body} or bare bodies) and log every
    outcome with its usage and cost.

    Exit 0 when every request succeeded; 1 when lines were rejected or requests failed (all
    recorded); 3 when --budget stopped it; 130 when interrupted (Ctrl-C or SIGTERM): sending stops,
    the answers in flight are waited for up to --stop-grace seconds (a second Ctrl-C drops them),
    what arrived is kept, and the printed command (--resume RUN_ID) sends the rest."""
    from costlens.send.progress import RunProgressDisplay  # imported on use: HTTP client, asyncio
    from costlens.send.run import RunOptions, run_requests

    err = make_console(stderr=True)
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
            max_tokens=max_tokens,
            allow_unpriced=allow_unpriced,
            tier=tier,  # type: ignore[arg-type]
            run_name=run_name,
            tags=parse_tags(tags),
            resume=resume,
            store_content=store_content,
            command_line=redacted_command_line(sys.argv[1:]),
            pricing_sha256=session.pricing_sha256,
            stop_grace_s=stop_grace,
            shard=shard,
        )
        try:
            outcome = run_requests(session, options, on_progress=display, on_notice=display.notice)
        finally:
            display.close()
    for rej in outcome.rejects[:50]:
        say(f"rejected {rej}", err=True)
    if len(outcome.rejects) > 50:
        say(f"... and {len(outcome.rejects) - 50} more rejected lines (see the rejects table)", err=True)
    if as_json:
        click.echo(json.dumps(_run_json(outcome), indent=2))
    else:
        click.echo(_run_summary(outcome))
    if outcome.status == "interrupted":
        dropped = (
            f"; {outcome.dropped:,} in flight dropped (the provider may bill them)" if outcome.dropped else ""
        )
        click.echo(
            f"costlens: interrupted; what arrived is stored{dropped}. "
            f"Resume with: {_resume_hint(outcome.run_id)}",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    if outcome.status == "budget_stopped":
        click.echo(
            f"costlens: budget reached: {outcome.run_unsent:,} requests not sent. " + _budget_advice(outcome),
            err=True,
        )
        sys.exit(EXIT_BUDGET)
    state.exit_partial_if(rejects=len(outcome.rejects), failed=outcome.run_failed, unsent=outcome.run_unsent)


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
            "remaining_worst_case_usd": usd(o.remaining_worst_case_usd),
            "budget_to_finish_usd": usd(o.budget_to_finish),
        },
        "simulated": o.simulated,
        "this_invocation": {
            "dropped_in_flight": o.dropped,
            "answered_after_stop": o.drained,
            "sent": o.sent,
            "ok": o.ok,
            "failed": o.failed,
            "not_sent": o.not_sent,
            "input_tokens": o.prompt_tokens,
            "output_tokens": o.completion_tokens,
            "elapsed_s": round(o.elapsed_s, 3),
        },
    }
