"""`costlens export`: one priced row per request, to CSV, Parquet or JSONL."""

from __future__ import annotations

from pathlib import Path

import click

from costlens.cli.common import State, selection_options
from costlens.money.filters import Filters
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
@selection_options()
@click.pass_obj
def export(
    state: State,
    fmt: str,
    out: Path,
    filters: Filters,
) -> None:
    """Write one priced row per request (columns: README "Export columns")."""
    with open_session(state.settings) as session:
        from costlens.report.export import export_rows  # imported on use: keeps start-up short

        count = export_rows(session.conn, fmt, out, filters)  # type: ignore[arg-type]
    click.echo(f"wrote {count:,} rows to {out}", err=True)
