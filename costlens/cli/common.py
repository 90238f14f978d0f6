"""What every command shares: exit codes, the global State, option decorators, money display,
the console, and the redaction of the stored command line.

Kept apart from the commands so each command module stays one job: parse, call one library
function, render.
"""

from __future__ import annotations

import contextlib
import functools
import re
import shlex
import sys
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from costlens.errors import ConfigError
from costlens.money.decimal_text import format_decimal
from costlens.money.filters import Filters, parse_when
from costlens.session import Session, Settings, open_session

EXIT_OK = 0
EXIT_PARTIAL = 1  # finished, but some lines were rejected or some requests failed (all recorded)
EXIT_USAGE = 2
EXIT_BUDGET = 3
EXIT_INTERNAL = 4
EXIT_RECONCILE_DIFF = 5  # reconcile finished, but some cells differ beyond the tolerance (all stored)
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # the reader of stdout went away (128 + SIGPIPE)

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
        out.append(_redact_url(_SECRET_VALUE.sub("***", arg)))
    return shlex.join(["costlens", *out])


def _redact_url(arg: str) -> str:
    """An argument (or option=value) holding an http(s) URL, without its userinfo and query (where
    gateways put keys): ``https://user:pw@host/v1?key=x`` -> ``https://***@host/v1?***``."""
    prefix, url = ("", arg)
    if arg.startswith("--") and "=" in arg:
        prefix, url = arg.split("=", 1)
        prefix += "="
    if not url.lower().startswith(("http://", "https://")):
        return arg
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "***" if parts.query else ""
    return prefix + urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


# What may make a finished command exit 1 (--fail-on): rejected input lines, failed requests, and
# requests a run planned but did not send (a budget stop exits 3 whatever this says).
OUTCOMES = ("rejects", "failed", "unsent")
DEFAULT_FAIL_ON = ("rejects", "failed", "unsent")
# Earlier spellings still accepted (README "Vocabulary": a failed request is "failed" everywhere now).
_OUTCOME_ALIASES = {"errors": "failed", "error": "failed"}


def parse_fail_on(text: str) -> frozenset[str]:
    """``rejects,failed`` -> those outcomes; ``none`` -> exit 0 whenever the command finished."""
    parts = [p.strip().lower() for p in text.split(",") if p.strip()]
    parts = [_OUTCOME_ALIASES.get(p, p) for p in parts]
    if parts == ["none"]:
        return frozenset()
    bad = [p for p in parts if p not in OUTCOMES]
    if bad or not parts:
        raise ConfigError(
            f"--fail-on {text!r}: expected a comma-separated list of {', '.join(OUTCOMES)}, or none"
        )
    return frozenset(parts)


class State:
    """Global options, resolved once."""

    def __init__(
        self, settings: Settings, debug: bool, fail_on: frozenset[str] = frozenset(DEFAULT_FAIL_ON)
    ) -> None:
        self.settings = settings
        self.debug = debug
        self.fail_on = fail_on

    def exit_partial_if(self, **outcomes: int) -> None:
        """Exit 1 when any outcome counted here is one --fail-on names (README "Exit codes")."""
        if any(count for name, count in outcomes.items() if name in self.fail_on):
            sys.exit(EXIT_PARTIAL)


def make_console(stderr: bool = False) -> Console:
    # For messages (stderr, `pricing which`/`diff` lines). Tables and the sentences around them go
    # through costlens.cli.tables, which lays them out for a terminal or for logs.
    # Under cron there is no terminal: rich then prints plain text, no colour or cursor codes.
    return Console(
        stderr=stderr, highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200
    )


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    # An error quotes its input (a path, a model id, a JSON value): shown inert, controls escaped.
    from costlens.cli.tables import say

    say(f"costlens: error: {message}", err=True)
    sys.exit(code)


