"""`costlens replay`: load recorded result files without sending anything."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from costlens.cli.common import (
    TIERS,
    State,
    make_console,
    parse_tags,
    redacted_command_line,
    run_labels,
)
from costlens.cli.summary import print_summary
from costlens.ingest.replay import ReplayOptions, replay_files
from costlens.money.filters import Filters, parse_when
from costlens.report.summary import summarize
from costlens.session import open_session


@click.command()
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
    type=click.Choice(TIERS),
    default="auto",
    show_default=True,
    help="Service tier to price at; auto = batch for batch formats, else the response's service_tier.",
)
@run_labels
@click.option(
    "--at",
    "at_text",
    metavar="WHEN",
    help="Date (and price) lines that carry no time of their own (Anthropic, Gemini, Bedrock results, "
    "expired lines) at WHEN (ISO date/datetime, UTC) instead of the time of the replay.",
)
@click.option("--force", is_flag=True, help="Replay even if this file (same sha256) was already replayed.")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bedrock job manifest (manifest.json.out) to check the replay's record and token counts against; "
    "by default one next to a Bedrock output file is checked. A mismatch is a warning.",
)
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
    at_text: str | None,
    force: bool,
    manifest: Path | None,
    store_content: bool,
    as_json: bool,
) -> None:
    """Load recorded results (OpenAI/vLLM, Anthropic, Gemini, Vertex AI and Bedrock batch output,
    chat.completion objects) without sending anything. Each FILE becomes one run.

    Exit 0 when every line was stored and every request succeeded; 1 when some lines
    were rejected or some requests had failed (everything is still recorded). A Bedrock
    manifest that disagrees with the replay is a warning and does not change the exit code."""
    with open_session(state.settings) as session:
        outcome = replay_files(
            session.conn,
            ReplayOptions(
                files=files,
                requests_file=requests_file,
                model=model,
                tier=tier,  # type: ignore[arg-type]
                run_name=run_name,
                tags=parse_tags(tags),
                force=force,
                at=parse_when(at_text, option="--at") if at_text else None,
                store_content=store_content,
                manifest=manifest,
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
                    "failed": r.failed,
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
            "manifests": [
                {
                    "file": t.file,
                    "runs": list(t.run_ids),
                    "agrees": t.agrees,
                    "figures": {f.name: {"expected": f.expected, "replayed": f.replayed} for f in t.figures},
                    "error": t.error,
                }
                for t in outcome.totals
            ],
            "summary": summary.as_json(),
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        err = make_console(stderr=True)
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
                f"{r.failed:,} failed requests ({formats})"
            )
        print_summary(summary)
    # A manifest is a second opinion, not an outcome: it warns (also under --json), never exits 1.
    # One line each, however long (click, not the console, which wraps at its width).
    for t in outcome.totals:
        if t.error is not None:
            click.echo(f"warning: manifest {t.file} not checked: {t.error}", err=True)
        elif not t.agrees:
            figures = "; ".join(
                f"{f.name} {f.expected} expected, {f.replayed} replayed" for f in t.disagreements
            )
            click.echo(f"warning: manifest {t.file} disagrees with the replay: {figures}", err=True)
    state.exit_partial_if(rejects=len(all_rejects), failed=sum(r.failed for r in outcome.results))
