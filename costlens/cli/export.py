"""`costlens export`: one priced row per request, to CSV, Parquet or JSONL."""

from __future__ import annotations

from pathlib import Path

import click

from costlens.cli.common import State, lake_option, open_reader, selection_options
from costlens.money.filters import Filters


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
@lake_option
@click.pass_obj
def export(
    state: State,
    fmt: str,
    out: Path,
    filters: Filters,
    lake_uri: str | None,
) -> None:
    """Write one priced row per request (columns: README "Export columns")."""
    with open_reader(state, lake_uri) as session:
        from costlens.report.export import export_rows  # imported on use: keeps start-up short

        count = export_rows(session.conn, fmt, out, filters)  # type: ignore[arg-type]
    click.echo(f"wrote {count:,} rows to {out}", err=True)
