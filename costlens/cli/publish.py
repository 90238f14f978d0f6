"""`costlens publish`: append finished runs to a lake (a directory or s3://bucket/prefix)."""

from __future__ import annotations

import json

import click

from costlens.cli.common import State, split_run_refs
from costlens.cli.tables import Column, Table, print_line
from costlens.errors import ConfigError
from costlens.session import open_session

PUBLISH_COLUMNS = (
    Column("run"),
    Column("uuid", align="left"),
    Column("action", align="left"),
    Column("rows"),
    Column("files"),
    Column("bytes"),
)


@click.command()
@click.option(
    "--run",
    "run_refs",
    multiple=True,
    metavar="ID",
    help="Publish this run (repeatable; default: every finished run).",
)
@click.option(
    "--lake",
    "lake_uri",
    required=True,
    metavar="URI",
    help="The lake: a directory, or s3://bucket/prefix (endpoint from AWS_ENDPOINT_URL, credentials from the AWS variables).",
)
@click.option(
    "--reprice", is_flag=True, help="Publish again under the price table now in force (recorded as repriced)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: one object per run.")
@click.pass_obj
def publish(state: State, run_refs: tuple[str, ...], lake_uri: str, reprice: bool, as_json: bool) -> None:
    """Append finished runs to a lake: Parquet by day and run, a manifest per run written last.

    Readers (summary/report/export --lake, Spark) see all of a run or none of it. Publishing a
    published run again changes nothing; --reprice replaces its figures with today's prices."""
    from costlens.lake.location import open_location
    from costlens.lake.publish import publish_runs

    numbers, uuids = split_run_refs(run_refs)
    lake = open_location(lake_uri)
    with open_session(state.settings) as session:
        run_ids = list(numbers)
        for ref in uuids:
            found = session.conn.execute(
                "SELECT run_id FROM runs WHERE starts_with(CAST(run_uuid AS VARCHAR), ?)", [ref]
            ).fetchall()
            if len(found) != 1:
                raise ConfigError(
                    f"--run {ref}: {'no run' if not found else 'more than one run'} has this UUID"
                )
            run_ids.append(found[0][0])
        outcomes = publish_runs(session, lake, run_ids, reprice=reprice)
    if as_json:
        click.echo(json.dumps({"lake": lake.uri, "runs": [o.as_json() for o in outcomes]}, indent=2))
        return
    table = Table(f"Published to {lake.uri}", PUBLISH_COLUMNS)
    for o in outcomes:
        table.add_row(str(o.run_id), o.run_uuid, o.action, f"{o.rows:,}", f"{o.files:,}", f"{o.bytes:,}")
    table.print()
    if not outcomes:
        print_line("no finished runs to publish")
