"""`costlens export`: one priced row per request, to CSV, Parquet or JSONL."""

from __future__ import annotations

from pathlib import Path

import click

from costlens.cli.common import State, filter_options, make_filters
from costlens.session import open_session


@click.command()
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
    filters = make_filters(run_ids, since, until, models, tags)
    with open_session(state.settings) as session:
        from costlens.report.export import export_rows  # imported on use: keeps start-up short

        count = export_rows(session.conn, fmt, out, filters)  # type: ignore[arg-type]
    click.echo(f"wrote {count:,} rows to {out}", err=True)