def parse_tags(values: Sequence[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--tag {value!r}: expected KEY=VALUE")
        tags[key.strip()] = val.strip()
    return tags


_UUID_PREFIX = re.compile(r"[0-9a-fA-F]{8}[0-9a-fA-F-]{0,28}")


def split_run_refs(values: Sequence[str | int]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """--run values: a run's local number, or its UUID (or the first 8+ characters of it)."""
    numbers: list[int] = []
    uuids: list[str] = []
    for value in values:
        text = str(value).strip()
        if text.isdigit():
            numbers.append(int(text))
        elif _UUID_PREFIX.fullmatch(text):
            uuids.append(text.lower())
        else:
            raise ConfigError(
                f"--run {text!r}: expected a run number (costlens runs) or a run UUID (at least 8 hex digits)"
            )
    return tuple(numbers), tuple(uuids)


def make_filters(
    run_ids: Sequence[int | str],
    since: str | None,
    until: str | None,
    models: Sequence[str] = (),
    tags: Sequence[str] = (),
    include_simulated: bool = False,
) -> Filters:
    numbers, uuids = split_run_refs(run_ids)
    return Filters(
        run_ids=numbers,
        run_uuids=uuids,
        since=parse_when(since, option="--since") if since else None,
        until=parse_when(until, option="--until") if until else None,
        models=tuple(models),
        tags=parse_tags(tags),
        include_simulated=include_simulated,
    )


_SELECTION = ("sel_run_ids", "sel_since", "sel_until", "sel_models", "sel_tags", "sel_include_simulated")


def selection_options(*, models: bool = True, scope: str = "") -> Callable[[F], F]:
    """The selection options every reader shares (summary, export, report, estimate's history,
    pricing diff), under the same names and meaning everywhere: --run, --since, --until, --model,
    --tag, --include-simulated. The command receives them as one ``filters`` argument.

    ``scope`` words the help for a command whose selection is not its output (estimate learns
    from "history: "); ``models=False`` leaves --model to the command (estimate's target models)."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = [kwargs.pop(name, None) for name in _SELECTION]
            run_ids, since, until, model_ids, tags, include_simulated = values
            kwargs["filters"] = make_filters(
                run_ids or (), since, until, model_ids or (), tags or (), bool(include_simulated)
            )
            return func(*args, **kwargs)

        options = [
            click.option(
                "--run", "sel_run_ids", multiple=True, metavar="ID",
                help=f"{scope}Only this run: its number, or its UUID or the first 8+ characters of it "
                "(repeatable). A run named here counts even if simulated.",
            ),
            click.option(
                "--since", "sel_since", metavar="WHEN",
                help=f"{scope}Only requests at or after this UTC date/datetime.",
            ),
            click.option(
                "--until", "sel_until", metavar="WHEN", help=f"{scope}Only requests before this UTC date/datetime."
            ),
        ]  # fmt: skip
        if models:
            options.append(
                click.option(
                    "--model", "sel_models", multiple=True, metavar="MODEL",
                    help=f"{scope}Only this model (repeatable).",
                )
            )  # fmt: skip
        options += [
            click.option(
                "--tag", "sel_tags", multiple=True, metavar="KEY=VALUE",
                help=f"{scope}Only runs with this tag (repeatable).",
            ),
            click.option(
                "--include-simulated", "sel_include_simulated", is_flag=True,
                help=f"{scope}Count simulated runs too (answers from costlens serve-sim: made-up latency "
                "and tokens); left out by default, and said so.",
            ),
        ]  # fmt: skip
        command: Any = wrapper
        for option in reversed(options):
            command = option(command)
        return command  # type: ignore[no-any-return]

    return decorate


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


TIERS = ["auto", "standard", "batch", "flex", "priority"]


def run_labels(command: F) -> F:
    """--run-name and --tag, shared by the commands that create runs."""
    command = click.option(
        "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Tag the run (repeatable)."
    )(command)
    return click.option(
        "--run-name", help="Name for the run (runs with the same name are compared over time)."
    )(command)


class Usd(click.ParamType):  # type: ignore[type-arg]
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


def lake_option(command: F) -> F:
    """--lake URI: read a lake (costlens publish) instead of --db, with the same filters and figures."""
    return click.option(
        "--lake",
        "lake_uri",
        metavar="URI",
        default=None,
        help="Read this lake (a directory or s3://bucket/prefix; see costlens publish) instead of --db.",
    )(command)


@contextlib.contextmanager
def open_reader(state: State, lake_uri: str | None) -> Iterator[Session]:
    """The session a reader queries: the DuckDB file, or the lake when --lake is given."""
    if not lake_uri:
        with open_session(state.settings) as session:
            yield session
        return
    from costlens.lake.location import open_location
    from costlens.lake.read import open_lake_session

    with open_lake_session(state.settings, open_location(lake_uri)) as session:
        yield session
