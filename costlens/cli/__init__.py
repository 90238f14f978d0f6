"""The costlens command line: parse options, call one library function, render the result.

One module per command group (``replay``, ``run``, ``estimate``, ``summary`` + ``runs``,
``export``, ``report``, ``pricing``, ``sim``); this module holds the top-level group, its global
options and the one place where a ``CostlensError`` becomes a one-line message on stderr and
its documented exit code (README "Exit codes"). No SQL and no HTTP here; a traceback is shown
only with ``--debug`` or for a genuine bug.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from costlens import __version__
from costlens.cli import estimate, export, pricing, publish, reconcile, replay, report, run, sim, summary
from costlens.cli.common import (
    DEFAULT_FAIL_ON,
    EXIT_BROKEN_PIPE,
    EXIT_INTERNAL,
    State,
    fail,
    parse_fail_on,
    redacted_command_line,
)
from costlens.cli.tables import stdout_layout
from costlens.errors import CostlensError
from costlens.session import DEFAULT_DB, Settings

__all__ = ["cli", "main", "redacted_command_line"]


class CostlensGroup(click.Group):
    """Turns library errors into messages and exit codes, in one place."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's own usage errors become one ``costlens: error:`` line too (exit 2), as README promises."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:
            e.show()  # a group without a command: its help, as click prints it
            sys.exit(e.exit_code)
        except click.ClickException as e:
            message = " ".join(e.format_message().split())
            if isinstance(e, click.UsageError) and e.ctx is not None:
                message += f" (see '{e.ctx.command_path} --help')"
            fail(message, e.exit_code)
        except click.exceptions.Abort:
            click.echo("costlens: interrupted", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)

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
        except BrokenPipeError:
            # The reader went away (`costlens pricing show | head`): not an error of ours. Point
            # stdout at /dev/null so the exit flush cannot raise again; 141 = 128 + SIGPIPE, as a shell says.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_BROKEN_PIPE)
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
@click.option(
    "--fallback-pricing",
    metavar="FILE|genai-prices",
    multiple=True,
    help="Price sheet for models the main sheet does not know, consulted in order (repeatable); "
    "'genai-prices' imports the installed genai-prices data on the fly. Such requests say so in price_note.",
)
@click.option(
    "--fail-on",
    metavar="LIST",
    default=",".join(DEFAULT_FAIL_ON),
    show_default=True,
    envvar="COSTLENS_FAIL_ON",
    help="Which outcomes of a finished command exit 1 (for cron): a comma-separated list of "
    "rejects (input lines rejected), failed (requests that failed; 'errors' is accepted too), "
    "unsent (planned, not sent), or none "
    "(env COSTLENS_FAIL_ON). Everything is recorded either way.",
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
    fallback_pricing: tuple[str, ...],
    fail_on: str,
    debug: bool,
) -> None:
    """Know exactly what LLM chat traffic costs, and what it would cost on another model."""
    ctx.meta["costlens.debug"] = debug
    stdout_layout()  # a bad COSTLENS_LAYOUT is a usage error before any work, not after a replay stored
    ctx.obj = State(
        Settings(
            db_path=db,
            pricing_path=pricing,
            extra_pricing=extra_pricing,
            extra_aliases=aliases,
            fallback_pricing=fallback_pricing,
        ),
        debug,
        parse_fail_on(fail_on),
    )


# Each command module holds one command group; registering them here keeps the modules free of the group.
for _command in (
    replay.replay,
    run.run,
    estimate.estimate,
    summary.summary,
    summary.runs,
    export.export,
    report.report,
    publish.publish,
    pricing.pricing,
    reconcile.reconcile_command,
    sim.serve_sim,
):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="costlens", auto_envvar_prefix=None)


if __name__ == "__main__":  # pragma: no cover
    main()
